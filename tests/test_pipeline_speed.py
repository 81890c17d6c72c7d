"""The faster per-sample pipeline (issue #15) gives exactly what the straightforward one gave.

``reference_pipeline.py`` is a frozen copy of R-peak detection, beat segments, normalisation and
``make_sample`` as they were before the speed work. Every comparison here is exact (``array_equal``
/ ``torch.equal``), on real records: the bundled open records (PTB-XL and LUDB excerpts, as the
model sees them), and from ``../shared/data`` PTB-XL at 100 Hz, LUDB and CinC 2021 at 500 Hz and
CPSC 2018 records of 10-54 s, so other rates and lengths are covered too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import reference_pipeline as ref
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal as sps

from lvcg_cli.datasets.torch_data import PretrainDataset
from lvcg_cli.datasets.visible_leads import VisibleLeads
from lvcg_cli.settings import resolve_settings
from lvcg_cli.signals import beats
from lvcg_cli.signals.model_input import make_sample

RECORDS = Path(__file__).resolve().parents[1] / "lvcg_cli" / "assets" / "records"
VISIBLE_SETS = ["I", "II", "I,II", "I,II,V2", "II,V2,V5", "I,II,V1,V4", "V1,V2,V3,V4,V5,V6", "all"]


def bundled_records() -> tuple[np.ndarray, np.ndarray]:
    """The 337 bundled open records as the training cache holds them (float16 mV, 100 Hz, 10 s)."""
    with np.load(RECORDS / "open_train.npz") as bundle:
        return bundle["signals"].astype(np.float32), bundle["present"].astype(bool)


def visible_masks(present: np.ndarray, rng: np.random.Generator, n: int) -> list[np.ndarray]:
    """``n`` visible-lead masks of a record: named sets and random subsets, as training draws them."""
    draw = VisibleLeads.from_settings(resolve_settings().train)
    return [draw.draw(present, rng) for _ in range(n)]


@pytest.fixture(scope="module")
def shared_signals(shared_data: Path) -> list[tuple[str, np.ndarray, float]]:
    """(name, (L, T) float32 mV of the present leads, fs) of real records at their own rates."""
    from lvcg_cli.signals.io import read_record

    paths = sorted((shared_data / "ptbxl" / "records100" / "00000").glob("*.hea"))[:40]
    paths += sorted((shared_data / "ludb" / "data").glob("*.hea"))[:40]
    paths += sorted((shared_data / "cinc2021").glob("*.hea"))
    paths += sorted((shared_data / "cpsc2018_raw").glob("*.mat"))
    out = []
    for path in paths:
        record = read_record(path)
        out.append((path.name, np.asarray(record.signal[record.present], dtype=np.float32), record.fs))
    assert len(out) >= 100
    return out


# --------------------------------------------------------------------------------------------
# the cached zero-phase filter
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fs", [100.0, 250.0, 257.0, 360.0, 500.0, 1000.0])
@pytest.mark.parametrize("n_time", [4, 17, 31, 1000, 5000])
def test_cached_filtfilt_is_scipys_sosfiltfilt_bit_for_bit(fs, n_time):
    signals, _ = bundled_records()
    x = np.resize(signals[:4].astype(np.float64), (4, 12, n_time)).reshape(48, n_time)[:7]
    sos, zi = beats._qrs_filter(fs)
    padlen = min(3 * (2 * len(sos) + 1), n_time - 1)
    expected = sps.sosfiltfilt(sos, x, axis=-1, padlen=padlen)
    got = beats._filtfilt(sos, zi, x, padlen)
    assert got.shape == expected.shape and np.array_equal(got, expected)
    assert np.array_equal(
        sos, sps.butter(2, [5.0, min(20.0, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")
    )


def test_filter_cache_is_shared_and_protected():
    first = beats._qrs_filter(100.0)
    assert beats._qrs_filter(100.0) is first  # designed once per rate
    with pytest.raises(ValueError):
        first[1][0, 0] = 1.0  # zi is read-only: no sample can corrupt the next one's filter
    assert beats._qrs_filter(10.0) is None  # 0.45 * fs <= 5 Hz: no QRS band at this rate


# --------------------------------------------------------------------------------------------
# R peaks and their envelope
# --------------------------------------------------------------------------------------------
def test_r_peaks_equal_the_reference_on_the_bundled_records_for_every_visible_set():
    signals, present = bundled_records()
    rng = np.random.default_rng(15)
    compared = 0
    for x, p in zip(signals, present, strict=True):
        for seen in visible_masks(p, rng, 3):
            if not seen.any():
                continue
            rows = x[seen]
            assert np.array_equal(beats.qrs_envelope(rows, 100.0), ref.qrs_envelope(rows, 100.0))
            assert np.array_equal(beats.detect_r_peaks(rows, 100.0), ref.detect_r_peaks(rows, 100.0))
            compared += 1
    assert compared > 900


def test_r_peaks_equal_the_reference_on_shared_records_at_their_own_rates(shared_signals):
    rates = set()
    for name, x, fs in shared_signals:
        rates.add(fs)
        for rows in (x, x[:1], x[1:3]):
            got, want = beats.detect_r_peaks(rows, fs), ref.detect_r_peaks(rows, fs)
            assert np.array_equal(got, want), name
            assert np.array_equal(beats.qrs_envelope(rows, fs), ref.qrs_envelope(rows, fs)), name
    assert {100.0, 500.0} <= rates


@pytest.mark.parametrize("fs", [20.0, 50.0, 100.0])
def test_edge_cases_equal_the_reference(fs):
    rng = np.random.default_rng(3)
    n = int(10 * fs)
    cases = [
        np.zeros((3, n)),  # absent leads
        rng.normal(size=(2, n)),  # noise only
        np.r_[np.zeros(n // 2), np.ones(n - n // 2)][None],  # a step
        rng.normal(size=(1, 8)),  # shorter than half a second
        np.full((2, n), np.nan),
    ]
    for x in cases:
        assert np.array_equal(beats.detect_r_peaks(x, fs), ref.detect_r_peaks(x, fs))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats(min_value=1e-6, max_value=1e3, allow_nan=False, allow_infinity=False),
        min_size=1,
        max_size=60,
    ),
    st.booleans(),
)
def test_typical_qrs_height_is_exactly_the_reference(heights, with_ties):
    h = np.asarray(heights, dtype=np.float64)
    if with_ties:
        h = np.concatenate([h, h[: len(h) // 2]])  # repeated values, odd and even sizes
    assert beats._typical_qrs_height(h) == ref._typical_qrs_height(h)


# --------------------------------------------------------------------------------------------
# whole samples
# --------------------------------------------------------------------------------------------
def assert_same_sample(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert set(got) == set(want)
    for key in want:
        assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key


@pytest.mark.parametrize("preset", ["lvcg-tiny", "lvcg-base"])
def test_make_sample_equals_the_reference_on_real_records(preset):
    s = resolve_settings(preset=preset)
    signals, present = bundled_records()
    rng = np.random.default_rng(9)
    for i in range(0, len(signals), 3):
        for seen in visible_masks(present[i], rng, 2):
            got = make_sample(signals[i], present[i], seen, s.data, s.model)
            assert_same_sample(got, ref.make_sample(signals[i], present[i], seen, s.data, s.model))


def test_make_sample_equals_the_reference_on_shared_records_and_other_settings(shared_signals):
    from lvcg_cli.signals.preprocess import fix_window

    rng = np.random.default_rng(2)
    for scope in ("record", "lead"):
        s = resolve_settings(overrides={"data.fs": 500.0, "data.normalize_scope": scope})
        for _name, x, fs in shared_signals[::3]:
            if fs != 500.0:
                continue
            window = np.zeros((12, s.data.n_samples), np.float32)
            window[: x.shape[0]] = fix_window(x, s.data.n_samples, "start", "zero")
            present = np.zeros(12, bool)
            present[: x.shape[0]] = True
            for seen in visible_masks(present, rng, 2):
                got = make_sample(window, present, seen, s.data, s.model)
                assert_same_sample(got, ref.make_sample(window, present, seen, s.data, s.model))


def test_training_items_equal_the_reference_pipeline():
    """What a DataLoader worker returns is the reference make_sample of the same record and draw."""
    s = resolve_settings(preset="lvcg-base")
    signals, present = bundled_records()

    class Bundled:
        def __len__(self) -> int:
            return len(signals)

        def get(self, i: int):
            return signals[i], present[i]

    items = np.stack([np.zeros(len(signals), np.int64), np.arange(len(signals))], axis=1)
    visible = VisibleLeads.from_settings(s.train)
    data = PretrainDataset([Bundled()], items, s.data, s.model, visible=visible, seed=7)
    from lvcg_cli.datasets.torch_data import sample_rng

    for epoch in (0, 3):
        data.set_epoch(epoch)
        for i in range(0, len(data), 5):
            seen = visible.draw(present[i], sample_rng(7, epoch, i))
            assert_same_sample(data[i], ref.make_sample(signals[i], present[i], seen, s.data, s.model))

"""The sample dict: scale from visible leads only, exact un-scaling, no leak from hidden leads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lvcg_cli.settings import DataSettings, ModelSettings
from lvcg_cli.signals.beats import beat_segments
from lvcg_cli.signals.leads import parse_leads, visible_mask
from lvcg_cli.signals.model_input import SAMPLE_KEYS, make_batch, make_sample

DATA = DataSettings()
MODEL = ModelSettings()
R_TIMES = np.array([0.5, 1.4, 2.2, 3.1, 3.9, 4.9, 5.7, 6.6, 7.4, 8.3, 9.2])


def twelve_lead(seed=0, fs=100.0, seconds=10.0):
    """Synthetic 12-lead mV signal whose QRS peaks sit at R_TIMES, with per-lead offsets."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(fs * seconds)) / fs
    qrs = sum(np.exp(-0.5 * ((t - r) / 0.015) ** 2) for r in R_TIMES)
    twave = sum(0.3 * np.exp(-0.5 * ((t - r - 0.3) / 0.05) ** 2) for r in R_TIMES)
    gains = rng.uniform(-1.5, 1.5, size=(12, 1))
    x = (
        gains * qrs
        + 0.5 * gains * twave
        + rng.normal(0, 0.3, size=(12, 1))
        + 0.02 * rng.normal(size=(12, t.size))
    )
    return x.astype(np.float32)


def test_keys_shapes_dtypes():
    x = twelve_lead()
    sample = make_sample(x, np.ones(12, bool), visible_mask(parse_leads("I,II,V2")), DATA, MODEL)
    assert tuple(sample) == SAMPLE_KEYS
    k = MODEL.max_beats
    expected = {
        "signal": ((12, 1000), torch.float32),
        "target": ((12, 1000), torch.float32),
        "visible": ((12,), torch.bool),
        "present": ((12,), torch.bool),
        "scale": ((), torch.float32),
        "bounds": ((k, 2), torch.int64),
        "beat_mask": ((k,), torch.bool),
        "rr": ((k,), torch.float32),
        "rpeaks": ((k,), torch.int64),
    }
    assert {key: (tuple(v.shape), v.dtype) for key, v in sample.items()} == expected


def test_scale_round_trip_and_hidden_zeroed():
    x = twelve_lead(1)
    present = np.ones(12, bool)
    present[9] = False
    x[9] = 0
    visible = visible_mask(parse_leads("I,II,V2"))
    sample = make_sample(x, present, visible, DATA, MODEL)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=1, keepdims=True)
    expected_scale = np.sqrt(np.mean((x64 - mean)[visible] ** 2))
    assert float(sample["scale"]) == pytest.approx(expected_scale, rel=1e-5)
    target = sample["target"].numpy().astype(np.float64)
    restored = target * float(sample["scale"]) + mean
    assert np.allclose(restored[present], x64[present], rtol=1e-6, atol=1e-5)
    signal = sample["signal"].numpy()
    assert np.all(signal[~visible] == 0) and np.array_equal(
        signal[visible], sample["target"].numpy()[visible]
    )
    assert np.all(target[9] == 0) and not sample["present"][9]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.sets(st.integers(0, 11), min_size=1, max_size=11))
def test_hidden_leads_never_change_the_inputs(seed, visible_set):
    x = twelve_lead(seed % 7)
    visible = visible_mask(sorted(visible_set))
    present = np.ones(12, bool)
    a = make_sample(x, present, visible, DATA, MODEL)
    rng = np.random.default_rng(seed)
    y = x.copy()
    y[~visible] = rng.normal(0, 5, size=y[~visible].shape)  # wild hidden leads
    b = make_sample(y, present, visible, DATA, MODEL)
    for key in ("signal", "scale", "bounds", "beat_mask", "rr", "visible"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["target"], b["target"])


def test_visible_but_absent_lead_is_hidden():
    x = twelve_lead(2)
    present = np.ones(12, bool)
    present[1] = False
    x[1] = 0
    sample = make_sample(x, present, visible_mask([0, 1, 7]), DATA, MODEL)
    assert sample["visible"].tolist() == [i in (0, 7) for i in range(12)]


def test_beats_come_from_visible_leads():
    x = twelve_lead(3)
    sample = make_sample(x, np.ones(12, bool), visible_mask([1]), DATA, MODEL)
    n = int(sample["beat_mask"].sum())
    assert n == len(R_TIMES)
    expected = beat_segments(np.round(R_TIMES * DATA.fs).astype(int), 1000, DATA.fs, MODEL.max_beats)
    assert np.abs(sample["bounds"].numpy()[:n] - expected.bounds[:n]).max() <= 2
    assert np.allclose(sample["rr"].numpy()[:n], expected.rr[:n], atol=0.03)
    assert np.abs(sample["rpeaks"].numpy()[:n] - np.round(R_TIMES * DATA.fs)).max() <= 2
    bounds = sample["bounds"].numpy()[:n]
    assert (
        (bounds[:, 0] <= sample["rpeaks"].numpy()[:n]) & (sample["rpeaks"].numpy()[:n] < bounds[:, 1])
    ).all()


def test_no_visible_lead_gives_pseudo_beats_and_unit_scale():
    sample = make_sample(twelve_lead(), np.ones(12, bool), np.zeros(12, bool), DATA, MODEL)
    assert float(sample["scale"]) == 1.0 and not sample["signal"].any()
    assert int(sample["beat_mask"].sum()) == 10


def test_lead_scope_and_batch():
    x = np.stack([twelve_lead(i) for i in range(3)])
    visible = visible_mask([0, 1, 7])
    batch = make_batch(x, np.ones(12, bool), visible, DATA, MODEL)
    assert batch["signal"].shape == (3, 12, 1000) and batch["scale"].shape == (3,)
    single = make_sample(x[2], np.ones(12, bool), visible, DATA, MODEL)
    assert all(torch.equal(batch[k][2], single[k]) for k in SAMPLE_KEYS)
    per_lead = make_sample(
        x[0], np.ones(12, bool), visible, DATA.model_copy(update={"normalize_scope": "lead"}), MODEL
    )
    assert per_lead["scale"].shape == (12,)
    assert np.allclose(per_lead["target"].numpy().std(axis=1), 1.0, atol=1e-3)

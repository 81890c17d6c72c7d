"""Reading records: every open form, lead order by name, units, NaN repair, and one-line errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb

from lvcg_cli.errors import RecordError
from lvcg_cli.signals.io import find_records, read_record
from lvcg_cli.signals.leads import CANONICAL_LEADS

FIXTURES = Path(__file__).parent / "fixtures" / "records"
MIMIC_ORDER = ["I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6"]


def write(folder: Path, name: str, samples: np.ndarray, names, units=None, fs=500, comments=None) -> Path:
    """A WFDB record with physical samples (T, C) written by wfdb itself; returns the header path."""
    units = units or ["mV"] * len(names)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=units,
        sig_name=list(names),
        p_signal=np.asarray(samples, dtype=np.float64),
        fmt=["16"] * len(names),
        comments=comments,
        write_dir=str(folder),
    )
    return folder / f"{name}.hea"


def blank(header: Path, channel: int, n_channels: int = 12) -> None:
    """Set one channel of a format-16 .dat to wfdb's "no sample" value (read back as NaN).

    wfdb cannot write an all-NaN column itself (it derives the gain from the column's range).
    """
    dat = header.with_suffix(".dat")
    digits = np.frombuffer(dat.read_bytes(), "<i2").reshape(-1, n_channels).copy()
    digits[:, channel] = -32768
    dat.write_bytes(digits.tobytes())


def ecg_like(n=5000, channels=12, seed=0, fs=500):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fs
    base = np.sin(2 * np.pi * 1.1 * t) + 0.3 * np.sin(2 * np.pi * 7 * t)
    return base[:, None] * rng.uniform(0.3, 2.0, channels) + 0.01 * rng.normal(size=(n, channels))


def one_line(error: RecordError, path) -> None:
    message = str(error)
    assert "\n" not in message and "Traceback" not in message
    assert str(path) in message or Path(path).name in message


# ---------------------------------------------------------------------------- good records
def test_reads_ptbxl_fixture_like_wfdb():
    record = read_record(FIXTURES / "00001_lr.hea")
    raw = wfdb.rdrecord(str(FIXTURES / "00001_lr"))
    assert record.id == "00001_lr" and record.fs == 100.0 and record.path == FIXTURES / "00001_lr.hea"
    assert record.signal.shape == (12, 1000) and record.signal.dtype == np.float32 and record.present.all()
    assert np.allclose(record.signal, raw.p_signal.T, atol=1e-6)  # AVR/AVL/AVF already canonical
    assert record.flags == [] and record.meta["format"] == "wfdb"
    same = read_record(FIXTURES / "00001_lr")  # without suffix
    assert np.array_equal(same.signal, record.signal)


def test_leads_are_matched_by_name_not_position(tmp_path):
    x = ecg_like()
    header = write(tmp_path, "mimic", x, MIMIC_ORDER)
    record = read_record(header)
    raw = wfdb.rdrecord(str(tmp_path / "mimic")).p_signal
    assert np.allclose(record.signal[CANONICAL_LEADS.index("aVL")], raw[:, 5], atol=1e-6)
    assert np.allclose(record.signal[CANONICAL_LEADS.index("aVF")], raw[:, 4], atol=1e-6)


def test_units_missing_and_extra_leads(tmp_path):
    x = ecg_like(channels=5)
    names = ["ii", "AVR", "v2", "vx", "MLII"]
    header = write(
        tmp_path,
        "mixed",
        x * np.array([1000, 1, 1, 1, 1]),
        names,
        units=["uV", "mv", "mV", "mV", "mV"],
        comments=["Age: 63", "Sex: Male", "Dx: 164889003,59118001"],
    )
    record = read_record(header)
    raw = wfdb.rdrecord(str(tmp_path / "mixed")).p_signal
    assert record.present.tolist() == [i in (1, 3, 7) for i in range(12)]
    assert np.allclose(record.signal[1], raw[:, 0] / 1000, atol=1e-5)  # uV -> mV
    assert np.allclose(record.signal[3], raw[:, 1], atol=1e-6)
    assert np.all(record.signal[~record.present] == 0)
    assert set(record.meta["extra_signals"]) == {"vx", "MLII"}
    assert (
        record.meta["age"] == 63
        and record.meta["sex"] == "M"
        and record.meta["dx"] == ["164889003", "59118001"]
    )


def test_short_nan_gap_is_repaired_long_gap_drops_the_lead(tmp_path):
    x = ecg_like()
    x[1000:1100, 0] = np.nan  # 0.2 s
    x[2000:2600, 2] = np.nan  # 1.2 s
    header = write(tmp_path, "gaps", x, CANONICAL_LEADS)
    blank(header, 4)
    record = read_record(header)
    assert np.isfinite(record.signal).all()
    assert (
        "nan_repaired" in record.flags and "nan_lead:III" in record.flags and "nan_lead:aVL" in record.flags
    )
    assert record.present.sum() == 10 and not record.present[2] and not record.present[4]
    stored = wfdb.rdrecord(str(tmp_path / "gaps")).p_signal[:, 0]
    line = np.interp(np.arange(1000, 1100), [999, 1100], [stored[999], stored[1100]])
    assert np.allclose(record.signal[0, 1000:1100], line, atol=1e-5)
    lenient = read_record(header, max_nan_gap_s=2.0)
    assert lenient.present[2]


def test_flat_lead_becomes_absent(tmp_path):
    x = ecg_like()
    x[:, 7] = 0.25
    record = read_record(write(tmp_path, "flat", x, CANONICAL_LEADS))
    assert not record.present[7] and "flat_lead:V2" in record.flags and np.all(record.signal[7] == 0)


def test_open_datasets(shared_data):
    ludb = read_record(shared_data / "ludb" / "data" / "1.hea")
    assert ludb.present.all() and ludb.fs == 500 and ludb.meta["sex"] == "F"
    hr = read_record(shared_data / "cinc2021" / "HR06000.mat")  # the .mat resolves to its header
    raw = wfdb.rdrecord(str(shared_data / "cinc2021" / "HR06000"))
    assert hr.path.suffix == ".hea" and np.allclose(hr.signal, raw.p_signal.T, atol=1e-5)
    cpsc = read_record(shared_data / "cpsc2018_raw" / "A1980.mat")
    data = scipy.io.loadmat(shared_data / "cpsc2018_raw" / "A1980.mat")["ECG"]["data"][0, 0]
    assert cpsc.meta["format"] == "cpsc" and cpsc.fs == 500 and np.allclose(cpsc.signal, data, atol=1e-6)
    assert cpsc.meta["age"] == 52 and cpsc.meta["sex"] == "M"
    ptb = read_record(shared_data / "ptb_diagnostic" / "s0010_re")
    assert ptb.fs == 1000 and ptb.present.all() and set(ptb.meta["extra_signals"]) == {"vx", "vy", "vz"}
    assert ptb.meta["extra_signals"]["vx"].shape == (38400,)


# ---------------------------------------------------------------------------- bad records
def _good(tmp_path, name="good"):
    return write(tmp_path, name, ecg_like(), CANONICAL_LEADS)


def test_missing_file(tmp_path):
    with pytest.raises(RecordError, match="no such file") as info:
        read_record(tmp_path / "nothing.hea")
    one_line(info.value, tmp_path / "nothing.hea")
    with pytest.raises(RecordError, match="no such file"):
        read_record(tmp_path / "nothing")


def test_header_without_signal_file(tmp_path):
    header = _good(tmp_path)
    (tmp_path / "good.dat").unlink()
    with pytest.raises(RecordError, match=r"signal file good\.dat is missing") as info:
        read_record(header)
    one_line(info.value, header)


def test_truncated_dat(tmp_path):
    header = _good(tmp_path)
    dat = tmp_path / "good.dat"
    dat.write_bytes(dat.read_bytes()[: 12 * 2 * 3000 + 7])
    with pytest.raises(
        RecordError, match="truncated signal file good.dat: header says 5000 samples, file holds 3000"
    ) as info:
        read_record(header)
    one_line(info.value, header)


def test_header_sample_count_mismatch(tmp_path):
    header = _good(tmp_path)
    header.write_text(header.read_text().replace("good 12 500 5000", "good 12 500 4000"))
    with pytest.raises(
        RecordError, match="sample count mismatch: header says 4000 samples, good.dat holds 5000"
    ):
        read_record(header)


@pytest.mark.parametrize(
    "content",
    [
        b"hello world\nthis is not a header\n",
        b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
        os.urandom(512),
        b"",
    ],
    ids=["text", "png", "garbage", "empty"],
)
def test_non_ecg_header(tmp_path, content):
    header = tmp_path / "fake.hea"
    header.write_bytes(content)
    with pytest.raises(RecordError, match="WFDB header") as info:
        read_record(header)
    one_line(info.value, header)


def test_garbage_mat_and_folder(tmp_path):
    mat = tmp_path / "A0001.mat"
    mat.write_bytes(os.urandom(300))
    with pytest.raises(RecordError, match="not a readable MATLAB"):
        read_record(mat)
    scipy.io.savemat(tmp_path / "other.mat", {"x": np.ones(3)})
    with pytest.raises(RecordError, match="no ECG.data"):
        read_record(tmp_path / "other.mat")
    scipy.io.savemat(tmp_path / "wfdbsig.mat", {"val": np.ones((12, 3))})
    with pytest.raises(RecordError, match="without its .hea header"):
        read_record(tmp_path / "wfdbsig.mat")
    with pytest.raises(RecordError, match="is a folder"):
        read_record(tmp_path)


def test_all_nan_and_mostly_nan(tmp_path):
    header = _good(tmp_path, "blank")
    for channel in range(12):
        blank(header, channel)
    with pytest.raises(RecordError, match="all samples are NaN") as info:
        read_record(header)
    one_line(info.value, header)
    mostly = ecg_like()
    mostly[:3500] = np.nan
    with pytest.raises(RecordError, match="mostly NaN"):
        read_record(write(tmp_path, "mostly", mostly, CANONICAL_LEADS))


def test_no_recognisable_leads_and_all_flat(tmp_path):
    header = write(tmp_path, "holter", ecg_like(channels=2), ["CM5", "V"])  # MLII would be read as II
    with pytest.raises(RecordError, match=r"no recognisable ECG lead names \(found: CM5, V\)"):
        read_record(header)
    header = write(tmp_path, "flat", np.zeros((5000, 12)) + 0.5, CANONICAL_LEADS)
    with pytest.raises(RecordError, match="all leads are flat"):
        read_record(header)


# ---------------------------------------------------------------------------- find_records
def test_find_records(tmp_path):
    (tmp_path / "b" / "deep").mkdir(parents=True)
    (tmp_path / "a").mkdir()
    h2 = write(tmp_path / "b", "r2", ecg_like(500), CANONICAL_LEADS)
    h1 = write(tmp_path / "b" / "deep", "r1", ecg_like(500), CANONICAL_LEADS)
    h0 = write(tmp_path / "a", "r0", ecg_like(500), CANONICAL_LEADS)
    shutil.copy(h0.with_suffix(".dat"), tmp_path / "a" / "r0.mat")  # a .mat beside a header: not separate
    scipy.io.savemat(
        tmp_path / "b" / "A0001.mat", {"ECG": {"data": ecg_like(600).T, "age": 40, "sex": "Female"}}
    )
    (tmp_path / "b" / "notes.txt").write_text("x")
    found = find_records([str(tmp_path / "b")])
    assert found == [tmp_path / "b" / "A0001.mat", tmp_path / "b" / "deep" / "r1.hea", h2]
    again = find_records(
        [str(h0), str(tmp_path / "b"), str(h2.with_suffix(".dat")), str(tmp_path / "a" / "r0")]
    )
    assert again == [h0, tmp_path / "b" / "A0001.mat", h1, h2]  # argument order kept, duplicates dropped
    assert find_records([str(tmp_path / "**" / "r*.hea")]) == [h0, h1, h2]  # sorted paths
    assert find_records([str(tmp_path / "b" / "r2")]) == [h2]
    with pytest.raises(RecordError, match="no such file or folder"):
        find_records([str(tmp_path / "missing")])
    with pytest.raises(RecordError, match="no file matches"):
        find_records([str(tmp_path / "*.xyz")])
    cpsc = read_record(tmp_path / "b" / "A0001.mat")
    assert cpsc.meta["format"] == "cpsc" and cpsc.meta["sex"] == "F" and cpsc.signal.shape == (12, 600)

"""Header and record validation: each physical bound refuses with one line naming the file and field."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import wfdb

from lvcg_cli.errors import RecordError
from lvcg_cli.signals import validate
from lvcg_cli.signals.io import read_record

ASSETS = Path(__file__).resolve().parents[1] / "lvcg_cli" / "assets" / "records"
PTBXL = ASSETS / "ptbxl" / "00001_hr.hea"
RECORD_LINE = "00001_hr 12 500 5000"


@pytest.fixture
def copy(tmp_path) -> Path:
    """A private copy of a bundled PTB-XL record (500 Hz, 12 x 5000, format 16); returns the header."""
    shutil.copy(PTBXL, tmp_path)
    shutil.copy(PTBXL.with_suffix(".dat"), tmp_path)
    return tmp_path / PTBXL.name


def _edit(header: Path, old: str, new: str, count: int = 1) -> None:
    text = header.read_text()
    assert old in text
    header.write_text(text.replace(old, new, count))


def _refused(header: Path, pattern: str) -> str:
    with pytest.raises(RecordError) as info:
        read_record(header)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(header)), message
    assert re.search(pattern, message), message
    return message


@pytest.mark.parametrize("fs", ["-500", "nan", "abc", "inf", "1e9", "5e2", "--", "500Hz"])
def test_sampling_frequency_that_is_not_a_number_is_refused_not_read_as_250(copy, fs):
    _edit(copy, RECORD_LINE, f"00001_hr 12 {fs} 5000")
    _refused(copy, rf"header field fs: '{re.escape(fs)}' is not a sampling frequency")


@pytest.mark.parametrize("fs", ["0", "0.001", "49.9", "20001", "1000000000"])
def test_sampling_frequency_outside_the_ecg_range_is_refused(copy, fs):
    _edit(copy, RECORD_LINE, f"00001_hr 12 {fs} 5000")
    _refused(copy, r"header field fs: .* Hz is outside the plausible range for an ECG \(50 to 20000 Hz\)")


@pytest.mark.parametrize("fs", ["50", "250", "1000", "20000", "500/1000(0)", "257.0"])
def test_plausible_sampling_frequencies_are_read_as_written(copy, fs):
    _edit(copy, RECORD_LINE, f"00001_hr 12 {fs} 5000")
    record = read_record(copy)
    assert record.fs == float(fs.split("/")[0])
    reference = wfdb.rdrecord(str(PTBXL.with_suffix(""))).p_signal.T
    np.testing.assert_allclose(record.signal, reference, atol=1e-6)  # the samples do not depend on fs


def test_a_record_line_without_fs_means_wfdb_default_250(copy):
    _edit(copy, RECORD_LINE, "00001_hr 12")
    record = read_record(copy)
    assert record.fs == 250.0 and record.n_samples == 5000  # header(5): fs 250, length from the file


def test_absurd_signal_count_is_refused_before_parsing_signals(copy, monkeypatch):
    _edit(copy, RECORD_LINE, "00001_hr 2000 500 5000")
    parsed = []
    real = validate._parse_signal
    monkeypatch.setattr(validate, "_parse_signal", lambda *a: parsed.append(a) or real(*a))
    _refused(copy, r"header field n_sig: 2000 signals \(an ECG record has at most 64\)")
    assert parsed == []  # rejected at the record line: no signal line is even parsed
    _edit(copy, "00001_hr 2000 500 5000", "00001_hr 13 500 5000")
    _refused(copy, r"declares 13 signals but describes 12")


def test_declared_sizes_are_checked_against_the_file_before_reading(copy, monkeypatch):
    _edit(copy, RECORD_LINE, "00001_hr 12 500 999999999999")
    calls = []
    monkeypatch.setattr(np, "fromfile", lambda *a, **k: calls.append(a))  # nothing may be read
    _refused(copy, r"truncated signal file 00001_hr\.dat: header says 999999999999 samples, file holds 5000")
    assert calls == []


def test_memory_for_one_record_is_bounded(copy, monkeypatch):
    monkeypatch.setenv("LVCG_MAX_RECORD_MB", "0.25")  # 12 x 5000 x 8 bytes = 0.46 MiB
    _refused(
        copy,
        r"header field sig_len: 12 signals x 5000 samples need 0.458 MiB, over the 0.25 MiB memory bound",
    )
    monkeypatch.setenv("LVCG_MAX_RECORD_MB", "1")
    assert read_record(copy).n_samples == 5000
    monkeypatch.setenv("LVCG_MAX_RECORD_MB", "-3")
    with pytest.raises(Exception, match="LVCG_MAX_RECORD_MB: must be a positive number"):
        read_record(copy)


def test_tiny_gain_is_refused_by_its_adc_step(copy):
    _edit(copy, "1000.0(0)/mV", "1e-30(0)/mV")
    _refused(copy, r"header field gain of signal 1 \(I\): 1e-30 per mV makes one ADC step 1e\+30 mV")


def test_gain_that_makes_thousands_of_mv_is_refused_naming_the_lead(copy):
    # A step of 5 mV passes the header check; V2 (1.24 mV typical) then reads 5000x too large.
    lines = copy.read_text().splitlines()
    lines[8] = lines[8].replace("1000.0(0)/mV", "0.2(0)/mV")  # signal 8: V2
    copy.write_text("\n".join(lines) + "\n")
    _refused(copy, r"lead V2 reads 6\.2\de\+03 mV \(99th percentile of \|x - median\|\), not an ECG's few mV")


def test_unit_change_is_followed_not_refused(copy):
    _edit(copy, "1000.0(0)/mV", "1.0(0)/uV")  # gain 1 per uV = 1000 per mV: the same signal
    record = read_record(copy)
    reference = wfdb.rdrecord(str(PTBXL.with_suffix(""))).p_signal.T
    np.testing.assert_allclose(record.signal, reference, atol=1e-6)


@pytest.mark.parametrize("gain", ["nan(0)/mV", "1e999(0)/mV", "x(0)/mV"])
def test_gain_that_is_not_a_finite_number_is_refused(copy, gain):
    _edit(copy, "1000.0(0)/mV", gain)
    _refused(copy, r"header field gain of signal 1 \(I\)")


def test_duplicate_lead_names_are_refused(copy):
    lines = copy.read_text().splitlines()
    lines[1:13] = [re.sub(r"\S+$", "I", line) for line in lines[1:13]]
    copy.write_text("\n".join(lines) + "\n")
    _refused(copy, r"header field description: duplicate lead name 'I' \(signals 1 and 2 are both I\)")
    lines[1:13] = [
        re.sub(r"\S+$", name, line)
        for line, name in zip(lines[1:13], ["I", "AVR"] + ["avr"] * 10, strict=True)
    ]
    copy.write_text("\n".join(lines) + "\n")
    _refused(copy, r"duplicate lead name 'avr' \(signals 2 and 3 are both aVR\)")


def test_unknown_storage_format_is_refused(copy):
    _edit(copy, "00001_hr.dat 16 ", "00001_hr.dat 17 ")
    _refused(copy, r"header field format of signal 1 \(I\): 17 is not a WFDB storage format")


@pytest.mark.parametrize(
    "content",
    [b"00001_hr 12 500 5000\n\x00\x01\x02garbage\n", b"# only a comment\n", b"   \n\n"],
    ids=["binary", "comments-only", "blank"],
)
def test_header_that_is_not_one(copy, content):
    copy.write_bytes(content)
    _refused(copy, "WFDB header")


def test_cpsc_file_larger_than_the_bound_is_refused_before_loading(tmp_path, monkeypatch):
    mat = tmp_path / "A0001.mat"
    scipy.io.savemat(mat, {"ECG": {"data": np.zeros((12, 20000)), "sex": "M", "age": 50}})
    monkeypatch.setenv("LVCG_MAX_RECORD_MB", "1")
    loads = []
    monkeypatch.setattr(scipy.io, "loadmat", lambda *a, **k: loads.append(a))
    _refused(mat, r"file of 1.8\d MiB exceeds the 1 MiB memory bound per record")
    assert loads == []


def test_check_signals_holds_any_reader_to_physics_and_to_the_header(tmp_path):
    path = tmp_path / "x.hea"
    good = np.random.default_rng(0).normal(0, 0.5, (1000, 12)).astype(np.float32)
    names = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    validate.check_signals(path, good, 500.0, names, ["mV"] * 12)
    facts = validate.HeaderFacts(fs=500.0, n_sig=12, sig_len=1000)
    validate.check_signals(path, good, 500.0, names, ["mV"] * 12, facts)
    with pytest.raises(RecordError, match="read as 250 Hz, but the header says 500 Hz"):
        validate.check_signals(path, good, 250.0, names, ["mV"] * 12, facts)
    with pytest.raises(RecordError, match="read 999 samples, but header field sig_len says 1000"):
        validate.check_signals(path, good[:999], 500.0, names, ["mV"] * 12, facts)
    with pytest.raises(RecordError, match="outside the plausible range"):
        validate.check_signals(path, good, float("nan"), names, ["mV"] * 12)
    loud = good.copy()
    loud[:, 4] *= 1e4  # aVL at ~5000 mV
    with pytest.raises(RecordError, match="lead aVL reads"):
        validate.check_signals(path, loud, 500.0, names, ["mV"] * 12)
    validate.check_signals(path, loud, 500.0, names, ["mV"] * 4 + ["uV"] + ["mV"] * 7)  # uV: 5 mV, fine
    spiky = good.copy()
    spiky[::100, 0] = 5000.0  # 1 % of samples clipped to a rail: a spike train, not a gain error
    validate.check_signals(path, spiky, 500.0, names, ["mV"] * 12)
    gappy = good.copy()
    gappy[100:200, 2] = np.nan  # NaN gaps are the repair step's business, not a refusal
    validate.check_signals(path, gappy, 500.0, names, ["mV"] * 12)


def test_every_open_record_passes_unchanged(shared_data):
    headers = sorted(shared_data.rglob("*.hea"))
    assert len(headers) > 100
    for header in headers:
        facts = validate.check_wfdb_header(header)
        assert validate.MIN_FS_HZ <= facts.fs <= validate.MAX_FS_HZ
    for mat in sorted((shared_data / "cpsc2018_raw").rglob("*.mat")):
        assert read_record(mat).fs == 500.0

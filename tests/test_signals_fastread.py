"""The numpy fast path for plain format-16 records agrees with wfdb, and falls back otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from lvcg_cli.errors import RecordError
from lvcg_cli.signals import io


def _both_paths(monkeypatch, path):
    fast = io.read_record(path)
    monkeypatch.setattr(io, "USE_FAST_PATH", False)
    slow = io.read_record(path)
    monkeypatch.setattr(io, "USE_FAST_PATH", True)
    return fast, slow


def _same(fast, slow):
    assert fast.id == slow.id and fast.fs == slow.fs
    np.testing.assert_array_equal(fast.present, slow.present)
    np.testing.assert_array_equal(fast.signal, slow.signal)  # bit-identical (NaN == NaN here)
    assert fast.flags == slow.flags
    assert {k: v for k, v in fast.meta.items() if k != "extra_signals"} == {
        k: v for k, v in slow.meta.items() if k != "extra_signals"
    }


def _headers(shared_data):
    every = []
    for folder in ("ptbxl/records100", "ptbxl/records500", "ludb/data", "cinc2021", "ptb_diagnostic"):
        every.extend(sorted((shared_data / folder).rglob("*.hea")))
    return every


def test_fast_path_equals_wfdb_on_the_open_records(shared_data, monkeypatch):
    headers = _headers(shared_data)
    assert len(headers) > 800
    taken = sum(io._read_plain_format16(h) is not None for h in headers)
    assert taken == len(headers) - 1  # all but PTB Diagnostic, whose Frank leads are in a second file
    for header in headers:
        fast, slow = _both_paths(monkeypatch, header)
        _same(fast, slow)


def test_fast_path_is_taken_for_ptbxl_and_cinc(shared_data, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("wfdb.rdrecord should not be needed")

    monkeypatch.setattr(wfdb, "rdrecord", refuse)
    record = io.read_record(shared_data / "ptbxl/records500/00000/00001_hr.hea")
    assert record.signal.shape == (12, 5000) and record.present.all()
    record = io.read_record(shared_data / "cinc2021/E07500.hea")
    assert record.signal.shape == (12, 5000) and record.meta


def _write(tmp_path, fmt="16", n=500):
    rng = np.random.default_rng(0)
    digital = rng.integers(-2000, 2000, size=(n, 3)).astype(np.int16)
    if fmt == "16":
        digital[10, 1] = -32768  # format 16's NaN code
    wfdb.wrsamp(
        "rec",
        fs=250,
        units=["mV"] * 3,
        sig_name=["I", "II", "V1"],
        d_signal=digital,
        fmt=[fmt] * 3,
        adc_gain=[200.0, 100.0, 400.0],
        baseline=[5, -3, 0],
        write_dir=str(tmp_path),
    )
    return tmp_path / "rec.hea"


def test_nan_code_gain_and_baseline_match_wfdb(tmp_path, monkeypatch):
    header = _write(tmp_path)
    fast, slow = _both_paths(monkeypatch, header)
    _same(fast, slow)


@pytest.mark.parametrize("fmt", ["212", "24"])
def test_other_formats_fall_back_to_wfdb(tmp_path, monkeypatch, fmt):
    header = _write(tmp_path, fmt=fmt)
    assert io._read_plain_format16(header) is None
    fast, slow = _both_paths(monkeypatch, header)
    _same(fast, slow)


def test_truncated_file_falls_back_and_keeps_the_error(tmp_path):
    header = _write(tmp_path)
    data = tmp_path / "rec.dat"
    data.write_bytes(data.read_bytes()[:-100])
    assert io._read_plain_format16(header) is None
    with pytest.raises(RecordError, match="truncated signal file"):
        io.read_record(header)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("200.0(5)/mV", "1.2.3(5)/mV"),  # unparseable gain
        ("rec.dat 16 200.0(5)/mV 16 0", "rec.dat 16 200.0(5)/mV 16 x"),  # non-integer adc_zero
        ("rec 3 250 500", "rec 3 250 500 10:00:00 32/13/2000"),  # impossible base date
        ("rec.dat 16 100.0(-3)/mV", "other.dat 16 100.0(-3)/mV"),  # two signal files
    ],
)
def test_doubtful_headers_go_to_wfdb(tmp_path, old, new):
    header = _write(tmp_path)
    text = header.read_text()
    assert old in text, text
    header.write_text(text.replace(old, new, 1))
    assert io._read_plain_format16(header) is None


def test_checksum_mismatch_goes_to_wfdb(tmp_path):
    header = _write(tmp_path)
    data = tmp_path / "rec.dat"
    raw = bytearray(data.read_bytes())
    raw[0] ^= 0x01  # same size, different content
    data.write_bytes(bytes(raw))
    assert io._read_plain_format16(header) is None

"""Fault campaign on real records: mutated headers and signal files, read in-process and via the CLI.

Each example copies a real record (bundled PTB-XL 500 Hz, LUDB, a CinC 2021 ``.mat`` with a byte
offset, the PTB-XL 100 Hz fixture, a CPSC 2018 original), mutates one thing (sampling rate, sample
or signal count, gain and unit, lead name, truncation, garbage bytes), then reads and preprocesses
it as ``prepare-data`` does. The only acceptable outcomes are:

* a finite result that is *correct*: values checked against an independent computation from the
  unmutated record (a gain change scales the lead by old/new gain times the unit factor, a
  rename moves the lead, an accepted rate is the rate written), or
* a :class:`RecordError`: one line, starting with the file's path, naming the problem;

never another exception, and never more than ``PEAK_BOUND`` bytes allocated (tracemalloc sees numpy's
buffers), whatever the header claims.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lvcg_cli.datasets.prepare import process_record
from lvcg_cli.errors import RecordError
from lvcg_cli.settings import DataSettings
from lvcg_cli.signals.io import read_record
from lvcg_cli.signals.leads import CANONICAL_LEADS, lead_index
from lvcg_cli.signals.validate import MAX_FS_HZ, MIN_FS_HZ

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "lvcg_cli" / "assets" / "records"
WFDB_RECORDS = {
    "ptbxl": ASSETS / "ptbxl" / "00001_hr.hea",
    "ludb": ASSETS / "ludb" / "1.hea",
    "cinc": ASSETS / "cinc2021" / "E07500.hea",
    "ptbxl100": REPO / "tests" / "fixtures" / "records" / "00001_lr.hea",
}
CPSC = ASSETS / "cpsc2018" / "A1980.mat"
PEAK_BOUND = 64 << 20
"""Largest allocation allowed while reading + preprocessing one mutated record (a good one needs ~1 MiB)."""
DATA = DataSettings()
UNITS = {"mV": 1.0, "uV": 1e-3, "V": 1e3, "": 1.0}
FAULTS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _copy(header: Path, folder: Path) -> Path:
    """Copy a WFDB record (header and every file it names) into ``folder``."""
    for line in header.read_text().splitlines()[1:]:
        if line.strip() and not line.startswith("#"):
            name = line.split()[0]
            if not (folder / name).exists():
                shutil.copy(header.parent / name, folder / name)
    shutil.copy(header, folder / header.name)
    return folder / header.name


def _lines(header: Path) -> list[str]:
    return header.read_text().splitlines()


def _write(header: Path, lines: list[str]) -> None:
    header.write_text("\n".join(lines) + "\n")


def _outcome(path: Path) -> tuple[object, int]:
    """``(record or RecordError, peak bytes)`` of read + preprocess; any other exception propagates."""
    tracemalloc.start()
    try:
        try:
            record = read_record(path)
            signal, present, _ = process_record(str(path), DATA)
            result: object = (record, signal, present)
        except RecordError as exc:
            result = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def _check(path: Path, mutate: Callable[[Path], None]) -> tuple[object, object]:
    """Read the original, mutate, read again; assert the universal rules; return both outcomes."""
    original = read_record(path)
    mutate(path)
    result, peak = _outcome(path)
    assert peak < PEAK_BOUND, f"{peak / 2**20:.0f} MiB allocated"
    if isinstance(result, RecordError):
        message = str(result)
        assert "\n" not in message and "Traceback" not in message, message
        assert message.startswith(f"{path}: "), message
        assert len(message) < 400
        return original, result
    record, signal, present = result
    assert np.isfinite(record.signal).all() and np.isfinite(np.asarray(signal, np.float32)).all()
    assert signal.shape == (12, DATA.n_samples) and present.any()
    assert MIN_FS_HZ <= record.fs <= MAX_FS_HZ
    return original, record


def _fresh(name: str) -> tuple[Path, Path]:
    folder = Path(tempfile.mkdtemp(prefix="lvcg-fault-"))
    return folder, _copy(WFDB_RECORDS[name], folder)


RECORD_NAMES = st.sampled_from(sorted(WFDB_RECORDS))
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-1e6, max_value=1e6).map(lambda v: f"{v:g}"),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["0", "50", "49.99", "20000", "20000.5", "1e3", "5e2", "-500", "nan", "abc", ".", ""]),
    st.text(alphabet="0123456789.-+e/()xX ", max_size=10),
)


# ---------------------------------------------------------------------------------------------
# property tests (in-process)
# ---------------------------------------------------------------------------------------------
@FAULTS
@given(name=RECORD_NAMES, token=NUMBERS)
def test_sampling_frequency_field(name, token):
    folder, header = _fresh(name)
    try:
        token = token.strip() or "0"

        def mutate(path):
            lines = _lines(path)
            fields = lines[0].split()
            fields[2] = token.replace(" ", "")
            lines[0] = " ".join(fields)
            _write(path, lines)

        original, outcome = _check(header, mutate)
        if not isinstance(outcome, RecordError):
            written = float(re.match(r"^[\d.]+", token.replace(" ", "")).group(0))
            assert outcome.fs == written  # read as written, never a silent default
            np.testing.assert_array_equal(outcome.signal, original.signal)
    finally:
        shutil.rmtree(folder)


@FAULTS
@given(name=RECORD_NAMES, field=st.sampled_from([1, 3]), value=st.integers(0, 10**13) | st.text(max_size=6))
def test_signal_and_sample_counts(name, field, value):
    folder, header = _fresh(name)
    try:
        token = str(value).replace(" ", "").replace("\n", "") or "x"

        def mutate(path):
            lines = _lines(path)
            fields = lines[0].split()
            fields[field] = token
            lines[0] = " ".join(fields)
            _write(path, lines)

        original, outcome = _check(header, mutate)
        if not isinstance(outcome, RecordError):
            assert outcome.n_samples == original.n_samples  # only the true count can pass
            np.testing.assert_array_equal(outcome.signal, original.signal)
    finally:
        shutil.rmtree(folder)


@FAULTS
@given(
    name=RECORD_NAMES,
    channel=st.integers(0, 11),
    gain=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.floats(min_value=1e-40, max_value=1e40),
        st.sampled_from([0.0, 1e-30, 0.1, 0.5, 1.0, 200.0, 1000.0, 1e6, -1000.0]),
    ),
    unit=st.sampled_from(sorted(UNITS)),
)
def test_gain_and_units(name, channel, gain, unit):
    folder, header = _fresh(name)
    try:
        lines = _lines(header)
        fields = lines[1 + channel].split(maxsplit=8)
        old_gain = float(re.match(r"^[-+.\deE]+", fields[2]).group(0))
        baseline = re.search(r"\((-?\d+)\)", fields[2])
        token = f"{gain!r}" + (f"({baseline.group(1)})" if baseline else "") + (f"/{unit}" if unit else "")
        lead = lead_index(fields[8])

        def mutate(path):
            fields[2] = token
            lines[1 + channel] = " ".join(fields)
            _write(path, lines)

        original, outcome = _check(header, mutate)
        if not isinstance(outcome, RecordError):
            effective = gain if gain != 0 else 200.0  # header(5): a zero gain means 200
            expected = original.signal[lead].astype(np.float64) * old_gain / effective * UNITS[unit]
            np.testing.assert_allclose(outcome.signal[lead], expected, rtol=1e-4, atol=1e-6)
            assert np.percentile(np.abs(expected - np.median(expected)), 99) <= 1000.0
    finally:
        shutil.rmtree(folder)


@FAULTS
@given(
    name=RECORD_NAMES,
    channel=st.integers(0, 11),
    new=st.sampled_from([*CANONICAL_LEADS, "avr", "Lead II", "MLII", "vx", "foo", "V7"]),
)
def test_lead_names(name, channel, new):
    folder, header = _fresh(name)
    try:
        lines = _lines(header)
        old = lines[1 + channel].split(maxsplit=8)[8]

        def mutate(path):
            lines[1 + channel] = lines[1 + channel][: -len(old)] + new
            _write(path, lines)

        original, outcome = _check(header, mutate)
        source, target = lead_index(old), lead_index(new)
        if new == "MLII" and source == 1:
            target = 1  # MIT-BIH's modified lead II is read as II when a file has no II (with a warning)
        if isinstance(outcome, RecordError):
            assert target is not None and target != source  # only a real duplicate is refused
            assert "duplicate lead name" in str(outcome)
        else:
            if target is not None:
                np.testing.assert_array_equal(outcome.signal[target], original.signal[source])
            if target != source:
                # a limb lead the file lost is derived from I and II (Einthoven/Goldberger) when both
                # are there, never taken from anything else; any other lost lead is absent
                derivable = source in (2, 3, 4, 5) and target not in (0, 1)
                if derivable:
                    assert (
                        outcome.present[source] and f"derived_lead:{CANONICAL_LEADS[source]}" in outcome.flags
                    )
                    np.testing.assert_allclose(outcome.signal[source], original.signal[source], atol=2e-3)
                else:
                    assert not outcome.present[source]
    finally:
        shutil.rmtree(folder)


@FAULTS
@given(name=RECORD_NAMES, cut=st.integers(-200_000, 100), junk=st.binary(max_size=64))
def test_truncated_or_extended_signal_file(name, cut, junk):
    folder, header = _fresh(name)
    try:
        signal_file = header.parent / _lines(header)[1].split()[0]

        def mutate(path):
            data = signal_file.read_bytes()
            signal_file.write_bytes(data[: max(len(data) + cut, 0)] if cut < 0 else data + junk[:cut])

        original, outcome = _check(header, mutate)
        if not isinstance(outcome, RecordError):
            np.testing.assert_array_equal(outcome.signal, original.signal)  # only < 1 frame extra passes
    finally:
        shutil.rmtree(folder)


@FAULTS
@given(name=RECORD_NAMES, where=st.floats(0, 1), junk=st.binary(min_size=1, max_size=4096))
def test_garbage_in_the_signal_file(name, where, junk):
    folder, header = _fresh(name)
    try:
        signal_file = header.parent / _lines(header)[1].split()[0]

        def mutate(path):
            data = bytearray(signal_file.read_bytes())
            start = int(where * max(len(data) - len(junk), 0))
            data[start : start + len(junk)] = junk
            signal_file.write_bytes(bytes(data))

        _check(header, mutate)  # finite and bounded, or one line
    finally:
        shutil.rmtree(folder)


@FAULTS
@given(
    name=RECORD_NAMES,
    header_text=st.one_of(
        st.binary(max_size=800),
        st.text(max_size=400),
        st.lists(st.text(alphabet="0123456789 ./()abcdefmV_-+", max_size=40), max_size=20).map("\n".join),
    ),
)
def test_garbage_header(name, header_text):
    folder, header = _fresh(name)
    try:

        def mutate(path):
            path.write_bytes(header_text if isinstance(header_text, bytes) else header_text.encode("utf-8"))

        _check(header, mutate)
    finally:
        shutil.rmtree(folder)


@FAULTS
@given(cut=st.integers(-20_000, -1), where=st.floats(0, 1), junk=st.binary(max_size=256))
def test_cpsc_mat_file_truncated_or_garbled(cut, where, junk):
    folder = Path(tempfile.mkdtemp(prefix="lvcg-fault-"))
    try:
        mat = folder / CPSC.name
        shutil.copy(CPSC, mat)

        def mutate(path):
            data = bytearray(path.read_bytes())
            start = int(where * len(data))
            data[start : start + len(junk)] = junk
            path.write_bytes(bytes(data[: len(data) + cut]) if cut > -len(data) else b"")

        _check(mat, mutate)
    finally:
        shutil.rmtree(folder)


def test_a_huge_claim_allocates_nothing(tmp_path):
    """The three claims the campaign found: 22 GiB for fs=0.001, 2000 signals, 1e12 samples."""
    for record_line in ("00001_hr 12 0.001 5000", "00001_hr 2000 500 5000", "00001_hr 12 500 1000000000000"):
        header = _copy(WFDB_RECORDS["ptbxl"], tmp_path)
        _write(header, [record_line, *_lines(header)[1:]])
        outcome, peak = _outcome(header)
        assert isinstance(outcome, RecordError) and peak < (1 << 20), (record_line, peak)


# ---------------------------------------------------------------------------------------------
# the same through the CLI (subprocess): exit 2, one line naming the file, no traceback
# ---------------------------------------------------------------------------------------------
def _lvcg(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LVCG_NO_PROGRESS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "lvcg_cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.mark.slow
def test_cli_refuses_mutated_records_in_one_line_and_embeds_a_good_one(tmp_path):
    cases = {
        "fs": ("00001_hr 12 500 5000", "00001_hr 12 -500 5000", "header field fs: '-500'"),
        "gain": ("1000.0(0)/mV", "1e-30(0)/mV", "header field gain of signal 1 (I)"),
        "count": ("00001_hr 12 500 5000", "00001_hr 2000 500 5000", "header field n_sig: 2000 signals"),
    }
    headers = {}
    for case, (old, new, _) in cases.items():
        folder = tmp_path / case
        folder.mkdir()
        header = _copy(WFDB_RECORDS["ptbxl"], folder)
        header.write_text(header.read_text().replace(old, new, 1))
        headers[case] = header
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    headers["truncated"] = _copy(WFDB_RECORDS["ptbxl"], truncated)
    (truncated / "00001_hr.dat").write_bytes((truncated / "00001_hr.dat").read_bytes()[:1000])
    messages = {**{k: v[2] for k, v in cases.items()}, "truncated": "truncated signal file 00001_hr.dat"}
    for case, header in headers.items():
        out = tmp_path / f"{case}.npy"
        proc = _lvcg("embed", str(header), "-o", str(out), "-q")
        assert proc.returncode == 2, (case, proc.stderr)
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith(f"lvcg: error: {header}: ") and messages[case] in proc.stderr
        assert not out.exists()
    good = tmp_path / "good.npy"
    proc = _lvcg("embed", str(WFDB_RECORDS["ptbxl"]), "-o", str(good), "-q")
    assert proc.returncode == 0, proc.stderr
    vector = np.load(good)
    from lvcg_cli.engine.checkpoint import load_model

    assert vector.shape == (load_model(None)[0].embedding_dim,)
    assert np.isfinite(vector).all() and np.abs(vector).max() > 0

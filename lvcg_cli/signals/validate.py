"""Physical and structural checks on a record, before its samples are read and right after.

Why a module of its own: a reader trusts the file it is given, and a WFDB header is easy to get
wrong in ways that a parser does not notice. wfdb's header grammar falls back to 250 Hz for a
sampling frequency of ``-500``, ``nan`` or ``abc``; a frequency of ``0.001`` Hz makes the
resampler ask for tens of GiB; a gain of ``1e-30`` turns a normal trace into 1e32 mV; a header
that declares a billion samples or two thousand signals makes the reader allocate before it
finds out the file is short. So every reader goes through two gates:

* :func:`check_wfdb_header` (or :func:`check_cpsc_file`) **before any sample is read**: the header
  is parsed with the WFDB grammar (header(5)), strictly; the sampling frequency must lie in
  ``[MIN_FS_HZ, MAX_FS_HZ]``; the signal count is bounded; every format must be a WFDB storage
  format; every gain must be finite and give ADC steps an ECG can be written in; lead names must
  not repeat; each signal file must exist and hold exactly the samples the header declares; and
  the samples of one record must fit in :func:`max_record_bytes` of memory.
* :func:`check_signals` **after reading**, for any reader: the sampling frequency again (so a
  reader cannot disagree with the header), the sample count, repeated lead names, and the
  amplitude in mV (a trace of thousands of mV is a gain or unit error, not an ECG).

Every refusal is a :class:`~lvcg_cli.errors.RecordError` naming the file and the header field.
The success path costs a header parse and a stat per signal file, and after reading one
min/max pass over the samples; everything slower runs only once something already looks wrong.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lvcg_cli.errors import RecordError, SettingsError
from lvcg_cli.signals.leads import CANONICAL_LEADS, lead_index

MIN_FS_HZ = 50.0
"""Lowest sampling frequency accepted: below it a QRS complex (~100 ms) is a handful of samples."""
MAX_FS_HZ = 20_000.0
"""Highest sampling frequency accepted: high-resolution and pacemaker-spike ECGs stay below it."""
MAX_SIGNALS = 64
"""Most signals in one record: 12 leads, Frank leads and a few auxiliary channels fit many times over."""
MAX_HEADER_BYTES = 1 << 20
"""A real WFDB header is a few kB."""
DEFAULT_MAX_RECORD_MB = 1024
"""Default memory bound for the samples of one record, as float64 (``LVCG_MAX_RECORD_MB`` changes it)."""
MAX_RECORD_MB_ENV = "LVCG_MAX_RECORD_MB"
BYTES_PER_VALUE = 8
"""Bytes each sample needs while it is read and converted (float64 working copies)."""
MAX_ADC_STEP_MV = 10.0
"""Largest ADC step (1/gain) accepted: a 1 mV QRS complex must be more than a fraction of a step."""
MAX_AMPLITUDE_MV = 1000.0
"""Largest typical amplitude (99th percentile of |x - median|) of a lead; ECGs are a few mV."""
WFDB_DEFAULT_FS = 250.0
"""What header(5) says a record line without a sampling frequency means."""
WFDB_DEFAULT_GAIN = 200.0
"""What header(5) says a missing or zero ADC gain means."""

UNIT_TO_MV = {"mv": 1.0, "millivolt": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "microvolt": 1e-3, "v": 1e3}
"""Physical units an ECG is stored in, as a factor to mV (unknown units are not judged here)."""

_BYTES_PER_SAMPLE = {
    "8": 1.0,
    "16": 2.0,
    "61": 2.0,
    "80": 1.0,
    "160": 2.0,
    "212": 1.5,
    "310": 4 / 3,
    "311": 4 / 3,
    "24": 3.0,
    "32": 4.0,
}
_COMPRESSED_FORMATS = {"0", "508", "516", "524"}  # null signals and FLAC: no fixed size per sample
_BINARY = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_NAME = re.compile(r"^[-\w]+$")
_FS = re.compile(r"^(\d*\.?\d*)(?:/(\d*\.?\d*)(?:\((-?\d*\.?\d*)\))?)?$")
_FORMAT = re.compile(r"^(\d+)(?:x(\d*))?(?::(\d*))?(?:\+(\d*))?$")
_GAIN = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)?(?:\((-?\d+)\))?(?:/(.*))?$")


@dataclass(frozen=True)
class HeaderFacts:
    """What a header promises; :func:`check_signals` holds the reader to it."""

    fs: float
    n_sig: int
    sig_len: int | None
    names: tuple[str, ...] = ()
    multi_segment: bool = False


def max_record_bytes() -> int:
    """The memory bound for one record's samples: ``LVCG_MAX_RECORD_MB`` MiB, default 1024."""
    text = os.environ.get(MAX_RECORD_MB_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_RECORD_MB << 20
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{MAX_RECORD_MB_ENV}: must be a positive number of MiB (got {text!r})")
    return int(value * (1 << 20))


def _size(n_bytes: float) -> str:
    """Bytes for a message: ``0.458 MiB``, ``22.4 GiB``."""
    return f"{n_bytes / 2**20:.3g} MiB" if n_bytes < 2**30 else f"{n_bytes / 2**30:.3g} GiB"


def unit_factor(unit: str) -> float | None:
    """mV per physical unit (``''`` counts as mV, the WFDB default), or None for units an ECG is not in."""
    key = unit.strip().lower()
    return 1.0 if key == "" else UNIT_TO_MV.get(key)


# --------------------------------------------------------------------------------------------
# before reading
# --------------------------------------------------------------------------------------------
def check_wfdb_header(header: str | os.PathLike) -> HeaderFacts:
    """Parse and check a WFDB header and its signal files' sizes; nothing of the samples is read.

    Raises :class:`RecordError` naming the file and the field at the first problem.
    """
    header = Path(header)
    text = _header_text(header)
    lines = [s for s in (raw.strip() for raw in text.splitlines()) if s and not s.startswith("#")]
    if not lines:
        raise RecordError(header, "not a valid WFDB header (no record line, only comments)")
    record = lines[0].split()
    if len(record) < 2:
        raise RecordError(
            header, f"not a valid WFDB header (record line {lines[0][:40]!r} has no signal count)"
        )
    name, slash, n_seg_text = record[0].partition("/")
    if not _NAME.match(name) or (slash and not n_seg_text.isdigit()):
        raise RecordError(header, f"not a valid WFDB header (record name {record[0][:40]!r})")
    if not record[1].isdigit():
        raise RecordError(
            header, f"not a valid WFDB header (number of signals {record[1][:40]!r} is not a whole number)"
        )
    n_sig = int(record[1])
    if n_sig > MAX_SIGNALS:
        raise RecordError(
            header, f"header field n_sig: {n_sig} signals (an ECG record has at most {MAX_SIGNALS}); not read"
        )
    if n_sig == 0:
        raise RecordError(header, "WFDB header lists no signals")
    fs = _parse_fs(header, record[2]) if len(record) > 2 else WFDB_DEFAULT_FS
    sig_len = None
    if len(record) > 3:
        if not record[3].isdigit():
            raise RecordError(header, f"header field sig_len: {record[3][:40]!r} is not a number of samples")
        sig_len = int(record[3])
    if slash:
        return _check_multi_segment(header, lines, int(n_seg_text), n_sig, fs, sig_len)
    if len(lines) - 1 < n_sig:
        raise RecordError(
            header, f"not a valid WFDB header (it declares {n_sig} signals but describes {len(lines) - 1})"
        )
    signals = [_parse_signal(header, i, lines[1 + i]) for i in range(n_sig)]
    names = tuple(s["name"] for s in signals)
    _check_unique_names(header, names)
    n_samples = _check_files(header, signals, sig_len)
    frame = sum(s["spf"] for s in signals)
    if n_samples is not None:
        _check_memory(header, n_sig, n_samples, frame)
    return HeaderFacts(fs=fs, n_sig=n_sig, sig_len=sig_len, names=names)


def check_cpsc_file(path: str | os.PathLike) -> HeaderFacts | None:
    """Bound a headerless CPSC ``.mat`` file before loading it (it holds 12 x N float64 values)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise RecordError(path, f"cannot open ({(exc.strerror or str(exc)).lower()})") from None
    limit = max_record_bytes()
    if size > limit:
        raise RecordError(
            path,
            f"file of {_size(size)} exceeds the {_size(limit)} memory bound per record "
            f"(raise {MAX_RECORD_MB_ENV} to read it)",
        )
    return None


def _header_text(header: Path) -> str:
    try:
        size = header.stat().st_size
        if size > MAX_HEADER_BYTES:
            raise RecordError(header, f"not a WFDB header ({size} bytes; headers are a few kB)")
        data = header.read_bytes()
    except OSError as exc:
        raise RecordError(header, f"cannot open ({(exc.strerror or str(exc)).lower()})") from None
    if not data.strip():
        raise RecordError(header, "empty file, not a WFDB header")
    if _BINARY.search(data):
        raise RecordError(header, "not a WFDB header (binary content)")
    return data.decode("utf-8", errors="replace")


def _parse_fs(header: Path, token: str) -> float:
    match = _FS.match(token)
    if match is None or not any(c.isdigit() for c in match.group(1)):
        raise RecordError(
            header, f"header field fs: {token[:40]!r} is not a sampling frequency (a positive number of Hz)"
        )
    fs = float(match.group(1))
    if not MIN_FS_HZ <= fs <= MAX_FS_HZ:
        raise RecordError(
            header,
            f"header field fs: {fs:g} Hz is outside the plausible range for an ECG "
            f"({MIN_FS_HZ:g} to {MAX_FS_HZ:g} Hz)",
        )
    return fs


def _label(i: int, name: str) -> str:
    return f"signal {i + 1}" + (f" ({name})" if name else "")


def _parse_signal(header: Path, i: int, line: str) -> dict:
    """One signal line -> file, format, samples per frame, byte offset, gain, units, name."""
    fields = line.split(maxsplit=8)
    name = fields[8].strip() if len(fields) > 8 else ""
    if len(fields) < 2:
        raise RecordError(header, f"not a valid WFDB header ({_label(i, name)} has no format field)")
    fmt = _FORMAT.match(fields[1])
    if fmt is None:
        raise RecordError(
            header, f"header field format of {_label(i, name)}: {fields[1][:40]!r} is not a WFDB format"
        )
    code = fmt.group(1).lstrip("0") or "0"
    if code not in _BYTES_PER_SAMPLE and code not in _COMPRESSED_FORMATS:
        raise RecordError(
            header, f"header field format of {_label(i, name)}: {code} is not a WFDB storage format"
        )
    gain, unit = WFDB_DEFAULT_GAIN, "mV"
    if len(fields) > 2:
        match = _GAIN.match(fields[2])
        if match is None:
            raise RecordError(
                header, f"header field gain of {_label(i, name)}: {fields[2][:40]!r} is not a number"
            )
        if match.group(1) is not None:
            value = float(match.group(1))
            if not math.isfinite(value):
                raise RecordError(
                    header, f"header field gain of {_label(i, name)}: {fields[2][:40]!r} is not finite"
                )
            gain = value if value != 0 else WFDB_DEFAULT_GAIN
        if match.group(3):
            unit = match.group(3)
    factor = unit_factor(unit)
    if factor is not None and factor / abs(gain) > MAX_ADC_STEP_MV:
        raise RecordError(
            header,
            f"header field gain of {_label(i, name)}: {gain:g} per {unit} makes one ADC step "
            f"{factor / abs(gain):.3g} mV (an ECG needs steps below {MAX_ADC_STEP_MV:g} mV)",
        )
    return {
        "file": fields[0],
        "format": code,
        "spf": int(fmt.group(2) or 1) or 1,
        "offset": int(fmt.group(4) or 0),
        "name": name,
    }


def _check_unique_names(path: Path, names) -> None:
    """Two signals that are the same standard lead would leave the reader to guess which one is meant.

    Other channels (Frank leads, respiration ...) are not judged: they are kept aside, never used as leads.
    """
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        index = lead_index(str(name))
        if index is None:
            continue
        key = CANONICAL_LEADS[index]
        if key in seen:
            raise RecordError(
                path,
                f"header field description: duplicate lead name {str(name)!r} "
                f"(signals {seen[key] + 1} and {i + 1} are both {key})",
            )
        seen[key] = i


def _check_files(header: Path, signals: list[dict], sig_len: int | None) -> int | None:
    """Each signal file exists and holds exactly the declared samples; returns the samples per signal."""
    per_file: dict[str, list[dict]] = {}
    for signal in signals:
        per_file.setdefault(signal["file"], []).append(signal)
    n_samples = sig_len
    for name, chans in per_file.items():
        code = chans[0]["format"]
        if code in _COMPRESSED_FORMATS or name == "-" or name.lower().endswith(".edf"):
            continue  # no fixed size per sample: the reader is the judge (bounded by sig_len below)
        bps = _BYTES_PER_SAMPLE[code]
        frame = sum(c["spf"] for c in chans)
        offset = chans[0]["offset"]
        try:
            actual = (header.parent / name).stat().st_size
        except OSError:
            raise RecordError(header, f"signal file {name} is missing") from None
        held = max(int((actual - offset) // (frame * bps)), 0)
        if sig_len is None:
            n_samples = held if n_samples is None else max(n_samples, held)
            continue
        expected = offset + math.ceil(sig_len * frame * bps)
        if actual < expected:
            raise RecordError(
                header, f"truncated signal file {name}: header says {sig_len} samples, file holds {held}"
            )
        if actual - expected >= math.ceil(frame * bps):
            raise RecordError(
                header, f"sample count mismatch: header says {sig_len} samples, {name} holds {held}"
            )
    return n_samples


def _check_memory(
    path: Path, n_sig: int, n_samples: int, frame: int | None = None, field: str = "header field sig_len: "
) -> None:
    values = n_samples * (frame or n_sig)
    need = values * BYTES_PER_VALUE
    limit = max_record_bytes()
    if need > limit:
        raise RecordError(
            path,
            f"{field}{n_sig} signals x {n_samples} samples need {_size(need)}, "
            f"over the {_size(limit)} memory bound per record (raise {MAX_RECORD_MB_ENV} to read it)",
        )


def _check_multi_segment(
    header: Path, lines: list[str], n_seg: int, n_sig: int, fs: float, sig_len: int | None
) -> HeaderFacts:
    """A multi-segment record: segment lines instead of signal lines; bound the total length."""
    if len(lines) - 1 < n_seg:
        raise RecordError(
            header, f"not a valid WFDB header (it declares {n_seg} segments but lists {len(lines) - 1})"
        )
    total = 0
    for line in lines[1 : 1 + n_seg]:
        parts = line.split()
        if len(parts) < 2 or not parts[1].isdigit():
            raise RecordError(header, f"not a valid WFDB header (segment line {line[:40]!r})")
        total += int(parts[1])
    _check_memory(header, n_sig, max(total, sig_len or 0))
    return HeaderFacts(fs=fs, n_sig=n_sig, sig_len=sig_len, multi_segment=True)


# --------------------------------------------------------------------------------------------
# after reading
# --------------------------------------------------------------------------------------------
def check_signals(
    path: str | os.PathLike,
    samples: np.ndarray,
    fs: float,
    names,
    units,
    facts: HeaderFacts | None = None,
) -> None:
    """Hold what a reader returned ((T, C) samples in the file's units) to physics and to the header."""
    path = Path(path)
    fs = float(fs)
    if not (math.isfinite(fs) and MIN_FS_HZ <= fs <= MAX_FS_HZ):
        raise RecordError(
            path,
            f"sampling frequency {fs:g} Hz is outside the plausible range for an ECG "
            f"({MIN_FS_HZ:g} to {MAX_FS_HZ:g} Hz)",
        )
    samples = np.asarray(samples)
    if samples.ndim != 2:
        raise RecordError(path, f"samples have shape {samples.shape}, expected time x signals")
    n_time, n_ch = samples.shape
    if facts is not None and not facts.multi_segment:
        if not math.isclose(fs, facts.fs, rel_tol=1e-9):
            raise RecordError(
                path, f"sampling frequency read as {fs:g} Hz, but the header says {facts.fs:g} Hz"
            )
        if facts.sig_len is not None and n_time != facts.sig_len:
            raise RecordError(path, f"read {n_time} samples, but header field sig_len says {facts.sig_len}")
    _check_memory(path, n_ch, n_time, field="record of ")
    if facts is None or tuple(names) != facts.names:  # the header's names were checked before reading
        _check_unique_names(path, names)
    _check_amplitude(path, samples, names, units)


def _check_amplitude(path: Path, samples: np.ndarray, names, units) -> None:
    """A lead of thousands of mV is a gain or unit error; one min/max pass unless something is off."""
    if samples.size == 0 or samples.dtype.kind not in "fiu":
        return
    factors = np.asarray(
        [unit_factor(units[c] if c < len(units) else "") or 1.0 for c in range(samples.shape[1])]
    )
    flat = samples.reshape(-1)  # whole-array fmax/fmin skip NaN and are ~25x faster than per column
    if (
        max(abs(float(np.fmax.reduce(flat))), abs(float(np.fmin.reduce(flat)))) * factors.max()
        <= MAX_AMPLITUDE_MV
    ):
        return
    with np.errstate(invalid="ignore"):
        peak = np.maximum(np.abs(samples.max(axis=0)), np.abs(samples.min(axis=0))) * factors
    suspects = np.flatnonzero(~(peak <= MAX_AMPLITUDE_MV))  # NaN/inf columns are looked at too
    for c in suspects:
        column = np.asarray(samples[:, c], dtype=np.float64)
        column = column[np.isfinite(column)]
        if column.size == 0:
            continue
        typical = float(np.percentile(np.abs(column - np.median(column)), 99)) * factors[c]
        if typical > MAX_AMPLITUDE_MV:
            name = str(names[c]) if c < len(names) else f"signal {c + 1}"
            raise RecordError(
                path,
                f"lead {name} reads {typical:.3g} mV (99th percentile of |x - median|), not an ECG's "
                "few mV: check its gain and units in the header",
            )


__all__ = [
    "MAX_AMPLITUDE_MV",
    "MAX_FS_HZ",
    "MAX_SIGNALS",
    "MIN_FS_HZ",
    "HeaderFacts",
    "check_cpsc_file",
    "check_signals",
    "check_wfdb_header",
    "max_record_bytes",
]

"""Read any 12-lead record into a :class:`Record`: canonical lead order, mV, finite samples.

The on-disk forms understood:

* **WFDB** (``.hea`` + ``.dat``, or the PhysioNet/CinC 2020-2021 ``.hea`` + ``.mat``), read with
  ``wfdb.rdrecord``; this covers PTB-XL, LUDB, MIMIC-IV-ECG, Chapman, CinC and PTB Diagnostic.
* **CPSC 2018 original** ``.mat`` files (a struct ``ECG`` with ``data`` 12 x N, 500 Hz, mV) that
  have no header, read with ``scipy.io.loadmat``.
* the formats hospitals export: **DICOM** waveforms, **GE MUSE XML**, **HL7 aECG**, **SCP-ECG**,
  **Philips XML** and **EDF/EDF+**, recognised by content (magic bytes, XML root element), not by
  suffix, and read by :mod:`lvcg_cli.signals.readers`.

Leads are matched by name (see :mod:`lvcg_cli.signals.leads`), never by position; a ``lead_map``
renames what the built-in vocabulary does not know. Leads a file lacks are zeros with
``present=False``, except III, aVR, aVL and aVF, which are *derived* from I and II (Einthoven and
Goldberger, exact) and flagged ``derived_lead:<name>``. Non-standard channels (Frank ``vx/vy/vz``,
paediatric ``V3R``/``V7``) are kept in ``meta["extra_signals"]``, flagged ``extra_lead:<name>`` and
never used as a standard lead. Every problem with a file becomes one :class:`RecordError` naming it.

Reading is the baseline other stages are timed against, so the success path does nothing beyond
``wfdb.rdrecord`` but a few whole-array numpy operations; diagnosis of *why* a file failed only
runs after it failed.
"""

from __future__ import annotations

import datetime
import glob
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lvcg_cli.errors import RecordError, first_line
from lvcg_cli.signals import validate
from lvcg_cli.signals.leads import CANONICAL_LEADS, LIMB_FROM_I_II, N_LEADS, assign_leads
from lvcg_cli.signals.readers import FORMATS, SUPPORTED, read_format, sniff
from lvcg_cli.signals.readers.detect import read_head
from lvcg_cli.signals.repair import MAX_NAN_GAP_S, repair_nonfinite

MAX_NAN_FRACTION = 0.5
"""A record with more than this fraction of non-finite samples (over its standard leads) is rejected."""

MAX_HEADER_BYTES = 1 << 20
"""A real WFDB header is a few kB; anything larger is not one (and is not worth parsing)."""

CPSC_FS = 500.0

_UNIT_TO_MV = {"mv": 1.0, "millivolt": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "microvolt": 1e-3, "v": 1e3}
_BYTES_PER_SAMPLE = {"8": 1.0, "16": 2.0, "61": 2.0, "80": 1.0, "160": 2.0, "212": 1.5, "24": 3.0, "32": 4.0}


@dataclass
class Record:
    """One ECG in canonical form.

    ``signal`` is (12, T) float32 in mV in :data:`CANONICAL_LEADS` order; absent leads are zeros
    and ``present`` is False for them. ``flags`` lists what was done to the record
    (``nan_repaired``, ``nan_lead:V3``, ``flat_lead:aVL``, ``unknown_unit:II``, ``duplicate_lead:I``,
    ``derived_lead:III``, ``extra_lead:V3R``, ``lead_alias:MLII->II``, ``lead_map:ECG1->I``).
    ``meta`` holds ``format`` (``wfdb``/``cpsc``/``dicom``/``muse``/``aecg``/``scp``/``philips``/
    ``edf``), ``leads_in_file``, ``units``, ``comments``, ``age`` (int or None), ``sex``
    (``M``/``F``/None), ``dx`` (list of codes), ``header`` (all ``key: value`` comment pairs),
    ``warnings`` (lines worth showing a user: a lead read under an alias, leads kept as extras),
    format details (device, waveform group ...) and, when the file has non-standard channels,
    ``extra_signals`` ({name: (T,) float32 mV}).
    """

    id: str
    path: Path
    signal: np.ndarray
    present: np.ndarray
    fs: float
    flags: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return int(self.signal.shape[-1])

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.fs


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
def read_record(
    path: str | os.PathLike,
    *,
    max_nan_gap_s: float = MAX_NAN_GAP_S,
    lead_map: Mapping[str, str] | str | None = None,
) -> Record:
    """Read one record; ``path`` may be a WFDB header, the record name without suffix, a CPSC ``.mat``
    or a DICOM, GE MUSE XML, HL7 aECG, SCP-ECG, Philips XML or EDF file (recognised by content).

    ``lead_map`` (``{"ECG1": "I"}`` or ``"ECG1=I,Pleth=-"``) names channels the built-in vocabulary
    does not know; ``-`` ignores a channel. Raises :class:`RecordError` (one line naming the file
    and the problem) for a missing file, a header without its signal file, truncated or over-long
    signal files, non-ECG or garbage files, an unsupported format, a reader library that is not
    installed, records that are mostly NaN, entirely flat, or have no recognisable lead names.
    """
    kind, target = _resolve(Path(path))
    facts: validate.HeaderFacts | None
    if kind == "wfdb":
        facts = validate.check_wfdb_header(target)  # before any sample is read (signals/validate.py)
        signal, fs, names, units, comments, meta = _read_wfdb(target)
    elif kind == "cpsc":
        facts = validate.check_cpsc_file(target)
        signal, fs, names, units, comments, meta = _read_cpsc(target)
    else:
        facts = None  # clinical formats: the reader sized its arrays from the file itself
        signal, fs, names, units, comments, meta = read_format(kind, target)
    validate.check_signals(target, signal, fs, names, units, facts)
    return _to_record(target, signal, fs, names, units, comments, meta, max_nan_gap_s, lead_map)


def record_from_array(
    signal: np.ndarray,
    fs: float,
    leads: Iterable[str] | None = None,
    *,
    max_nan_gap_s: float = MAX_NAN_GAP_S,
    lead_map: Mapping[str, str] | str | None = None,
    name: str = "array",
) -> Record:
    """An ECG held in memory, ``signal`` (n_leads, T) in mV at ``fs`` Hz, as a :class:`Record`.

    Made exactly as a file's record is (the same checks, lead matching by name in any order,
    NaN repair up to ``max_nan_gap_s``, III/aVR/aVL/aVF derived from I and II when absent), so an
    array and the file it came from give the same record. ``leads`` names the rows (default: the
    12 standard leads in canonical order); ``name`` is what messages and ``Record.id`` call it.
    Raises :class:`RecordError` naming ``name`` and the problem.
    """
    x = np.asarray(signal)
    names = list(CANONICAL_LEADS) if leads is None else [str(lead) for lead in leads]
    if x.ndim != 2:
        raise RecordError(name, f"expected an array of (leads, samples), got shape {x.shape}")
    if x.shape[0] != len(names):
        raise RecordError(name, f"{x.shape[0]} rows of signal but {len(names)} lead names")
    if x.dtype.kind not in "fiu":
        raise RecordError(name, f"samples must be numbers (got dtype {x.dtype})")
    try:
        rate = float(fs)
    except (TypeError, ValueError):
        raise RecordError(name, f"invalid sampling frequency {fs!r}") from None
    units = ["mV"] * len(names)
    validate.check_signals(name, x.T, rate, names, units)
    meta = {"format": "array"}
    return _to_record(Path(name), x.T, rate, names, units, [], meta, max_nan_gap_s, lead_map)


def _resolve(path: Path) -> tuple[str, Path]:
    """Which reader and which file: ('wfdb', header), ('cpsc', mat) or (a clinical format, file)."""
    if path.is_dir():
        raise RecordError(path, "is a folder, not a record (give a .hea or .mat file)")
    suffix = path.suffix.lower()
    if suffix == ".hea":
        if not path.is_file():
            raise RecordError(path, "no such file")
        return "wfdb", path
    if suffix in {".dat", ".mat", ".xyz"}:
        header = path.with_suffix(".hea")
        if header.is_file():
            return "wfdb", header
        if not path.is_file():
            raise RecordError(path, "no such file")
        kind = sniff(path)
        if suffix == ".mat" and kind in (None, "cpsc"):
            return "cpsc", path  # loadmat says what is wrong with a damaged one
        if kind in FORMATS:
            return kind, path
        raise RecordError(path, "WFDB signal file without its .hea header")
    header, mat = Path(f"{path}.hea"), Path(f"{path}.mat")
    if header.is_file():
        return "wfdb", header
    if mat.is_file():
        return "cpsc", mat
    if path.is_file():
        kind = sniff(path)
        if kind is not None:
            return kind, path
        raise RecordError(path, f"not an ECG record in a supported format ({describe_unknown(path)})")
    raise RecordError(path, "no such file")


def _is_text(head: bytes) -> bool:
    """UTF-8 (or ASCII) text without control characters other than tab and line ends."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of the head
            return False
        text = head[: exc.start].decode("utf-8")
    return all(ch.isprintable() or ch in "\t\r\n" for ch in text)


def describe_unknown(path: Path) -> str:
    """Why a file is not read, for one-line messages: what it looks like, and what would be read."""
    head = read_head(path, 512)
    if not head:
        looks = "empty or unreadable file"
    elif head.startswith(b"\xffBIOSEMI"):
        looks = "BDF (24-bit BioSemi), not EDF"
    elif head.lstrip().startswith(b"<") or head.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        from lvcg_cli.signals.readers.detect import xml_root

        root = xml_root(path, read_head(path))
        looks = f"XML with root element <{root}>" if root else "XML-like text"
    elif _is_text(head):
        looks = "a text file"
    else:
        looks = "unrecognised binary content"
    return f"{looks}; supported: {SUPPORTED}"


def _read_wfdb(header: Path):
    import wfdb  # imported here: costs ~0.3 s and only readers need it

    try:
        size = header.stat().st_size
    except OSError as exc:
        raise RecordError(header, f"cannot open ({exc.strerror or exc})") from None
    if size == 0:
        raise RecordError(header, "empty file, not a WFDB header")
    if size > MAX_HEADER_BYTES:
        raise RecordError(header, f"not a WFDB header ({size} bytes; headers are a few kB)")
    if USE_FAST_PATH:
        fast = _read_plain_format16(header)
        if fast is not None:
            return fast
    record_name = str(header.with_suffix(""))
    try:
        rec = wfdb.rdrecord(record_name, return_res=32)
    except Exception as exc:  # wfdb raises many types for bad files; diagnose, then one line
        raise RecordError(header, _diagnose_wfdb(header, exc)) from None
    if rec.p_signal is None or rec.p_signal.size == 0:
        raise RecordError(header, "record has no samples")
    fs = float(rec.fs or 0)
    if not math.isfinite(fs) or fs <= 0:
        raise RecordError(header, f"invalid sampling frequency {rec.fs!r} in header")
    size_problem = _signal_size_problem(header, rec)
    if size_problem:
        raise RecordError(header, size_problem)
    names = [str(n) for n in (rec.sig_name or [])]
    units = [str(u) if u is not None else "" for u in (rec.units or [""] * len(names))]
    return rec.p_signal, fs, names, units, list(rec.comments or []), {"format": "wfdb"}


def _diagnose_wfdb(header: Path, exc: Exception) -> str:
    """Turn a wfdb failure into a short, specific problem statement."""
    import wfdb

    if isinstance(exc, FileNotFoundError):
        missing = Path(exc.filename).name if exc.filename else "its signal file"
        return f"signal file {missing} is missing"
    try:
        head = wfdb.rdheader(str(header.with_suffix("")))
    except Exception:
        return "not a valid WFDB header (cannot parse its record line)"
    if not head.sig_name:
        return "WFDB header lists no signals"
    for name in dict.fromkeys(head.file_name or []):
        if not (header.parent / name).is_file():
            return f"signal file {name} is missing"
    problem = _signal_size_problem(header, head)
    if problem:
        return problem
    return f"cannot read signals ({first_line(exc)})"


USE_FAST_PATH = True
"""Read plain format-16 records without wfdb's header parser (tests switch it off to compare)."""

_FMT16 = re.compile(r"^16(?:x1)?(?:\+(\d+))?$")
_GAIN = re.compile(r"^([-+]?[0-9.]+(?:[eE][-+]?\d+)?)(?:\(([-+]?\d+)\))?/(\S+)$")
_WFDB_NAN_16 = -32768  # format 16's "invalid sample" code: wfdb turns it into NaN


def _read_plain_format16(header: Path):
    """The common case (one segment, one file, format 16, gains and units given) with numpy.

    Why: wfdb 4.3 spends ~93 % of ``rdrecord``'s ~10 ms per 12-lead record parsing the header
    through pandas scalar look-ups; the samples themselves take ~0.2 ms. Returns ``None`` for
    anything outside that narrow case, or on any doubt, and the caller falls back to wfdb (which
    also diagnoses bad files). ``tests/test_signals_fastread.py`` checks both paths agree.
    """
    try:
        text = header.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return None
    comments: list[str] = []
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith("#"):
            comments.append(line.strip(" \t#"))
        else:
            lines.append(line)
    if not lines:
        return None
    record, signals = lines[0].split(), lines[1:]
    try:
        n_sig, fs, sig_len = int(record[1]), float(record[2]), int(record[3])
        _check_base_time_and_date(record[4:])
    except (ValueError, IndexError):
        return None  # multi-segment, "fs/counter(base)" forms, missing length, odd dates: wfdb decides
    if "/" in record[0] or n_sig < 1 or len(signals) != n_sig or sig_len < 1 or not fs > 0:
        return None
    names, units, gains, baselines, checksums = [], [], [], [], []
    offset: int | None = None
    file_name = signals[0].split()[0]
    for line in signals:
        fields = line.split(maxsplit=8)
        if len(fields) < 9 or fields[0] != file_name:
            return None
        fmt, gain = _FMT16.match(fields[1]), _GAIN.match(fields[2])
        try:
            if fmt is None or gain is None or float(gain.group(1)) == 0:
                return None
            adc_zero, checksum = int(fields[4]), int(fields[6])
            gains.append(float(gain.group(1)))
        except ValueError:
            return None
        this_offset = int(fmt.group(1) or 0)
        if offset is not None and this_offset != offset:
            return None
        offset = this_offset
        baselines.append(int(gain.group(2)) if gain.group(2) is not None else adc_zero)
        checksums.append(checksum)
        units.append(gain.group(3))
        names.append(fields[8].strip())
    path = header.parent / file_name
    if offset is None:
        return None
    try:
        if path.stat().st_size != offset + 2 * n_sig * sig_len:
            return None  # truncated or over-long: wfdb's path names the problem
    except OSError:
        return None
    digital = np.fromfile(path, dtype="<i2", count=n_sig * sig_len, offset=offset).reshape(sig_len, n_sig)
    if not np.array_equal(digital.sum(axis=0, dtype=np.int64) % 65536, np.asarray(checksums) % 65536):
        return None  # a checksum mismatch: let wfdb judge the file
    physical = (digital - np.asarray(baselines, dtype=np.float64)) / np.asarray(gains, dtype=np.float64)
    physical[digital == _WFDB_NAN_16] = np.nan
    return physical.astype(np.float32), fs, names, units, comments, {"format": "wfdb"}


def _check_base_time_and_date(tokens: list[str]) -> None:
    """Raise ValueError unless the optional record-line fields are a valid time and date."""
    if len(tokens) > 2:
        raise ValueError("extra record-line fields")
    if tokens:
        hms = tokens[0].split(":")
        if not 2 <= len(hms) <= 3 or not all(part.replace(".", "", 1).isdigit() for part in hms):
            raise ValueError(f"bad base time {tokens[0]!r}")
        if int(hms[0]) > 23 or int(hms[1]) > 59 or (len(hms) == 3 and float(hms[2]) >= 60):
            raise ValueError(f"bad base time {tokens[0]!r}")
    if len(tokens) == 2:
        datetime.datetime.strptime(tokens[1], "%d/%m/%Y")


def _signal_size_problem(header: Path, rec) -> str | None:
    """Compare each signal file's size with what the header implies (a stat per file: cheap)."""
    files = rec.file_name or []
    if not files or rec.sig_len is None:
        return None
    fmts = rec.fmt or []
    spf = rec.samps_per_frame or [1] * len(files)
    offsets = rec.byte_offset or [None] * len(files)
    per_file: dict[str, list[int]] = {}
    for ch, name in enumerate(files):
        per_file.setdefault(name, []).append(ch)
    for name, chans in per_file.items():
        fmt = str(fmts[chans[0]]) if chans[0] < len(fmts) else ""
        bps = _BYTES_PER_SAMPLE.get(fmt)
        if bps is None or name == "-" or name.lower().endswith(".edf"):
            continue  # compressed or unusual formats: wfdb is the judge
        frame = sum(int(spf[c] or 1) for c in chans)
        offset = int(offsets[chans[0]] or 0)
        expected = offset + math.ceil(rec.sig_len * frame * bps)
        try:
            actual = (header.parent / name).stat().st_size
        except OSError:
            return f"signal file {name} is missing"
        frame_bytes = math.ceil(frame * bps)
        if actual < expected:
            held = max(int((actual - offset) // (frame * bps)), 0)
            return f"truncated signal file {name}: header says {rec.sig_len} samples, file holds {held}"
        if actual - expected >= frame_bytes:
            held = int((actual - offset) // (frame * bps))
            return f"sample count mismatch: header says {rec.sig_len} samples, {name} holds {held}"
    return None


def _read_cpsc(path: Path):
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path), simplify_cells=True)
    except Exception as exc:
        raise RecordError(path, f"not a readable MATLAB .mat file ({first_line(exc)})") from None
    if "ECG" not in mat or not isinstance(mat["ECG"], dict) or "data" not in mat["ECG"]:
        if "val" in mat:
            raise RecordError(path, "WFDB signal file without its .hea header")
        raise RecordError(path, "not a CPSC 2018 record (no ECG.data in the .mat file)")
    ecg = mat["ECG"]
    data = np.asarray(ecg["data"])
    if data.ndim != 2 or data.shape[0] != N_LEADS or not np.issubdtype(data.dtype, np.number):
        raise RecordError(path, f"ECG.data has shape {data.shape}, expected 12 x N numbers")
    if data.shape[1] == 0:
        raise RecordError(path, "record has no samples")
    comments = [f"{key}: {ecg[key]}" for key in ("age", "sex") if key in ecg]
    # CPSC 2018 stores the leads in canonical order, in mV; present them like a WFDB record.
    return data.T, CPSC_FS, list(CANONICAL_LEADS), ["mV"] * N_LEADS, comments, {"format": "cpsc"}


def _unit_factor(unit: str) -> float | None:
    key = unit.strip().lower()
    return 1.0 if key == "" else _UNIT_TO_MV.get(key)


def _to_record(path, samples, fs, names, units, comments, meta, max_nan_gap_s, lead_map=None) -> Record:
    """Canonical order, mV, NaN repair, derived limb leads and the record-level sanity checks."""
    samples = np.asarray(samples)  # (T, C) as wfdb returns it
    n_time = samples.shape[0]
    assignment = assign_leads(names, lead_map)
    flags: list[str] = list(assignment.flags)
    warnings: list[str] = [*meta.pop("warnings", []), *assignment.warnings]
    rows, cols, factors = [], [], []
    extra_names = []
    for col, index in enumerate(assignment.index):
        if index is None:
            if col not in assignment.dropped:
                extra_names.append(col)
            continue
        if index in rows:
            flags.append(f"duplicate_lead:{CANONICAL_LEADS[index]}")
            continue
        factor = _unit_factor(units[col] if col < len(units) else "")
        if factor is None:
            flags.append(f"unknown_unit:{CANONICAL_LEADS[index]}")
            continue
        rows.append(index)
        cols.append(col)
        factors.append(factor)
    if not rows:
        found = ", ".join(names) if names else "none"
        raise RecordError(
            path, f"no recognisable ECG lead names (found: {found}); name them with --lead-map OLD=NEW"
        )

    signal = np.zeros((N_LEADS, n_time), dtype=np.float32)
    block = samples[:, cols].T
    if any(f != 1.0 for f in factors):
        block = block * np.asarray(factors, dtype=np.float32)[:, None]
    signal[rows] = block
    present = np.zeros(N_LEADS, dtype=bool)
    present[rows] = True

    finite = np.isfinite(block)
    if not finite.all():
        bad_fraction = 1.0 - finite.mean()
        if bad_fraction >= 1.0:
            raise RecordError(path, "all samples are NaN or infinite")
        if bad_fraction > MAX_NAN_FRACTION:
            raise RecordError(path, f"mostly NaN ({bad_fraction:.0%} of samples are missing)")
    signal, present, repair_flags = repair_nonfinite(signal, fs, max_nan_gap_s, present)
    flags.extend(repair_flags)
    if not present.any():
        if all(flag.startswith("flat_lead:") for flag in repair_flags):
            raise RecordError(path, "all leads are flat (no signal)")
        raise RecordError(path, "no usable lead (every lead is flat or has long NaN gaps)")
    flags.extend(_derive_limb_leads(signal, present, in_file=set(rows)))

    meta = {
        **meta,
        "leads_in_file": list(names),
        "units": list(units),
        "n_samples": int(n_time),
        "comments": list(comments),
        **_parse_comments(comments),
    }
    if extra_names:
        meta["extra_signals"] = {
            names[c]: (samples[:, c] * (_unit_factor(units[c] if c < len(units) else "") or 1.0)).astype(
                np.float32
            )
            for c in extra_names
        }
        flags.extend(f"extra_lead:{names[c]}" for c in extra_names)
        missing = [CANONICAL_LEADS[i] for i in range(N_LEADS) if not present[i]]
        warnings.append(
            f"not standard leads, kept as extras and not used: {', '.join(names[c] for c in extra_names)}"
            + (f" (the record has no {', '.join(missing)})" if missing else "")
        )
    meta["warnings"] = warnings
    return Record(
        id=_record_id(path), path=path, signal=signal, present=present, fs=fs, flags=flags, meta=meta
    )


def _derive_limb_leads(signal: np.ndarray, present: np.ndarray, in_file: set[int]) -> list[str]:
    """Fill III, aVR, aVL, aVF that the file lacks from I and II (in place); their flags.

    Only leads *absent from the file* are derived: a lead the file has but that was dropped (long
    NaN gap, flat) stays absent, as the file says it is unusable. Nothing is derived without both
    I and II, and no other lead is ever filled in.
    """
    i, ii = CANONICAL_LEADS.index("I"), CANONICAL_LEADS.index("II")
    if not (present[i] and present[ii]):
        return []
    flags = []
    lead_i, lead_ii = signal[i].astype(np.float64), signal[ii].astype(np.float64)
    for name, (a, b) in LIMB_FROM_I_II.items():
        index = CANONICAL_LEADS.index(name)
        if index not in in_file:
            signal[index] = a * lead_i + b * lead_ii
            present[index] = True
            flags.append(f"derived_lead:{name}")
    return flags


def _record_id(path: Path) -> str:
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def _parse_comments(comments: Iterable[str]) -> dict:
    """``age``, ``sex``, ``dx`` and every ``key: value`` pair of the header comments.

    Understands the CinC (``Age: 59``), LUDB (``<age>: 51``) and PTB (``age: 81``) spellings.
    """
    pairs: dict[str, str] = {}
    for line in comments:
        key, sep, value = str(line).partition(":")
        if sep:
            key = key.strip().strip("<>").strip().lower()
            if key and key not in pairs:
                pairs[key] = value.strip()
    age = None
    raw_age = pairs.get("age", "").strip("[] ")
    try:
        age_value = float(raw_age)
        age = int(age_value) if math.isfinite(age_value) else None
    except ValueError:
        pass
    sex = {"m": "M", "male": "M", "f": "F", "female": "F"}.get(pairs.get("sex", "").strip("[]' ").lower())
    dx_text = pairs.get("dx", "")
    dx = [code.strip() for code in dx_text.split(",") if code.strip()] if dx_text else []
    return {"age": age, "sex": sex, "dx": dx, "header": pairs}


# --------------------------------------------------------------------------------------------
# finding records
# --------------------------------------------------------------------------------------------
def find_records(
    inputs: Iterable[str | os.PathLike], *, warn: Callable[[str], None] | None = None
) -> list[Path]:
    """Expand files, folders (recursively) and globs into record paths.

    A folder yields every ``.hea`` under it, every ``.mat`` that has no ``.hea`` beside it (CPSC
    2018 originals) and every other file whose *content* is a supported format (DICOM, MUSE XML,
    aECG, SCP-ECG, Philips XML, EDF), in natural order (``2`` before ``10``). A multi-segment WFDB
    record is listed once, by its master header: its segment and layout headers are not records of
    their own. A ``.dat``/``.mat`` with a header and a record name without suffix resolve to the
    header. The order of the arguments is kept, and a record named twice is listed once (at its
    first place) with a ``warn`` call saying so. A path that does not exist, a glob that matches
    nothing, or a folder without any readable record (the message says which files it holds and
    why none is one) raises :class:`RecordError`.
    """
    found: list[Path] = []
    seen: dict[str, str] = {}

    def add(candidates: Iterable[Path], given: str) -> None:
        for candidate in candidates:
            key = os.path.normcase(os.path.abspath(candidate))
            if key not in seen:
                seen[key] = given
                found.append(candidate)
            elif warn is not None:
                first = seen[key]
                how = f"given again as {given}" if given != first else "given more than once"
                warn(f"{candidate}: {how} (first as {first}); read once")

    for item in inputs:
        text = os.fspath(item)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True), key=natural_key)
            if not matches:
                raise RecordError(text, "no file matches this pattern")
            per_file = {m: _file_record(Path(m), strict=False) for m in matches if not Path(m).is_dir()}
            keep = set(_drop_segments([p for paths in per_file.values() for p in paths]))
            for match in matches:
                if match in per_file:
                    add([p for p in per_file[match] if p in keep], text)
                else:
                    add(_folder_records(Path(match)), text)
            continue
        path = Path(text)
        if path.is_dir():
            records = _folder_records(path)
            if not records:
                raise RecordError(path, _empty_folder_problem(path))
            add(records, text)
        else:
            add(_file_record(path, strict=True), text)
    return found


def natural_key(path: str | os.PathLike) -> tuple:
    """Sort key that orders numbered names as people do: ``rec2`` before ``rec10``."""
    return tuple(
        ([int(t) if t.isdigit() else t for t in re.split(r"(\d+)", part)], part) for part in Path(path).parts
    )


def _file_record(path: Path, strict: bool) -> list[Path]:
    suffix = path.suffix.lower()
    if suffix == ".hea" and path.is_file():
        return [path]
    if suffix in {".dat", ".mat", ".xyz"} and path.is_file():
        header = path.with_suffix(".hea")
        if header.is_file():
            return [header]
        if suffix == ".mat" or strict:
            return [path]
        return [path] if sniff(path) in FORMATS else []
    header = Path(f"{path}.hea")
    if header.is_file():
        return [header]
    if Path(f"{path}.mat").is_file():
        return [Path(f"{path}.mat")]
    if path.is_file():
        return [path] if strict or sniff(path) is not None else []  # read_record says what is wrong
    if strict:
        raise RecordError(path, "no such file or folder")
    return []


def _folder_records(folder: Path) -> list[Path]:
    """Every record under ``folder`` (see :func:`find_records`), in natural order."""
    headers, mats, others = [], [], []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        names = set(files)
        for name in files:
            if name.startswith("."):
                continue
            stem, suffix = os.path.splitext(name)
            lower = suffix.lower()
            if lower == ".hea":
                headers.append(Path(root, name))
            elif f"{stem}.hea" in names:
                continue  # a WFDB record's signal or annotation file
            elif lower == ".mat":
                mats.append(Path(root, name))
            else:
                others.append(Path(root, name))
    clinical = [p for p in others if sniff(p) is not None]
    return sorted([*_drop_segments(headers), *mats, *clinical], key=natural_key)


def _record_line(header: Path) -> list[str]:
    """The fields of a WFDB header's record line (first line that is not a comment), or ``[]``."""
    text = read_head(header, 16384).decode("latin-1")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line.split()
    return []


def _drop_segments(paths: list[Path]) -> list[Path]:
    """Leave out the segment and layout headers of multi-segment records whose master is listed.

    Only folders holding several headers can hold a master and its segments, so single-record
    folders (MIMIC-IV-ECG's layout) cost no extra read.
    """
    by_dir: dict[Path, list[Path]] = {}
    for path in paths:
        if path.suffix.lower() == ".hea":
            by_dir.setdefault(path.parent, []).append(path)
    segments: set[Path] = set()
    for folder, headers in by_dir.items():
        if len(headers) < 2:
            continue
        for header in headers:
            fields = _record_line(header)
            if not fields or "/" not in fields[0]:
                continue  # a single-segment record
            for line in header.read_text(encoding="latin-1").splitlines()[1:]:
                parts = line.split()
                if parts and not parts[0].startswith("#") and parts[0] != "~":
                    segments.add(folder / f"{parts[0]}.hea")
    return [p for p in paths if p not in segments]


def _empty_folder_problem(folder: Path) -> str:
    """One line: no record in ``folder``, the files it holds and why none of them is one."""
    files = sorted(
        (p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")), key=natural_key
    )
    if not files:
        return f"folder holds no files; supported: {SUPPORTED}"
    reasons = []
    for path in files[:4]:
        name = path.relative_to(folder).as_posix()
        if path.suffix.lower() in {".dat", ".xyz"}:
            reasons.append(f"{name}: WFDB signal file without its .hea header")
        else:
            reasons.append(f"{name}: {describe_unknown(path).split(';')[0]}")
    more = f" and {len(files) - 4} more" if len(files) > 4 else ""
    return f"no ECG record among {len(files)} file(s) ({'; '.join(reasons)}{more}); supported: {SUPPORTED}"

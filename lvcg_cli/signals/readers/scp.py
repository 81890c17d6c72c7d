"""SCP-ECG (EN 1064 / ISO 11073-91064, protocol versions 1.x-3.0): own compact decoder.

Layout: a CRC and the record size, then sections, each with a 16-byte header; section 0 points
at the others. The rhythm data (section 6) is Huffman coded (section 2: the standard's default
table 19999 or the file's own tables) and stored as first or second differences; section 3
names the leads by numeric code (1 = I, 61 = III, 11 = V3R ...) and gives each lead's sample
range. The amplitude unit is the AVM of section 6 in nV per unit, the sampling interval in µs.

Not supported, each with a one-line error: rhythm data stored as residuals after reference-beat
subtraction, and bimodal (decimated) compression; both are the optional "high compression" mode
of the standard and none of the example files uses them.
"""

from __future__ import annotations

import binascii
import struct
from pathlib import Path

import numpy as np

from lvcg_cli.errors import RecordError
from lvcg_cli.signals.readers._common import RawSignals, read_bytes, sex_comment

WHAT = "SCP-ECG"
DEFAULT_TABLE = 19999

_NAMES_1_30 = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6", "V7", "V2R", "V3R", "V4R", "V5R", "V6R", "V7R"]
_NAMES_1_30 += ["X", "Y", "Z", "CC5", "CM5", "LA", "RA", "LL", "fI", "fE", "fC", "fA", "fM", "fF", "fH"]
_NAMES_61_72 = ["III", "aVR", "aVL", "aVF", "-aVR", "V8", "V9", "V8R", "V9R", "D", "A", "J"]
SCP_LEAD_NAMES: dict[int, str] = {
    **dict(zip(range(1, 31), _NAMES_1_30, strict=True)),
    **dict(zip(range(61, 73), _NAMES_61_72, strict=True)),
}
"""Section 3 lead identification codes -> names (0 = unspecified; 31-60 are calibration signals)."""


def read(path: Path) -> RawSignals:
    data = read_bytes(path)
    sections = _sections(path, data)
    warnings = []
    if binascii.crc_hqx(data[2:], 0xFFFF) != struct.unpack_from("<H", data, 0)[0]:
        warnings.append(f"{WHAT}: file CRC mismatch (read anyway; check the samples)")
    if 3 not in sections or 6 not in sections:
        raise RecordError(path, f"{WHAT}: no lead definitions (section 3) or rhythm data (section 6)")
    leads, flags = _leads(path, sections[3])
    if flags & 1:
        raise RecordError(
            path, f"{WHAT}: rhythm data stored after reference-beat subtraction (not supported yet)"
        )
    body = sections[6]
    if len(body) < 6 + 2 * len(leads):
        raise RecordError(path, f"{WHAT}: section 6 truncated")
    avm_nv, interval_us, difference, bimodal = struct.unpack_from("<HHBB", body, 0)
    if bimodal:
        raise RecordError(path, f"{WHAT}: bimodal (decimated) compression is not supported yet")
    if avm_nv == 0 or interval_us == 0:
        raise RecordError(
            path, f"{WHAT}: invalid amplitude unit {avm_nv} nV or sample interval {interval_us} us"
        )
    if difference not in (0, 1, 2):
        raise RecordError(path, f"{WHAT}: unknown difference encoding {difference}")
    sizes = struct.unpack_from(f"<{len(leads)}H", body, 6)
    tables = _huffman_tables(path, sections.get(2))
    position, columns = 6 + 2 * len(leads), []
    for (code, count), size in zip(leads, sizes, strict=True):
        chunk = body[position : position + size]
        if len(chunk) < size:
            raise RecordError(path, f"{WHAT}: rhythm data of lead {_name(code)} truncated")
        position += size
        if tables is None:
            values = np.frombuffer(chunk[: 2 * count], dtype="<i2").astype(np.int64)
            if values.size < count:
                raise RecordError(path, f"{WHAT}: lead {_name(code)} holds {values.size} of {count} samples")
        else:
            values = _huffman_decode(path, chunk, count, tables, _name(code))
        columns.append(_undo_differences(values, difference) * (avm_nv / 1000.0))  # nV -> uV
    samples = np.stack(columns, axis=1)
    fs = float(round(1e6 / interval_us, 3))
    if abs(fs - round(fs)) < 0.5 and abs(round(fs) * interval_us - 1e6) < 1e6 * 1e-3:
        fs = float(round(fs))  # 1667 us is 600 Hz written to whole microseconds
    names = [_name(code) for code, _ in leads]
    meta = {"format": "scp", "protocol_version": _version(data), "difference_encoding": difference}
    if warnings:
        meta["warnings"] = warnings
    return RawSignals(samples, fs, names, ["uV"] * len(names), _patient(sections.get(1)), meta)


def _name(code: int) -> str:
    return SCP_LEAD_NAMES.get(code) or f"SCP lead {code}"


def _sections(path: Path, data: bytes) -> dict[int, bytes]:
    """Section id -> body (after its 16-byte header), from the pointers of section 0."""
    if len(data) < 6 + 16 or struct.unpack_from("<I", data, 2)[0] != len(data):
        raise RecordError(path, f"{WHAT}: record size does not match the file size (truncated?)")
    section_id, length = struct.unpack_from("<HI", data, 8)
    if section_id != 0 or not 16 <= length <= len(data) - 6:
        raise RecordError(path, f"{WHAT}: section 0 (the section pointers) is missing or damaged")
    out: dict[int, bytes] = {}
    for entry in range(6 + 16, 6 + length - 9, 10):
        sid, size, index = struct.unpack_from("<HII", data, entry)
        if size == 0 or index == 0:
            continue
        start = index - 1
        if start + size > len(data) or size < 16:
            raise RecordError(path, f"{WHAT}: section {sid} points outside the file")
        if struct.unpack_from("<H", data, start + 2)[0] != sid:
            raise RecordError(path, f"{WHAT}: section {sid} header does not match its pointer")
        out[sid] = data[start + 16 : start + size]
    return out


def _version(data: bytes) -> float:
    return data[6 + 9] / 10.0  # protocol version byte of section 0's header


def _leads(path: Path, body: bytes) -> tuple[list[tuple[int, int]], int]:
    """[(lead code, n samples)], flags of section 3; every lead must cover the same samples."""
    if len(body) < 2:
        raise RecordError(path, f"{WHAT}: section 3 truncated")
    n_leads, flags = body[0], body[1]
    if n_leads == 0 or len(body) < 2 + 9 * n_leads:
        raise RecordError(path, f"{WHAT}: section 3 lists no leads or is truncated")
    leads, ranges = [], set()
    for k in range(n_leads):
        start, end, code = struct.unpack_from("<IIB", body, 2 + 9 * k)
        if end < start or start == 0:
            raise RecordError(path, f"{WHAT}: lead {_name(code)} has an invalid sample range {start}-{end}")
        leads.append((code, end - start + 1))
        ranges.add((start, end))
    if len(ranges) != 1:
        raise RecordError(path, f"{WHAT}: leads cover different sample ranges (not simultaneously recorded)")
    return leads, flags


class _Table:
    """One Huffman table: (prefix length, prefix code) -> (total bits, is data, base value)."""

    def __init__(self, codes: list[tuple[int, int, int, int, int]]):
        self.codes = {(prefix, code): (total, mode, value) for prefix, total, mode, value, code in codes}
        self.max_prefix = max(prefix for prefix, *_ in codes)


def _huffman_tables(path: Path, body: bytes | None) -> list[_Table] | None:
    """The tables of section 2: ``None`` when absent (samples stored as plain int16)."""
    if body is None:
        return None
    if len(body) < 2:
        raise RecordError(path, f"{WHAT}: section 2 truncated")
    count = struct.unpack_from("<H", body, 0)[0]
    if count == DEFAULT_TABLE:
        return [_DEFAULT]
    position, tables = 2, []
    for _ in range(count):
        if position + 2 > len(body):
            raise RecordError(path, f"{WHAT}: section 2 truncated")
        n_codes = struct.unpack_from("<H", body, position)[0]
        position += 2
        if n_codes == 0 or position + 9 * n_codes > len(body):
            raise RecordError(path, f"{WHAT}: section 2 has an empty or truncated Huffman table")
        codes = []
        for _ in range(n_codes):
            prefix, total, mode, value, stored = struct.unpack_from("<BBBhI", body, position)
            position += 9
            if not 1 <= prefix <= 32 or total < prefix:
                raise RecordError(path, f"{WHAT}: section 2 has an invalid Huffman code length")
            code = int(f"{stored & ((1 << prefix) - 1):0{prefix}b}"[::-1], 2)  # stored first bit in the LSB
            codes.append((prefix, total, mode, value, code))
        tables.append(_Table(codes))
    if not tables:
        raise RecordError(path, f"{WHAT}: section 2 holds no Huffman table")
    return tables


def _default_codes() -> list[tuple[int, int, int, int, int]]:
    """The standard's default table: 0 -> '0', +-m -> m ones, '0', sign bit (m = 1..8), then two escapes."""
    codes = [(1, 1, 1, 0, 0)]
    for magnitude in range(1, 9):
        ones = (1 << magnitude) - 1
        codes += [
            (magnitude + 2, magnitude + 2, 1, magnitude, ones << 2),
            (magnitude + 2, magnitude + 2, 1, -magnitude, (ones << 2) | 1),
        ]
    return codes + [(10, 18, 1, 0, 0b1111111110), (10, 26, 1, 0, 0b1111111111)]  # + 8-bit / 16-bit value


_DEFAULT = _Table(_default_codes())


def _huffman_decode(path: Path, chunk: bytes, count: int, tables: list[_Table], lead: str) -> np.ndarray:
    """``count`` values from a most-significant-bit-first Huffman stream."""
    bits = np.unpackbits(np.frombuffer(chunk, dtype=np.uint8)).tolist()
    n_bits, position, table = len(bits), 0, tables[0]
    out = np.empty(count, dtype=np.int64)
    n = 0
    while n < count:
        code = length = 0
        entry = None
        while entry is None:
            if position >= n_bits or length >= table.max_prefix:
                where = "ends" if position >= n_bits else "has an invalid code"
                raise RecordError(
                    path, f"{WHAT}: Huffman data of lead {lead} {where} after {n} of {count} samples"
                )
            code = (code << 1) | bits[position]
            position += 1
            length += 1
            entry = table.codes.get((length, code))
        total, mode, value = entry
        if mode == 0:  # switch to another table
            if not 1 <= value <= len(tables):
                raise RecordError(path, f"{WHAT}: Huffman data of lead {lead} switches to a missing table")
            table = tables[value - 1]
            continue
        extra = total - length
        if extra:
            if position + extra > n_bits:
                raise RecordError(
                    path, f"{WHAT}: Huffman data of lead {lead} ends after {n} of {count} samples"
                )
            raw = 0
            for bit in bits[position : position + extra]:
                raw = (raw << 1) | bit
            if raw >= 1 << (extra - 1):
                raw -= 1 << extra  # two's complement
            value += raw
            position += extra
        out[n] = value
        n += 1
    return out


def _undo_differences(values: np.ndarray, mode: int) -> np.ndarray:
    """Samples from first (x[n] = d[n] + x[n-1]) or second differences (x[n] = d[n] + 2x[n-1] - x[n-2]).

    The first one (two) values are stored as they are. Encoders work in 16-bit arithmetic, so the
    result wraps like theirs does.
    """
    values = np.asarray(values, dtype=np.int64)
    if mode == 0 or values.size < 2:
        out = values
    elif mode == 1:
        out = np.cumsum(values)
    else:
        slope = np.empty(values.size - 1, dtype=np.int64)
        slope[0] = values[1] - values[0]
        slope[1:] = slope[0] + np.cumsum(values[2:])
        out = np.concatenate(([values[0]], values[0] + np.cumsum(slope)))
    return out.astype(np.int16).astype(np.float64)


def _patient(body: bytes | None) -> list[str]:
    """``age``/``sex`` comments from section 1's tagged fields (tag 4: age, tag 8: sex)."""
    comments: list[str] = []
    if not body:
        return comments
    position = 0
    while position + 3 <= len(body):
        tag, size = body[position], struct.unpack_from("<H", body, position + 1)[0]
        value = body[position + 3 : position + 3 + size]
        position += 3 + size
        if tag == 255:
            break
        if tag == 4 and len(value) >= 3 and value[2] == 1:  # unit 1 = years
            age = struct.unpack_from("<H", value, 0)[0]
            if 0 < age < 150:
                comments.append(f"age: {age}")
        elif tag == 8 and value:
            comments += sex_comment(str(value[0]))
    return comments

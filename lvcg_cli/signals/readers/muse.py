"""GE MUSE XML (``<RestingECG>``): base64 little-endian int16 per lead, in µV per bit.

Quirks handled: a file holds a ``Median`` and a ``Rhythm`` waveform (in that order); only the
rhythm strip is the recording. MUSE stores the 8 independent leads (I, II, V1-V6); III, aVR, aVL
and aVF are derived later by :mod:`lvcg_cli.signals.io`. Each lead's CRC32, when present, is
checked so a damaged export fails instead of yielding noise.
"""

from __future__ import annotations

import base64
import binascii
import zlib
from pathlib import Path

import numpy as np

from lvcg_cli.errors import RecordError
from lvcg_cli.signals.readers._common import RawSignals, positive_rate, sex_comment, stack_leads
from lvcg_cli.signals.readers._xml import parse_xml, text

WHAT = "GE MUSE XML"
_UNITS = {"microvolts": "uV", "millivolts": "mV", "volts": "V"}


def read(path: Path) -> RawSignals:
    root = parse_xml(path, WHAT)
    waveforms = root.findall("Waveform")
    rhythm = [w for w in waveforms if (text(w, "WaveformType") or "").lower() == "rhythm"]
    if not rhythm:
        kinds = ", ".join(text(w, "WaveformType", "?") for w in waveforms) or "none"
        raise RecordError(path, f"{WHAT}: no Rhythm waveform (found: {kinds})")
    waveform = rhythm[0]
    fs = positive_rate(path, text(waveform, "SampleBase"), WHAT)
    exponent = int(text(waveform, "SampleExponent", "0") or 0)
    fs *= 10.0**exponent
    names, leads, units = [], [], []
    for lead in waveform.findall("LeadData"):
        name = text(lead, "LeadID")
        payload = text(lead, "WaveFormData")
        if not name or payload is None:
            raise RecordError(path, f"{WHAT}: a LeadData block lacks LeadID or WaveFormData")
        try:
            raw = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise RecordError(path, f"{WHAT}: lead {name}: WaveFormData is not base64") from None
        crc = text(lead, "LeadDataCRC32")
        if crc is not None and crc.isdigit() and zlib.crc32(raw) != int(crc):
            raise RecordError(path, f"{WHAT}: lead {name}: CRC32 mismatch (damaged waveform data)")
        if len(raw) % 2:
            raise RecordError(path, f"{WHAT}: lead {name}: odd number of waveform bytes")
        count = text(lead, "LeadSampleCountTotal")
        digits = np.frombuffer(raw, dtype="<i2")
        if count is not None and count.isdigit() and int(count) != digits.size:
            raise RecordError(
                path, f"{WHAT}: lead {name}: {digits.size} samples stored, LeadSampleCountTotal says {count}"
            )
        try:
            per_bit = float(text(lead, "LeadAmplitudeUnitsPerBit", "") or "nan")
        except ValueError:
            per_bit = float("nan")
        if not np.isfinite(per_bit) or per_bit <= 0:
            raise RecordError(path, f"{WHAT}: lead {name}: invalid LeadAmplitudeUnitsPerBit")
        unit_word = (text(lead, "LeadAmplitudeUnits", "MICROVOLTS") or "").lower()
        unit = _UNITS.get(unit_word)
        if unit is None:
            raise RecordError(path, f"{WHAT}: lead {name}: unknown amplitude unit {unit_word!r}")
        names.append(name)
        leads.append(digits.astype(np.float64) * per_bit)
        units.append(unit)
    samples = stack_leads(path, leads, WHAT)
    demographics = root.find("PatientDemographics")
    comments = []
    age = text(demographics, "PatientAge")
    if age and (text(demographics, "AgeUnits", "YEARS") or "").upper() == "YEARS":
        comments.append(f"age: {age}")
    comments += sex_comment(text(demographics, "Gender"))
    statements = [t for s in root.findall("Diagnosis/DiagnosisStatement") if (t := text(s, "StmtText"))]
    if statements:
        comments.append("diagnosis: " + " ".join(statements))
    meta = {
        "format": "muse",
        "device": text(root, "TestDemographics/AcquisitionDevice"),
        "muse_version": text(root, "MuseInfo/MuseVersion"),
        "filters_hz": {
            "high_pass_raw": text(waveform, "HighPassFilter"),
            "low_pass": text(waveform, "LowPassFilter"),
            "ac": text(waveform, "ACFilter"),
        },
    }
    return RawSignals(samples, fs, names, units, comments, meta)

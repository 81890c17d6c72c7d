"""HL7 aECG (``<AnnotatedECG>``, the FDA's format): digits with origin and scale per lead.

The rhythm waveforms are the ``sequence`` elements of a ``series`` (code ``RHYTHM``); the
representative beats live in a ``derivedSeries`` nested *inside* that series and are skipped (a
reader that collects every ``MDC_ECG_LEAD_*`` sequence would mix beat and rhythm). The sampling
interval is the ``increment`` of the series' time sequence (``TIME_ABSOLUTE``/``TIME_RELATIVE``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lvcg_cli.errors import RecordError
from lvcg_cli.signals.readers._common import RawSignals, positive_rate, sex_comment, stack_leads
from lvcg_cli.signals.readers._xml import parse_xml

WHAT = "HL7 aECG"
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}


def read(path: Path) -> RawSignals:
    root = parse_xml(path, WHAT)
    series_list = list(root.iter("series"))
    rhythm = [s for s in series_list if _code(s) in {"RHYTHM", ""}] or series_list
    if not rhythm:
        raise RecordError(path, f"{WHAT}: no series element (no waveforms)")
    series = rhythm[0]
    increment, names, leads, units = None, [], [], []
    for sequence in series.findall("component/sequenceSet/component/sequence"):
        code = _code(sequence)
        value = sequence.find("value")
        if value is None:
            continue
        if code.startswith("TIME_"):
            step = value.find("increment")
            if step is not None:
                unit = step.get("unit", "s")
                if unit not in _TIME_UNITS:
                    raise RecordError(path, f"{WHAT}: unknown time unit {unit!r}")
                increment = positive_rate(path, step.get("value"), WHAT) * _TIME_UNITS[unit]
            continue
        digits_el = value.find("digits")
        if digits_el is None:
            continue
        try:
            digits = np.asarray((digits_el.text or "").split(), dtype=np.float64)
            origin_el = value.find("origin")  # an Element without children is falsy: compare with None
            origin = float(origin_el.get("value", 0)) if origin_el is not None else 0.0
            scale_el = value.find("scale")
            scale = float(scale_el.get("value", 1)) if scale_el is not None else 1.0
        except ValueError:
            raise RecordError(path, f"{WHAT}: lead {code}: non-numeric digits, origin or scale") from None
        scale_unit = scale_el.get("unit", "uV") if scale_el is not None else "uV"
        names.append(code)
        leads.append(digits * scale + origin)
        units.append(scale_unit)
    if increment is None:
        raise RecordError(path, f"{WHAT}: no time sequence with an increment (sampling rate unknown)")
    if not leads:
        raise RecordError(path, f"{WHAT}: the rhythm series holds no lead sequences")
    samples = stack_leads(path, leads, WHAT)
    comments = []
    patient = root.find(".//subjectDemographicPerson")
    if patient is not None:
        gender = patient.find("administrativeGenderCode")
        if gender is not None:
            comments += sex_comment(gender.get("code"))
    meta = {"format": "aecg", "n_series": len(series_list)}
    device = root.find(".//manufacturedSeriesDevice/manufacturerModelName")
    if device is not None and device.text:
        meta["device"] = device.text.strip()
    return RawSignals(samples, 1.0 / increment, names, units, comments, meta)


def _code(element) -> str:
    code = element.find("code")
    return code.get("code", "") if code is not None else ""

"""Philips SierraECG / PhilipsECG XML (``<restingecgdata>``, versions 1.03-1.04.02), with sierraecg.

The waveforms are XLI-compressed (LZW + second-order deltas, base64) and III, aVR, aVL, aVF are
stored as residuals from their values derived from I and II; sierraecg undoes both (a plain
base64/int16 decode gives garbage). The metadata sierraecg does not expose (signal resolution in
µV per unit, offset, age, sex) is read here with defusedxml; files may be UTF-16 with a BOM, so
they are parsed from bytes and the parser decodes them. The 1 mV calibration pulse that
PageWriters append after the rhythm (0.4 s, identical on all leads) is cut off, as it is no ECG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lvcg_cli.errors import RecordError
from lvcg_cli.signals.readers._common import (
    RawSignals,
    first_line,
    positive_rate,
    require,
    sex_comment,
    stack_leads,
)
from lvcg_cli.signals.readers._xml import parse_xml, text

WHAT = "Philips XML"


def read(path: Path) -> RawSignals:
    root = parse_xml(path, WHAT)  # first: a damaged or unsafe file never reaches the second parser
    sierraecg = require("sierraecg", path, "Philips XML")
    signal = root.find("dataacquisition/signalcharacteristics")
    parsed = root.find("waveforms/parsedwaveforms")
    if parsed is None:
        parsed = root.find(".//parsedwaveforms")
    if signal is None or parsed is None:
        raise RecordError(path, f"{WHAT}: no signalcharacteristics or parsedwaveforms element")
    resolution = (
        parsed.get("resolution") or text(signal, "resolution") or text(signal, "signalresolution") or ""
    )
    try:
        uv_per_unit = float(resolution)
        offset = float(parsed.get("signaloffset") or text(signal, "signaloffset", "0") or 0)
    except ValueError:
        raise RecordError(path, f"{WHAT}: invalid signal resolution or offset {resolution!r}") from None
    if not np.isfinite(uv_per_unit) or uv_per_unit <= 0:
        raise RecordError(path, f"{WHAT}: invalid signal resolution {resolution!r}")
    fs = positive_rate(path, text(signal, "samplingrate"), WHAT)
    try:
        ecg = sierraecg.read_file(str(path))
        names = [str(lead.label) for lead in ecg.leads]
        leads = [(np.asarray(lead.samples, dtype=np.float64) - offset) * uv_per_unit for lead in ecg.leads]
    except Exception as exc:  # sierraecg raises its own errors and plain ones for damaged data
        raise RecordError(path, f"{WHAT}: cannot decode waveforms ({first_line(exc)})") from None
    samples, calibration = _strip_calibration(stack_leads(path, leads, WHAT), fs)
    patient = root.find("patient/generalpatientdata")
    comments = []
    age = text(patient, "age/years")
    if age:
        comments.append(f"age: {age}")
    comments += sex_comment(text(patient, "sex"))
    meta: dict[str, Any] = {
        "format": "philips",
        "document": f"{text(root, 'documentinfo/documenttype', '?')} {text(root, 'documentinfo/documentversion', '?')}",
        "device": text(root, "dataacquisition/machine"),
    }
    if calibration:
        meta["calibration_removed_samples"] = calibration
    return RawSignals(samples, fs, names, ["uV"] * len(names), comments, meta)


def _strip_calibration(samples: np.ndarray, fs: float) -> tuple[np.ndarray, int]:
    """Drop the calibration pulse PageWriters append (0, 1 mV for 0.2 s, 0 on every lead at once).

    The trailing run of samples where all leads are equal is cut when it lasts at least 0.1 s and
    holds at most two values: no recorded ECG has every lead identical for that long.
    """
    same = np.all(samples == samples[:, :1], axis=1)
    if not same[-1] or samples.shape[1] < 2:
        return samples, 0
    differs = np.nonzero(~same)[0]
    start = int(differs[-1]) + 1 if differs.size else 0
    tail = samples[start:, 0]
    if start == 0 or tail.size < 0.1 * fs or np.unique(tail).size > 2:
        return samples, 0
    return samples[:start], int(tail.size)

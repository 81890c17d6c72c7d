"""DICOM waveforms (12-lead ECG, general ECG, ambulatory and hemodynamic SOP classes), with pydicom.

A DICOM ECG usually holds two multiplex groups: the rhythm strip (``RHYTHM``, original) and a
median beat (``MEDIAN BEAT``, derived). The rhythm group is read: the first group labelled
``RHYTHM``, else the first ``ORIGINAL`` one, else group 0. pydicom's ``waveform_array`` applies
channel sensitivity, its correction factor and the baseline; the unit comes from each channel's
``ChannelSensitivityUnitsSequence`` (``uV``/``mV``). Channels are named by their code meaning
(``Lead I (Einthoven)``), else by their SCP-ECG code (``5.6.3-9-1``), else by ``ChannelLabel``;
hemodynamic channels (pressures) are not ECG leads and end up as extras.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from lvcg_cli.errors import RecordError
from lvcg_cli.signals.readers._common import RawSignals, first_line, positive_rate, require, sex_comment
from lvcg_cli.signals.readers.scp import SCP_LEAD_NAMES

WHAT = "DICOM"
_SCP_CODE = re.compile(r"^5\.6\.3-9-(\d+)$")


def read(path: Path) -> RawSignals:
    pydicom = require("pydicom", path, "DICOM")
    try:
        ds = pydicom.dcmread(str(path))
        groups = list(ds.get("WaveformSequence") or [])
    except Exception as exc:
        raise RecordError(path, f"{WHAT}: cannot parse ({first_line(exc)})") from None
    if not groups:
        sop = str(ds.get("SOPClassUID", "unknown SOP class"))
        raise RecordError(path, f"{WHAT}: no waveform in this file (SOP class {sop}; an image or report?)")
    index = _rhythm_group(groups)
    group = groups[index]
    fs = positive_rate(path, group.get("SamplingFrequency"), WHAT)
    try:
        samples = np.asarray(ds.waveform_array(index), dtype=np.float64)
    except Exception as exc:
        raise RecordError(path, f"{WHAT}: cannot decode waveform group {index} ({first_line(exc)})") from None
    channels = list(group.get("ChannelDefinitionSequence") or [])
    if samples.ndim != 2 or samples.shape[1] != len(channels) or samples.shape[0] == 0:
        raise RecordError(
            path, f"{WHAT}: waveform shape {samples.shape} does not match {len(channels)} channels"
        )
    names = [_channel_name(ch, i) for i, ch in enumerate(channels)]
    units = [_channel_unit(ch) for ch in channels]
    comments = sex_comment(str(ds.get("PatientSex", "")))
    age = str(ds.get("PatientAge", ""))
    if re.fullmatch(r"\d{3}Y", age):
        comments.append(f"age: {int(age[:3])}")
    meta = {
        "format": "dicom",
        "sop_class": str(ds.get("SOPClassUID", "")),
        "manufacturer": str(ds.get("Manufacturer", "")) or None,
        "device": str(ds.get("ManufacturerModelName", "")) or None,
        "waveform_group": str(group.get("MultiplexGroupLabel", index)),
        "n_waveform_groups": len(groups),
    }
    return RawSignals(samples, fs, names, units, comments, meta)


def _rhythm_group(groups) -> int:
    labels = [str(g.get("MultiplexGroupLabel", "")).upper() for g in groups]
    for i, label in enumerate(labels):
        if "RHYTHM" in label:
            return i
    for i, group in enumerate(groups):
        if str(group.get("WaveformOriginality", "")).upper() == "ORIGINAL" and "MEDIAN" not in labels[i]:
            return i
    return 0


def _channel_name(channel, index: int) -> str:
    source = channel.get("ChannelSourceSequence")
    item = source[0] if source else None
    meaning = str(item.get("CodeMeaning", "")).strip() if item is not None else ""
    if meaning:
        return meaning
    code = str(item.get("CodeValue", "")).strip() if item is not None else ""
    match = _SCP_CODE.match(code)
    if match and int(match.group(1)) in SCP_LEAD_NAMES:
        return SCP_LEAD_NAMES[int(match.group(1))]
    label = str(channel.get("ChannelLabel", "")).strip()
    return label or code or f"channel {index + 1}"


def _channel_unit(channel) -> str:
    units = channel.get("ChannelSensitivityUnitsSequence")
    if not units:
        return "uV"  # the unit DICOM ECG waveforms use when the sequence is omitted
    return str(units[0].get("CodeValue", "")).strip()

"""Readers for the ECG formats hospitals export, chosen by file content.

| format | module | library | why |
|---|---|---|---|
| DICOM 12-lead / general ECG / hemodynamic waveform | ``dicom`` | pydicom | the reference DICOM implementation; parses every transfer syntax and applies channel sensitivity and baseline as the standard defines |
| EDF / EDF+ | ``edf`` | edfio | pure Python, numpy-only, typed, maintained; reads EDF+C and EDF+D and scales digital to physical values (pyedflib needs a compiled extension) |
| Philips SierraECG / PhilipsECG XML 1.03-1.04 | ``philips`` | sierraecg (+ defusedxml) | XLI (LZW + delta) decompression and the III/aVR/aVL/aVF residual reconstruction are easy to get subtly wrong; sierraecg is the maintained implementation by the format's reverse engineer and parses with defusedxml |
| GE MUSE XML | ``muse`` | defusedxml + numpy | base64 little-endian int16 per lead: a few lines, no library needed |
| HL7 aECG | ``aecg`` | defusedxml + numpy | whitespace-separated digits with origin and scale: a few lines |
| SCP-ECG (EN 1064) | ``scp`` | own decoder | no maintained permissively licensed reader on PyPI; Huffman decoding and difference reversal are ~100 lines |

WFDB and CPSC .mat records keep their readers in :mod:`lvcg_cli.signals.io`. pydicom, edfio and
sierraecg are the ``lvcg[clinical]`` extra; a missing one becomes a one-line install hint.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from lvcg_cli.signals.readers._common import RawSignals
from lvcg_cli.signals.readers.detect import sniff

FORMATS: dict[str, str] = {
    "dicom": "DICOM waveform",
    "muse": "GE MUSE XML",
    "aecg": "HL7 aECG",
    "scp": "SCP-ECG",
    "philips": "Philips XML",
    "edf": "EDF/EDF+",
}
"""Formats read by a module of this package: name -> what users call it."""

SUPPORTED = "WFDB .hea, CPSC .mat, " + ", ".join(FORMATS.values())
"""For messages: every format :func:`lvcg_cli.signals.io.read_record` takes."""


def read_format(kind: str, path: Path) -> RawSignals:
    """Read ``path`` with the reader of format ``kind`` (a key of :data:`FORMATS`)."""
    module = importlib.import_module(f"{__name__}.{kind}")
    return module.read(path)


__all__ = ["FORMATS", "SUPPORTED", "RawSignals", "read_format", "sniff"]

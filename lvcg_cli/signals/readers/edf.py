"""EDF and EDF+ (continuous or discontinuous) with edfio.

Every ordinary signal becomes a channel; the EDF+ annotation signal is skipped. ECG channels in
EDF files are labelled ``ECG I``, ``ECG V1`` ... (the EDF+ convention) or just ``I``/``V1``: both
match. A truncated file (edfio only warns) is an error. Signals recorded at another rate than the first ECG channel (a pulse oximeter beside the
ECG) cannot share one time axis and are left out, listed in ``meta["skipped_signals"]``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from lvcg_cli.errors import RecordError
from lvcg_cli.signals.leads import lead_index
from lvcg_cli.signals.readers._common import RawSignals, first_line, positive_rate, require, stack_leads

WHAT = "EDF"


def read(path: Path) -> RawSignals:
    edfio = require("edfio", path, "EDF")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            edf = edfio.read_edf(str(path))
            signals = list(edf.signals)
        except Exception as exc:
            raise RecordError(path, f"{WHAT}: cannot parse ({first_line(exc)})") from None
    for warning in caught:  # edfio reads a truncated file and only warns: a damaged file is an error here
        if "data record" in str(warning.message).lower():
            raise RecordError(path, f"{WHAT}: truncated file ({first_line(warning.message)})")
    if not signals:
        raise RecordError(path, f"{WHAT}: no signals (only annotations)")
    ecg = [s for s in signals if lead_index(s.label) is not None]
    fs = positive_rate(path, (ecg or signals)[0].sampling_frequency, WHAT)
    kept = [s for s in signals if float(s.sampling_frequency) == fs]
    skipped = [
        f"{s.label} ({s.sampling_frequency:g} Hz)" for s in signals if float(s.sampling_frequency) != fs
    ]
    try:
        leads = [np.asarray(s.data, dtype=np.float64) for s in kept]
    except Exception as exc:
        raise RecordError(path, f"{WHAT}: cannot read samples ({first_line(exc)})") from None
    samples = stack_leads(path, leads, WHAT)
    names = [s.label.strip() for s in kept]
    units = [s.physical_dimension.strip() for s in kept]
    meta = {"format": "edf", "skipped_signals": skipped} if skipped else {"format": "edf"}
    return RawSignals(samples, fs, names, units, [], meta)

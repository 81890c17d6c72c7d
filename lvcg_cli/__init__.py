"""lvcg: latent vectorcardiogram representations of 12-lead ECGs.

The Python API (:mod:`lvcg_cli.api`)::

    import lvcg_cli
    model = lvcg_cli.load_model()                     # bundled weights; or load_model("final.pt")
    record = lvcg_cli.read_record("00001_hr.hea")      # any supported file -> Record (12, T) mV
    vector = model.embed(record.signal, fs=record.fs)  # what `lvcg embed` writes for that file
    full = model.reconstruct(record.signal[:2], fs=record.fs, leads=["I", "II"])  # all 12 leads
    scores = model.score(full, record.signal, fs=record.fs)  # r, RMSE, peak-to-peak ratio per lead
    lvcg_cli.CANONICAL_LEADS                           # the row order of Record.signal and outputs
    # an unusable record raises lvcg_cli.RecordError (error.path, error.problem), a subclass of LvcgError

The names are imported when first used, so ``import lvcg_cli`` (and the command line, assembled
in :mod:`lvcg_cli.main`) stays fast; the sub-packages (``signals``, ``model``, ``downstream``) are
the library underneath.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_WHERE = {
    "CANONICAL_LEADS": "lvcg_cli.signals.leads",
    "LvcgError": "lvcg_cli.errors",
    "Model": "lvcg_cli.api",
    "RecordError": "lvcg_cli.errors",
    "load_model": "lvcg_cli.api",
    "Record": "lvcg_cli.signals.io",
    "find_records": "lvcg_cli.signals.io",
    "read_record": "lvcg_cli.signals.io",
    "record_from_array": "lvcg_cli.signals.io",
}

__all__ = ["__version__", *sorted(_WHERE)]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'lvcg_cli' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_WHERE})

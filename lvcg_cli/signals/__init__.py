"""Signals layer: read any record, canonical leads, preprocessing, R peaks and beats, model input.

The submodules are the API (``from lvcg_cli.signals.io import read_record``); the names below are
re-exported for convenience. ``model_input`` (which imports torch) is not imported here so that
reading records stays light.
"""

from lvcg_cli.signals.beats import BeatSegments, beat_segments, detect_r_peaks
from lvcg_cli.signals.io import Record, find_records, read_record, record_from_array
from lvcg_cli.signals.leads import CANONICAL_LEADS, INDEPENDENT_LEADS, lead_index, parse_leads, visible_mask
from lvcg_cli.signals.preprocess import model_signal, preprocess

__all__ = [
    "CANONICAL_LEADS",
    "INDEPENDENT_LEADS",
    "BeatSegments",
    "Record",
    "beat_segments",
    "detect_r_peaks",
    "find_records",
    "lead_index",
    "model_signal",
    "parse_leads",
    "preprocess",
    "read_record",
    "record_from_array",
    "visible_mask",
]

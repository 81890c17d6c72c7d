"""R-peak detection against the cardiologists' QRS annotations of LUDB.

Usage::

    python benchmarks/beats.py [--data /path/to/ludb/data] [--tolerance-ms 50] [--worst 5]

(``LVCG_LUDB`` also sets the folder; the default is ``../shared/data/ludb/data`` beside the repo.)

Reference beats. LUDB's cardiologists annotated each of the 12 leads on its own, marking the QRS
peak (symbol ``N``) *of that lead*. For narrow complexes the 12 marks agree within a few ms; for
wide ones (paced beats, bundle-branch blocks) they spread over up to ~90 ms, because each lead's
largest deflection comes at a different instant. A multi-lead detector has no single lead whose
peak it should hit, so the primary reference is the **consensus**: for each beat of the lead-II
file (the rhythm lead; the first lead with ``N`` marks where lead II has none), the median of the
nearest ``N`` mark of every lead within 150 ms. Scores against the lead-II marks alone are printed
too (column F1(II)): their gap to the consensus F1 is localisation in wide complexes, not missed
or extra beats.

Only the annotated span is scored (first to last reference +- 150 ms: the first and last ~1-2 s
of most records carry no annotations, and 150 ms is less than half any RR here, so a beat just
outside the span is neither a miss nor a false detection). A detection within the tolerance
(50 ms) of a reference is a true positive (one-to-one).

Configurations: all 12 leads at 500 Hz (raw), and "as the model sees it" at 100 Hz after the
resample and 0.67-40 Hz band-pass of :func:`lvcg_cli.signals.preprocess.preprocess`, with all
leads, with the visible set {I, II, V2}, and with lead II alone; detections at 100 Hz are mapped
back to 500 Hz sample indices for scoring.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import wfdb

from lvcg_cli.signals.beats import detect_r_peaks, match_peaks
from lvcg_cli.signals.io import read_record
from lvcg_cli.signals.leads import parse_leads
from lvcg_cli.signals.preprocess import bandpass, resample

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ludb" / "data"
ANNOTATION_LEADS = ("ii", "i", "iii", "avr", "avl", "avf", "v1", "v2", "v3", "v4", "v5", "v6")
SPAN_MARGIN_S = 0.15


def reference_peaks(record_path: Path, consensus_window_s: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """(consensus, lead-II) QRS peak samples of one LUDB record (see the module docstring)."""
    marks = {}
    for ext in ANNOTATION_LEADS:
        if record_path.with_suffix(f".{ext}").is_file():
            ann = wfdb.rdann(str(record_path), ext)
            marks[ext] = np.sort(np.asarray(ann.sample)[np.asarray(ann.symbol) == "N"])
    base = next((peaks for peaks in marks.values() if peaks.size), np.zeros(0, dtype=np.int64))
    if base.size == 0:
        return base, base
    fs = wfdb.rdheader(str(record_path)).fs
    window = consensus_window_s * fs
    per_lead = []
    for peaks in marks.values():
        if peaks.size == 0:
            continue
        nearest = peaks[np.argmin(np.abs(peaks[None, :] - base[:, None]), axis=1)]
        per_lead.append(np.where(np.abs(nearest - base) <= window, nearest, np.nan))
    consensus = np.round(np.nanmedian(np.stack(per_lead), axis=0)).astype(np.int64)
    return consensus, base


def score_record(ref: np.ndarray, det: np.ndarray, fs: float, tolerance_s: float) -> tuple[int, int, int]:
    """tp, fp, fn of one record inside its annotated span."""
    margin = int(round(SPAN_MARGIN_S * fs))
    lo, hi = ref.min() - margin, ref.max() + margin
    det = det[(det >= lo) & (det <= hi)]
    return match_peaks(ref, det, int(round(tolerance_s * fs)))


def configurations() -> dict[str, tuple[float | None, list[int]]]:
    """name -> (model rate or None for the raw 500 Hz record, lead indices)."""
    return {
        "500 Hz raw, 12 leads": (None, list(range(12))),
        "100 Hz model input, 12 leads": (100.0, list(range(12))),
        "100 Hz model input, I+II+V2": (100.0, parse_leads("I,II,V2")),
        "100 Hz model input, II only": (100.0, parse_leads("II")),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LVCG_LUDB", DEFAULT_DATA)))
    parser.add_argument("--tolerance-ms", type=float, default=50.0)
    parser.add_argument("--worst", type=int, default=5, help="list the N records with the most errors")
    args = parser.parse_args(argv)
    headers = sorted(args.data.glob("*.hea"), key=lambda p: (len(p.stem), p.stem))
    if not headers:
        print(f"no LUDB records in {args.data}", file=sys.stderr)
        return 2
    tol = args.tolerance_ms / 1000.0
    configs = configurations()
    totals = {name: np.zeros(3, dtype=np.int64) for name in configs}
    totals_ii = {name: np.zeros(3, dtype=np.int64) for name in configs}
    seconds = dict.fromkeys(configs, 0.0)
    per_record: dict[str, list[tuple[str, int, int, int]]] = {name: [] for name in configs}
    n_scored = 0
    for header in headers:
        rec_path = header.with_suffix("")
        ref, ref_ii = reference_peaks(rec_path)
        if ref.size == 0:
            continue
        record = read_record(header)
        n_scored += 1
        for name, (rate, leads) in configs.items():
            x = record.signal[leads]
            if rate is None:
                start = time.perf_counter()
                det = detect_r_peaks(x, record.fs)
                seconds[name] += time.perf_counter() - start
            else:
                x = bandpass(resample(x, record.fs, rate), rate, (0.67, 40.0), 2)
                start = time.perf_counter()
                det_low = detect_r_peaks(x, rate)
                seconds[name] += time.perf_counter() - start
                det = np.round(det_low * record.fs / rate).astype(np.int64)
            tp, fp, fn = score_record(ref, det, record.fs, tol)
            totals[name] += (tp, fp, fn)
            totals_ii[name] += score_record(ref_ii, det, record.fs, tol)
            per_record[name].append((record.id, tp, fp, fn))

    print(f"LUDB R-peak detection: {n_scored} records from {args.data}, tolerance {args.tolerance_ms:g} ms")
    print(
        f"{'configuration':30s} {'beats':>6s} {'TP':>6s} {'FP':>4s} {'FN':>4s} "
        f"{'Se':>7s} {'PPV':>7s} {'F1':>7s} {'F1(II)':>7s} {'ms/rec':>7s}"
    )
    for name, (tp, fp, fn) in totals.items():
        se = tp / max(tp + fn, 1)
        ppv = tp / max(tp + fp, 1)
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        tp2, fp2, fn2 = totals_ii[name]
        f1_ii = 2 * tp2 / max(2 * tp2 + fp2 + fn2, 1)
        ms = 1000 * seconds[name] / max(n_scored, 1)
        print(
            f"{name:30s} {tp + fn:6d} {tp:6d} {fp:4d} {fn:4d} {se:7.4f} {ppv:7.4f} {f1:7.4f} {f1_ii:7.4f} {ms:7.2f}"
        )
    if args.worst:
        for name, rows in per_record.items():
            worst = sorted(rows, key=lambda r: -(r[2] + r[3]))[: args.worst]
            worst = [f"{rid}(fp={fp},fn={fn})" for rid, _, fp, fn in worst if fp + fn]
            if worst:
                print(f"worst [{name}]: {' '.join(worst)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

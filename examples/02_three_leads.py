"""A wearable's three leads: all 12 leads from I, II and V2 of a real record, model vs baselines.

What it shows: a patch or smartwatch-style device records three leads; `model.reconstruct` gives
the other nine. For every hidden lead it prints Pearson r (shape) and the amplitude error (RMSE in
mV, peak-to-peak ratio reconstructed / original) of the model, of the physics baseline (lift into
a dipole through the Dower lead field, project back) and of the population regression fitted on
the bundled open records, all through the public API (`method="physics"|"linear"` are
`lvcg reconstruct --method`), and saves the 12-lead printout (3 x 4 + lead-II rhythm strip, 25
mm/s, 10 mm/mV) with the reconstruction in blue over the original in black.

Time: about 5 s on a laptop CPU (5 s measured on a shared 2-core machine with OMP_NUM_THREADS=1;
the first run also fits the regression baseline once and caches it).

Run:  python examples/02_three_leads.py [RECORD] [--out three_leads.png]
      RECORD: any file lvcg reads (WFDB .hea, DICOM, MUSE XML ...). Default: PTB-XL record 00009
      (test fold 10, not seen in pretraining) from $LVCG_SHARED_DATA/ptbxl (default ../shared/data
      beside this repository), else the bundled 00001_hr (fold 3: in the bundled weights'
      pretraining data, without labels).
Needs: matplotlib for the figure (pip install "lvcg[plot]").
"""

from __future__ import annotations

import argparse
import os
from importlib import resources
from pathlib import Path

import numpy as np

import lvcg_cli

# The printout is drawn by lvcg_cli.plots, the library module behind `lvcg reconstruct --plot`.
from lvcg_cli.plots import PAPER_DPI, ecg_figure

VISIBLE = ["I", "II", "V2"]
METHODS = ("lvcg", "physics", "linear")


def default_record() -> Path:
    """A held-out PTB-XL record from the shared open data, else the record bundled with lvcg."""
    here = Path(__file__).resolve().parent
    shared = Path(os.environ.get("LVCG_SHARED_DATA", here.parent.parent / "shared" / "data"))
    held_out = shared / "ptbxl" / "records500" / "00000" / "00009_hr.hea"
    if held_out.is_file():
        return held_out
    return Path(str(resources.files("lvcg_cli") / "assets" / "records" / "ptbxl" / "00001_hr.hea"))


def print_scores(scores: dict, hidden: list[str]) -> None:
    """One row per hidden lead, one column group per method, and the mean over the leads."""
    print("r: Pearson correlation; RMSE in mV; p-p: peak-to-peak reconstructed / original (1 = right size)")
    print(f"{'lead':<5}" + "".join(f" | {m:^22}" for m in METHODS))
    print(f"{'':<5}" + " | {:>6} {:>8} {:>6}".format("r", "RMSE", "p-p") * len(METHODS))
    for name in hidden:
        cells = "".join(
            f" | {s.r:6.3f} {s.rmse:8.4f} {s.ptp_ratio:6.2f}" for s in (scores[m][name] for m in METHODS)
        )
        print(f"{name:<5}{cells}")
    means = "".join(
        " | {:6.3f} {:8.4f} {:6.2f}".format(
            *(np.mean([getattr(scores[m][n], f) for n in hidden]) for f in ("r", "rmse", "ptp_ratio"))
        )
        for m in METHODS
    )
    print(f"{'mean':<5}{means}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("record", nargs="?", type=Path, default=None, help="a 12-lead record file")
    parser.add_argument("--out", type=Path, default=Path("three_leads.png"), help="figure (.png, .pdf, .svg)")
    args = parser.parse_args()
    path = args.record or default_record()

    model = lvcg_cli.load_model()  # the bundled weights
    try:
        record = lvcg_cli.read_record(path)  # (12, T) mV, canonical lead order, the file's own rate
        leads = list(lvcg_cli.CANONICAL_LEADS)
        three = record.signal[[leads.index(n) for n in VISIBLE]]  # what the wearable records
        outputs = {m: model.reconstruct(three, fs=record.fs, leads=VISIBLE, method=m) for m in METHODS}
    except lvcg_cli.LvcgError as error:  # e.g. a record without one of I, II, V2: one line, no traceback
        raise SystemExit(str(error)) from None
    scores = {m: model.score(out, record.signal, fs=record.fs) for m, out in outputs.items()}

    limb = ["III", "aVR", "aVL", "aVF"]  # exact combinations of I and II: derived, not estimated
    hidden = [n for n in leads if n not in VISIBLE and n not in limb and record.present[leads.index(n)]]
    print(
        f"{record.id} ({record.meta.get('format', '?')}, {record.fs:g} Hz, {record.n_samples / record.fs:.1f} s): "
        f"{len(hidden)} hidden leads reconstructed from {', '.join(VISIBLE)}"
    )
    if hidden:
        print_scores(scores, hidden)
    else:
        print("the record has none of the other chest leads: nothing to score the reconstruction against")
    print(f"{', '.join(limb)}: derived exactly from I and II (Einthoven, Goldberger) by every method")

    visible = np.isin(leads, VISIBLE)
    try:  # the figure needs matplotlib; the scores above do not
        figure = ecg_figure(
            record.signal,
            record.fs,
            reconstruction=outputs["lvcg"],
            present=record.present,
            visible=visible,
            derived=np.isin(leads, limb),
            scores={n: s for n, s in scores["lvcg"].items() if not visible[leads.index(n)]},
            band=tuple(model.settings.data.bandpass),  # both traces band-passed, as the scores are
            title=f"{record.id}: model reconstruction from {', '.join(VISIBLE)} (blue) over the original (black)",
        )
        figure.savefig(args.out, dpi=PAPER_DPI)  # true paper size: 25 mm/s, 10 mm/mV at 100 % zoom
    except lvcg_cli.LvcgError as error:
        raise SystemExit(f"no figure: {error}") from None
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

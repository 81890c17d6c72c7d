"""Figures drawn the way clinicians read them: a 12-lead ECG on paper, and the VCG loops of one beat.

matplotlib is an optional extra (``pip install 'lvcg[plot]'``); it is imported only when a plot
is asked for, with the non-interactive Agg backend (no display needed, safe in worker processes).
Figures are written atomically.

**The 12-lead figure** follows the standard printout: 3 rows x 4 columns of 2.5 s each
(I/aVR/V1/V4, II/aVL/V2/V5, III/aVF/V3/V6; each lead shows its own 2.5 s of the record, so a
column is one moment seen through three leads), a full-length lead-II rhythm strip below, a
1 mV x 0.2 s calibration pulse at the start of every row, and the note "25 mm/s, 10 mm/mV".
It is drawn at **true paper scale**: every size is laid out in millimetres and the figure size
in inches is those millimetres / 25.4, so 1 s is 25 mm and 1 mV is 10 mm of figure. A PDF or SVG
prints (and shows at 100 % zoom) at paper size; a PNG is written at ``PAPER_DPI`` (200 dpi,
recorded in the file), i.e. 7.87 pixels per millimetre of paper. The grid has 1-mm minor squares
(0.04 s x 0.1 mV) and 5-mm major squares (0.2 s x 0.5 mV). Originals are black; reconstructed
(hidden) leads are blue over them, each labelled with r, RMSE and the peak-to-peak ratio.

**The VCG figure** shows one representative beat (the median beat, see
:mod:`lvcg_cli.downstream.vcg`) with its QRS and T loops in mV (the rest of the beat dotted), arrows along each loop in
the direction of time, in the frontal, transverse and sagittal planes on equal axes (one mV
is the same length in every panel and in both directions), plus the spatial magnitude over time
with the loop windows marked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lvcg_cli.errors import LvcgError
from lvcg_cli.signals.leads import CANONICAL_LEADS

if TYPE_CHECKING:
    from lvcg_cli.downstream.reconstruct import LeadScore, Reconstruction
    from lvcg_cli.downstream.vcg import MedianBeat

MAJOR_S, MINOR_S = 0.2, 0.04
MAJOR_MV, MINOR_MV = 0.5, 0.1
PAPER_MM_PER_S, PAPER_MM_PER_MV = 25.0, 10.0
PAPER_DPI = 200
"""Resolution of PNG ECG figures: 200 dots per inch of paper (7.87 per mm)."""
MM_PER_INCH = 25.4
PAPER_RED = "#f4a6a6"
PAPER_PINK = "#fbe3e3"
RECON_BLUE = "#1f5fbf"
GRID_LAYOUT = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
RHYTHM_LEAD = "II"
CALIBRATION_S = 0.4
"""Paper before t = 0 in each row: baseline 0.1 s, the 1 mV pulse 0.2 s (5 mm), baseline 0.1 s."""
CALIBRATION_MV = 1.0
MARGIN_MM = {"left": 8.0, "right": 8.0, "top": 22.0, "bottom": 12.0}
ROW_MV_MIN, ROW_MV_MAX = (-1.0, 2.0), (-3.0, 3.5)
"""Each row spans at least -1..2 mV (room for the pulse and the labels) and at most -3..3.5 mV."""
LOOP_COLORS = {"QRS": "#d62828", "T": "#1d4e89"}


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or a one-line error saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise LvcgError("plotting needs matplotlib: pip install 'lvcg[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path, dpi: int, *, tight: bool = True) -> None:
    from lvcg_cli.atomic import atomic_path

    suffix = Path(path).suffix.lower().lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=suffix, bbox_inches="tight" if tight else None)


def ecg_paper(ax: Any, t0: float, t1: float, lo: float, hi: float) -> None:
    """Draw the major/minor ECG grid on ``ax`` over the given time (s) and amplitude (mV) range."""
    from matplotlib.ticker import MultipleLocator

    ax.set_xlim(t0, t1)
    ax.set_ylim(lo, hi)
    ax.xaxis.set_major_locator(MultipleLocator(MAJOR_S))
    ax.xaxis.set_minor_locator(MultipleLocator(MINOR_S))
    ax.yaxis.set_major_locator(MultipleLocator(MAJOR_MV))
    ax.yaxis.set_minor_locator(MultipleLocator(MINOR_MV))
    ax.grid(which="major", color=PAPER_RED, linewidth=0.6)
    ax.grid(which="minor", color=PAPER_PINK, linewidth=0.3)
    ax.set_axisbelow(True)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_aspect(PAPER_MM_PER_MV / PAPER_MM_PER_S, adjustable="box")  # a major square is square
    for spine in ax.spines.values():
        spine.set_color(PAPER_RED)


# --------------------------------------------------------------------------------------------
# the 12-lead ECG
# --------------------------------------------------------------------------------------------
def row_range(traces: Sequence[np.ndarray]) -> tuple[float, float]:
    """The mV range of every row: the traces' extent plus a 0.5 mV margin, on the 0.5 mV grid."""
    values = np.concatenate([np.ravel(t) for t in traces]) if traces else np.zeros(1)
    values = values[np.isfinite(values)]
    low = float(values.min()) if values.size else 0.0
    high = float(values.max()) if values.size else 0.0
    lo = np.floor(low / MAJOR_MV) * MAJOR_MV - MAJOR_MV
    hi = np.ceil(high / MAJOR_MV) * MAJOR_MV + MAJOR_MV
    return float(np.clip(lo, ROW_MV_MAX[0], ROW_MV_MIN[0])), float(np.clip(hi, ROW_MV_MIN[1], ROW_MV_MAX[1]))


def paper_size_mm(duration_s: float, lo: float, hi: float) -> tuple[float, float]:
    """(width, height) in mm of the figure for ``duration_s`` seconds per row and rows of lo..hi mV."""
    width = MARGIN_MM["left"] + (CALIBRATION_S + duration_s) * PAPER_MM_PER_S + MARGIN_MM["right"]
    height = MARGIN_MM["top"] + 4 * (hi - lo) * PAPER_MM_PER_MV + MARGIN_MM["bottom"]
    return width, height


def _score_text(score: LeadScore | None) -> str:
    if score is None:
        return ""
    parts = []
    for label, value, digits, unit in (
        ("r", score.r, 2, ""),
        ("RMSE", score.rmse, 3, " mV"),
        ("p-p", score.ptp_ratio, 2, ""),
    ):
        if value is not None and np.isfinite(value):
            parts.append(f"{label} {value:.{digits}f}{unit}")
    return ", ".join(parts)


def ecg_figure(
    original: np.ndarray,
    fs: float,
    *,
    reconstruction: np.ndarray | None = None,
    present: np.ndarray | None = None,
    visible: np.ndarray | None = None,
    derived: np.ndarray | None = None,
    scores: Mapping[str, LeadScore] | None = None,
    seconds: float | None = 10.0,
    band: tuple[float, float] | None = None,
    title: str = "",
) -> Any:
    """A 12-lead ECG (3 x 4 + lead-II rhythm strip) at true paper scale; see the module doc.

    ``original`` and ``reconstruction`` are (12, T) mV in canonical lead order. The reconstruction
    is drawn (blue) on the leads that were not ``visible``; ``present`` says which original leads
    exist (black). ``band`` band-passes both first, as the scores do.
    """
    plt = require_matplotlib()
    original = np.asarray(original, dtype=np.float64)
    n_leads, n_time = original.shape
    if n_leads != 12:
        raise LvcgError(f"a 12-lead figure needs (12, T) signals (got {original.shape})")
    present = np.ones(12, bool) if present is None else np.asarray(present, bool)
    visible = np.zeros(12, bool) if visible is None else np.asarray(visible, bool)
    derived = np.zeros(12, bool) if derived is None else np.asarray(derived, bool)
    scores = scores or {}
    n_show = n_time if seconds is None else min(n_time, int(round(seconds * fs)))
    orig = original[:, :n_show]
    recon = None if reconstruction is None else np.asarray(reconstruction, np.float64)[:, :n_show]
    if band is not None:
        from lvcg_cli.signals.preprocess import bandpass

        orig = bandpass(orig, fs, band)
        recon = None if recon is None else bandpass(recon, fs, band)
    drawn_recon = ~visible if recon is not None else np.zeros(12, bool)
    t = np.arange(n_show) / fs
    duration = n_show / fs
    column = duration / 4.0
    lo, hi = row_range([orig[present], *([recon[drawn_recon]] if recon is not None else [])])

    width_mm, height_mm = paper_size_mm(duration, lo, hi)
    fig = plt.figure(figsize=(width_mm / MM_PER_INCH, height_mm / MM_PER_INCH))
    row_mm = (hi - lo) * PAPER_MM_PER_MV
    axes = []
    for row in range(4):
        bottom_mm = MARGIN_MM["bottom"] + (3 - row) * row_mm
        ax = fig.add_axes(
            (
                MARGIN_MM["left"] / width_mm,
                bottom_mm / height_mm,
                (CALIBRATION_S + duration) * PAPER_MM_PER_S / width_mm,
                row_mm / height_mm,
            )
        )
        ecg_paper(ax, -CALIBRATION_S, duration, lo, hi)
        ax.set_gid("rhythm" if row == 3 else f"row-{row}")
        cal_t = np.array([-CALIBRATION_S, -0.3, -0.3, -0.1, -0.1, 0.0])  # the pulse is 0.2 s (5 mm) wide
        cal_v = np.array([0.0, 0.0, CALIBRATION_MV, CALIBRATION_MV, 0.0, 0.0])
        ax.plot(cal_t, cal_v, color="black", linewidth=1.0, gid="calibration")
        axes.append(ax)

    def draw(ax: Any, name: str, i0: int, i1: int, x_label: float, label: str) -> None:
        j = CANONICAL_LEADS.index(name)
        span = slice(i0, min(i1 + 1, n_show))  # one sample more joins the next column's segment
        if present[j]:
            ax.plot(t[span], orig[j, span], color="black", linewidth=0.7, gid=f"original-{name}")
        if drawn_recon[j]:
            ax.plot(t[span], recon[j, span], color=RECON_BLUE, linewidth=0.8, gid=f"reconstruction-{name}")
        status = (
            "visible" if visible[j] else "derived" if derived[j] else "hidden" if recon is not None else ""
        )
        color = RECON_BLUE if drawn_recon[j] else "black"
        box = {"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 0.6}
        ax.text(
            x_label,
            hi - 0.12,
            label,
            fontsize=8,
            fontweight="bold",
            va="top",
            color=color,
            gid=f"label-{name}",
            bbox=box,
        )
        detail = ", ".join(p for p in (status, _score_text(scores.get(name))) if p)
        if detail:
            ax.text(
                x_label, hi - 0.55, detail, fontsize=5.5, va="top", color=color, gid=f"score-{name}", bbox=box
            )

    for row, names in enumerate(GRID_LAYOUT):
        for col, name in enumerate(names):
            t0 = col * column
            draw(axes[row], name, int(round(t0 * fs)), int(round((t0 + column) * fs)), t0 + 0.05, name)
            if col:
                axes[row].plot([t0, t0], [-0.25, 0.25], color="black", linewidth=0.8, gid="column-mark")
    draw(axes[3], RHYTHM_LEAD, 0, n_show, 0.05, f"{RHYTHM_LEAD} (rhythm strip)")

    top = 1.0 - 6.0 / height_mm
    fig.text(MARGIN_MM["left"] / width_mm, top, title, fontsize=9, va="top", ha="left", gid="title")
    fig.text(
        1.0 - MARGIN_MM["right"] / width_mm,
        top,
        "25 mm/s, 10 mm/mV",
        fontsize=9,
        fontweight="bold",
        va="top",
        ha="right",
        gid="paper-speed",
    )
    notes = [f"grid 1 mm = {MINOR_S:g} s x {MINOR_MV:g} mV, 5 mm = {MAJOR_S:g} s x {MAJOR_MV:g} mV"]
    notes.append("calibration pulse 1 mV")
    if band is not None:
        notes.append(f"band-pass {band[0]:g}-{band[1]:g} Hz")
    notes.append(f"true size at 100 % zoom ({PAPER_DPI} dpi PNG)")
    fig.text(
        1.0 - MARGIN_MM["right"] / width_mm,
        top - 5.0 / height_mm,
        "; ".join(notes),
        fontsize=6.5,
        va="top",
        ha="right",
        gid="paper-notes",
    )
    if recon is not None:
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], color="black", linewidth=0.8, label="original")]
        handles.append(Line2D([], [], color=RECON_BLUE, linewidth=0.9, label="reconstruction (hidden leads)"))
        fig.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(MARGIN_MM["left"] / width_mm, 1.0 / height_mm),
            ncol=2,
            fontsize=7,
            frameon=False,
        )
    return fig


def plot_reconstruction(
    rec: Reconstruction,
    path: str | Path,
    *,
    seconds: float | None = 10.0,
    title: str | None = None,
    band: tuple[float, float] = (0.67, 40.0),
    dpi: int = PAPER_DPI,
) -> Path:
    """The 12-lead figure of a reconstruction: originals black, hidden leads' reconstruction blue.

    Both traces are band-passed like the scores (baseline wander removed), so the eye compares
    what the scores compare. A lead the record lacks shows the reconstruction alone.
    """
    plt = require_matplotlib()
    visible = ", ".join(n for n, v in zip(CANONICAL_LEADS, rec.visible, strict=True) if v)
    fig = ecg_figure(
        rec.original,
        rec.fs,
        reconstruction=rec.signal,
        present=rec.present,
        visible=rec.visible,
        derived=rec.derived,
        scores=rec.scores,
        seconds=seconds,
        band=band,
        title=title or f"{rec.id}: {rec.method} reconstruction from {visible}",
    )
    _save(fig, path, dpi, tight=False)  # keep the figure's size: it is the paper's size
    plt.close(fig)
    return Path(path)


# --------------------------------------------------------------------------------------------
# the VCG loops
# --------------------------------------------------------------------------------------------
AXIS_NAMES = ("x, right -> left", "y, superior -> inferior", "z, anterior -> posterior")
PLANES = (
    ("frontal", 0, 1, True),
    ("transverse", 0, 2, False),
    ("sagittal", 2, 1, True),
)
"""(name, horizontal axis, vertical axis, vertical axis points down). y (inferior) points down."""


def _arrow_points(n: int) -> list[int]:
    """Where along a loop of ``n`` samples the direction arrows sit (about 30 % and 65 % in)."""
    if n < 4:
        return []
    return sorted({min(int(f * n), n - 2) for f in (0.3, 0.65)})


def vcg_figure(
    beat: MedianBeat,
    *,
    title: str = "latent VCG",
    axis_names: Sequence[str] = AXIS_NAMES,
) -> Any:
    """The median beat's QRS and T loops in three planes (equal axes, mV) and its magnitude over time."""
    plt = require_matplotlib()
    samples = beat.samples
    lim = 1.1 * float(np.abs(samples).max()) or 1.0
    fig, grid = plt.subplots(2, 2, figsize=(10, 9.5))
    loops = {name: beat.loop(name) for name in LOOP_COLORS}
    for ax, (plane, h, v, down) in zip(grid.flat[:3], PLANES, strict=True):
        ax.set_gid(plane)
        ax.plot(
            samples[h],
            samples[v],
            color="#999999",
            linewidth=0.7,
            linestyle=":",
            gid="beat",
            label="rest of the beat",
        )
        for name, loop in loops.items():
            if loop.shape[1] < 2:
                continue
            color = LOOP_COLORS[name]
            ax.plot(loop[h], loop[v], color=color, linewidth=1.4, label=name, gid=f"loop-{name}")
            ax.plot(loop[h, 0], loop[v, 0], "o", color=color, markersize=3, gid=f"onset-{name}")
            step = max(1, loop.shape[1] // 40)
            for i in _arrow_points(loop.shape[1]):
                k = min(i + step, loop.shape[1] - 1)
                ax.annotate(
                    "",
                    xy=(loop[h, k], loop[v, k]),
                    xytext=(loop[h, i], loop[v, i]),
                    arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.2, "mutation_scale": 14},
                    gid=f"arrow-{name}-{i}-{k}",
                )
        ax.axhline(0, color="#999999", linewidth=0.5)
        ax.axvline(0, color="#999999", linewidth=0.5)
        ax.set_xlim(-lim, lim)
        ax.set_ylim((lim, -lim) if down else (-lim, lim))
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(f"{axis_names[h]} (mV)", fontsize=8)
        ax.set_ylabel(f"{axis_names[v]} (mV)" + (", down" if down else ""), fontsize=8)
        ax.set_title(f"{plane} plane", fontsize=10)
        ax.tick_params(labelsize=7)
        ax.grid(color="#eeeeee", linewidth=0.5)
        ax.legend(fontsize=7, loc="upper right")

    ax = grid.flat[3]
    ax.set_gid("magnitude")
    ms = beat.time_ms
    ax.plot(ms, np.linalg.norm(samples, axis=0), color="black", linewidth=1.0, gid="spatial-magnitude")
    for name in LOOP_COLORS:
        window = beat.window(name)
        if window[1] > window[0]:
            ax.axvspan(
                ms[window[0]],
                ms[window[1] - 1],
                color=LOOP_COLORS[name],
                alpha=0.15,
                label=name,
                gid=f"window-{name}",
            )
    ax.set_xlabel("time from R peak (ms)", fontsize=8)
    ax.set_ylabel("spatial magnitude |v| (mV)", fontsize=8)
    ax.set_title("spatial magnitude of the median beat", fontsize=10)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(color="#eeeeee", linewidth=0.5)
    facts = [f"median of {beat.n_beats} beat(s) at {beat.fs:g} Hz", f"QRS {beat.duration_ms('QRS'):.0f} ms"]
    facts.append(f"QRS-T angle {beat.qrs_t_angle():.0f} deg")
    fig.suptitle(f"{title}\n" + "; ".join(facts) + "; arrows point forward in time", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


def plot_vcg(
    field: np.ndarray,
    fs: float,
    path: str | Path,
    *,
    title: str = "latent VCG",
    axis_names: Sequence[str] = AXIS_NAMES,
    rpeaks: np.ndarray | None = None,
    dpi: int = 150,
) -> Path:
    """The VCG figure of a (3, T) field in mV at ``fs``: its median beat's loops (see the module doc).

    ``rpeaks`` (sample indices at ``fs``) are detected on the field when not given.
    """
    from lvcg_cli.downstream.vcg import median_beat

    plt = require_matplotlib()
    field = np.asarray(field, dtype=np.float64)
    if field.ndim != 2 or field.shape[0] != 3:
        raise LvcgError(f"a VCG field must be (3, T) (got {field.shape})")
    fig = vcg_figure(median_beat(field, fs, rpeaks), title=title, axis_names=axis_names)
    _save(fig, path, dpi)
    plt.close(fig)
    return Path(path)

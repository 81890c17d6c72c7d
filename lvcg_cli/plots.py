"""Figures: a 12-lead grid on ECG-paper conventions, and the latent VCG loop with its projections.

matplotlib is an optional extra (``pip install 'lvcg[plot]'``); it is imported only when a plot
is asked for, with the non-interactive Agg backend (no display needed, safe in worker processes).
Figures are written atomically.

ECG paper: 25 mm/s and 10 mm/mV, so a 1-mm minor square is 0.04 s x 0.1 mV and a 5-mm major
square 0.2 s x 0.5 mV. Every panel keeps that aspect (1 s : 2.5 mV on screen), as on paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lvcg_cli.errors import LvcgError
from lvcg_cli.signals.leads import CANONICAL_LEADS

if TYPE_CHECKING:
    from lvcg_cli.downstream.reconstruct import Reconstruction

MAJOR_S, MINOR_S = 0.2, 0.04
MAJOR_MV, MINOR_MV = 0.5, 0.1
PAPER_MM_PER_S, PAPER_MM_PER_MV = 25.0, 10.0
PAPER_SCALE = 0.45  # printed size relative to real ECG paper
PAPER_RED = "#f4a6a6"
PAPER_PINK = "#fbe3e3"
GRID_LAYOUT = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the Agg backend, or a one-line error saying how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise LvcgError("plotting needs matplotlib: pip install 'lvcg[plot]'") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path, dpi: int) -> None:
    from lvcg_cli.atomic import atomic_path

    suffix = Path(path).suffix.lower().lstrip(".") or "png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=suffix, bbox_inches="tight")


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
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_aspect(PAPER_MM_PER_MV / PAPER_MM_PER_S, adjustable="box")  # a major square is square
    for spine in ax.spines.values():
        spine.set_color(PAPER_RED)


def plot_reconstruction(
    rec: Reconstruction,
    path: str | Path,
    *,
    seconds: float | None = 10.0,
    title: str | None = None,
    band: tuple[float, float] = (0.67, 40.0),
    dpi: int = 150,
) -> Path:
    """Original (black) vs reconstruction (blue) of all 12 leads in the standard 3 x 4 + rhythm layout.

    Each panel shows the full ``seconds`` window of its lead on ECG paper; hidden leads are
    reconstructed (blue, with "hidden" and r in the title), visible leads are the input (black
    only). Both traces are band-passed like the scores (baseline wander removed) so the eye
    compares what the score compares. A lead the record lacks shows the reconstruction alone.
    """
    from lvcg_cli.signals.preprocess import bandpass

    plt = require_matplotlib()
    fs = rec.fs
    n_show = rec.signal.shape[-1] if seconds is None else min(rec.signal.shape[-1], int(round(seconds * fs)))
    orig = bandpass(rec.original[:, :n_show].astype(np.float64), fs, band)
    recon = bandpass(rec.signal[:, :n_show].astype(np.float64), fs, band)
    t = np.arange(n_show) / fs
    duration = n_show / fs
    shown = np.concatenate([orig[rec.present], recon[~rec.visible]]) if n_show else np.zeros((1, 1))
    lo = max(float(np.floor(np.nanmin(shown) / MAJOR_MV)) * MAJOR_MV - MAJOR_MV, -4.0) if shown.size else -1.0
    hi = min(float(np.ceil(np.nanmax(shown) / MAJOR_MV)) * MAJOR_MV + MAJOR_MV, 4.0) if shown.size else 1.0
    mm = PAPER_SCALE / 25.4  # inches per millimetre of paper
    width = max(duration, 2.5) * PAPER_MM_PER_S * mm
    height = (hi - lo) * PAPER_MM_PER_MV * mm
    fig, axes = plt.subplots(6, 2, figsize=(2 * width + 0.6, 6 * (height + 0.35) + 0.5), squeeze=False)
    for k, name in enumerate(CANONICAL_LEADS):
        ax = axes[k % 6, k // 6]
        j = CANONICAL_LEADS.index(name)
        ecg_paper(ax, 0.0, duration, lo, hi)
        if rec.present[j]:
            ax.plot(t, orig[j], color="black", linewidth=0.7, label="original")
        if not rec.visible[j]:
            ax.plot(t, recon[j], color="#1f5fbf", linewidth=0.8, label="reconstruction")
        status = "visible" if rec.visible[j] else ("derived" if rec.derived[j] else "hidden")
        score = rec.scores.get(name)
        detail = f"  r={score[0]:.2f}" if score and np.isfinite(score[0]) else ""
        color = "black" if rec.visible[j] else "#1f5fbf"
        ax.set_title(f"{name} ({status}){detail}", fontsize=8, loc="left", color=color, pad=2)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    for ax in axes.flat:
        h, lab = ax.get_legend_handles_labels()
        if len(h) > len(handles):
            handles, labels = h, lab
    if handles:
        fig.legend(handles, labels, loc="upper right", fontsize=8, frameon=False)
    visible = ", ".join(n for n, v in zip(CANONICAL_LEADS, rec.visible, strict=True) if v)
    fig.suptitle(
        title
        or f"{rec.id}: {rec.method} reconstruction from {visible}  (grid 0.2 s x 0.5 mV, 0.04 s x 0.1 mV)",
        fontsize=9,
        x=0.01,
        ha="left",
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    _save(fig, path, dpi)
    plt.close(fig)
    return Path(path)


def plot_vcg(
    field: np.ndarray,
    fs: float,
    path: str | Path,
    *,
    title: str = "latent VCG",
    axis_names: Sequence[str] = (
        "x (right -> left)",
        "y (superior -> inferior)",
        "z (anterior -> posterior)",
    ),
    seconds: float | None = None,
    dpi: int = 110,
) -> Path:
    """The 3-D loop of a (3, T) field and its frontal (x-y), transverse (x-z) and sagittal (z-y) projections.

    Colour runs with time so the direction of the loop can be read. ``y`` points down (inferior)
    in the frontal and sagittal views, as in clinical VCG displays.
    """
    plt = require_matplotlib()
    field = np.asarray(field, dtype=np.float64)
    if field.ndim != 2 or field.shape[0] != 3:
        raise LvcgError(f"a VCG field must be (3, T) (got {field.shape})")
    if seconds is not None:
        field = field[:, : max(2, int(round(seconds * fs)))]
    x, y, z = field
    color = np.arange(field.shape[1]) / fs
    fig = plt.figure(figsize=(11, 8.5))
    ax3 = fig.add_subplot(2, 2, 1, projection="3d")
    ax3.scatter(x, z, -y, c=color, cmap="viridis", s=1.5)
    ax3.plot(x, z, -y, color="grey", linewidth=0.3, alpha=0.6)
    ax3.set_xlabel(axis_names[0], fontsize=7)
    ax3.set_ylabel(axis_names[2], fontsize=7)
    ax3.set_zlabel("-" + axis_names[1], fontsize=7)
    ax3.set_title("3-D loop", fontsize=9)
    ax3.tick_params(labelsize=6)
    views = (
        ("frontal (x, y)", x, y, axis_names[0], axis_names[1]),
        ("transverse (x, z)", x, z, axis_names[0], axis_names[2]),
        ("sagittal (z, y)", z, y, axis_names[2], axis_names[1]),
    )
    for k, (name, a, b, la, lb) in enumerate(views, start=2):
        ax = fig.add_subplot(2, 2, k)
        points = ax.scatter(a, b, c=color, cmap="viridis", s=1.5)
        ax.plot(a, b, color="grey", linewidth=0.3, alpha=0.6)
        ax.axhline(0, color="#cccccc", linewidth=0.6)
        ax.axvline(0, color="#cccccc", linewidth=0.6)
        ax.set_aspect("equal", adjustable="datalim")
        if name != "transverse (x, z)":
            ax.invert_yaxis()
        ax.set_xlabel(la, fontsize=7)
        ax.set_ylabel(lb, fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    fig.subplots_adjust(wspace=0.35, hspace=0.3)
    fig.colorbar(points, ax=fig.axes[1:], shrink=0.6, label="time (s)")
    fig.suptitle(title, fontsize=10)
    _save(fig, path, dpi)
    plt.close(fig)
    return Path(path)

"""The probe's results: one CSV row per (data set, task, model, ratio, seed), and their summaries.

Rows are appended under a lock (:func:`lvcg_cli.atomic.append_csv_row`), so several probes may
share one results file; every row says which checkpoint (path and SHA-256), data, leads and
version it came from, so a table can be traced back to what made it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

RESULT_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "checkpoint",
    "checkpoint_sha256",
    "dataset",
    "task",
    "model",
    "ratio",
    "seed",
    "n_train",
    "n_val",
    "n_test",
    "n_classes",
    "best_c",
    "val_macro_auroc",
    "macro_auroc",
    "macro_auroc_ci_low",
    "macro_auroc_ci_high",
    "macro_auroc_repeat_std",
    "macro_auprc",
    "macro_f1",
    "per_class_auroc",
    "excluded_classes",
    "embedding_dim",
    "blocks",
    "visible",
    "cv",
    "lvcg_version",
)


def result_row(
    *,
    dataset: str,
    task: str,
    model: str,
    checkpoint: str,
    checkpoint_sha256: str,
    ratio: float,
    seed: int,
    metrics: dict[str, Any],
    embedding_dim: int,
    blocks: Sequence[str],
    visible: str | None,
) -> dict[str, Any]:
    """One result row (the columns of :data:`RESULT_COLUMNS` that apply), stamped now."""
    from lvcg_cli import __version__

    return {
        "timestamp": now_stamp(),
        "checkpoint": checkpoint,
        "checkpoint_sha256": checkpoint_sha256,
        "dataset": dataset,
        "task": task,
        "model": model,
        "ratio": ratio,
        "seed": int(seed),
        **metrics,
        "embedding_dim": int(embedding_dim),
        "blocks": ",".join(blocks) or "all",
        "visible": visible or "all",
        "lvcg_version": __version__,
    }


def append_result(path: str | Path, row: dict[str, Any]) -> None:
    """Append one row to a results CSV (header written with the first row; safe to share)."""
    from lvcg_cli.atomic import append_csv_row

    append_csv_row(path, row, RESULT_COLUMNS)


def now_stamp() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation (ddof=1; 0 for one seed) of the macro scores over seeds."""
    out: dict[str, Any] = {"n_seeds": len(rows), "seeds": [r["seed"] for r in rows]}
    for metric in ("macro_auroc", "macro_auprc", "macro_f1"):
        values = np.asarray([r[metric] for r in rows], dtype=np.float64)
        finite = values[np.isfinite(values)]
        out[f"{metric}_mean"] = float(finite.mean()) if finite.size else float("nan")
        out[f"{metric}_std"] = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    for bound in ("low", "high"):  # the mean of the per-seed bootstrap intervals
        values = np.asarray([r.get(f"macro_auroc_ci_{bound}", np.nan) for r in rows], dtype=np.float64)
        out[f"macro_auroc_ci_{bound}"] = (
            float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        )
    return out

"""Linear probing of frozen embeddings, as published (PTB-XL benchmark, ST-MEM, MERL/MELP).

Protocol, for one data set, task, embedding model, label ratio and seed:

1. **Frozen embeddings** of every record of the prepared data set, computed once per
   (model, data set) and cached under ``<cache>/embeddings/`` (written atomically). The model is
   the checkpoint (``lvcg``), the same architecture freshly initialised with the seed
   (``random-init``: a linear probe on random convolutional features is known to be strong on
   PTB-XL), or the handcrafted features of :mod:`lvcg_cli.downstream.features` (``features``).
2. **Label subset**: a seeded permutation of the training split; the first ``ceil(ratio * N)``
   records are labelled. Where the training split has positives (negatives) of a class but the
   subset has none, the first such record in permutation order is added, so the subset can be
   up to 2 x C records larger than ``ceil(ratio * N)`` at very small ratios (``n_train`` reports
   the real size). Not stratified otherwise. The same seed gives the same subset.
3. **Probe**: features standardised on the labelled subset, one L2 logistic regression per class
   (one-vs-rest, ``lbfgs``), the inverse strength ``C`` chosen from ``probe.c_grid`` by macro
   AUROC on the validation split (one ``C`` for all classes). A data set without a validation
   split gets a fixed 20 % of its training split (the same for every seed) as validation.
4. **Scores on the test split**: macro AUROC (the headline number), per-class AUROC, macro AUPRC,
   and macro F1 at per-class thresholds that maximise F1 on validation. Classes without
   positives or negatives in test are left out of the macro scores and listed.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lvcg_cli.datasets.prepared import NoSuchTaskError, NotPreparedError, PreparedData, open_prepared_data
from lvcg_cli.downstream.embedding_cache import MODELS, EmbeddingModel, cached_embeddings, embedding_model
from lvcg_cli.downstream.metrics import (
    bootstrap_macro_auroc,
    classification_scores,
    per_class_auroc,
    tune_thresholds,
)
from lvcg_cli.downstream.probe_results import append_result, result_row, summarise
from lvcg_cli.errors import LvcgError

if TYPE_CHECKING:
    from lvcg_cli.settings import ProbeSettings, Settings

__all__ = [
    "MODELS",
    "PROBE_TABLE",
    "ProbeEntry",
    "ProbeReport",
    "ProbeRunner",
    "ProbeSkipped",
    "probe_cv",
    "probe_once",
]

VAL_FALLBACK_FRACTION = 0.2


# --------------------------------------------------------------------------------------------
# the paper's table
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProbeEntry:
    """One row group of the probing table: a data set, a task and (optionally) a class subset."""

    dataset: str
    task: str
    classes: tuple[str, ...] | None = None


PROBE_TABLE: tuple[ProbeEntry, ...] = (
    ProbeEntry("ptbxl", "super"),
    ProbeEntry("ptbxl", "sub"),
    ProbeEntry("ptbxl", "form"),
    ProbeEntry("ptbxl", "rhythm"),
    ProbeEntry("cpsc2018", "default"),
    ProbeEntry("chapman", "default", ("SR", "AFIB", "1AVB", "RBBB")),
    ProbeEntry("ai-readi", "cardio_relevant"),
    ProbeEntry("ludb", "rhythm"),
    ProbeEntry("ludb", "axis"),
    ProbeEntry("ludb", "hypertrophy"),
    ProbeEntry("sim", "default"),
)
"""What ``lvcg probe --all`` runs: the LVCG paper's table, LUDB, and the built-in simulated set."""

PREPARE_HINTS: dict[str, str] = {
    "ptbxl": "lvcg prepare-data ptbxl --root /path/to/ptb-xl-1.0.3",
    "cpsc2018": "lvcg prepare-data cpsc2018 --root /path/to/cpsc2018",
    "chapman": "lvcg prepare-data chapman --root /path/to/chapman-shaoxing-ningbo",
    "ai-readi": "lvcg prepare-data ai-readi --root /path/to/ai-readi",
    "ludb": "lvcg prepare-data ludb --root /path/to/ludb-1.0.1",
}


def probe_entries(probe: ProbeSettings, run_all: bool = False) -> list[ProbeEntry]:
    """What to probe: the whole table (``--all``), or ``probe.dataset``/``probe.task`` with the
    table's class subset for that pair (PTB-XL's default task is ``super``)."""
    if run_all:
        return list(PROBE_TABLE)
    task = probe.task
    if probe.dataset == "ptbxl" and task == "default":
        task = "super"
    classes = next((e.classes for e in PROBE_TABLE if (e.dataset, e.task) == (probe.dataset, task)), None)
    return [ProbeEntry(probe.dataset, task, classes)]


def probe_models(model: str, baselines: bool = False) -> list[str]:
    """The embedding models of a run: ``model``, then (``--baselines``) every other one."""
    return [model, *(m for m in MODELS if m != model)] if baselines else [model]


class ProbeSkipped(LvcgError):
    """A data set or task that cannot be probed here (not prepared, no such task, no test split)."""


def prepare_hint(dataset: str) -> str:
    return PREPARE_HINTS.get(dataset, f"lvcg prepare-data {dataset} --root PATH")


# --------------------------------------------------------------------------------------------
# the protocol
# --------------------------------------------------------------------------------------------
def label_subset(y_train: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """Positions (into the training split) of the labelled subset; see step 2 of the module docs."""
    n = y_train.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.random.default_rng(int(seed)).permutation(n)
    k = min(n, max(1, math.ceil(ratio * n - 1e-9)))
    chosen = list(order[:k])
    taken = np.zeros(n, dtype=bool)
    taken[chosen] = True
    y = np.asarray(y_train).astype(bool)
    for c in range(y.shape[1]):
        for want in (True, False):
            if (y[taken, c] == want).any() or not (y[:, c] == want).any():
                continue
            first = order[np.flatnonzero(y[order, c] == want)[0]]
            taken[first] = True
            chosen.append(first)
    return np.asarray(chosen, dtype=np.int64)


def validation_fallback(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split a training split into (train, val) when the data set has no validation split (fixed draw)."""
    order = np.random.default_rng(20240917).permutation(train.size)
    n_val = max(1, int(round(VAL_FALLBACK_FRACTION * train.size)))
    return np.sort(train[order[n_val:]]), np.sort(train[order[:n_val]])


@dataclass
class FittedProbe:
    """Per-class logistic regressions on standardised features (constant scores for one-label classes)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (C, D)
    intercept: np.ndarray  # (C,)
    c: float

    def scores(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x, np.float64) - self.mean) / self.scale
        return 1.0 / (1.0 + np.exp(-(z @ self.coef.T + self.intercept)))


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float, max_iter: int, seed: int) -> FittedProbe:
    """Standardise on ``x``, then one L2 logistic regression per class (one-vs-rest)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)
    z = (x - mean) / scale
    n_classes = y.shape[1]
    coef = np.zeros((n_classes, x.shape[1]))
    intercept = np.zeros(n_classes)
    for k in range(n_classes):  # one small model per class, as OneVsRestClassifier does
        target = np.asarray(y[:, k], dtype=int)
        rate = target.mean() if target.size else 0.5
        if rate in (0.0, 1.0):
            intercept[k] = 10.0 if rate == 1.0 else -10.0  # constant score; such a class is not scorable
            continue
        clf = LogisticRegression(C=float(c), max_iter=int(max_iter), random_state=int(seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(z, target)
        coef[k] = clf.coef_[0]
        intercept[k] = clf.intercept_[0]
    return FittedProbe(mean, scale, coef, intercept, float(c))


def select_probe(
    x_train, y_train, x_val, y_val, c_grid: Sequence[float], max_iter: int, seed: int
) -> tuple[FittedProbe, float]:
    """The probe whose C has the best validation macro AUROC (first of equals), and that AUROC."""
    best, best_score = None, -np.inf
    for c in c_grid:
        fitted = fit_logistic(x_train, y_train, c, max_iter, seed)
        aurocs = per_class_auroc(y_val, fitted.scores(x_val))
        score = float(np.nanmean(aurocs)) if np.isfinite(aurocs).any() else -np.inf
        if best is None or score > best_score:
            best, best_score = fitted, score
    return best, best_score


def probe_once(
    features: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    splits: dict[str, np.ndarray],
    *,
    ratio: float,
    seed: int,
    c_grid: Sequence[float],
    max_iter: int,
    min_positives: int = 1,
) -> dict[str, Any]:
    """The protocol on precomputed features: subset, fit, select, score. Returns the metric fields."""
    train, val, test = splits["train"], splits["val"], splits["test"]
    subset = train[label_subset(labels[train], ratio, seed)]
    y = labels.astype(np.int8)
    fitted, val_auroc = select_probe(
        features[subset], y[subset], features[val], y[val], c_grid, max_iter, seed
    )
    thresholds = tune_thresholds(y[val], fitted.scores(features[val]))
    test_scores = fitted.scores(features[test])
    scores = classification_scores(classes, y[test], test_scores, thresholds, min_positives)
    low, high = bootstrap_macro_auroc(y[test], test_scores, min_positives=min_positives, seed=seed)
    return {
        "n_train": int(subset.size),
        "n_val": int(val.size),
        "n_test": int(test.size),
        "n_classes": len(classes),
        "best_c": fitted.c,
        "val_macro_auroc": _round(val_auroc),
        **_score_fields(classes, scores, low, high),
        "test_scores": test_scores,
        "subset": subset,
    }


def cv_folds(labels: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """``k`` disjoint test folds over the rows of ``labels`` (N, C), stratified by label set.

    Records are grouped by their combination of labels and each group is dealt round-robin over
    the folds in a seeded random order, so every fold gets its share of each class (as far as a
    group's size allows) whatever the number of classes.
    """
    rng = np.random.default_rng(int(seed))
    keys = np.asarray(["".join(map(str, row)) for row in np.asarray(labels, np.int8)])
    folds: list[list[int]] = [[] for _ in range(k)]
    start = 0
    for key in sorted(set(keys)):
        rows = rng.permutation(np.flatnonzero(keys == key))
        for i, row in enumerate(rows):
            folds[(start + i) % k].append(int(row))
        start = (start + rows.size) % k
    return [np.sort(np.asarray(f, dtype=np.int64)) for f in folds]


def probe_cv(
    features: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    rows: np.ndarray,
    *,
    folds: int,
    repeats: int,
    seed: int,
    c_grid: Sequence[float],
    max_iter: int,
    min_positives: int = 1,
) -> dict[str, Any]:
    """Repeated stratified K-fold cross-validation of the probe over the labelled ``rows``.

    Per repeat and fold: the other folds are the training set, a fixed 20 % of them (the
    validation fallback) chooses C, and the fold is scored. Each record then has one out-of-fold
    score per repeat; their mean over repeats is scored once (macro AUROC, AUPRC, F1 at
    thresholds tuned on the out-of-fold scores themselves, which makes F1 optimistic) and
    bootstrapped over records for the interval. ``macro_auroc_repeat_std`` is the spread of the
    per-repeat macro AUROC (how much the fold assignment alone moves the figure).
    """
    rows = np.asarray(rows, dtype=np.int64)
    y = np.asarray(labels, np.int8)[rows]
    x = np.asarray(features)[rows]
    if rows.size < 2 * folds:
        raise ProbeSkipped(f"{rows.size} labelled records are too few for {folds}-fold cross-validation")
    oof = np.zeros((repeats, rows.size, y.shape[1]))
    per_repeat = []
    for r in range(repeats):
        for test in cv_folds(y, folds, seed * 1000 + r):
            train = np.setdiff1d(np.arange(rows.size), test)
            fit_rows, val_rows = validation_fallback(train)
            fitted, _ = select_probe(
                x[fit_rows], y[fit_rows], x[val_rows], y[val_rows], c_grid, max_iter, seed
            )
            oof[r, test] = fitted.scores(x[test])
        per_repeat.append(classification_scores(classes, y, oof[r], np.full(y.shape[1], 0.5), min_positives))
    mean_scores = oof.mean(axis=0)
    scores = classification_scores(classes, y, mean_scores, tune_thresholds(y, mean_scores), min_positives)
    low, high = bootstrap_macro_auroc(y, mean_scores, min_positives=min_positives, seed=seed)
    repeat_auroc = np.asarray([s.macro_auroc for s in per_repeat])
    return {
        "n_train": int(rows.size - rows.size // folds),
        "n_val": 0,
        "n_test": int(rows.size),
        "n_classes": len(classes),
        "best_c": float("nan"),
        "val_macro_auroc": float("nan"),
        **_score_fields(classes, scores, low, high),
        "macro_auroc_repeat_std": _round(float(np.nanstd(repeat_auroc))),
        "cv": f"{folds}x{repeats}",
        "test_scores": mean_scores,
        "subset": rows,
    }


def _score_fields(classes: list[str], scores, low: float, high: float) -> dict[str, Any]:
    """The metric columns of a result row: macro scores, the AUROC interval, per-class detail."""
    return {
        "macro_auroc": _round(scores.macro_auroc),
        "macro_auroc_ci_low": _round(low),
        "macro_auroc_ci_high": _round(high),
        "macro_auprc": _round(scores.macro_auprc),
        "macro_f1": _round(scores.macro_f1),
        "per_class_auroc": json.dumps(
            {
                name: (None if np.isnan(v) else round(float(v), 6))
                for name, v in zip(classes, scores.auroc, strict=True)
            }
        ),
        "excluded_classes": json.dumps(scores.excluded),
    }


def _round(value: float) -> float:
    return float("nan") if value is None or not np.isfinite(value) else round(float(value), 6)


def labelled_rows(data: PreparedData, task: str) -> np.ndarray:
    """Every record with labels for ``task`` (its train, val and test splits together), for --cv."""
    return np.sort(np.concatenate([data.split(s, task) for s in ("train", "val", "test")]))


def select_blocks(features: np.ndarray, emb: EmbeddingModel, blocks: Sequence[str]) -> np.ndarray:
    """The columns of the named embedding blocks (all columns when ``blocks`` is empty)."""
    if not blocks:
        return features
    if emb.model is None or not hasattr(emb.model, "embedding_layout"):
        raise LvcgError(f"--probe.blocks: the {emb.kind} baseline has no embedding blocks")
    layout = emb.model.embedding_layout()
    return np.concatenate([features[:, layout[name]] for name in blocks], axis=1)


def probe_splits(data: PreparedData, task: str) -> dict[str, np.ndarray]:
    """train / val / test row indices of a task; a missing validation split is carved from train."""
    train, val, test = (data.split(s, task) for s in ("train", "val", "test"))
    if test.size == 0:
        raise ProbeSkipped(f"{data.name}: task {task!r} has no test split")
    if train.size < 2:
        raise ProbeSkipped(f"{data.name}: task {task!r} has too few training records ({train.size})")
    if val.size == 0:
        train, val = validation_fallback(train)
    return {"train": train, "val": val, "test": test}


def select_classes(
    classes: list[str], labels: np.ndarray, wanted: Sequence[str] | None
) -> tuple[list[str], np.ndarray]:
    """Restrict a task to some classes (the paper probes 4 of Chapman's); unknown names are skipped."""
    if not wanted:
        return classes, labels
    keep = [i for i, name in enumerate(classes) if name in set(wanted)]
    if not keep:
        raise ProbeSkipped(f"none of the classes {', '.join(wanted)} is in this task ({', '.join(classes)})")
    return [classes[i] for i in keep], labels[:, keep]


# --------------------------------------------------------------------------------------------
# running a table of probes
# --------------------------------------------------------------------------------------------
@dataclass
class ProbeReport:
    """Every row run (one per seed), the per-(data set, task, model) summaries, and what was skipped."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    summaries: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)


class ProbeRunner:
    """Runs probes for data set/task entries x embedding models x seeds, appending each row to a CSV.

    Models and opened data sets are kept between entries, so ``--all --baselines`` loads the
    checkpoint once and embeds each data set once per model.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        checkpoint: str | Path | None = None,
        device: str = "cpu",
        csv_path: str | Path | None = None,
        cache_root: Path | None = None,
        on_progress: Callable[[str, int, int], None] | None = None,
        on_info: Callable[[str], None] | None = None,
    ):
        from lvcg_cli import paths

        self.settings = settings
        self.checkpoint = checkpoint
        self.device = device
        self.csv_path = Path(csv_path) if csv_path is not None else None
        self.cache_root = (
            paths.cache_dir(settings.paths.cache_dir) if cache_root is None else Path(cache_root)
        )
        self.on_progress = on_progress
        self.on_info = on_info or (lambda message: None)
        self._models: dict[tuple[str, int], EmbeddingModel] = {}

    def model(self, kind: str, seed: int) -> EmbeddingModel:
        key = (kind, seed if kind == "random-init" else 0)
        if key not in self._models:
            self._models[key] = embedding_model(kind, self.checkpoint, self.settings, seed, self.device)
        return self._models[key]

    def run(
        self,
        entries: Sequence[ProbeEntry],
        models: Sequence[str],
        *,
        ratio: float,
        seeds: Sequence[int],
        strict: bool = False,
    ) -> ProbeReport:
        """Probe every entry with every model and seed; ``strict`` re-raises a skipped entry."""
        from lvcg_cli.signals.leads import parse_leads, visible_mask

        report = ProbeReport()
        probe = self.settings.probe
        visible = None if probe.visible is None else visible_mask(parse_leads(probe.visible))
        if probe.cv_folds and ratio < 1:
            raise LvcgError("--cv uses every labelled record; it cannot be combined with --ratio below 1")
        for entry in entries:
            for kind in models:
                try:
                    rows = [self.probe_one(entry, kind, seed, ratio, visible) for seed in seeds]
                except ProbeSkipped as exc:
                    if strict:
                        raise
                    report.skipped.append(
                        {"dataset": entry.dataset, "task": entry.task, "model": kind, "reason": str(exc)}
                    )
                    break  # the data set is missing for every model alike
                report.rows.extend(rows)
                if rows:
                    summary = {
                        "dataset": entry.dataset,
                        "task": rows[0]["task"],
                        "model": kind,
                        "ratio": ratio,
                    }
                    report.summaries.append({**summary, **summarise(rows)})
        return report

    def probe_one(
        self, entry: ProbeEntry, kind: str, seed: int, ratio: float, visible: np.ndarray | None
    ) -> dict[str, Any]:
        """One result row: embed (or read the cache), fit and score; appended to the CSV if there is one."""
        probe = self.settings.probe
        emb = self.model(kind, seed)
        data = open_probe_data(entry.dataset, emb.settings)
        try:
            task = data.resolve_task(entry.task)
        except NoSuchTaskError as exc:
            raise ProbeSkipped(str(exc)) from None
        classes, labels = select_classes(*data.labels(task), entry.classes)
        label = f"{entry.dataset}/{task} {kind}"

        def tick(n: int) -> None:
            if self.on_progress is not None:
                self.on_progress(label, n, len(data))

        features, hit = cached_embeddings(
            emb, data, self.cache_root, self.device, probe.batch_size, tick, visible
        )
        if hit:
            self.on_info(f"{label}: embeddings from the cache ({features.shape[0]} x {features.shape[1]})")
        features = select_blocks(features, emb, probe.blocks)
        fit_args = {
            "seed": seed,
            "c_grid": probe.c_grid,
            "max_iter": probe.max_iter,
            "min_positives": probe.min_positives,
        }
        if probe.cv_folds:
            metrics = probe_cv(
                features,
                labels,
                classes,
                labelled_rows(data, task),
                folds=probe.cv_folds,
                repeats=probe.cv_repeats,
                **fit_args,
            )
        else:
            metrics = probe_once(features, labels, classes, probe_splits(data, task), ratio=ratio, **fit_args)
        metrics.pop("subset")
        metrics.pop("test_scores")
        row = result_row(
            dataset=entry.dataset,
            task=task,
            model=kind,
            checkpoint=emb.checkpoint,
            checkpoint_sha256=emb.checkpoint_sha256,
            ratio=ratio,
            seed=seed,
            metrics=metrics,
            embedding_dim=features.shape[1],
            blocks=probe.blocks,
            visible=probe.visible,
        )
        if self.csv_path is not None:
            append_result(self.csv_path, row)
        return row


def open_probe_data(dataset: str, settings: Settings) -> PreparedData:
    """The prepared data set of a probe; :class:`ProbeSkipped` with the prepare command if it is not there."""
    try:
        return open_prepared_data(dataset, settings)
    except NotPreparedError:
        raise ProbeSkipped(f"{dataset}: not prepared yet (run `{prepare_hint(dataset)}`)") from None

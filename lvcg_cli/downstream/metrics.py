"""Scores shared by reconstruction and probing, each a whole-array numpy / scikit-learn call.

Reconstruction is scored per lead with Pearson r (shape agreement, blind to gain), RMSE in mV
(which is not) and the peak-to-peak ratio (reconstructed over original amplitude: 1 is right,
0.5 a lead drawn at half its size however well its shape correlates). Probing is scored the way the ECG representation-learning literature reports it
(PTB-XL benchmark, ST-MEM, MERL/MELP): macro AUROC over classes, plus macro AUPRC and macro F1
with one threshold per class chosen on the validation split. A class that has no positives or
no negatives in the scored split has no AUROC; it is left out of the macro average and listed,
never silently counted as 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


# --------------------------------------------------------------------------------------------
# reconstruction
# --------------------------------------------------------------------------------------------
def pearson_r(pred: np.ndarray, ref: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson correlation along ``axis`` (vectorised over the other axes); NaN where either is constant."""
    pred = np.asarray(pred, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    a = pred - pred.mean(axis=axis, keepdims=True)
    b = ref - ref.mean(axis=axis, keepdims=True)
    num = (a * b).sum(axis=axis)
    den = np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    return np.where(den > 1e-12, r, np.nan)


def rmse(pred: np.ndarray, ref: np.ndarray, axis: int = -1) -> np.ndarray:
    """Root-mean-square error along ``axis`` (same unit as the inputs: mV)."""
    diff = np.asarray(pred, dtype=np.float64) - np.asarray(ref, dtype=np.float64)
    return np.sqrt((diff * diff).mean(axis=axis))


def ptp_ratio(pred: np.ndarray, ref: np.ndarray, axis: int = -1, floor_mv: float = 1e-3) -> np.ndarray:
    """Peak-to-peak amplitude of ``pred`` over that of ``ref`` along ``axis``.

    NaN where the reference is flat (peak-to-peak below ``floor_mv``): no amplitude to compare.
    """
    a = np.ptp(np.asarray(pred, dtype=np.float64), axis=axis)
    b = np.ptp(np.asarray(ref, dtype=np.float64), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = a / b
    return np.where(b >= floor_mv, ratio, np.nan)


# --------------------------------------------------------------------------------------------
# probing
# --------------------------------------------------------------------------------------------
def scorable_classes(y: np.ndarray, min_positives: int = 1) -> np.ndarray:
    """(C,) bool: the classes with at least ``min_positives`` positives and one negative in ``y`` (N, C).

    Why a minimum: an AUROC on one or two positives swings between 0 and 1 with a single record
    (LUDB's right axis deviation has one test positive), and one such class can move a macro
    average more than every real difference between models.
    """
    y = np.asarray(y)
    pos = y.sum(axis=0)
    return (pos >= max(int(min_positives), 1)) & (pos < y.shape[0])


def per_class_auroc(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(C,) AUROC per class; NaN for classes without positives or negatives."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y)
    ok = scorable_classes(y)
    out = np.full(y.shape[1], np.nan)
    for c in np.flatnonzero(ok):  # C is small (<= ~40); each call is vectorised over records
        out[c] = roc_auc_score(y[:, c], scores[:, c])
    return out


def per_class_auprc(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(C,) average precision per class; NaN for classes without positives or negatives."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(y)
    ok = scorable_classes(y)
    out = np.full(y.shape[1], np.nan)
    for c in np.flatnonzero(ok):
        out[c] = average_precision_score(y[:, c], scores[:, c])
    return out


def tune_thresholds(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """(C,) threshold per class that maximises F1 on (validation) data.

    Every distinct score is a candidate (through the precision-recall curve). A class without
    positives gets 0.5, the neutral cut of a probability.
    """
    from sklearn.metrics import precision_recall_curve

    y = np.asarray(y)
    thresholds = np.full(y.shape[1], 0.5)
    for c in range(y.shape[1]):
        if y[:, c].sum() == 0:
            continue
        precision, recall, cuts = precision_recall_curve(y[:, c], scores[:, c])
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        thresholds[c] = cuts[int(np.argmax(f1[:-1]))]
    return thresholds


def per_class_f1(y: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """(C,) F1 at the given thresholds (``score >= threshold`` is positive); NaN where undefined."""
    y = np.asarray(y).astype(bool)
    pred = np.asarray(scores) >= np.asarray(thresholds)[None, :]
    tp = (pred & y).sum(axis=0)
    fp = (pred & ~y).sum(axis=0)
    fn = (~pred & y).sum(axis=0)
    den = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, 2 * tp / np.maximum(den, 1), np.nan)


@dataclass
class ClassificationScores:
    """Test scores of one probe: macro values over the scorable classes, per-class detail."""

    classes: list[str]
    auroc: np.ndarray
    auprc: np.ndarray
    f1: np.ndarray
    excluded: list[str] = field(default_factory=list)

    @property
    def macro_auroc(self) -> float:
        return _nanmean(self.auroc)

    @property
    def macro_auprc(self) -> float:
        return _nanmean(self.auprc)

    @property
    def macro_f1(self) -> float:
        ok = ~np.isnan(self.auroc)  # the same classes as the AUROC average
        return _nanmean(np.where(ok, self.f1, np.nan))


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def classification_scores(
    classes: list[str],
    y_test: np.ndarray,
    test_scores: np.ndarray,
    thresholds: np.ndarray,
    min_positives: int = 1,
) -> ClassificationScores:
    """Every probe metric on the test split, with F1 at thresholds tuned beforehand on validation.

    Classes with fewer than ``min_positives`` test positives (or no negative) get NaN and are
    listed in ``excluded`` as ``"<class> (<n> positives)"``.
    """
    y_test = np.asarray(y_test)
    keep = scorable_classes(y_test, min_positives)
    auroc = np.where(keep, per_class_auroc(y_test, test_scores), np.nan)
    auprc = np.where(keep, per_class_auprc(y_test, test_scores), np.nan)
    f1 = per_class_f1(y_test, test_scores, thresholds)
    positives = y_test.sum(axis=0)
    excluded = [
        f"{name} ({int(n)} positives of {y_test.shape[0]})"
        for name, ok, n in zip(classes, keep, positives, strict=True)
        if not ok
    ]
    return ClassificationScores(list(classes), auroc, auprc, f1, excluded)


# --------------------------------------------------------------------------------------------
# intervals
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval (``level``, e.g. 0.95)."""

    value: float
    low: float
    high: float
    level: float = 0.95

    def __format__(self, spec: str) -> str:
        """``f"{x}"`` -> ``0.881 [0.870, 0.890]``; ``f"{x:+}"`` signs every number (for gains)."""
        sign = "+" if spec == "+" else ""
        return f"{self.value:{sign}.3f} [{self.low:{sign}.3f}, {self.high:{sign}.3f}]"

    def __str__(self) -> str:
        return format(self, "")


def bootstrap_mean(values: np.ndarray, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """Mean of ``values`` (NaN ignored) with a percentile bootstrap interval over its elements.

    For a paired comparison pass the per-item differences ``a - b`` (same items, same order):
    resampling the differences keeps the pairing, so the interval is that of the mean gain.
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"), level)
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Interval(float(x.mean()), float(low), float(high), level)


def _resampled_macro_auroc(
    y: np.ndarray, scores: np.ndarray, idx: np.ndarray, keep: np.ndarray
) -> np.ndarray:
    """Macro AUROC over the classes ``keep`` for each resample (row of ``idx``): (n_boot,), NaN if none.

    AUROC from ranks (Mann-Whitney U, ties averaged), vectorised over the resamples; a class with
    no positive or no negative in a resample is left out of that resample's mean.
    """
    import warnings

    from scipy.stats import rankdata

    per_class = np.full((idx.shape[0], keep.size), np.nan)
    for j, c in enumerate(keep):
        yy, ss = y[idx, c], scores[idx, c]  # (n_boot, N)
        ranks = rankdata(ss, axis=1)
        n_pos = yy.sum(axis=1)
        n_neg = yy.shape[1] - n_pos
        u = (ranks * yy).sum(axis=1) - n_pos * (n_pos + 1) / 2.0
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class[:, j] = np.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg), np.nan)
    with warnings.catch_warnings():  # a resample without any scorable class gives NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(per_class, axis=1)


def bootstrap_macro_auroc(
    y: np.ndarray,
    scores: np.ndarray,
    *,
    min_positives: int = 1,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    baseline: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile interval of the macro AUROC over bootstrap resamples of the records.

    The classes are those :func:`scorable_classes` keeps on the full set. With ``baseline``
    (another model's scores on the same records), the interval is that of the *gain*
    ``macro(scores) - macro(baseline)``, both computed on the same resamples (paired).
    """
    y = np.asarray(y).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    keep = np.flatnonzero(scorable_classes(y, min_positives))
    if keep.size == 0:
        return float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, y.shape[0], size=(n_boot, y.shape[0]))
    macro = _resampled_macro_auroc(y, scores, idx, keep)
    if baseline is not None:
        macro = macro - _resampled_macro_auroc(y, np.asarray(baseline, np.float64), idx, keep)
    macro = macro[np.isfinite(macro)]
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(macro, [alpha, 1.0 - alpha])
    return float(low), float(high)

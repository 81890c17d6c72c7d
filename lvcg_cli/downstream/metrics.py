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
def scorable_classes(y: np.ndarray) -> np.ndarray:
    """(C,) bool: the classes that have both positives and negatives in ``y`` (N, C)."""
    y = np.asarray(y)
    pos = y.sum(axis=0)
    return (pos > 0) & (pos < y.shape[0])


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
    classes: list[str], y_test: np.ndarray, test_scores: np.ndarray, thresholds: np.ndarray
) -> ClassificationScores:
    """Every probe metric on the test split, with F1 at thresholds tuned beforehand on validation."""
    auroc = per_class_auroc(y_test, test_scores)
    auprc = per_class_auprc(y_test, test_scores)
    f1 = per_class_f1(y_test, test_scores, thresholds)
    excluded = [name for name, ok in zip(classes, scorable_classes(y_test), strict=True) if not ok]
    return ClassificationScores(list(classes), auroc, auprc, f1, excluded)

"""Which data sets ``lvcg prepare-data`` knows, where their roots come from, and shared split rules.

Each data set module (``ptbxl``, ``mimic`` ...) provides ``NAME``, ``ROOT_SETTING`` (the
``--prepare.<x>_root`` field), ``EXPECTED`` (the layout in words, for error messages),
``check_layout(root, settings)`` (fast: a wrong root fails in seconds) and
``build_plan(root, settings) -> Plan`` (every record with its labels and split, before any
signal is read), and optionally ``PLAN_SETTINGS`` (the ``--prepare.<x>`` fields the plan reads;
a finished cache prepared with other values is not reused).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import io
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lvcg_cli.errors import DataLayoutError, LvcgError

if TYPE_CHECKING:
    from lvcg_cli.settings import Settings

DATASETS: dict[str, str] = {
    "mimic": "mimic",
    "ptbxl": "ptbxl",
    "cpsc2018": "cpsc2018",
    "chapman": "chapman",
    "ai-readi": "ai_readi",
    "ludb": "ludb",
    "folder": "folder",
}
"""prepare-data NAME -> module in :mod:`lvcg_cli.datasets`."""

SPLITS = ("train", "val", "test")


@dataclass
class Plan:
    """Every record of a release, with labels and splits, before any signal is read.

    ``records`` has one row per record: ``id``, ``path`` (what ``read_record`` opens), ``source``
    (the path relative to the root, shown in the manifest), ``split``, optional ``split:<task>``
    columns, one int8 column ``<task>:<class>`` per class, and any extra text columns (subject ids).
    """

    dataset: str
    root: Path
    records: pd.DataFrame
    tasks: dict[str, list[str]] = field(default_factory=dict)
    default_task: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        frame = self.records.reset_index(drop=True)
        for column in ("id", "path", "source"):
            if column not in frame:
                raise ValueError(f"plan for {self.dataset} lacks column {column!r}")
        if "split" not in frame:
            frame["split"] = ""
        for task, classes in self.tasks.items():
            for name in classes:
                column = f"{task}:{name}"
                frame[column] = frame[column].fillna(0).astype(np.int8) if column in frame else np.int8(0)
        self.records = frame


def module_for(name: str) -> ModuleType:
    """The module of a data set name, or a one-line error listing the names."""
    key = name.strip().lower().replace("_", "-")
    if key not in DATASETS:
        import difflib

        close = difflib.get_close_matches(key, list(DATASETS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise LvcgError(f"unknown data set {name!r}{hint}; choose from {', '.join(DATASETS)}")
    return importlib.import_module(f"lvcg_cli.datasets.{DATASETS[key]}")


def resolve_root(name: str, root: str | Path | None, settings: Settings) -> Path:
    """``--root`` if given, else ``--prepare.<name>_root`` (env, YAML), else a how-to-set error."""
    module = module_for(name)
    key = module.ROOT_SETTING
    if root is None:
        root = getattr(settings.prepare, key)
    if root is None:
        env = f"LVCG_PREPARE__{key.upper()}"
        raise LvcgError(
            f"{module.NAME}: no data root given; pass --root PATH, or set --prepare.{key} PATH, "
            f"the environment variable {env}=PATH, or 'prepare: {{{key}: PATH}}' in a --config YAML "
            f"(expected {module.EXPECTED})"
        )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataLayoutError(f"{module.NAME}: {path} is not a folder (expected {module.EXPECTED})")
    return path


def require(root: Path, name: str, relative: str, expected: str) -> Path:
    """``root/relative`` must exist, else a layout error saying what was expected where."""
    path = root / relative
    if not path.exists():
        raise DataLayoutError(f"{name}: {root} has no {relative} (expected {expected})")
    return path


# ------------------------------------------------------------------------------------------
# splits
# ------------------------------------------------------------------------------------------
def open_record_split(source: str, ident: str | int, strat_fold: int | None = None) -> str:
    """The fixed patient-disjoint split of the bundled open records: ``'train'`` or ``'test'``.

    PTB-XL: ``strat_fold`` 1-8 train, 9-10 held out (strat_fold never splits a patient).
    LUDB (one record per subject): record id % 5 != 0 train, id % 5 == 0 held out.
    ``scripts/build_open_records.py`` keeps the train part; the reconstruction benchmark scores
    on the held-out part, so both must call this function.
    """
    if source == "ptbxl":
        if strat_fold is None:
            raise ValueError("PTB-XL records need their strat_fold")
        return "train" if 1 <= int(strat_fold) <= 8 else "test"
    if source == "ludb":
        digits = re.findall(r"\d+", str(ident))  # 7, "7", "ludb-007", "data/7"
        if not digits:
            raise ValueError(f"LUDB record id without a number: {ident!r}")
        return "train" if int(digits[-1]) % 5 != 0 else "test"
    raise ValueError(f"no open-record split rule for source {source!r}")


def open_corpus_split(source: str, strat_fold: int | None = None) -> str:
    """The split of the open corpus the bundled weights are trained and benchmarked on.

    ``'train'`` (pretraining and the regression/copy baselines), ``'val'`` (design choices and
    early stopping) or ``'test'`` (the figures in docs/BENCHMARKS.md, looked at once):

    * PTB-XL (``shared/data/ptbxl``, 100-Hz files): strat_fold 1-8 train, 9 val, 10 test (the
      folds never split a patient, and the MELP probing splits use the same folds);
    * LUDB: all 133 records test. They are never pretrained on, so LUDB is an external set for
      reconstruction and for the axis probe, whose small size needs cross-validation over all
      of its records;
    * CinC 2021 samples and the CPSC 2018 originals: train.
    """
    if source == "ptbxl":
        if strat_fold is None:
            raise ValueError("PTB-XL records need their strat_fold")
        return "train" if 1 <= int(strat_fold) <= 8 else "val" if int(strat_fold) == 9 else "test"
    if source == "ludb":
        return "test"
    if source in {"cinc2021", "cpsc2018"}:
        return "train"
    raise ValueError(f"no open-corpus split rule for source {source!r}")


def hashed_split(
    keys: pd.Series, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), salt: str = "lvcg"
) -> pd.Series:
    """Deterministic train/val/test by a hash of each key (a patient id): every record of a key lands together.

    Independent of record order and of which other keys exist, so adding subjects never moves
    existing ones.
    """
    train, val, _ = fractions
    values = []
    for key in keys.astype(str):
        digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        values.append("train" if u < train else "val" if u < train + val else "test")
    return pd.Series(values, index=keys.index, dtype=object)


def bundled_split_csv(relative: str) -> pd.DataFrame:
    """A bundled MELP/MERL split table (``lvcg_cli/assets/splits/<relative>.csv.gz``)."""
    path = resources.files("lvcg_cli") / "assets" / "splits" / f"{relative}.csv.gz"
    if not path.is_file():
        raise LvcgError(f"bundled split file {relative}.csv.gz is missing from the installation")
    with gzip.open(io.BytesIO(path.read_bytes()), "rt") as handle:
        return pd.read_csv(handle, skip_blank_lines=True)


def split_from_tables(keys: pd.Series, tables: dict[str, pd.Series]) -> pd.Series:
    """Map each key to the split whose table lists it ('' when none does)."""
    out = pd.Series("", index=keys.index, dtype=object)
    for split, listed in tables.items():
        out[keys.isin(set(listed))] = split
    return out


def one_hot(lists: pd.Series, classes: list[str], task: str) -> pd.DataFrame:
    """Label lists per record -> int8 columns ``<task>:<class>`` (classes outside the list are ignored)."""
    matrix = np.zeros((len(lists), len(classes)), dtype=np.int8)
    position = {name: i for i, name in enumerate(classes)}
    for row, labels in enumerate(lists):
        for label in labels:
            j = position.get(label)
            if j is not None:
                matrix[row, j] = 1
    return pd.DataFrame(matrix, index=lists.index, columns=[f"{task}:{c}" for c in classes])


def record_path_without_suffix(path: str | Path) -> str:
    """``.../x.hea`` -> ``.../x`` (the ``ecg_path`` form of the original LVCG manifest)."""
    path = Path(path)
    return str(path.with_suffix("")) if path.suffix.lower() in {".hea", ".mat", ".dat"} else str(path)

"""Every tunable of lvcg as validated pydantic models, and how they are resolved.

Sources, lowest to highest precedence::

    defaults  <  --preset NAME (bundled YAML)  <  --config FILE ...  <  LVCG_<SECTION>__<KEY>  <  --section.key VALUE

Every model forbids unknown keys, so a typo fails loudly (exit code 2) with the closest valid
key, and every value error is reported in command-line terms (``--data.fs: must be > 0 (got -5)``).
The resolved settings are written next to each run's outputs (``config.yaml``) so that a run can
be repeated exactly.

Owners: each section below belongs to one part of the code base; add fields to your own
section only and document each one (the description is shown by ``lvcg config show``).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import typing
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, PrivateAttr, ValidationError, field_validator, model_validator

from lvcg_cli.errors import SettingsError
from lvcg_cli.model.config import ConfigModel, LossWeights, ModelSettings

ENV_PREFIX = "LVCG_"
ENV_NESTED_DELIMITER = "__"
KNOWN_ENV = (
    "LVCG_HOME",
    "LVCG_CACHE_DIR",
    "LVCG_DEBUG",
    "LVCG_NO_PROGRESS",
    "LVCG_SHARED_DATA",
    "LVCG_MAX_RECORD_MB",
)
"""``LVCG_*`` variables that are not settings but are read elsewhere (paths, console, tests, signals)."""
MAX_SETTINGS_BYTES = 1 << 20
"""A settings file is a few kB; anything over a MiB is not one."""


class StrictModel(ConfigModel):
    """Base for every settings section: unknown keys are errors, assignments are validated,
    non-finite numbers are refused (``train.lr: .inf`` or ``--data.fs nan`` is a typo, never a setting)."""


def _is_sequence_annotation(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple, Sequence):
        return True
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_is_sequence_annotation(arg) for arg in typing.get_args(annotation))
    return False


MAX_WINDOW_SAMPLES = 1 << 22
"""Most samples in one model window (70 min at 1 kHz): a bound checked before anything is allocated."""


# --------------------------------------------------------------------------------------------
# data: how records become model inputs (owner: signals/ and datasets/)
# --------------------------------------------------------------------------------------------
class DataSettings(StrictModel):
    """Preprocessing and the data a command reads."""

    fs: float = Field(
        100.0, gt=0, le=20000, description="Model sampling rate in Hz; records are resampled to it."
    )
    window_s: float = Field(10.0, gt=0, description="Fixed window length in seconds fed to the model.")
    window_policy: Literal["start", "center", "random"] = Field(
        "start", description="Where to crop records longer than the window."
    )
    pad_policy: Literal["zero", "edge"] = Field(
        "zero", description="How to pad records shorter than the window."
    )
    max_nan_gap_s: float = Field(
        0.5,
        ge=0,
        description="Longest NaN/inf gap (s) bridged by linear interpolation; a lead with a longer gap becomes absent.",
    )
    bandpass: tuple[float, float] = Field(
        (0.67, 40.0), description="Zero-phase Butterworth band-pass corners in Hz (low, high)."
    )
    filter_order: int = Field(2, ge=1, le=8, description="Butterworth order (applied forward and backward).")
    normalize: Literal["zscore", "none"] = Field(
        "zscore", description="Amplitude normalisation of model inputs."
    )
    normalize_scope: Literal["record", "lead"] = Field(
        "record",
        description=(
            "z-score with one scale per record (keeps the linear relations between leads that the "
            "geometry layer relies on) or one per lead (breaks them; for comparison only)."
        ),
    )
    datasets: list[str] = Field(
        default_factory=lambda: ["default"],
        description="Prepared data sets (names or cache paths) to read; 'default' is the built-in data.",
    )
    meta_root: Path | None = Field(
        None, description="An original-LVCG manifest (JSONL with id and ecg_path) to train on instead."
    )
    sim_records: int = Field(
        512, ge=8, description="Simulated records in the built-in default data (beside the open records)."
    )
    val_fraction: float = Field(0.05, gt=0, lt=1, description="Held-out fraction for validation loss.")
    num_workers: Annotated[int, Field(ge=0)] | Literal["auto"] = Field(
        "auto",
        description=(
            "DataLoader worker processes preparing samples beside training (0: in the training process). "
            "auto: on a GPU min(8, CPUs per process - 1), on the CPU 1 (the model's threads need the cores)."
        ),
    )

    @field_validator("bandpass")
    @classmethod
    def _check_band(cls, band: tuple[float, float]) -> tuple[float, float]:
        low, high = band
        if not 0 <= low < high:
            raise ValueError(f"must satisfy 0 <= low < high (got {low}, {high})")
        return band

    @model_validator(mode="after")
    def _bounded_window(self) -> DataSettings:
        """Every batch, cache row and model call is sized by the window: bound it before anything is."""
        if self.n_samples > MAX_WINDOW_SAMPLES:
            raise ValueError(
                f"data.fs x data.window_s = {self.n_samples} samples per window; at most {MAX_WINDOW_SAMPLES}"
            )
        return self

    @property
    def n_samples(self) -> int:
        """Samples per model window (``fs * window_s``)."""
        return int(round(self.fs * self.window_s))


CACHE_KEYS = ("fs", "window_s", "window_policy", "pad_policy", "max_nan_gap_s", "bandpass", "filter_order")
"""DataSettings fields that change what a prepared cache holds (a cache built otherwise is stale)."""
MODEL_INPUT_KEYS = (*CACHE_KEYS, "normalize", "normalize_scope")
"""DataSettings fields that change what a model sees (a checkpoint only fits runs that agree on them)."""


# --------------------------------------------------------------------------------------------
# prepare: dataset roots and the prepare-data job (owner: datasets/)
# --------------------------------------------------------------------------------------------
class PrepareSettings(StrictModel):
    """Where users' raw releases live and how ``lvcg prepare-data`` runs."""

    mimic_root: Path | None = Field(
        None, description="MIMIC-IV-ECG release root (holds files/ and record_list.csv)."
    )
    ptbxl_root: Path | None = Field(None, description="PTB-XL 1.0.3 root (holds ptbxl_database.csv).")
    cpsc2018_root: Path | None = Field(
        None, description="CPSC 2018 root (TrainingSet1-3 + REFERENCE.csv, or WFDB copy)."
    )
    chapman_root: Path | None = Field(None, description="Chapman-Shaoxing-Ningbo root (holds WFDBRecords/).")
    ai_readi_root: Path | None = Field(None, description="AI-READI root (holds cardiac_ecg/).")
    ludb_root: Path | None = Field(None, description="LUDB 1.0.1 root (holds data/ and ludb.csv).")
    folder_root: Path | None = Field(None, description="Any folder of records (unlabelled).")
    workers: int = Field(0, ge=0, description="Worker processes; 0 means one per CPU core.")
    chunk_size: int = Field(256, ge=1, description="Records per work unit and per resumable cache chunk.")
    ptbxl_rate: Literal[100, 500] = Field(
        500, description="Which PTB-XL folder to read (records100/records500)."
    )
    split: Literal["melp", "strat_fold"] = Field(
        "melp", description="Probing partitions: the MELP/MERL splits, or PTB-XL's strat_fold (1-8/9/10)."
    )

    @field_validator("ptbxl_rate", mode="before")
    @classmethod
    def _rate_from_text(cls, value: Any) -> Any:
        """``--prepare.ptbxl_rate 100`` and env values arrive as text; the Literal wants an int."""
        return int(value) if isinstance(value, str) and value.strip().isdigit() else value


# --------------------------------------------------------------------------------------------
# model: architecture (owner: model/; the model package's own configuration, lvcg_cli/model/config.py)
# train.loss: LossWeights, also from there
# --------------------------------------------------------------------------------------------
class TrainSettings(StrictModel):
    """Pretraining loop."""

    max_steps: int = Field(
        500, ge=1, description="Optimiser steps (the default run takes a few minutes on a laptop CPU)."
    )
    batch_size: int = Field(16, ge=1, description="Samples per step per device.")
    lr: float = Field(2e-3, gt=0, description="Peak learning rate (AdamW).")
    min_lr_ratio: float = Field(
        0.05, ge=0, le=1, description="Final learning rate as a fraction of the peak."
    )
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup_steps: int = Field(25, ge=0, description="Linear warm-up steps before cosine decay.")
    grad_clip: float = Field(1.0, ge=0, description="Gradient norm clip (0 disables).")
    visible: Literal["mixed", "random"] = Field(
        "mixed",
        description=(
            "Visible-lead distribution: 'mixed' shows one of visible_sets to a visible_fraction of the "
            "samples and a random subset to the rest; 'random' always draws a random subset."
        ),
    )
    visible_sets: list[str] = Field(
        default_factory=lambda: ["I", "I,II", "I,II,V2", "II,V2,V5", "I,II,V1,V4", "all"],
        description="Lead sets users ask about, shown to visible_fraction of the samples ('all': every lead).",
    )
    visible_fraction: float = Field(
        0.5, ge=0, le=1, description="Share of samples that see one of visible_sets ('mixed' only)."
    )
    visible_min: int = Field(1, ge=1, le=12, description="Fewest leads of a random subset.")
    visible_max: int = Field(
        12, ge=1, le=12, description="Most leads of a random subset (one present lead always stays hidden)."
    )
    loss: LossWeights = Field(default_factory=LossWeights)
    log_every: int = Field(10, ge=1, description="Steps between metric lines.")
    val_every: int = Field(50, ge=1, description="Steps between validation passes.")
    ckpt_every: int = Field(100, ge=1, description="Steps between periodic checkpoints.")
    compile: bool = Field(False, description="Wrap the model in torch.compile.")
    val_records: int = Field(256, ge=1, description="Most held-out records scored at each validation pass.")
    keep_checkpoints: int = Field(
        2, ge=1, description="Periodic checkpoints (ckpt-<step>.pt) kept in a run folder."
    )

    @field_validator("visible_sets")
    @classmethod
    def _lead_sets(cls, sets: list[str]) -> list[str]:
        from lvcg_cli.errors import LvcgError
        from lvcg_cli.signals.leads import parse_leads

        for spec in sets:
            try:
                parse_leads(spec)
            except LvcgError as exc:
                raise ValueError(
                    f"{spec!r}: {exc} (give sets as a YAML list, e.g. '[\"I,II\", all]')"
                ) from None
        return sets

    @model_validator(mode="after")
    def _visible_range(self) -> TrainSettings:
        if self.visible_min > self.visible_max:
            raise ValueError(
                f"train.visible_min ({self.visible_min}) must be <= train.visible_max ({self.visible_max})"
            )
        return self


# --------------------------------------------------------------------------------------------
# engine: device, precision, seeds, processes (owner: engine/)
# --------------------------------------------------------------------------------------------
class EngineSettings(StrictModel):
    """Where and how computation runs."""

    device: str = Field(
        "auto", description="auto | cpu | cuda | cuda:N | mps (auto: CUDA, then MPS, then CPU)."
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto = bf16 autocast on CUDA when supported, else fp32."
    )
    seed: int = Field(0, ge=0, description="Base random seed (each rank adds its rank).")
    accelerator: Literal["auto", "cpu", "cuda", "mps"] = Field(
        "auto", description="Device family for --devices."
    )
    devices: int = Field(1, ge=1, description="Processes (one per device) for distributed pretraining.")

    @field_validator("device")
    @classmethod
    def _device_spec(cls, spec: str) -> str:
        spec = spec.strip().lower()
        family, _, index = spec.partition(":")
        if family not in {"auto", "cpu", "cuda", "mps"} or (
            index and (family != "cuda" or not index.isdigit())
        ):
            raise ValueError(f"must be auto, cpu, cuda, cuda:N or mps (got {spec!r})")
        return spec


# --------------------------------------------------------------------------------------------
# probe: linear probing protocol (owner: downstream/probe.py)
# --------------------------------------------------------------------------------------------
class ProbeSettings(StrictModel):
    """Linear probing of frozen embeddings."""

    dataset: str = Field(
        "sim", description="Data set to probe (sim, ptbxl, cpsc2018, chapman, ai-readi, ludb)."
    )
    task: str = Field("default", description="Task within the data set (ptbxl: super, sub, form, rhythm).")
    ratio: float = Field(1.0, gt=0, le=1, description="Fraction of the training split with labels.")
    seeds: list[int] = Field(
        default_factory=lambda: [42], description="Seeds for the label subset; several give mean +/- std."
    )
    model: Literal["lvcg", "random-init", "features"] = Field("lvcg", description="Embedding to probe.")
    c_grid: list[float] = Field(
        default_factory=lambda: [0.001, 0.01, 0.1, 1.0, 10.0],
        description="Inverse L2 strengths tried on validation.",
    )
    max_iter: int = Field(1000, ge=10, description="Solver iterations of each logistic regression.")
    batch_size: int = Field(
        64, ge=1, description="Windows per model call when computing the frozen embeddings."
    )
    min_positives: int = Field(
        5,
        ge=1,
        description="Classes with fewer test positives are left out of the macro scores (and listed).",
    )
    cv_folds: int = Field(
        0,
        ge=0,
        description=(
            "0: the data set's train/val/test splits. K >= 2: repeated stratified K-fold cross-validation "
            "over every labelled record, with a bootstrap interval (for small data sets)."
        ),
    )
    cv_repeats: int = Field(5, ge=1, description="Repetitions of the K-fold split (--cv only).")
    blocks: list[Literal["morphology", "dynamics", "rhythm", "vcg"]] = Field(
        default_factory=list,
        description="Embedding blocks to probe (morphology, dynamics, rhythm, vcg); empty: all.",
    )
    visible: str | None = Field(
        None,
        description="Leads the model sees when embedding, e.g. I,II,V2 (default: every lead a record has).",
    )

    @field_validator("cv_folds")
    @classmethod
    def _folds(cls, k: int) -> int:
        if k == 1:
            raise ValueError("must be 0 (use the splits) or >= 2")
        return k


# --------------------------------------------------------------------------------------------
# paths and run
# --------------------------------------------------------------------------------------------
class PathSettings(StrictModel):
    """Overrides of the platformdirs locations (see lvcg_cli/paths.py)."""

    home: Path | None = Field(
        None, description="User data folder (weights); default: platformdirs or LVCG_HOME."
    )
    cache_dir: Path | None = Field(
        None, description="Prepared-data cache; default: platformdirs or LVCG_CACHE_DIR."
    )


class RunSettings(StrictModel):
    """Where a run writes."""

    run_id: str | None = Field(None, description="Run folder name; default: a timestamp.")
    out: Path | None = Field(None, description="Output folder; default: ./runs/<run_id>.")
    runs_dir: Path = Field(Path("runs"), description="Parent of run folders.")


class Settings(StrictModel):
    """All settings of lvcg."""

    data: DataSettings = Field(default_factory=DataSettings)
    prepare: PrepareSettings = Field(default_factory=PrepareSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    run: RunSettings = Field(default_factory=RunSettings)

    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        """Equal values are equal settings, wherever they came from."""
        if not isinstance(other, Settings):
            return NotImplemented
        return self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]  # mutable, like every pydantic model

    def source(self, dotted: str) -> str | None:
        """Where ``section.key`` was given (``cli``, ``env``, a YAML path, ``--preset NAME``), or None.

        None for a value no user source set: a default, a command's own defaults, or settings
        made in code rather than by :func:`resolve_settings`.
        """
        return self._sources.get(dotted)

    def to_yaml(self) -> str:
        """The resolved settings as YAML (what ``config.yaml`` in a run folder holds)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


# ============================================================================================
# Resolution: presets, YAML, environment, dotted overrides
# ============================================================================================
def preset_names() -> list[str]:
    """Names of the bundled presets (``lvcg_cli/assets/presets/*.yaml``)."""
    folder = resources.files("lvcg_cli") / "assets" / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping.

    YAML says keys are unique, but PyYAML keeps the last one silently, so a settings file with
    ``lr:`` twice would train with whichever came last without a word.
    """


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A mapping in a settings file names the same key twice."""

    def __init__(self, key: Any, mark: Any):
        super().__init__(None, None, f"duplicate key {key!r}", mark)
        self.key = key


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: the base constructor reports it
            continue
        if duplicate:
            raise DuplicateKeyError(key, key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def parse_yaml(text: str, source: str | Path) -> Any:
    """Parse settings YAML (safe tags only, unique keys); one-line :class:`SettingsError` otherwise."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except DuplicateKeyError as exc:
        line = f" (line {exc.problem_mark.line + 1})" if exc.problem_mark is not None else ""
        raise SettingsError(f"{source}: duplicate key {exc.key!r}{line}; give each setting once") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SettingsError(f"{source}: not valid YAML{where}") from None
    except RecursionError:
        raise SettingsError(f"{source}: nested too deeply to be a settings file") from None


def load_preset(name: str) -> dict[str, Any]:
    """The nested dict of a bundled preset."""
    path = resources.files("lvcg_cli") / "assets" / "presets" / f"{name}.yaml"
    if not path.is_file():
        hint = _did_you_mean(name, preset_names())
        raise SettingsError(
            f"--preset: unknown preset {name!r}{hint}; available: {', '.join(preset_names())}"
        )
    return parse_yaml(path.read_text(), f"preset {name}") or {}


def load_yaml_file(path: str | Path) -> dict[str, Any]:
    """A settings YAML file as a nested dict, with one-line errors."""
    path = Path(path)
    if path.is_dir():
        raise SettingsError(f"{path}: is a folder, not a settings file")
    if not path.is_file():
        raise SettingsError(f"{path}: settings file not found")
    try:
        data = path.read_bytes()
    except OSError as exc:
        from lvcg_cli.errors import os_error_cause

        raise SettingsError(f"{path}: cannot read settings file ({os_error_cause(exc)})") from None
    if len(data) > MAX_SETTINGS_BYTES:
        raise SettingsError(
            f"{path}: {len(data)} bytes is not a settings file (at most {MAX_SETTINGS_BYTES})"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not a text (UTF-8) settings file (byte {exc.start})") from None
    loaded = parse_yaml(text, path)
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SettingsError(f"{path}: expected a mapping of sections (data:, model:, train:, ...)")
    return loaded


def env_overrides(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``LVCG_TRAIN__LR=3e-4`` -> ``{"train.lr": "3e-4"}``; variables without ``__`` are not settings."""
    environ = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith(ENV_PREFIX) and ENV_NESTED_DELIMITER in key:
            dotted = key[len(ENV_PREFIX) :].lower().replace(ENV_NESTED_DELIMITER, ".")
            found[dotted] = value
    return found


def unknown_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """``LVCG_*`` variables lvcg does not read: neither ``LVCG_<SECTION>__<KEY>`` nor one of :data:`KNOWN_ENV`."""
    environ = os.environ if environ is None else environ
    return sorted(
        key
        for key in environ
        if key.startswith(ENV_PREFIX) and ENV_NESTED_DELIMITER not in key and key not in KNOWN_ENV
    )


_warned_env: set[str] = set()


def warn_unknown_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Warn once per process about each ``LVCG_*`` variable that lvcg ignores (``LVCG_TRAIN=1``)."""
    from lvcg_cli.console import warn

    sections = sorted({k.split(".")[0] for k in _valid_keys()})
    new = [key for key in unknown_env(environ) if key not in _warned_env]
    for key in new:
        _warned_env.add(key)
        stem = key[len(ENV_PREFIX) :].lower()
        close = difflib.get_close_matches(stem.split("_")[0], sections, n=1, cutoff=0.6)
        example = f"LVCG_{close[0].upper()}__<KEY>" if close else "LVCG_TRAIN__LR"
        warn(
            f"environment variable {key} is not an lvcg setting and is ignored (settings are "
            f"LVCG_<SECTION>__<KEY>, e.g. {example}; other lvcg variables: {', '.join(KNOWN_ENV)})"
        )
    return new


@dataclasses.dataclass
class ScannedArgs:
    """Command-line tokens sorted by :func:`scan_args`."""

    overrides: dict[str, str] = dataclasses.field(default_factory=dict)  # "section.key" -> value
    positionals: list[str] = dataclasses.field(default_factory=list)  # record inputs, stray words
    options: list[str] = dataclasses.field(default_factory=list)  # any other -x / --name (not a setting)


def _is_long_option(token: str) -> bool:
    return token.startswith("--") and len(token) > 2


def scan_args(tokens: Sequence[str]) -> ScannedArgs:
    """The one rule for reading ``--section.key VALUE`` / ``--section.key=VALUE`` / ``--section.flag``.

    A dotted option takes the next token as its value unless that is itself a long option
    (``--x``), so negative numbers are values (``--data.fs -5``) and a bare dotted option is
    ``true``. Dashes in keys become underscores. Everything else is kept in order: other options
    (``--foo``, ``-x``; their values are not guessed) and positionals.
    """
    out = ScannedArgs()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if _is_long_option(token) and "." in token.split("=", 1)[0]:
            key, has_value, value = token[2:].partition("=")
            if not has_value:
                if i < len(tokens) and not _is_long_option(tokens[i]):
                    value, i = tokens[i], i + 1
                else:
                    value = "true"
            out.overrides[key.replace("-", "_")] = value
        elif token.startswith("-") and len(token) > 1:
            out.options.append(token)
        else:
            out.positionals.append(token)
    return out


def parse_dotted_args(args: Sequence[str]) -> dict[str, str]:
    """Only ``--section.key`` settings (:func:`scan_args`); anything else is a one-line error."""
    scanned = scan_args(args)
    if scanned.positionals:
        raise SettingsError(
            f"unexpected argument {scanned.positionals[0]!r}; settings are given as --section.key VALUE"
        )
    if scanned.options:
        key = scanned.options[0].lstrip("-").split("=", 1)[0]
        raise SettingsError(
            f"--{key}: unknown option; settings are given as --section.key (e.g. --train.lr 3e-4)"
        )
    return scanned.overrides


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> Iterable[str]:
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _flatten(value, dotted + ".")
        else:
            yield dotted


def _valid_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(_valid_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append(f"{prefix}{name}")
    return keys


def _did_you_mean(word: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe_error(err: dict[str, Any]) -> str:
    """Pydantic's error, said in command-line terms."""
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    got = f" (got {value!r})" if not isinstance(value, dict | list) else ""
    if isinstance(value, str):
        got = f" (got {value})"
    bounds = {
        "greater_than": ("> ", "gt"),
        "greater_than_equal": (">= ", "ge"),
        "less_than": ("< ", "lt"),
        "less_than_equal": ("<= ", "le"),
    }
    if kind in bounds:
        op, key = bounds[kind]
        limit = ctx.get(key)
        limit = f"{limit:g}" if isinstance(limit, int | float) else limit
        return f"must be {op}{limit}{got}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}{got}"
    if kind in {"int_parsing", "int_from_float", "int_type"}:
        return f"must be an integer{got}"
    if kind in {"float_parsing", "float_type"}:
        return f"must be a number{got}"
    if kind == "finite_number":
        return f"must be a finite number{got}"
    if kind in {"bool_parsing", "bool_type"}:
        return f"must be true or false{got}"
    message = str(err.get("msg", "invalid value"))
    message = message.removeprefix("Value error, ")
    return f"{message[:1].lower()}{message[1:]}{got if 'got' not in message else ''}"


def resolve_settings(
    *,
    preset: str | None = None,
    config_files: Sequence[str | Path] = (),
    overrides: Mapping[str, Any] | Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    base: Mapping[str, Any] | None = None,
) -> Settings:
    """Resolve settings from every source; raises :class:`SettingsError` with one line on problems.

    ``overrides`` is either a mapping of dotted keys to values or the raw command-line tokens
    (``["--train.lr", "3e-4"]``). ``base`` is a command's own defaults (e.g. ``pretrain`` picks
    its preset), applied just above the model defaults.
    """
    layers: list[tuple[str, dict[str, Any]]] = []
    if base:
        layers.append(("defaults", dict(base)))
    if preset:
        layers.append((f"--preset {preset}", load_preset(preset)))
    for path in config_files:
        layers.append((str(path), load_yaml_file(path)))
    for label, flat in (("env", env_overrides(environ)), ("cli", _as_flat(overrides))):
        tree: dict[str, Any] = {}
        for key, value in flat.items():
            _set_dotted(tree, key, value)
        layers.append((label, tree))

    valid = _valid_keys()
    sections = {k.split(".")[0] for k in valid}
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for label, tree in layers:
        for dotted in _flatten(tree):
            if dotted not in valid and not any(v.startswith(dotted + ".") for v in valid):
                raise SettingsError(_unknown_key_message(dotted, label, valid, sections))
            origin[dotted] = label
        merged = _deep_merge(merged, tree)
    try:
        settings = Settings.model_validate(_lists_from_text(merged, Settings))
        settings._sources = {k: v for k, v in origin.items() if v != "defaults"}
        return settings
    except ValidationError as exc:
        err = exc.errors()[0]
        dotted = ".".join(str(p) for p in err["loc"] if not isinstance(p, int))
        label = origin.get(dotted, "")
        where = f" (from {label})" if label not in {"", "cli", "defaults"} else ""
        name = f"--{dotted}" if dotted else "settings"
        raise SettingsError(f"{name}: {_describe_error(err)}{where}") from None


def _lists_from_text(tree: Mapping[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """Let ``--model.encoder_channels 32,64,96`` and environment strings fill list and tuple fields.

    ``[...]`` is read as YAML (``'["I,II", all]'``), anything else split at commas. Done here,
    once for every section, so the sections themselves (the model's own included) stay plain.
    """
    out = dict(tree)
    for name, field in model.model_fields.items():
        value, annotation = out.get(name), field.annotation
        if isinstance(value, Mapping) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out[name] = _lists_from_text(value, annotation)
        elif isinstance(value, str) and _is_sequence_annotation(annotation):
            text = value.strip()
            if text.startswith("["):
                out[name] = parse_yaml(text, f"--{name}")
            else:
                out[name] = [item.strip() for item in text.split(",") if item.strip()]
    return out


def _as_flat(overrides: Mapping[str, Any] | Sequence[str]) -> dict[str, Any]:
    if isinstance(overrides, Mapping):
        return {str(k).replace("-", "_"): v for k, v in overrides.items()}
    return parse_dotted_args(list(overrides))


def _unknown_key_message(dotted: str, label: str, valid: list[str], sections: set[str]) -> str:
    head = dotted.split(".")[0]
    if head not in sections:
        return f"--{dotted}: unknown setting section {head!r}{_did_you_mean(head, sorted(sections))}" + (
            f" (from {label})" if label != "cli" else ""
        )
    hint = _did_you_mean(dotted, valid)
    hint = hint.replace("(did you mean '", "(did you mean '--") if hint else ""
    source = f" (from {label})" if label != "cli" else ""
    return f"--{dotted}: unknown setting{hint}{source}"


# ============================================================================================
# Whose settings win: a checkpoint's or the user's (one place for every command)
# ============================================================================================
CHECKPOINT_DATA_KEYS = ("fs", "window_s", "bandpass", "filter_order", "normalize", "normalize_scope")
"""``data`` fields a checkpoint fixes: the input its model was trained on (with every ``model`` field)."""


def checkpoint_fixed_keys() -> list[str]:
    """Every dotted key a checkpoint fixes: ``model.*`` and :data:`CHECKPOINT_DATA_KEYS`."""
    return [f"model.{k}" for k in ModelSettings.model_fields] + [f"data.{k}" for k in CHECKPOINT_DATA_KEYS]


def with_checkpoint(settings: Settings, checkpoint: Settings) -> Settings:
    """The settings a command runs a checkpoint with.

    From the checkpoint: every ``model`` field and the input it was trained on
    (:data:`CHECKPOINT_DATA_KEYS`); a different value the user gave for one of them (command line,
    environment, YAML, preset) is refused in one line (``--data.fs: fixed at 100 by the checkpoint``)
    rather than ignored. The other ``data`` fields are policies a user may change at inference
    (``max_nan_gap_s``, ``pad_policy`` ...): the user's value where one was given, else the
    checkpoint's (what it was trained with). Every other section is the user's.
    """
    conflicts = []
    for dotted in checkpoint_fixed_keys():
        source = settings.source(dotted)
        theirs = _dotted_value(checkpoint, dotted)
        if source is not None and _shown(_dotted_value(settings, dotted)) != _shown(theirs):
            where = "" if source == "cli" else f" (from {source})"
            conflicts.append((dotted, f"--{dotted}: fixed at {_shown(theirs)} by the checkpoint{where}"))
    if conflicts:
        also = ", ".join(f"--{dotted}" for dotted, _ in conflicts[1:])
        raise SettingsError(conflicts[0][1] + (f" (so are {also})" if also else ""))
    policies = {
        key: getattr(settings.data, key)
        for key in DataSettings.model_fields
        if key not in CHECKPOINT_DATA_KEYS and settings.source(f"data.{key}") is not None
    }
    data = DataSettings.model_validate({**checkpoint.data.model_dump(), **policies})
    return settings.model_copy(update={"model": checkpoint.model.model_copy(), "data": data})


def _dotted_value(settings: BaseModel, dotted: str) -> Any:
    value: Any = settings
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _shown(value: Any) -> str:
    """A setting as it is typed on the command line: ``100``, ``0.67,40``, ``32,48,64``."""
    if isinstance(value, list | tuple):
        return ",".join(_shown(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def check_sections(overrides: Iterable[str], reads: Sequence[str], command: str) -> None:
    """Refuse a command-line ``--section.key`` of a section ``command`` does not read.

    Such an override would be dropped without a word (``lvcg embed --train.lr 5``). Only the
    command line is checked: YAML files and the environment may carry every section, so that one
    configuration serves every command. Unknown sections are left to :func:`resolve_settings`.
    """
    sections = {k.split(".")[0] for k in _valid_keys()}
    for dotted in overrides:
        head = dotted.split(".")[0]
        if head in sections and head not in reads:
            raise SettingsError(
                f"--{dotted}: {command} does not read the {head} settings (it reads {', '.join(reads)})"
            )

"""The packed cache contract, the built-in data sets and the bundled open records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lvcg_cli.datasets.cache import PackedCache
from lvcg_cli.datasets.default import SIM_PROBE_SPLITS, load_open_records, open_records_path
from lvcg_cli.datasets.prepared import open_datasets
from lvcg_cli.errors import LvcgError
from lvcg_cli.settings import resolve_settings


def _settings(tmp_path, **overrides):
    return resolve_settings(overrides={"paths.cache_dir": str(tmp_path / "cache"), **overrides})


def test_missing_and_incomplete_caches_are_one_line_errors(tmp_path):
    with pytest.raises(LvcgError, match="not prepared yet"):
        open_datasets(["ptbxl"], _settings(tmp_path))
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "meta.json").write_text(
        json.dumps({"format": "lvcg-cache/1", "complete": False, "n": 1, "n_samples": 10})
    )
    with pytest.raises(LvcgError, match="not finished"):
        PackedCache.open(folder)
    (folder / "meta.json").write_text("{broken")
    with pytest.raises(LvcgError, match="corrupt"):
        PackedCache.open(folder)


def test_sim_probing_set_has_splits_and_labels(tmp_path):
    settings = _settings(tmp_path)
    (cache,) = open_datasets(["sim"], settings)
    assert len(cache) == sum(SIM_PROBE_SPLITS.values())
    for split, n in SIM_PROBE_SPLITS.items():
        assert len(cache.split_indices(split)) == n
    names, labels = cache.labels("default")
    assert names[0] == "afib" and labels.shape == (len(cache), len(names))
    assert 0 < labels.mean() < 0.5
    signal, present = cache.get(5)
    assert signal.dtype == np.float32 and signal.shape == (12, 1000) and present.all()
    # the band-pass took the mean out of every lead, as the signals layer does for real records
    assert np.abs(signal.mean(axis=1)).max() < 0.05
    mtime = (cache.path / "meta.json").stat().st_mtime_ns
    (again,) = open_datasets(["sim"], settings)
    assert (again.path / "meta.json").stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_default_builds_once_and_rebuilds_when_preprocessing_changes(tmp_path):
    settings = _settings(tmp_path, **{"data.sim_records": 16})
    (cache,) = open_datasets(["default"], settings)
    n_open = len(load_open_records(settings.data)[0])
    assert len(cache) == 16 + n_open
    assert len(cache.split_indices("val")) == 1 and len(cache.split_indices("train")) == 15 + n_open
    assert len(cache.split_indices("train", task="sim")) == 15
    other = _settings(tmp_path, **{"data.sim_records": 16, "data.fs": 50})
    (rebuilt,) = open_datasets(["default"], other)
    assert rebuilt.signals.shape[-1] == 500 and rebuilt.meta["fs"] == 50
    with pytest.raises(LvcgError, match="data.fs"):
        from lvcg_cli.datasets.prepared import check_preprocessing

        check_preprocessing(rebuilt, settings.data)


def test_bundled_open_records_are_the_training_part_only():
    from lvcg_cli.datasets.registry import open_record_split

    with np.load(open_records_path()) as bundle:
        sources, ids = bundle["sources"].astype(str), bundle["ids"].astype(str)
        folds = bundle["strat_folds"]
        assert bundle["signals"].dtype == np.float16 and bundle["signals"].shape[1:] == (12, 1000)
        assert float(bundle["fs"]) == 100.0
    assert {"ptbxl", "ludb"} == set(sources)
    for source, ident, fold in zip(sources, ids, folds, strict=True):
        assert open_record_split(source, ident, int(fold) if fold > 0 else None) == "train"
    assert open_records_path().stat().st_size < 4.5e6

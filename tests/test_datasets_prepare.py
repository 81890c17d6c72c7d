"""The prepare job: MIMIC quirks, bad records, resume, shards, --force, the cache it writes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import wfdb
from conftest import FIXTURES

from lvcg_cli.datasets.cache import PackedCache
from lvcg_cli.datasets.prepare import parse_shard, prepare_dataset, shard_slice
from lvcg_cli.datasets.prepared import open_datasets
from lvcg_cli.errors import LvcgError
from lvcg_cli.settings import resolve_settings
from lvcg_cli.signals.leads import CANONICAL_LEADS

RELEASES = FIXTURES / "releases"
LEAD_HZ = {name: 3.0 + i for i, name in enumerate(CANONICAL_LEADS)}  # as make_fixtures.py writes them


def _settings(tmp_path, **overrides):
    return resolve_settings(
        overrides={"paths.cache_dir": str(tmp_path / "cache"), "prepare.chunk_size": 2, **overrides}
    )


def _dominant_hz(x: np.ndarray, fs: float) -> float:
    spectrum = np.abs(np.fft.rfft(x - x.mean()))
    return float(np.fft.rfftfreq(x.size, 1 / fs)[np.argmax(spectrum)])


def test_mimic_leads_are_reordered_by_name_and_nan_repaired(tmp_path):
    settings = _settings(tmp_path)
    result = prepare_dataset("mimic", settings, root=RELEASES / "mimic", workers=1)
    cache = PackedCache.open(result.path)
    assert len(cache) == 2 and cache.signals.shape == (2, 12, 1000) and cache.signals.dtype == np.float16
    for i in range(2):
        signal, present = cache.get(i)
        assert present.all()
        # each canonical row holds the sinusoid of that lead: aVL (stored 6th in the file) is row 4
        found = [_dominant_hz(signal[k, 100:900], 100.0) for k in range(12)]
        assert found == pytest.approx([LEAD_HZ[name] for name in CANONICAL_LEADS], abs=0.11)
    # amplitude survives in mV (0.5 mV sinusoids, well inside the pass band)
    assert np.abs(cache.get(0)[0][4, 100:900]).max() == pytest.approx(0.5, abs=0.03)
    flags = dict(zip(cache.manifest["id"], cache.manifest["flags"], strict=True))
    assert "nan_repaired" in flags["41234567"] and "nan_repaired" not in flags["40689238"]
    assert np.isfinite(cache.get(1)[0]).all()
    lines = [json.loads(x) for x in (result.path / "manifest.jsonl").read_text().splitlines()]
    assert lines[0]["id"] == "40689238" and lines[0]["subject_id"] == "10000032"
    assert lines[0]["ecg_path"].endswith("files/p1000/p10000032/s40689238/40689238")
    assert wfdb.rdheader(lines[0]["ecg_path"]).sig_name[4] == "aVF"  # the original LVCG form reads


def test_units_are_converted_to_mV(tmp_path):
    folder = tmp_path / "uv"
    folder.mkdir()
    t = np.arange(1000) / 100.0
    signal = np.stack([1000.0 * np.sin(2 * np.pi * 5 * t)] * 12, axis=1)  # 1 mV written in uV
    wfdb.wrsamp(
        "r1",
        fs=100,
        units=["uV"] * 12,
        sig_name=list(CANONICAL_LEADS),
        p_signal=signal,
        fmt=["16"] * 12,
        adc_gain=[1.0] * 12,
        baseline=[0] * 12,
        write_dir=str(folder),
    )
    result = prepare_dataset("folder", _settings(tmp_path), root=folder, workers=1)
    x, _ = PackedCache.open(result.path).get(0)
    assert np.abs(x[:, 100:900]).max() == pytest.approx(1.0, abs=0.05)


def _corrupt_copy(tmp_path):
    root = tmp_path / "ptbxl"
    shutil.copytree(RELEASES / "ptbxl", root)
    records = root / "records100" / "00000"
    dat = records / "00002_lr.dat"
    dat.write_bytes(dat.read_bytes()[:5000])  # truncated
    (records / "00030_lr.dat").unlink()  # missing signal file
    (records / "00336_lr.hea").write_text("this is not a header\n\x00\x01garbage")
    return root


def test_bad_records_are_skipped_and_reported_while_the_rest_is_written(tmp_path):
    root = _corrupt_copy(tmp_path)
    settings = _settings(tmp_path, **{"prepare.ptbxl_rate": 100})
    result = prepare_dataset("ptbxl", settings, root=root, workers=1)
    cache = PackedCache.open(result.path)
    assert sorted(cache.manifest["id"]) == ["1", "263", "412"]
    assert result.n_skipped == 3 and result.n_written == 3
    skipped = (result.path / "skipped.tsv").read_text().splitlines()
    reasons = {line.split("\t")[0]: line.split("\t")[2] for line in skipped[1:]}
    assert set(reasons) == {"2", "30", "336"}
    assert "truncated" in reasons["2"] and "missing" in reasons["30"]
    # the written rows match a direct read of the same records
    from lvcg_cli.signals.io import read_record
    from lvcg_cli.signals.preprocess import preprocess

    direct, _, _ = preprocess(read_record(root / "records100/00000/00263_lr.hea"), settings.data)
    i = int(np.flatnonzero(cache.manifest["id"] == "263")[0])
    np.testing.assert_allclose(cache.get(i)[0], direct, atol=2e-3)
    assert cache.labels("super")[1][i].tolist() == [0, 0, 1, 0, 1]  # CD HYP MI NORM STTC


def test_resume_after_interruption_finishes_without_redoing_chunks(tmp_path):
    settings = _settings(tmp_path, **{"prepare.ptbxl_rate": 100})  # 6 records, chunks of 2 -> 3 chunks
    seen = []

    def stop_after_two(index, marker):
        seen.append(index)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", workers=1, on_chunk=stop_after_two)
    target = tmp_path / "cache" / "prepared" / "ptbxl"
    assert not (target / "meta.json").exists()
    with pytest.raises(LvcgError, match="not finished"):
        open_datasets(["ptbxl"], settings)
    result = prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", workers=1)
    assert result.chunks_reused == 2 and result.chunks_run == [2]
    cache = PackedCache.open(target)
    assert cache.manifest["id"].tolist() == ["1", "2", "30", "263", "336", "412"]  # no duplicates, in order
    fresh = prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", out=tmp_path / "fresh", workers=1)
    np.testing.assert_array_equal(np.asarray(cache.signals), np.asarray(PackedCache.open(fresh.path).signals))
    assert not (target / ".partial").exists()


def test_interrupted_assembly_is_completed_on_the_next_run(tmp_path):
    settings = _settings(tmp_path, **{"prepare.ptbxl_rate": 100})
    done = prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", out=tmp_path / "a", workers=1)
    (done.path / "meta.json").unlink()  # as if killed just before the last write
    with pytest.raises(LvcgError):
        PackedCache.open(done.path)
    again = prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", out=tmp_path / "a", workers=1)
    assert PackedCache.open(again.path).manifest["id"].tolist() == ["1", "2", "30", "263", "336", "412"]


def test_finished_cache_is_reused_unless_force(tmp_path):
    settings = _settings(tmp_path, **{"prepare.ptbxl_rate": 100})
    first = prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", workers=1)
    stamp = json.loads((first.path / "meta.json").read_text())["created"]
    second = prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", workers=1)
    assert second.reused and second.n_written == 6 and second.chunks_run == []
    forced = prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", workers=1, force=True)
    assert not forced.reused and forced.chunks_run == [0, 1, 2]
    assert json.loads((first.path / "meta.json").read_text())["complete"] is True
    assert stamp  # a new meta.json was written
    other = _settings(tmp_path, **{"prepare.ptbxl_rate": 100, "data.fs": 50})
    with pytest.raises(LvcgError, match="--force"):
        prepare_dataset("ptbxl", other, root=RELEASES / "ptbxl", workers=1)


def test_shards_partition_the_records_and_open_together(tmp_path):
    settings = _settings(tmp_path, **{"prepare.ptbxl_rate": 100})
    with pytest.raises(LvcgError, match="shards 1, 2 of 3"):
        prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", workers=1, shard=(0, 3))
        open_datasets(["ptbxl"], settings)
    for i in (1, 2):
        prepare_dataset("ptbxl", settings, root=RELEASES / "ptbxl", workers=1, shard=(i, 3))
    caches = open_datasets(["ptbxl"], settings)
    ids = [i for c in caches for i in c.manifest["id"]]
    assert ids == ["1", "2", "30", "263", "336", "412"]
    assert [len(c) for c in caches] == [2, 2, 2]
    assert [(s.start, s.stop) for s in (shard_slice(7, (i, 3)) for i in range(3))] == [(0, 2), (2, 4), (4, 7)]
    assert parse_shard("2/8") == (2, 8)
    with pytest.raises(LvcgError):
        parse_shard("8/8")


@pytest.mark.slow
def test_process_pool_gives_the_same_cache(tmp_path):
    settings = _settings(tmp_path)
    one = prepare_dataset("ludb", settings, root=RELEASES / "ludb", out=tmp_path / "one", workers=1)
    two = prepare_dataset("ludb", settings, root=RELEASES / "ludb", out=tmp_path / "two", workers=2)
    a, b = PackedCache.open(one.path), PackedCache.open(two.path)
    np.testing.assert_array_equal(np.asarray(a.signals), np.asarray(b.signals))
    assert a.manifest.equals(b.manifest)
    names, labels = b.labels("default")
    assert names == ["LAD"] and labels.shape == (4, 1)
    assert set(b.split_indices("", task="axis")) >= {2, 3}  # records without an axis value


def test_every_release_fixture_prepares(tmp_path):
    settings = _settings(tmp_path)
    expect = {"cpsc2018": 3, "chapman": 3, "ai-readi": 4}
    for name, n in expect.items():
        result = prepare_dataset(name, settings, root=RELEASES / name, workers=1)
        cache = PackedCache.open(result.path)
        assert len(cache) == n, name
        assert np.isfinite(np.asarray(cache.signals, dtype=np.float32)).all()
        assert cache.labels("default")[1].shape[0] == n

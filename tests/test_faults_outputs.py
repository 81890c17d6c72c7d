"""Results that cannot be right are never written: NaN weights, non-finite outputs, a cut pipe."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_in_process import run_cli

from lvcg_cli.downstream.embed import NONFINITE_EMBEDDING, Embedder, save_embeddings
from lvcg_cli.downstream.reconstruct import Reconstructor, save_reconstructions
from lvcg_cli.engine.checkpoint import bundled_weights_path, load_checkpoint, load_model
from lvcg_cli.errors import LvcgError, RecordError
from lvcg_cli.signals.io import read_record

REPO = Path(__file__).resolve().parents[1]
RECORDS = sorted((REPO / "lvcg_cli" / "assets" / "records" / "ptbxl").glob("*.hea"))

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def bundled():
    return load_model(None)


def _poisoned(tmp_path: Path, value: float) -> tuple[Path, str]:
    ckpt = torch.load(bundled_weights_path(), weights_only=True)
    name = next(k for k, v in ckpt["model_state"].items() if v.is_floating_point() and v.numel() > 10)
    ckpt["model_state"][name].view(-1)[[0, 3, 7]] = value
    path = tmp_path / f"poisoned-{value}.pt"
    torch.save(ckpt, path)
    return path, name


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_checkpoint_with_non_finite_weights_is_refused_at_load(tmp_path, value):
    path, name = _poisoned(tmp_path, value)
    for load in (load_checkpoint, load_model):
        with pytest.raises(LvcgError) as info:
            load(path)
        assert str(info.value) == (
            f"{path}: weights are not finite (3 NaN/inf values in {name}); "
            "training diverged or the file is damaged"
        )


def test_nan_checkpoint_through_the_cli_writes_nothing(tmp_path, monkeypatch, capsys):
    path, _ = _poisoned(tmp_path, float("nan"))
    out = tmp_path / "emb.npy"
    code, stdout, err = run_cli(
        monkeypatch, capsys, "embed", str(RECORDS[0]), "--checkpoint", str(path), "-o", str(out)
    )
    assert (code, stdout) == (2, "") and err.startswith(f"lvcg: error: {path}: weights are not finite")
    assert not out.exists()


def test_a_record_whose_embedding_is_not_finite_is_skipped_and_named(bundled):
    model, settings = bundled
    embedder = Embedder(model, settings.data, settings.model, batch_size=1, workers=1)
    clean = embedder.embed_paths(RECORDS)
    real, calls = model.embed, []

    def nan_for_the_second_record(batch):  # batch_size 1, one window per 10-s record: call i = record i
        out = real(batch)
        calls.append(1)
        return out * float("nan") if len(calls) == 2 else out

    model.embed = nan_for_the_second_record
    try:
        result = embedder.embed_paths(RECORDS)
    finally:
        del model.embed
    assert result.skipped == [(str(RECORDS[1]), NONFINITE_EMBEDDING)]
    assert result.ids == [RECORDS[0].stem, RECORDS[2].stem]
    np.testing.assert_array_equal(result.embeddings, clean.embeddings[[0, 2]])


def test_non_finite_results_are_not_written(tmp_path):
    values = np.ones((3, 4), np.float32)
    values[1, 2] = np.nan
    for suffix in (".npy", ".npz"):
        out = tmp_path / f"emb{suffix}"
        with pytest.raises(LvcgError, match=rf"^{out}: not written: the result for b is not finite"):
            save_embeddings(out, ["a", "b", "c"], values)
        assert not out.exists()


def test_a_non_finite_reconstruction_is_a_record_error(bundled, tmp_path, monkeypatch):
    model, settings = bundled
    engine = Reconstructor("lvcg", settings.data, model=model, model_settings=settings.model)
    record = read_record(RECORDS[0])
    visible = np.zeros(12, bool)
    visible[[0, 1, 7]] = True
    good = engine.reconstruct(record, visible)
    assert np.isfinite(good.signal).all()
    real = engine.reconstruct_windows
    monkeypatch.setattr(engine, "reconstruct_windows", lambda *a: (real(*a)[0] * np.nan, real(*a)[1]))
    with pytest.raises(RecordError) as info:
        engine.reconstruct(record, visible)
    assert str(info.value) == f"{RECORDS[0]}: the lvcg reconstruction is not finite (NaN or inf)"
    good.signal[4, 10] = np.inf
    with pytest.raises(LvcgError, match=r"not written: the reconstruction of 00001_hr is not finite"):
        save_reconstructions(tmp_path / "r.npy", [good])
    assert not (tmp_path / "r.npy").exists()


def test_probe_refuses_non_finite_features_before_caching(tmp_path, monkeypatch):
    from lvcg_cli.datasets.cache import PackedCache
    from lvcg_cli.datasets.prepare import prepare_dataset
    from lvcg_cli.datasets.prepared import PreparedData
    from lvcg_cli.downstream.embedding_cache import EmbeddingModel, cached_embeddings
    from lvcg_cli.settings import resolve_settings

    settings = resolve_settings(
        overrides={"paths.cache_dir": str(tmp_path / "c"), "prepare.ptbxl_rate": 100}, environ={}
    )
    done = prepare_dataset(
        "ptbxl",
        settings,
        root=REPO / "tests" / "fixtures" / "releases" / "ptbxl",
        out=tmp_path / "p",
        workers=1,
    )
    data = PreparedData("ptbxl", [PackedCache.open(done.path)])
    emb = EmbeddingModel("features", "k", "features", "", settings)
    features = np.zeros((len(data), 5), np.float32)
    features[2, 1] = np.nan
    monkeypatch.setattr(EmbeddingModel, "embed", lambda self, *a, **k: features)
    with pytest.raises(LvcgError) as info:
        cached_embeddings(emb, data, tmp_path / "cache")
    first = data.caches[0].manifest["id"].iat[2]
    assert str(info.value) == (
        f"ptbxl: the features features of 1 record(s) are not finite (NaN or inf), e.g. {first}; "
        "nothing was cached or probed"
    )
    assert not list((tmp_path / "cache").rglob("*.npy"))


# ---------------------------------------------------------------------------------------------
# a cut pipe: quiet, non-zero
# ---------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_cut_pipe_ends_quietly_with_a_non_zero_exit(tmp_path):
    env = {**os.environ, "LVCG_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}
    lvcg = [sys.executable, "-m", "lvcg_cli", "embed"]
    # The reader is gone before anything is written.
    proc = subprocess.Popen(
        [*lvcg, str(RECORDS[0]), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and err == b""
    # `| head -c 100` with more than a pipe buffer of output (160 records x 200 floats = 128 kB).
    folder = tmp_path / "many"
    for i in range(160):
        (folder / f"c{i:03d}").mkdir(parents=True)
        for suffix in (".hea", ".dat"):
            os.symlink(RECORDS[0].with_suffix(suffix), folder / f"c{i:03d}" / f"00001_hr{suffix}")
    command = f"set -o pipefail; {' '.join(lvcg)} {folder} -q | head -c 100 > {tmp_path / 'head.bin'}"
    done = subprocess.run(["bash", "-c", command], capture_output=True, env=env, timeout=300)
    assert done.returncode == 1 and done.stderr == b""
    assert (tmp_path / "head.bin").read_bytes()[:6] == b"\x93NUMPY"


def test_stdout_writes_everything_or_raises(monkeypatch):
    from lvcg_cli import console

    class Partial:  # what a pipe does when its reader leaves mid-write: a short count, no error
        def __init__(self, fail_after: int | None):
            self.data, self.fail_after, self.calls = b"", fail_after, 0

        def write(self, view):
            self.calls += 1
            if self.fail_after is not None and self.calls > self.fail_after:
                raise BrokenPipeError(32, "Broken pipe")
            chunk = bytes(view[:7])
            self.data += chunk
            return len(chunk)

        def flush(self):
            return None

    class Stdout:
        def __init__(self, buffer):
            self.buffer = buffer

    patient = Partial(None)
    monkeypatch.setattr(sys, "stdout", Stdout(patient))
    console.write_stdout_bytes(b"0123456789" * 5)
    assert patient.data == b"0123456789" * 5  # short counts are continued, not dropped
    monkeypatch.setattr(sys, "stdout", Stdout(Partial(1)))
    with pytest.raises(BrokenPipeError):
        console.write_stdout_bytes(b"0123456789" * 5)

"""Training and serving prepare a record through one function, so they cannot drift apart.

Two guards: every path (training from a manifest, prepare-data, embed, reconstruct, the Python
API) calls :func:`lvcg_cli.signals.preprocess.model_signal`, and repairs NaN gaps exactly once;
and the training side and the serving side hand the model bit-identical inputs for the same
record (a record at another rate, with a repaired NaN gap, so every step does something).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_embed import simulated, write_record

import lvcg_cli
from lvcg_cli.signals import io as io_mod

# the module (lvcg_cli.signals re-exports a function of the same name)
preprocess_mod = importlib.import_module("lvcg_cli.signals.preprocess")

pytest_plugins = ["test_embed"]  # tiny_checkpoint


@pytest.fixture()
def gap_record(tmp_path) -> Path:
    """12 s at 500 Hz, a 0.3 s NaN gap in V2 (repaired at the default max_nan_gap_s of 0.5 s)."""
    signal = simulated(1, fs=500.0, duration_s=12.0, seed=5)[0]
    signal[7, 2000:2150] = np.nan
    return write_record(tmp_path / "recs", "gap", signal)


def manifest_for(header: Path, folder: Path) -> Path:
    path = folder / "manifest.jsonl"
    path.write_text(json.dumps({"id": "gap", "ecg_path": str(header.with_suffix(""))}) + "\n")
    return path


class Counting:
    """Wraps a function and counts its calls (kept on the module the callers look it up in)."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.fn(*args, **kwargs)


def test_every_path_calls_the_one_function_and_repairs_nan_once(
    gap_record, tmp_path, monkeypatch, tiny_checkpoint
):
    from lvcg_cli.datasets.prepare import process_record
    from lvcg_cli.datasets.torch_data import ManifestSource
    from lvcg_cli.downstream.embed import Embedder
    from lvcg_cli.downstream.reconstruct import Reconstructor
    from lvcg_cli.engine.checkpoint import load_model

    model, settings = load_model(tiny_checkpoint)
    data = settings.data
    signal = io_mod.read_record(gap_record).signal  # repaired here, before counting: finite samples
    api = lvcg_cli.load_model(tiny_checkpoint, device="cpu")
    one = Counting(preprocess_mod.model_signal)
    repair = Counting(io_mod.repair_nonfinite)
    monkeypatch.setattr(preprocess_mod, "model_signal", one)
    monkeypatch.setattr(io_mod, "repair_nonfinite", repair)

    def through_it(label: str, run) -> None:
        before = (one.calls, repair.calls)
        run()
        assert one.calls == before[0] + 1, f"{label} does not prepare records with model_signal"
        assert repair.calls == before[1] + 1, f"{label} repairs NaN gaps {repair.calls - before[1]} times"

    through_it("training (manifest)", lambda: ManifestSource(manifest_for(gap_record, tmp_path), data).get(0))
    through_it("prepare-data", lambda: process_record(str(gap_record), data))
    embedder = Embedder(model, data, settings.model, workers=1)
    through_it("embed", lambda: embedder.embed_paths([gap_record]))
    engine = Reconstructor("lvcg", data, model=model, model_settings=settings.model)
    through_it("reconstruct", lambda: engine.reconstruct(io_mod.read_record(gap_record, max_nan_gap_s=0.5)))
    through_it("the Python API (embed)", lambda: api.embed(signal, fs=500.0))
    through_it("the Python API (reconstruct)", lambda: api.reconstruct(signal, fs=500.0, visible=["I", "II"]))


def test_training_and_serving_hand_the_model_the_same_bits(gap_record, tmp_path, tiny_checkpoint):
    from lvcg_cli.datasets.prepare import process_record
    from lvcg_cli.datasets.torch_data import ManifestSource
    from lvcg_cli.downstream.embed import prepare_record
    from lvcg_cli.downstream.reconstruct import Reconstructor
    from lvcg_cli.engine.checkpoint import load_model
    from lvcg_cli.signals.model_input import make_sample

    model, settings = load_model(tiny_checkpoint)
    data = settings.data
    window, present = ManifestSource(manifest_for(gap_record, tmp_path), data).get(0)
    assert window.shape == (12, data.n_samples) and present.all()  # V2's gap was repaired, not dropped

    cached, cached_present, _ = process_record(str(gap_record), data)
    np.testing.assert_array_equal(cached, window.astype(np.float16))
    np.testing.assert_array_equal(cached_present, present)

    served = prepare_record(0, gap_record, data, settings.model, None)
    assert served.error is None and len(served.samples) == 1  # 12 s: one full 10-s window
    trained = make_sample(window, present, present, data, settings.model)
    for key, value in trained.items():
        assert torch.equal(served.samples[0][key], value), key

    seen: list[np.ndarray] = []
    engine = Reconstructor("lvcg", data, model=model, model_settings=settings.model)
    original = engine.reconstruct_windows

    def capture(signals, present_, visible):
        seen.append(np.array(signals))
        return original(signals, present_, visible)

    engine.reconstruct_windows = capture
    engine.reconstruct(io_mod.read_record(gap_record, max_nan_gap_s=data.max_nan_gap_s))
    np.testing.assert_array_equal(seen[0][0], window)

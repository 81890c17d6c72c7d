"""The Python API (``lvcg_cli.load_model``, ``model.embed``, ``model.reconstruct``, ``read_record``)
gives what the command line gives for the same record."""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import wfdb
from test_embed import invoke, simulated, write_record

import lvcg_cli
from lvcg_cli.errors import RecordError, SettingsError
from lvcg_cli.signals.leads import CANONICAL_LEADS

pytest_plugins = ["test_embed"]  # tiny_checkpoint

BUNDLED_RECORD = Path(str(resources.files("lvcg_cli") / "assets" / "records" / "ptbxl" / "00001_hr.hea"))


def cli_vector(path: Path, *args) -> np.ndarray:
    code, result, text = invoke(["embed", path, *args])
    assert code == 0, text
    return np.load(io.BytesIO(result.stdout_bytes))


def test_bundled_model_embeds_an_array_as_the_cli_embeds_its_file():
    model = lvcg_cli.load_model()  # the bundled weights, device auto
    samples = wfdb.rdrecord(str(BUNDLED_RECORD.with_suffix(""))).p_signal.T  # (12, T) mV, the file's order
    names = wfdb.rdheader(str(BUNDLED_RECORD.with_suffix(""))).sig_name
    vector = model.embed(samples, fs=500.0, leads=names)
    expected = cli_vector(BUNDLED_RECORD)
    assert vector.shape == expected.shape == (model.embedding_dim,) and vector.dtype == np.float32
    np.testing.assert_allclose(vector, expected, rtol=0, atol=1e-5)
    assert len(model.embedding_names) == model.embedding_dim == len(set(model.embedding_names))
    # read_record is exported too, and its signal is the same record
    record = lvcg_cli.read_record(BUNDLED_RECORD)
    np.testing.assert_allclose(model.embed(record.signal, fs=record.fs), expected, rtol=0, atol=1e-5)


def test_leads_in_any_order_and_any_subset_give_the_files_result(tmp_path, tiny_checkpoint):
    signal = simulated(2, seed=12)
    file_leads = ["V2", "I", "II", "V5"]
    rows = [CANONICAL_LEADS.index(n) for n in file_leads]
    files = [write_record(tmp_path, f"sub{i}", signal[i][rows], leads=file_leads) for i in range(2)]
    expected = np.stack([cli_vector(f, "--checkpoint", tiny_checkpoint) for f in files])

    model = lvcg_cli.load_model(tiny_checkpoint, device="cpu")
    order = ["II", "V5", "I", "V2"]  # another order than the file's
    quantised = np.stack([lvcg_cli.read_record(f).signal for f in files])  # the file's 1-uV samples
    arrays = quantised[:, [CANONICAL_LEADS.index(n) for n in order]]
    single = np.stack([model.embed(arrays[i], fs=500.0, leads=order) for i in range(2)])
    batch = model.embed(arrays, fs=500.0, leads=order)
    assert batch.shape == (2, model.embedding_dim)
    np.testing.assert_allclose(single, expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(batch, expected, rtol=0, atol=1e-5)
    # and a visible subset matches the CLI's --visible
    seen = cli_vector(files[0], "--checkpoint", tiny_checkpoint, "--visible", "I,II")
    np.testing.assert_allclose(
        model.embed(arrays[0], fs=500.0, leads=order, visible=["I", "II"]), seen, atol=1e-5
    )


def cli_reconstruction(path: Path, out: Path, checkpoint: Path, *args) -> np.ndarray:
    code, _, text = invoke(["reconstruct", path, "--checkpoint", checkpoint, "-o", out, *args])
    assert code == 0, text
    return np.load(out)


def test_reconstruct_is_the_cli_reconstruction(tmp_path, tiny_checkpoint):
    signal = simulated(1, fs=250.0, duration_s=13.0, seed=3)[0]
    header = write_record(tmp_path, "rec", signal, fs=250.0)
    expected = cli_reconstruction(header, tmp_path / "full.npy", tiny_checkpoint, "--visible", "I,II,V2")
    model = lvcg_cli.load_model(tiny_checkpoint, device="cpu")
    record = lvcg_cli.read_record(header)
    full = model.reconstruct(record.signal, fs=250.0, visible=["I", "II", "V2"])
    assert full.shape == (12, record.n_samples)  # the input's rate and length, all 12 leads
    np.testing.assert_allclose(full, expected, rtol=0, atol=1e-5)
    shown = [CANONICAL_LEADS.index(n) for n in ("I", "II", "V2")]
    np.testing.assert_array_equal(full[shown], record.signal[shown])  # visible leads pass through
    many = model.reconstruct(np.stack([record.signal] * 2), fs=250.0, visible="I,II,V2")
    assert many.shape == (2, 12, record.n_samples)
    np.testing.assert_allclose(many[1], expected, rtol=0, atol=1e-5)

    # a file of three leads, and the same three rows in another order
    leads = ["V2", "I", "II"]
    subset = write_record(
        tmp_path, "three", signal[[CANONICAL_LEADS.index(n) for n in leads]], fs=250.0, leads=leads
    )
    expected = cli_reconstruction(subset, tmp_path / "three.npy", tiny_checkpoint)
    rows = lvcg_cli.read_record(subset).signal[[CANONICAL_LEADS.index(n) for n in ("II", "V2", "I")]]
    np.testing.assert_allclose(
        model.reconstruct(rows, fs=250.0, leads=["II", "V2", "I"]), expected, atol=1e-5
    )


def test_api_settings_are_honoured_or_refused(tmp_path, tiny_checkpoint):
    signal = simulated(1, seed=8)[0]
    signal[7, 2000:2400] = np.nan  # 0.8 s in V2
    strict = lvcg_cli.load_model(tiny_checkpoint, device="cpu")
    lenient = lvcg_cli.load_model(tiny_checkpoint, device="cpu", settings={"data.max_nan_gap_s": 1.0})
    assert not np.allclose(strict.embed(signal, fs=500.0), lenient.embed(signal, fs=500.0))
    with pytest.raises(SettingsError, match="--data.fs: fixed at 100 by the checkpoint"):
        lvcg_cli.load_model(tiny_checkpoint, device="cpu", settings={"data.fs": 250})


def test_bad_arrays_are_one_line_errors(tiny_checkpoint):
    model = lvcg_cli.load_model(tiny_checkpoint, device="cpu")
    with pytest.raises(RecordError, match="3 rows of signal but 2 lead names"):
        model.embed(np.zeros((3, 1000)), fs=500.0, leads=["I", "II"])
    with pytest.raises(RecordError, match=r"signal\[0\]: no recognisable ECG lead names"):
        model.embed(np.ones((2, 1, 1000)), fs=500.0, leads=["foo"])
    with pytest.raises(RecordError, match="flat"):
        model.embed(np.zeros((12, 5000)), fs=500.0)

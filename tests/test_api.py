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


@pytest.mark.parametrize("method", ["physics", "linear"])
def test_baselines_are_the_clis_method(tmp_path, tiny_checkpoint, method):
    """``model.reconstruct(..., method=...)`` is ``lvcg reconstruct --method ...`` for the same record."""
    signal = simulated(1, fs=250.0, duration_s=12.0, seed=5)[0]
    header = write_record(tmp_path, "rec", signal, fs=250.0)
    expected = cli_reconstruction(
        header, tmp_path / f"{method}.npy", tiny_checkpoint, "--visible", "I,II,V2", "--method", method
    )
    model = lvcg_cli.load_model(tiny_checkpoint, device="cpu")
    record = lvcg_cli.read_record(header)
    full = model.reconstruct(record.signal, fs=250.0, visible="I,II,V2", method=method)
    np.testing.assert_allclose(full, expected, rtol=0, atol=1e-6)
    model_out = model.reconstruct(record.signal, fs=250.0, visible="I,II,V2")
    hidden = [CANONICAL_LEADS.index(n) for n in ("V1", "V3", "V4", "V5", "V6")]
    assert not np.allclose(full[hidden], model_out[hidden], atol=1e-3)  # not the model's output


def test_ideal_geometry_reconstructs_a_dipole_through_the_ideal_lead_field(tiny_checkpoint):
    """Independent truth: a pure dipole seen through the ideal lead field is recovered from I, II and
    V2 by ``physics`` with ``geometry="ideal"`` (up to the lift's small ridge term), and not by the
    Dower lead field: the geometry argument is used."""
    from lvcg_cli.model.geometry import LeadField

    t = np.arange(2500) / 250.0
    dipole = np.stack([np.sin(2 * np.pi * 1.1 * t), np.cos(2 * np.pi * 0.9 * t), np.sin(2 * np.pi * 1.7 * t)])
    leads12 = LeadField(geometry="ideal").matrix.double().numpy() @ dipole  # (12, T)
    model = lvcg_cli.load_model(tiny_checkpoint, device="cpu")
    three = leads12[[CANONICAL_LEADS.index(n) for n in ("I", "II", "V2")]]
    hidden = [CANONICAL_LEADS.index(n) for n in ("V1", "V3", "V4", "V5", "V6")]
    # visible: the three alone (III, aVR, aVL, aVF derived by Einthoven/Goldberger are not the
    # ideal lead field's hexaxial rows, so they would not be views of the same dipole)
    args = {"fs": 250.0, "leads": ["I", "II", "V2"], "visible": "I,II,V2", "method": "physics"}
    ideal = model.reconstruct(three, **args, geometry="ideal")
    dower = model.reconstruct(three, **args)
    error_ideal = np.abs(ideal[hidden] - leads12[hidden]).max()
    error_dower = np.abs(dower[hidden] - leads12[hidden]).max()
    assert error_ideal < 1e-2 * np.abs(leads12).max()
    assert error_dower > 10 * error_ideal


def test_score_is_the_table_lvcg_reconstruct_prints(tmp_path, tiny_checkpoint):
    import json

    signal = simulated(1, fs=250.0, duration_s=10.0, seed=9)[0]
    header = write_record(tmp_path, "rec", signal, fs=250.0)
    code, result, text = invoke(
        ["reconstruct", header, "--checkpoint", tiny_checkpoint, "--visible", "I,II,V2", "--json"]
    )
    assert code == 0, text
    table = json.loads(result.stdout)["leads"]
    model = lvcg_cli.load_model(tiny_checkpoint, device="cpu")
    record = lvcg_cli.read_record(header)
    full = model.reconstruct(record.signal, fs=250.0, visible="I,II,V2")
    scores = model.score(full, record.signal, fs=250.0)
    assert list(scores) == list(CANONICAL_LEADS)  # every lead the reference holds, canonical order
    for lead, expected in table.items():  # the CLI's hidden leads
        got = scores[lead]
        assert got.r == pytest.approx(expected["r"], abs=2e-6)
        assert got.rmse == pytest.approx(expected["rmse_mv"], abs=2e-6)
        assert got.ptp_ratio == pytest.approx(expected["ptp_ratio"], abs=2e-6)
    assert scores["V2"].r == pytest.approx(1.0) and scores["V2"].rmse == pytest.approx(0.0, abs=1e-9)

    # a reference of a few named rows scores exactly those; a flat row is an absent lead
    names = ["V6", "V1", "V4"]
    rows = record.signal[[CANONICAL_LEADS.index(n) for n in names]].copy()
    rows[2] = 0.0
    subset = model.score(full, rows, fs=250.0, leads=names)
    assert list(subset) == ["V1", "V6"]
    assert subset["V6"] == scores["V6"] and subset["V1"] == scores["V1"]
    # the amplitude error is what it says: half the amplitude gives a peak-to-peak ratio of 0.5
    half = model.score(full * 0.5, full, fs=250.0)
    assert half["V5"].ptp_ratio == pytest.approx(0.5, rel=1e-6) and half["V5"].r == pytest.approx(1.0)


def test_bad_methods_and_scores_are_one_line_errors(tiny_checkpoint):
    from lvcg_cli.errors import LvcgError

    model = lvcg_cli.load_model(tiny_checkpoint, device="cpu")
    signal = simulated(1, fs=250.0, duration_s=10.0)[0]
    with pytest.raises(LvcgError, match="method: must be one of lvcg, physics, linear"):
        model.reconstruct(signal, fs=250.0, method="ridge")
    with pytest.raises(LvcgError, match="geometry: must be one of dower, ideal"):
        model.reconstruct(signal, fs=250.0, method="physics", geometry="frank")
    with pytest.raises(LvcgError, match=r"reconstruction: expected \(12, samples\)"):
        model.score(signal[:3], signal, fs=250.0)
    with pytest.raises(LvcgError, match="reference has 100 samples, the reconstruction 2500"):
        model.score(signal, signal[:, :100], fs=250.0)
    with pytest.raises(LvcgError, match=r"expected \(2, samples\) for 2 leads"):
        model.score(signal, signal[:3], fs=250.0, leads=["I", "II"])


def test_lead_order_and_errors_are_exported():
    from lvcg_cli import errors
    from lvcg_cli.signals import leads

    assert lvcg_cli.CANONICAL_LEADS == leads.CANONICAL_LEADS
    assert lvcg_cli.LvcgError is errors.LvcgError and lvcg_cli.RecordError is errors.RecordError
    for name in ("CANONICAL_LEADS", "LvcgError", "RecordError"):
        assert name in lvcg_cli.__all__ and name in dir(lvcg_cli)
    with pytest.raises(lvcg_cli.RecordError) as caught:  # what a loop over files catches
        lvcg_cli.read_record("no/such/record.hea")
    assert caught.value.path.endswith("record.hea") and caught.value.problem

"""``lvcg reconstruct``: shapes, rate and length, pass-through, metrics, formats, baselines, bad inputs."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from test_embed import bad_records, invoke, simulated, write_record

from lvcg_cli.downstream.reconstruct import Reconstructor, covering_starts, stitch
from lvcg_cli.model.geometry import lead_field_matrix
from lvcg_cli.settings import DataSettings
from lvcg_cli.signals.io import read_record
from lvcg_cli.signals.leads import CANONICAL_LEADS, parse_leads, visible_mask
from lvcg_cli.signals.preprocess import bandpass

pytest_plugins = ["test_embed"]  # tiny_checkpoint


@pytest.fixture()
def record(tmp_path):
    return write_record(tmp_path, "rec", simulated(1, seed=11)[0])


def _model_engine(checkpoint):
    from lvcg_cli.engine.checkpoint import load_model

    model, settings = load_model(checkpoint)
    return Reconstructor("lvcg", settings.data, model=model, model_settings=settings.model)


@pytest.mark.parametrize("fs,seconds", [(500.0, 10.0), (250.0, 23.3), (100.0, 4.0)])
def test_output_has_the_input_rate_and_length_and_visible_leads_unchanged(
    tmp_path, tiny_checkpoint, fs, seconds
):
    header = write_record(tmp_path, "r", simulated(1, fs=fs, duration_s=seconds)[0], fs=fs)
    rec = read_record(header)
    mask = visible_mask(parse_leads("I,II,V2"))
    out = _model_engine(tiny_checkpoint).reconstruct(rec, mask)
    assert out.signal.shape == rec.signal.shape and out.fs == rec.fs
    np.testing.assert_array_equal(out.signal[mask], rec.signal[mask])
    assert np.isfinite(out.signal).all()
    # Einthoven / Goldberger hold exactly on the output (derived from the visible I, II)
    np.testing.assert_allclose(out.signal[2], out.signal[1] - out.signal[0], atol=1e-5)
    np.testing.assert_allclose(out.signal[3], -(out.signal[0] + out.signal[1]) / 2, atol=1e-5)


def test_covering_windows_and_stitching():
    assert covering_starts(1000, 1000) == [0]
    assert covering_starts(600, 1000) == [0]
    assert covering_starts(2500, 1000) == [0, 1000, 1500]
    t = np.arange(2500, dtype=np.float32)[None]
    starts = covering_starts(2500, 1000)
    windows = np.stack([t[:, s : s + 1000] for s in starts])
    np.testing.assert_array_equal(stitch(windows, starts, 2500), t)


def test_metrics_match_an_independent_numpy_computation(record, tiny_checkpoint, tmp_path):
    code, result, _ = invoke(
        [
            "reconstruct",
            record,
            "--visible",
            "I,II,V2",
            "--checkpoint",
            tiny_checkpoint,
            "--json",
            "-o",
            tmp_path / "o.npy",
        ]
    )
    assert code == 0, result.output
    report = json.loads(result.stdout)
    out = np.load(tmp_path / "o.npy")
    original = read_record(record).signal
    data = DataSettings()
    assert set(report["leads"]) == {"III", "aVR", "aVL", "aVF", "V1", "V3", "V4", "V5", "V6"}
    for name, scores in report["leads"].items():
        j = CANONICAL_LEADS.index(name)
        ref = bandpass(original[j].astype(np.float64), 500.0, tuple(data.bandpass), data.filter_order)
        est = bandpass(out[j].astype(np.float64), 500.0, tuple(data.bandpass), data.filter_order)
        assert scores["r"] == pytest.approx(np.corrcoef(ref, est)[0, 1], abs=2e-6)
        assert scores["rmse_mv"] == pytest.approx(np.sqrt(np.mean((ref - est) ** 2)), abs=2e-6)
        assert scores["ptp_ratio"] == pytest.approx(np.ptp(est) / np.ptp(ref), abs=2e-6)


def test_a_lead_at_half_its_size_has_perfect_r_but_its_amplitude_error_shows(record):
    """r is blind to gain; RMSE and the peak-to-peak ratio are not (closed form: a half-size copy)."""
    from lvcg_cli.downstream.reconstruct import score_leads

    original = read_record(record).signal.astype(np.float64)
    data = DataSettings()
    scored = np.zeros(12, bool)
    scored[CANONICAL_LEADS.index("V3")] = True
    half = original.copy()
    half[CANONICAL_LEADS.index("V3")] *= 0.5
    score = score_leads(half, original, 500.0, data, scored)["V3"]
    ref = bandpass(original[CANONICAL_LEADS.index("V3")], 500.0, tuple(data.bandpass), data.filter_order)
    assert score.r == pytest.approx(1.0, abs=1e-9)
    assert score.ptp_ratio == pytest.approx(0.5, abs=1e-9)
    assert score.rmse == pytest.approx(0.5 * np.sqrt(np.mean(ref**2)), rel=1e-6)


def test_the_table_prints_amplitude_metrics_beside_r(record, tiny_checkpoint):
    code, result, _ = invoke(["reconstruct", record, "--visible", "I,II,V2", "--checkpoint", tiny_checkpoint])
    assert code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "RMSE (mV)" in line)
    assert header.index("r ") < header.index("RMSE (mV)") < header.index("p-p ratio")
    row = next(line for line in result.stdout.splitlines() if line.startswith("│ V4 "))
    assert len(re.findall(r"\d\.\d+", row)) == 3  # r, RMSE and the ratio


def test_physics_reconstruction_is_exact_on_a_pure_dipole_record(tmp_path):
    rng = np.random.default_rng(2)
    t = np.arange(5000) / 500.0
    dipole = np.stack(
        [np.sin(2 * np.pi * f * t + p) for f, p in zip((1.1, 2.3, 5.0), rng.uniform(0, 6, 3), strict=True)]
    )
    signal = lead_field_matrix("dower") @ dipole
    header = write_record(tmp_path, "dipole", signal)
    mask = visible_mask(parse_leads("I,II,V2"))
    rec = read_record(header)
    out = Reconstructor("physics", DataSettings(), geometry="dower", eps=0.0).reconstruct(rec, mask)
    for name, (r, e, _) in out.scores.items():
        assert r > 0.99999, name
        assert e < 2e-3, name  # WFDB stores 1 uV steps


def test_linear_method_from_a_training_file(record, tmp_path):
    signals = simulated(12, seed=5)
    data = DataSettings()
    train = tmp_path / "train.npz"
    np.savez(train, signals=bandpass(signals, 500.0, tuple(data.bandpass)).astype(np.float32))
    rec = read_record(record)
    mask = visible_mask(parse_leads("I,II,V2"))
    linear = Reconstructor("linear", data, train_path=train).reconstruct(rec, mask)
    physics = Reconstructor("physics", data, geometry="ideal").reconstruct(rec, mask)
    lin_r = np.mean([linear.scores[n][0] for n in ("V1", "V3", "V4", "V5", "V6")])
    phys_r = np.mean([physics.scores[n][0] for n in ("V1", "V3", "V4", "V5", "V6")])
    assert lin_r > 0.8 and lin_r > phys_r


@pytest.mark.parametrize("suffix", [".npy", ".csv", ".hea", ".npz"])
def test_output_formats_round_trip(record, tiny_checkpoint, tmp_path, suffix):
    import wfdb

    out = tmp_path / f"full{suffix}"
    code, result, _ = invoke(
        ["reconstruct", record, "--visible", "I,II,V2", "--checkpoint", tiny_checkpoint, "-o", out]
    )
    assert code == 0, result.output
    reference = np.load(_npy(record, tiny_checkpoint, tmp_path))
    if suffix == ".npy":
        np.testing.assert_array_equal(np.load(out), reference)
    elif suffix == ".csv":
        import pandas as pd

        frame = pd.read_csv(out)
        assert list(frame.columns) == ["time_s", *CANONICAL_LEADS]
        np.testing.assert_allclose(frame[list(CANONICAL_LEADS)].to_numpy().T, reference, rtol=1e-6, atol=1e-7)
        assert frame["time_s"].iloc[1] == pytest.approx(1 / 500)
    elif suffix == ".hea":
        back = wfdb.rdrecord(str(out.with_suffix("")))
        assert back.sig_name == list(CANONICAL_LEADS) and back.fs == 500
        np.testing.assert_allclose(back.p_signal.T, reference, atol=0.0011)
    else:
        with np.load(out) as saved:
            np.testing.assert_array_equal(saved["rec"], reference)
            assert float(saved["rec.fs"]) == 500.0


def _npy(record, checkpoint, tmp_path):
    path = tmp_path / "ref.npy"
    if not path.exists():
        invoke(["reconstruct", record, "--visible", "I,II,V2", "--checkpoint", checkpoint, "-o", path])
    return path


def test_several_records_into_one_npz_and_deterministic(tmp_path, tiny_checkpoint):
    signals = simulated(2, seed=9)
    folder = tmp_path / "many"
    for i in range(2):
        write_record(folder, f"r{i}", signals[i])
    outs = []
    for k in range(2):
        out = tmp_path / f"all{k}.npz"
        code, result, _ = invoke(
            ["reconstruct", folder, "--visible", "II,V2,V5", "--checkpoint", tiny_checkpoint, "-o", out]
        )
        assert code == 0, result.output
        outs.append(out)
    with np.load(outs[0]) as a, np.load(outs[1]) as b:
        assert {"r0", "r1"} <= set(a.files)
        assert a["r0"].shape == (12, 5000)
        np.testing.assert_array_equal(a["r0"], b["r0"])
        np.testing.assert_array_equal(a["r1"], b["r1"])
    code, _, message = invoke(
        ["reconstruct", folder, "--visible", "I", "--method", "physics", "-o", tmp_path / "x.npy"]
    )
    assert code == 2 and "npz" in message


def test_record_with_only_I_and_II_reconstructs_the_rest_with_a_warning(tmp_path, tiny_checkpoint):
    signal = simulated(1)[0][:2]
    header = write_record(tmp_path, "two", signal, leads=["I", "II"])
    out = tmp_path / "two_full.npy"
    code, result, _ = invoke(
        ["reconstruct", header, "--visible", "I,II,V2", "--checkpoint", tiny_checkpoint, "-o", out]
    )
    assert code == 0, result.output
    assert "has no V2" in result.stderr
    full = np.load(out)
    assert full.shape == (12, 5000)
    np.testing.assert_allclose(full[:2], signal, atol=6e-4)  # passed through (WFDB 1 uV steps)
    assert np.abs(full[6:]).max() > 0  # precordial leads were produced
    # the record's III, aVR, aVL, aVF are derived from its I and II at reading, so only they are
    # scored (exactly, as derived leads); the precordial leads the record lacks are not
    table = result.stdout
    assert all(f"│ {lead} " in table for lead in ("III", "aVR", "aVL", "aVF")) and "derived" in table
    assert not any(f"│ {lead} " in table for lead in ("V1", "V2", "V3", "V4", "V5", "V6"))


@pytest.mark.parametrize(
    "kind", ["missing", "header_without_signal", "truncated", "non_ecg", "all_nan", "no_leads"]
)
def test_bad_input_is_a_one_line_error_and_nothing_is_written(tmp_path, kind):
    bad = bad_records(tmp_path / "bad")[kind]
    out = tmp_path / "o.npy"
    code, _, message = invoke(["reconstruct", bad, "--visible", "I", "--method", "physics", "-o", out])
    assert code == 2
    assert bad.name in message and "\n" not in message
    assert not out.exists()


def test_plot_options_write_images(record, tiny_checkpoint, tmp_path):
    ecg, vcg = tmp_path / "ecg.png", tmp_path / "vcg.png"
    code, result, _ = invoke(
        [
            "reconstruct",
            record,
            "--visible",
            "I,II,V2",
            "--checkpoint",
            tiny_checkpoint,
            "--plot",
            ecg,
            "--vcg-plot",
            vcg,
        ]
    )
    assert code == 0, result.output
    for path in (ecg, vcg):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_linear_cli_uses_the_bundled_training_records(record):
    from lvcg_cli.downstream.baselines import open_train_path

    if not open_train_path().is_file():
        pytest.skip("bundled open training records not built yet")
    code, result, _ = invoke(["reconstruct", record, "--visible", "I,II,V2", "--method", "linear", "--json"])
    assert code == 0, result.output
    report = json.loads(result.stdout)
    assert np.mean([v["r"] for k, v in report["leads"].items() if k.startswith("V")]) > 0.5

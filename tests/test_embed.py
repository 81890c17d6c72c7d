"""``lvcg embed``: formats, stdout behaviour, determinism, lead subsets, long records and bad inputs.

The helpers at the top (tiny checkpoint, WFDB record writers, CLI wrapper) are shared with the
reconstruct and probe tests.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lvcg_cli.errors import LvcgError
from lvcg_cli.main import app
from lvcg_cli.signals.leads import CANONICAL_LEADS

runner = CliRunner()
TINY_MODEL = {
    "encoder_channels": [8, 16],
    "d_token": 16,
    "state_dim": 16,
    "lifter_channels": 8,
    "lifter_layers": 1,
}


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A small random-init lvcg checkpoint (fast on a CPU)."""
    from lvcg_cli.engine.checkpoint import save_checkpoint
    from lvcg_cli.model.registry import build_model
    from lvcg_cli.settings import DataSettings, ModelSettings, Settings

    torch.manual_seed(0)
    model_settings = ModelSettings(**TINY_MODEL)
    model = build_model(model_settings, DataSettings())
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model=model, settings=Settings(model=model_settings), step=0)
    return path


def simulated(n: int = 1, fs: float = 500.0, duration_s: float = 10.0, seed: int = 3) -> np.ndarray:
    from lvcg_cli.datasets.simulator import simulate

    return simulate(n, seed=seed, fs=fs, duration_s=duration_s).signals


def write_record(
    folder: Path,
    name: str,
    signal: np.ndarray,
    fs: float = 500.0,
    leads: list[str] | None = None,
) -> Path:
    """Write (L, T) mV as a WFDB record (format 16, 1 uV); returns the header path."""
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    leads = list(leads or CANONICAL_LEADS)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"] * len(leads),
        sig_name=leads,
        p_signal=np.asarray(signal, dtype=np.float64).T,
        fmt=["16"] * len(leads),
        adc_gain=[1000.0] * len(leads),
        baseline=[0] * len(leads),
        write_dir=str(folder),
    )
    return folder / f"{name}.hea"


@pytest.fixture()
def records(tmp_path) -> list[Path]:
    """Three simulated 12-lead records at 500 Hz, 10 s."""
    signals = simulated(3)
    return [write_record(tmp_path / "recs", f"rec{i}", signals[i]) for i in range(3)]


def bad_records(folder: Path) -> dict[str, Path]:
    """One of each kind of unusable input."""
    signal = simulated(1)[0]
    bad: dict[str, Path] = {"missing": folder / "nope.hea"}
    header_only = write_record(folder, "headeronly", signal)
    header_only.with_suffix(".dat").unlink()
    bad["header_without_signal"] = header_only
    truncated = write_record(folder, "truncated", signal)
    data = truncated.with_suffix(".dat")
    data.write_bytes(data.read_bytes()[:5000])
    bad["truncated"] = truncated
    text = folder / "notes.txt"
    text.write_text("this is not an ECG\n")
    bad["non_ecg"] = text
    bad["all_nan"] = write_record(folder, "allnan", np.full_like(signal, np.nan))
    bad["no_leads"] = write_record(folder, "noleads", signal[:3], leads=["foo", "bar", "baz"])
    return bad


def invoke(args: list[str]):
    """CliRunner with the entry point's error handling: LvcgError -> exit 2 and its message."""
    result = runner.invoke(app, [str(a) for a in args])
    if isinstance(result.exception, LvcgError):
        return 2, result, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result, ""


def lvcg_subprocess(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real console entry point: true stdout bytes, stderr and exit code."""
    env = {**os.environ, "LVCG_NO_PROGRESS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "lvcg_cli", *map(str, args)],
        capture_output=True,
        env=env,
        timeout=180,
        cwd=cwd,
    )


# --------------------------------------------------------------------------------------------
# formats and stdout
# --------------------------------------------------------------------------------------------
def test_one_record_gives_a_vector_several_a_matrix_in_input_order(records, tiny_checkpoint):
    code, one, _ = invoke(["embed", records[0], "--checkpoint", tiny_checkpoint])
    assert code == 0, one.output
    vector = np.load(io.BytesIO(one.stdout_bytes))
    assert vector.ndim == 1 and vector.dtype == np.float32 and vector.size > 8

    code, many, _ = invoke(["embed", records[2], records[0], records[1], "--checkpoint", tiny_checkpoint])
    assert code == 0
    matrix = np.load(io.BytesIO(many.stdout_bytes))
    assert matrix.shape == (3, vector.size)
    np.testing.assert_allclose(matrix[1], vector, rtol=1e-5, atol=1e-6)  # records[0] is second


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".parquet"])
def test_file_formats_round_trip_with_ids(records, tiny_checkpoint, tmp_path, suffix):
    from lvcg_cli.downstream.embed import load_embeddings

    out = tmp_path / f"emb{suffix}"
    code, result, _ = invoke(["embed", records[0].parent, "-o", out, "--checkpoint", tiny_checkpoint])
    assert code == 0, result.output
    assert result.stdout_bytes == b""
    ids, array = load_embeddings(out)
    code, ref, _ = invoke(["embed", *records, "--checkpoint", tiny_checkpoint])
    expected = np.load(io.BytesIO(ref.stdout_bytes))
    np.testing.assert_array_equal(array, expected)
    if suffix != ".npy":
        assert ids == ["rec0", "rec1", "rec2"]
    from lvcg_cli.engine.checkpoint import load_model

    names = load_model(tiny_checkpoint)[0].embedding_names  # every dimension is named in the file
    if suffix == ".parquet":
        import pandas as pd

        assert list(pd.read_parquet(out).columns) == ["id", *names]
    if suffix == ".npz":
        with np.load(out) as data:
            assert data["names"].tolist() == names and "qrs_vec_x" in names


def test_refuses_to_write_binary_to_a_terminal_unless_forced(records, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr("lvcg_cli.console.stdout_is_terminal", lambda: True)
    code, result, message = invoke(["embed", records[0], "--checkpoint", tiny_checkpoint])
    assert code == 2
    assert "terminal" in message and "-f" in message and "\n" not in message
    assert result.stdout_bytes == b""
    code, forced, _ = invoke(["embed", records[0], "--checkpoint", tiny_checkpoint, "-f"])
    assert code == 0
    assert forced.stdout_bytes.startswith(b"\x93NUMPY")


@pytest.mark.slow
def test_true_stdout_is_only_the_npy_bytes(records, tiny_checkpoint, tmp_path):
    proc = lvcg_subprocess("embed", records[0], records[1], "--checkpoint", tiny_checkpoint)
    assert proc.returncode == 0, proc.stderr.decode()
    array = np.load(io.BytesIO(proc.stdout))
    assert array.shape[0] == 2
    assert b"embedded 2 record" in proc.stderr


def test_bit_identical_twice(records, tiny_checkpoint):
    first = invoke(["embed", *records, "--checkpoint", tiny_checkpoint])[1].stdout_bytes
    second = invoke(["embed", *records, "--checkpoint", tiny_checkpoint])[1].stdout_bytes
    assert first == second


def test_visible_subset_changes_the_embedding_and_matches_the_library(records, tiny_checkpoint):
    from lvcg_cli.downstream.embed import Embedder
    from lvcg_cli.engine.checkpoint import load_model
    from lvcg_cli.signals.leads import parse_leads, visible_mask

    full = np.load(io.BytesIO(invoke(["embed", records[0], "--checkpoint", tiny_checkpoint])[1].stdout_bytes))
    sub = invoke(["embed", records[0], "--checkpoint", tiny_checkpoint, "--visible", "I,II,V2"])[1]
    subset = np.load(io.BytesIO(sub.stdout_bytes))
    assert not np.allclose(full, subset)
    model, settings = load_model(tiny_checkpoint)
    mask = visible_mask(parse_leads("I,II,V2"))
    lib = Embedder(model, settings.data, settings.model, visible=mask).embed_paths([records[0]])
    np.testing.assert_allclose(lib.embeddings[0], subset, rtol=1e-5, atol=1e-6)


def test_long_record_is_the_mean_of_its_full_windows(tmp_path, tiny_checkpoint):
    """25 s at 500 Hz -> two 10-s windows (the last 5 s are dropped), averaged."""
    from lvcg_cli.downstream.embed import Embedder
    from lvcg_cli.engine.checkpoint import load_model
    from lvcg_cli.signals.io import read_record
    from lvcg_cli.signals.preprocess import model_signal

    header = write_record(tmp_path, "long", simulated(1, duration_s=25.0)[0])
    model, settings = load_model(tiny_checkpoint)
    embedder = Embedder(model, settings.data, settings.model)
    got = embedder.embed_paths([header]).embeddings[0]
    signal, present, _ = model_signal(read_record(header), settings.data)
    n = settings.data.n_samples
    assert signal.shape[-1] == 2500
    windows = np.stack([signal[:, :n], signal[:, n : 2 * n]])
    per_window = embedder.embed_windows(windows, present)
    np.testing.assert_allclose(got, per_window.mean(axis=0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(per_window[0], per_window[1])


def test_short_record_is_padded_and_embedded(tmp_path, tiny_checkpoint):
    header = write_record(tmp_path, "short", simulated(1, duration_s=4.0)[0])
    code, result, _ = invoke(["embed", header, "--checkpoint", tiny_checkpoint])
    assert code == 0
    assert np.isfinite(np.load(io.BytesIO(result.stdout_bytes))).all()


# --------------------------------------------------------------------------------------------
# partial and bad inputs
# --------------------------------------------------------------------------------------------
def test_record_with_only_I_and_II_is_embedded_with_a_warning(tmp_path, tiny_checkpoint):
    signal = simulated(1)[0][:2]
    header = write_record(tmp_path, "twoleads", signal, leads=["I", "II"])
    code, result, _ = invoke(["embed", header, "--checkpoint", tiny_checkpoint])
    assert code == 0
    assert np.isfinite(np.load(io.BytesIO(result.stdout_bytes))).all()
    # III, aVR, aVL and aVF are derived from I and II (exact), so six limb leads are used
    assert "only I, II, III, aVR, aVL, aVF present" in result.stderr


@pytest.mark.parametrize(
    "kind", ["missing", "header_without_signal", "truncated", "non_ecg", "all_nan", "no_leads"]
)
def test_bad_input_alone_exits_2_names_the_file_and_writes_nothing(tmp_path, tiny_checkpoint, kind):
    bad = bad_records(tmp_path / "bad")[kind]
    out = tmp_path / "out.npz"
    code, result, message = invoke(["embed", bad, "--checkpoint", tiny_checkpoint, "-o", out])
    assert code == 2
    assert bad.name in message and "\n" not in message  # one line naming the file
    assert not out.exists()
    assert not list(tmp_path.glob(".out.*"))  # no temporary left behind


def test_bad_records_are_skipped_among_good_ones(tmp_path, records, tiny_checkpoint):
    bad = bad_records(tmp_path / "bad")
    out = tmp_path / "mixed.npz"
    code, result, _ = invoke(
        ["embed", records[0], *bad.values(), records[1], "--checkpoint", tiny_checkpoint, "-o", out]
    )
    assert code == 0, result.output
    with np.load(out) as saved:
        assert saved["ids"].tolist() == ["rec0", "rec1"]
    for path in bad.values():
        assert path.name in result.stderr


@pytest.mark.slow
def test_bad_record_subprocess_is_one_line_exit_2(tmp_path, tiny_checkpoint):
    bad = bad_records(tmp_path / "bad")["truncated"]
    proc = lvcg_subprocess("embed", bad, "--checkpoint", tiny_checkpoint, "-q")
    assert proc.returncode == 2
    assert proc.stdout == b""
    lines = proc.stderr.decode().strip().splitlines()
    assert len(lines) == 1
    assert (
        lines[0].startswith("lvcg: error: ")
        and "truncated.hea" in lines[0]
        and "truncated signal file" in lines[0]
    )
    assert "Traceback" not in proc.stderr.decode()


def test_unknown_output_format_and_unknown_lead_are_one_line_errors(records, tiny_checkpoint, tmp_path):
    code, _, message = invoke(
        ["embed", records[0], "-o", tmp_path / "x.txt", "--checkpoint", tiny_checkpoint]
    )
    assert code == 2 and ".txt" in message
    code, _, message = invoke(["embed", records[0], "--visible", "I,XX", "--checkpoint", tiny_checkpoint])
    assert code == 2 and "XX" in message


def test_nothing_readable_among_several_is_exit_2_without_output(tmp_path, tiny_checkpoint):
    bad = bad_records(tmp_path / "bad")
    out = tmp_path / "none.npy"
    code, result, message = invoke(["embed", *bad.values(), "--checkpoint", tiny_checkpoint, "-o", out])
    assert code == 2 and "no record could be embedded (6 skipped)" in message
    assert not out.exists()
    code, result, message = invoke(
        ["embed", bad["truncated"], bad["all_nan"], "--checkpoint", tiny_checkpoint]
    )
    assert code == 2 and result.stdout_bytes == b""

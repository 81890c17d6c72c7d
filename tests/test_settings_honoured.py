"""Settings are honoured or refused, never dropped: a checkpoint fixes its model and input, a
command refuses a command-line section it does not read, and inference policies apply."""

from __future__ import annotations

import io

import numpy as np
import pytest
from test_embed import invoke, lvcg_subprocess, simulated, write_record

from lvcg_cli.errors import SettingsError
from lvcg_cli.settings import Settings, resolve_settings, with_checkpoint

pytest_plugins = ["test_embed"]  # tiny_checkpoint


@pytest.fixture()
def record(tmp_path):
    return write_record(tmp_path, "rec", simulated(1, seed=4)[0])


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("embed", ["--train.lr", "5"], "--train.lr: lvcg embed does not read the train settings"),
        (
            "reconstruct",
            ["--probe.ratio", "0.5"],
            "--probe.ratio: lvcg reconstruct does not read the probe settings",
        ),
        (
            "probe",
            ["--prepare.workers", "2"],
            "--prepare.workers: lvcg probe does not read the prepare settings",
        ),
        (
            "prepare-data",
            ["folder", "--train.lr", "5"],
            "--train.lr: lvcg prepare-data does not read the train",
        ),
        (
            "pretrain",
            ["--probe.ratio", "0.5"],
            "--probe.ratio: lvcg pretrain does not read the probe settings",
        ),
    ],
)
def test_a_section_the_command_does_not_read_is_refused(command, args, message, record, tmp_path):
    extra = [record] if command in {"embed", "reconstruct"} else []
    code, _, text = invoke(
        [
            command,
            *extra,
            *args,
            "--out" if command == "probe" else "-q",
            *([tmp_path / "o"] if command == "probe" else []),
        ]
    )
    assert code == 2
    assert text.startswith(message) and "\n" not in text


def test_yaml_and_environment_may_carry_every_section(record, tiny_checkpoint, tmp_path, monkeypatch):
    config = tmp_path / "all.yaml"
    config.write_text("train:\n  lr: 0.5\nprobe:\n  ratio: 0.5\n")
    monkeypatch.setenv("LVCG_TRAIN__MAX_STEPS", "7")
    code, result, text = invoke(["embed", record, "--checkpoint", tiny_checkpoint, "--config", config])
    assert code == 0, text
    assert np.load(io.BytesIO(result.stdout_bytes)).ndim == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data.fs", "500"], "--data.fs: fixed at 100 by the checkpoint"),
        (["--data.bandpass", "0.5,30"], "--data.bandpass: fixed at 0.67,40 by the checkpoint"),
        (["--model.d_token", "32"], "--model.d_token: fixed at 16 by the checkpoint"),
    ],
)
def test_a_checkpoint_fixed_key_is_refused_in_one_line(args, message, record, tiny_checkpoint):
    for command in ("embed", "reconstruct"):
        code, _, text = invoke([command, record, "--checkpoint", tiny_checkpoint, *args, "--visible", "I,II"])
        assert code == 2, command
        assert text == message, command


def test_a_fixed_key_given_its_checkpoint_value_is_accepted(record, tiny_checkpoint):
    code, result, text = invoke(["embed", record, "--checkpoint", tiny_checkpoint, "--data.fs", "100"])
    assert code == 0, text
    code, again, _ = invoke(["embed", record, "--checkpoint", tiny_checkpoint])
    assert result.stdout_bytes == again.stdout_bytes


def test_a_fixed_key_from_a_yaml_file_names_the_file(record, tiny_checkpoint, tmp_path):
    config = tmp_path / "other.yaml"
    config.write_text("data:\n  window_s: 5\n")
    code, _, text = invoke(["embed", record, "--checkpoint", tiny_checkpoint, "--config", config])
    assert code == 2 and text == f"--data.window_s: fixed at 10 by the checkpoint (from {config})"


@pytest.mark.slow
def test_refusals_are_one_line_on_stderr_with_exit_2(record, tiny_checkpoint):
    unused = lvcg_subprocess(
        "embed", record, "--checkpoint", tiny_checkpoint, "--train.lr", "5", "-o", record.with_suffix(".npy")
    )
    fixed = lvcg_subprocess(
        "embed", record, "--checkpoint", tiny_checkpoint, "--data.fs", "500", "-o", record.with_suffix(".npy")
    )
    for proc, text in ((unused, "--train.lr: lvcg embed does not read"), (fixed, "--data.fs: fixed at 100")):
        assert proc.returncode == 2
        lines = proc.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"lvcg: error: {text}")
    assert not record.with_suffix(".npy").exists()


def test_max_nan_gap_is_honoured_by_embed(tmp_path, tiny_checkpoint):
    """A 0.8 s gap in V2: dropped at the default 0.5 s, bridged with --data.max_nan_gap_s 1.0."""
    signal = simulated(1, seed=8)[0]
    signal[7, 2000:2400] = np.nan  # 400 samples at 500 Hz = 0.8 s
    header = write_record(tmp_path, "gap", signal)
    code, default, text = invoke(["embed", header, "--checkpoint", tiny_checkpoint])
    assert code == 0, text
    assert "has no V2" not in default.stderr and "V1, V3" in default.stderr  # V2 left out, said once
    code, lenient, text = invoke(
        ["embed", header, "--checkpoint", tiny_checkpoint, "--data.max_nan_gap_s", "1.0"]
    )
    assert code == 0, text
    a, b = np.load(io.BytesIO(default.stdout_bytes)), np.load(io.BytesIO(lenient.stdout_bytes))
    assert a.shape == b.shape and not np.allclose(a, b)
    # the lenient run sees every lead: the same as embedding the record with V2 repaired by hand
    repaired = signal.copy()
    repaired[7, 2000:2400] = np.interp(
        np.arange(2000, 2400), [1999, 2400], [signal[7, 1999], signal[7, 2400]]
    )
    code, by_hand, _ = invoke(
        ["embed", write_record(tmp_path, "byhand", repaired), "--checkpoint", tiny_checkpoint]
    )
    np.testing.assert_allclose(np.load(io.BytesIO(by_hand.stdout_bytes)), b, atol=2e-3)


def test_with_checkpoint_takes_fixed_keys_from_it_and_policies_from_the_user():
    checkpoint = resolve_settings(overrides={"data.pad_policy": "edge", "model.d_token": "32"}, environ={})
    user = resolve_settings(overrides={"data.max_nan_gap_s": "1.5", "engine.device": "cpu"}, environ={})
    merged = with_checkpoint(user, checkpoint)
    assert merged.model == checkpoint.model and merged.model.d_token == 32
    assert merged.data.max_nan_gap_s == 1.5  # the user's policy
    assert merged.data.pad_policy == "edge"  # not given by the user: what the checkpoint was trained with
    assert merged.engine.device == "cpu"
    # settings made in code have no user sources: nothing is refused, the checkpoint's input is used
    assert with_checkpoint(Settings(), checkpoint).model.d_token == 32
    with pytest.raises(
        SettingsError, match=r"^--model.d_token: fixed at 32 by the checkpoint \(so are --data.fs\)$"
    ):
        with_checkpoint(
            resolve_settings(overrides={"model.d_token": "8", "data.fs": "250"}, environ={}), checkpoint
        )

"""The walkthroughs in examples/ run as written, so none can rot.

Quick (every run): each example says what it shows and how long it takes, the Python ones use only
the public API (and say which library module they use instead), every `lvcg` command line in the
shell scripts parses with the real options, the READMEs link every example.

Slow (subprocesses, like a user runs them): every example is executed on small inputs and what it
prints or writes is checked against independent computations: the Python API for the same records,
the `lvcg` command line, values written in the source files (a MUSE file's heart rate), and for the
cluster recipe two gloo processes started by its own torchrun command, with a preemption and resume.
"""

from __future__ import annotations

import ast
import json
import os
import re
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, SHARED_DATA

import lvcg_cli

EXAMPLES = REPO / "examples"
CLUSTER = EXAMPLES / "04_cluster"
BUNDLED = Path(str(resources.files("lvcg_cli") / "assets" / "records"))
PYTHON_EXAMPLES = sorted(EXAMPLES.glob("*.py"))
SHELL_EXAMPLES = [*sorted(EXAMPLES.glob("*.sh")), *sorted(CLUSTER.glob("*"))]
MAIN_EXAMPLES = sorted(p for p in EXAMPLES.iterdir() if re.match(r"\d\d_", p.name))
LIBRARY_MODULES = {"lvcg_cli.plots", "lvcg_cli.downstream.features"}
"""Library modules an example may import, saying so in a comment: the rest is the public API."""
NO_DATA = "/nonexistent/shared/data"


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None, timeout: int = 400):
    """Run an example as a user does, with one OpenMP thread (the CI machine is shared)."""
    full_env = {**os.environ, "LVCG_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1", **(env or {})}
    proc = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"{args} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def shared_env() -> dict[str, str]:
    """Point the examples at the shared open records when they are there, else at nothing."""
    return {"LVCG_SHARED_DATA": str(SHARED_DATA) if SHARED_DATA.is_dir() else NO_DATA}


# --------------------------------------------------------------------------------------------
# quick checks
# --------------------------------------------------------------------------------------------
def test_there_are_five_examples_and_a_cluster_recipe():
    assert [p.name[:2] for p in MAIN_EXAMPLES] == ["01", "02", "03", "04", "05"]
    assert {p.name for p in CLUSTER.iterdir()} == {
        "pretrain_torchrun.sh",
        "pretrain.sbatch",
        "prepare_shards.sbatch",
    }


@pytest.mark.parametrize(
    "path", [p for p in MAIN_EXAMPLES if p.is_file()] + SHELL_EXAMPLES, ids=lambda p: p.name
)
def test_every_example_says_what_it_shows_and_how_long_it_takes(path):
    head = "\n".join(path.read_text().splitlines()[:45])
    assert re.search(r"\bTime\b\**:", head), f"{path.name}: no 'Time:' in its first lines"
    if path.parent == EXAMPLES:
        assert re.search(r"What it shows\**:", head), f"{path.name}: no 'What it shows:' in its first lines"


def test_the_notebook_is_in_jupytext_percent_format():
    text = (EXAMPLES / "01_embed_and_probe.py").read_text()
    assert text.startswith("# ---\n# jupyter:\n") and "format_name: percent" in text.split("# ---")[1]
    cells = re.findall(r"^# %%( \[markdown\])?$", text, flags=re.M)
    assert len(cells) >= 8 and cells.count(" [markdown]") >= 4  # prose between the steps


def _lvcg_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """(modules imported from lvcg_cli, attributes used as lvcg_cli.X) in a parsed example."""
    modules, attributes = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(a.name for a in node.names if a.name.startswith("lvcg_cli"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lvcg_cli"):
            modules.add(node.module or "")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "lvcg_cli"
        ):
            attributes.add(node.attr)
    return modules, attributes


@pytest.mark.parametrize("path", PYTHON_EXAMPLES, ids=lambda p: p.name)
def test_python_examples_use_the_public_api(path):
    text = path.read_text()
    modules, attributes = _lvcg_names(ast.parse(text))
    assert "lvcg_cli" in modules and attributes, f"{path.name} does not use the API"
    assert attributes <= set(lvcg_cli.__all__), (
        f"{path.name}: not exported: {attributes - set(lvcg_cli.__all__)}"
    )
    for module in modules - {"lvcg_cli"}:
        assert module in LIBRARY_MODULES, f"{path.name}: imports the internal module {module}"
        line = next(line for line in text.splitlines() if f"from {module} import" in line)
        before = text[: text.index(line)].splitlines()[-3:]
        assert any("library module" in b for b in before), (
            f"{path.name}: say that {module} is a library module"
        )


def test_the_public_api_check_catches_internals():
    tree = ast.parse("import lvcg_cli\nfrom lvcg_cli.downstream.embed import Embedder\nlvcg_cli.api.Model\n")
    modules, attributes = _lvcg_names(tree)
    assert (
        "lvcg_cli.downstream.embed" not in LIBRARY_MODULES | {"lvcg_cli"}
        and "lvcg_cli.downstream.embed" in modules
    )
    assert attributes == {"api"} and "api" not in lvcg_cli.__all__


@pytest.mark.parametrize("path", SHELL_EXAMPLES, ids=lambda p: p.name)
def test_shell_examples_are_valid_bash(path):
    proc = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# What the scripts' shell variables hold, for parsing their command lines with the real options.
SHELL_VALUES = {
    '"${probe_args[@]}"': "--dataset ludb --task axis --cv 5",
    '"${resume[@]}"': "--resume",
    '"$@"': "",
    '"$SLURM_ARRAY_TASK_ID/$SHARDS"': "3/64",
    '"${SLURM_CPUS_PER_TASK:-0}"': "16",
    '"$records"': "./my_ecgs",
    '"$checkpoint"': "runs/x/final.pt",
    '"$shared/ludb"': "../shared/data/ludb",
    '"$WORK/': '"./work/',
    '"$STEPS"': "200",
    '"$BATCH"': "16",
    '"$DATASET"': "mimic",
    '"$ROOT"': "/data/mimic-iv-ecg-1.0",
    '"$OUT"': "/shared/lvcg/prepared/mimic",
    '"$PRESET"': "lvcg-base",
    '"$DATA"': "/shared/lvcg/prepared/mimic",
    '"$RUN_DIR"': "/shared/lvcg/runs/base-mimic",
}


def _script_commands(path: Path) -> list[str]:
    """Every `lvcg ...` or `torchrun ... -m lvcg_cli ...` command of a shell script, with values."""
    commands = []
    for line in path.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if line.startswith("#"):
            continue
        inner = re.search(r"\$\((lvcg\s.*)\)\"?\s*$", line)  # checkpoint="$(lvcg pretrain ...)"
        match = inner or re.search(r"(?:^|\s)((?:lvcg|torchrun)\s.*)$", line)
        if match is None or (match.group(1).startswith("torchrun") and "-m lvcg_cli" not in line):
            continue
        command = match.group(1)
        for shell, value in SHELL_VALUES.items():
            command = command.replace(shell, value)
        lvcg_part = command[command.index("lvcg") :]
        assert "$" not in lvcg_part, f"{path.name}: no value for a variable in {command}"
        commands.append(command)
    return commands


@pytest.mark.parametrize("path", SHELL_EXAMPLES, ids=lambda p: p.name)
def test_every_lvcg_command_in_the_scripts_parses(path, monkeypatch):
    from test_help import parse_example

    commands = _script_commands(path)
    expected = {
        "03_own_data.sh": 5,
        "pretrain_torchrun.sh": 1,
        "prepare_shards.sbatch": 1,
        "pretrain.sbatch": 0,
    }
    assert len(commands) == expected[path.name], commands
    for command in commands:
        parse_example(command, monkeypatch)


def test_the_readmes_link_every_example():
    index = (EXAMPLES / "README.md").read_text()
    top = (REPO / "README.md").read_text()
    assert "](examples/README.md)" in top
    for path in MAIN_EXAMPLES:
        link = path.name + ("/" if path.is_dir() else "")
        assert f"]({link})" in index, f"examples/README.md does not link {link}"
        line = next((line for line in top.splitlines() if f"](examples/{link})" in line), None)
        assert line is not None and len(line.split(":", 1)[-1].split()) >= 6, f"README.md: one line on {link}"
    for path in CLUSTER.iterdir():
        assert f"](04_cluster/{path.name})" in index


# --------------------------------------------------------------------------------------------
# 1. embed and probe (notebook)
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_embed_and_probe_prints_aurocs_of_the_embedding_and_the_features(shared_data, tmp_path):
    ptbxl = shared_data / "ptbxl"
    env = {"LVCG_PTBXL": str(ptbxl), "LVCG_EXAMPLE_MAX_RECORDS": "300"}
    proc = run([sys.executable, str(EXAMPLES / "01_embed_and_probe.py")], cwd=tmp_path, env=env)
    out = proc.stdout

    # counts: at most the 300 records asked for (those without a diagnostic statement are left out)
    count = re.search(r"^(\d+) records of (\d+) patients", out, flags=re.M)
    assert count is not None, out
    n, patients = int(count.group(1)), int(count.group(2))
    assert 200 <= n <= 300 and 0 < patients <= n
    positives = dict(re.findall(r"^(CD|HYP|MI|NORM|STTC)\s+(\d+)$", out, flags=re.M))
    assert set(positives) == {"CD", "HYP", "MI", "NORM", "STTC"}
    assert sum(int(v) for v in positives.values()) >= n  # every record kept has a class

    header = out.index("test AUROC (fold 10:")
    lines = out[header:].splitlines()
    assert lines[1].split() == ["CD", "HYP", "MI", "NORM", "STTC", "macro"]
    parsed = [re.match(r"^\s*(.*?)\s+((?:\S+\s+){5}\S+)$", line) for line in lines[2:6]]
    rows = {m.group(1): m.group(2).split() for m in parsed if m}
    assert [r.split(" (")[0] for r in rows] == [
        "lvcg embedding",
        "learned: morph_*, dyn_*",
        "measured: rhythm, VCG",
        "handcrafted features",
    ]
    model = lvcg_cli.load_model(device="cpu")
    assert f"lvcg embedding ({model.embedding_dim})" in rows
    for name, values in rows.items():
        numbers = [float(v) for v in values if v != "-"]
        assert len(numbers) >= 4, f"{name}: {values}"
        assert all(0.0 <= v <= 1.0 for v in numbers)
        assert values[-1] != "-" and float(values[-1]) == pytest.approx(np.mean(numbers[:-1]), abs=2e-3)
    assert float(rows[f"lvcg embedding ({model.embedding_dim})"][-1]) > 0.5  # better than chance


@pytest.mark.slow
def test_embed_and_probe_says_where_to_get_ptbxl(tmp_path):
    env = {"LVCG_PTBXL": str(tmp_path / "nowhere")}
    args = [sys.executable, str(EXAMPLES / "01_embed_and_probe.py")]
    proc = subprocess.run(
        args, cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (
        "no ptbxl_database.csv" in proc.stderr
        and "https://physionet.org/content/ptb-xl/1.0.3/" in proc.stderr
    )


# --------------------------------------------------------------------------------------------
# 2. three leads
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("data", ["shared", "bundled"])
def test_three_leads_prints_every_methods_scores_and_draws_the_printout(tmp_path, data):
    env = shared_env() if data == "shared" else {"LVCG_SHARED_DATA": NO_DATA}
    figure = tmp_path / "three.svg"
    proc = run(
        [sys.executable, str(EXAMPLES / "02_three_leads.py"), "--out", str(figure)], cwd=tmp_path, env=env
    )
    held_out = Path(env["LVCG_SHARED_DATA"]) / "ptbxl" / "records500" / "00000" / "00009_hr.hea"
    path = held_out if held_out.is_file() else BUNDLED / "ptbxl" / "00001_hr.hea"
    assert proc.stdout.startswith(f"{path.stem} (wfdb, 500 Hz, 10.0 s): 5 hidden leads")

    # the table is what the API gives for the same record, per method and lead
    model = lvcg_cli.load_model(device="cpu")
    record = lvcg_cli.read_record(path)
    three = record.signal[[0, 1, 7]]
    rows = {
        line.split()[0]: line for line in proc.stdout.splitlines() if re.match(r"^(V[1-6]|mean)\s+\|", line)
    }
    hidden = ["V1", "V3", "V4", "V5", "V6"]
    assert list(rows) == [*hidden, "mean"]
    for k, method in enumerate(("lvcg", "physics", "linear")):
        full = model.reconstruct(three, fs=record.fs, leads=["I", "II", "V2"], method=method)
        scores = model.score(full, record.signal, fs=record.fs)
        for lead in hidden:
            r, e, a = (float(x) for x in rows[lead].split("|")[k + 1].split())
            assert r == pytest.approx(scores[lead].r, abs=6e-4) and -1 <= r <= 1
            assert e == pytest.approx(scores[lead].rmse, abs=6e-5) and e >= 0
            assert a == pytest.approx(scores[lead].ptp_ratio, abs=6e-3) and a > 0
        mean_r = float(rows["mean"].split("|")[k + 1].split()[0])
        assert mean_r == pytest.approx(np.mean([scores[n].r for n in hidden]), abs=6e-4)

    # the printout: 12 originals, the model's trace on the 9 leads it did not see, true paper size
    svg = ET.parse(figure).getroot()
    gids = {element.get("id") for element in svg.iter() if element.get("id")}
    for lead in lvcg_cli.CANONICAL_LEADS:
        assert f"original-{lead}" in gids
        assert (f"reconstruction-{lead}" in gids) == (lead not in ("I", "II", "V2")), lead
    assert {"rhythm", "row-0", "row-1", "row-2", "calibration", "paper-speed"} <= gids
    width_mm = 8 + (0.4 + 10.0) * 25 + 8  # margins + calibration pulse + 10 s at 25 mm/s
    assert float(svg.get("width").removesuffix("pt")) == pytest.approx(width_mm / 25.4 * 72, rel=1e-3)
    assert "25 mm/s, 10 mm/mV" in figure.read_text()


# --------------------------------------------------------------------------------------------
# 3. own data, end to end
# --------------------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("data", ["shared", "bundled"])
def test_own_data_script_prepares_pretrains_probes_and_embeds(tmp_path, data):
    """With ../shared/data: PTB-XL's 333 records at 500 Hz, probed on LUDB's axis; without: the six
    bundled records, probed on the built-in simulated set."""
    where = shared_env() if data == "shared" else {"LVCG_SHARED_DATA": NO_DATA}
    env = {**where, "WORK": str(tmp_path / "work"), "STEPS": "3"}  # the script's own batch size
    proc = run(["bash", str(EXAMPLES / "03_own_data.sh")], cwd=tmp_path, env=env, timeout=600)
    out = proc.stdout
    assert re.findall(r"^== (\d)\.", out, flags=re.M) == ["1", "2", "3", "4"]
    shared_records = Path(env["LVCG_SHARED_DATA"]) / "ptbxl" / "records500"
    records = shared_records if shared_records.is_dir() else BUNDLED
    expected_ids = sorted(p.stem for p in lvcg_cli.find_records([str(records)]))

    work = tmp_path / "work"
    meta = json.loads((work / "prepared" / "meta.json").read_text())
    assert meta["complete"] and meta["n"] == len(expected_ids)  # every record of the folder

    checkpoint = Path(re.search(r"^checkpoint: (.+)$", out, flags=re.M).group(1))
    assert checkpoint.parent.parent == work / "runs" and checkpoint.name == "final.pt"
    metrics = [json.loads(line) for line in (checkpoint.parent / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1].get("event") == "final" and metrics[-1]["step"] == 3

    probe_rows = [
        [c.strip() for c in line.split("│")[1:-1]] for line in out.splitlines() if line.startswith("│")
    ]
    assert [row[2] for row in probe_rows] == ["lvcg", "random-init", "features"]
    for row in probe_rows:
        assert 0.0 <= float(row[5].split()[0]) <= 1.0

    saved = np.load(work / "embeddings.npz")
    model = lvcg_cli.load_model(checkpoint, device="cpu")
    assert sorted(saved["ids"].tolist()) == expected_ids
    assert saved["embeddings"].shape == (len(expected_ids), model.embedding_dim)
    assert saved["names"].tolist() == model.embedding_names
    first = lvcg_cli.find_records([str(records)])[0]
    record = lvcg_cli.read_record(first)
    row = saved["ids"].tolist().index(record.id)
    np.testing.assert_allclose(saved["embeddings"][row], model.embed(record.signal, fs=record.fs), atol=1e-5)
    assert f"{len(expected_ids)} records x {model.embedding_dim} dimensions" in out


# --------------------------------------------------------------------------------------------
# 4. beyond one machine
# --------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_cluster_recipe_prepares_shards_trains_two_ranks_and_resumes_after_preemption(tmp_path):
    """The SLURM array prepares two shards; pretrain.sbatch (srun and scontrol stood in for, so it
    runs here) stages the cache and starts the recipe's torchrun with two CPU gloo ranks; a
    "preempted" run (final checkpoint lost, ckpt-2 left) started again by the same torchrun command
    resumes and ends with the weights of the uninterrupted run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text('#!/usr/bin/env bash\nwhile [[ $1 == --* ]]; do shift; done\nexec "$@"\n')
    (bin_dir / "scontrol").write_text("#!/usr/bin/env bash\necho localhost\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    prepared = tmp_path / "prepared"
    for task in (0, 1):
        env = {"SLURM_ARRAY_TASK_ID": str(task), "SLURM_CPUS_PER_TASK": "1", "SHARDS": "2"}
        env.update({"DATASET": "folder", "ROOT": str(BUNDLED), "OUT": str(prepared)})
        run(["bash", str(CLUSTER / "prepare_shards.sbatch")], cwd=tmp_path, env=env)
    shards = sorted(p.name for p in prepared.iterdir())
    assert shards == ["shard-0-of-2", "shard-1-of-2"]
    ids = [pd.read_csv(prepared / s / "manifest.csv").id.tolist() for s in shards]
    assert sorted(ids[0] + ids[1]) == sorted(
        str(p.relative_to(BUNDLED).with_suffix("")) for p in lvcg_cli.find_records([str(BUNDLED)])
    )
    assert not set(ids[0]) & set(ids[1])

    run_dir = tmp_path / "shared" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("# a job killed before its first checkpoint\n")
    tiny = [
        "--accelerator", "cpu", "--train.batch_size", "2", "--train.log_every", "1", "--train.ckpt_every", "2",
        "--train.val_every", "2", "--model.encoder_channels", "8,16", "--model.lifter_channels", "8",
        "--model.lifter_layers", "1", "--model.state_dim", "16", "--model.d_token", "16",
    ]  # fmt: skip
    job = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_NNODES": "1",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "localhost",
        "SLURM_SUBMIT_DIR": str(REPO),
        "RUN_DIR": str(run_dir),
        "DATA": str(prepared),
        "STAGE_DIR": str(tmp_path / "node-local"),
        "RDZV_ENDPOINT": f"127.0.0.1:{_free_port()}",
        "NPROC_PER_NODE": "2",
        "PRESET": "lvcg-tiny",
        "STEPS": "4",
    }
    first = run(["bash", str(CLUSTER / "pretrain.sbatch"), *tiny], cwd=tmp_path, env=job)
    assert (tmp_path / "shared" / "run.no-checkpoint-4242" / "config.yaml").is_file()  # set aside
    assert sorted(p.name for p in (tmp_path / "node-local").iterdir()) == shards  # the staged copy
    assert "batch 2 x 2 process(es)" in first.stderr and "resuming" not in first.stderr
    assert first.stdout.strip() == str(run_dir / "final.pt")
    straight = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in straight if "loss" in m] == [1, 2, 3, 4]
    checksums = straight[-1]["param_checksums"]
    assert straight[-1]["event"] == "final" and len(checksums) == 2 and checksums[0] == checksums[1]
    assert (run_dir / "ckpt-2.pt").is_file()

    (run_dir / "final.pt").unlink()  # preempted after step 2's checkpoint
    (run_dir / "best.pt").unlink()
    again = {**job, "DATA": str(tmp_path / "node-local"), "RDZV_ENDPOINT": f"127.0.0.1:{_free_port()}"}
    second = run(["bash", str(CLUSTER / "pretrain_torchrun.sh"), *tiny], cwd=tmp_path, env=again)
    assert "resuming at step 2" in second.stderr
    resumed = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in resumed if "loss" in m] == [1, 2, 3, 4]  # nothing logged twice
    assert resumed[-1]["param_checksums"] == checksums  # as if it had never stopped


# --------------------------------------------------------------------------------------------
# 5. clinical files
# --------------------------------------------------------------------------------------------
def _cli_table(inputs: list[str], out: Path, cwd: Path) -> pd.DataFrame:
    run([sys.executable, "-m", "lvcg_cli", "embed", *inputs, "-o", str(out)], cwd=cwd)
    return pd.read_parquet(out)


@pytest.mark.slow
def test_clinical_files_table_is_what_lvcg_embed_writes(shared_data, tmp_path):
    table_path = tmp_path / "clinical.parquet"
    env = {"LVCG_SHARED_DATA": str(shared_data)}
    proc = run(
        [sys.executable, str(EXAMPLES / "05_clinical_files.py"), "-o", str(table_path)], cwd=tmp_path, env=env
    )
    table = pd.read_parquet(table_path)
    expected = _cli_table([str(shared_data / "clinical")], tmp_path / "cli.parquet", tmp_path)
    model = lvcg_cli.load_model(device="cpu")
    assert list(table.columns) == list(expected.columns) == ["id", *model.embedding_names]
    assert table.id.tolist() == expected.id.tolist() and len(table) == 9
    np.testing.assert_allclose(table.iloc[:, 1:].to_numpy(), expected.iloc[:, 1:].to_numpy(), atol=1e-5)
    formats = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()[2:11]}
    assert sorted(set(formats.values())) == ["aecg", "dicom", "edf", "muse", "philips", "scp"]

    # independent truths: the MUSE files' own heart rate, and two files of one ECG in two formats
    for muse in sorted((shared_data / "clinical" / "muse").glob("*.xml")):
        rate = float(ET.parse(muse).getroot().find(".//RestingECGMeasurements/VentricularRate").text)
        printed = next(line for line in proc.stdout.splitlines() if line.startswith(muse.stem + " "))
        assert float(printed.split()[-1]) == pytest.approx(rate, abs=2.0), printed
    same = table.set_index("id").loc[["HL7_Example_aECG", "ECGToolkit_Example"]].to_numpy()
    np.testing.assert_allclose(same[0], same[1], atol=1e-4)  # HL7 aECG and SCP-ECG of the same signal
    assert f"wrote {table_path}: 9 records x {model.embedding_dim} named columns" in proc.stdout


@pytest.mark.slow
def test_clinical_files_fall_back_to_pydicoms_ecg_and_the_bundled_records(tmp_path):
    from pydicom.data import get_testdata_file

    table_path = tmp_path / "fallback.parquet"
    run(
        [sys.executable, str(EXAMPLES / "05_clinical_files.py"), "-o", str(table_path)],
        cwd=tmp_path,
        env={"LVCG_SHARED_DATA": NO_DATA},
    )
    table = pd.read_parquet(table_path).set_index("id")
    bundled = lvcg_cli.find_records([str(BUNDLED)])
    assert sorted(table.index) == sorted(["waveform_ecg", *(p.stem for p in bundled)])
    model = lvcg_cli.load_model(device="cpu")
    dicom = lvcg_cli.read_record(get_testdata_file("waveform_ecg.dcm"))
    assert dicom.meta["format"] == "dicom"
    np.testing.assert_allclose(
        table.loc["waveform_ecg"].to_numpy(), model.embed(dicom.signal, fs=dicom.fs), atol=1e-5
    )

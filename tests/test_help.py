"""Help that is true: every example parses against the real options and data-set names, help texts
render literally, flags show as flags, defaults and task lists are the real ones."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from conftest import FIXTURES, REPO
from typer.testing import CliRunner

from lvcg_cli.commands import _common
from lvcg_cli.commands.probe import PROBE_TASKS
from lvcg_cli.datasets import default as builtin
from lvcg_cli.datasets.registry import DATASETS
from lvcg_cli.errors import LvcgError
from lvcg_cli.main import app
from lvcg_cli.settings import ProbeSettings, Settings

runner = CliRunner()
ROOT = typer.main.get_command(app)
REDIRECTS = {">", ">>", "2>", "|", "&&", ";", "&"}


def _commands() -> list[tuple[list[str], object]]:
    """(path, click command) of every leaf command: ``["probe"]``, ``["config", "show"]`` ..."""
    found = []
    for name, command in ROOT.commands.items():
        if hasattr(command, "commands"):
            found += [([name, sub], leaf) for sub, leaf in command.commands.items()]
        else:
            found.append(([name], command))
    return found


COMMANDS = _commands()
IDS = [" ".join(path) for path, _ in COMMANDS]
EVERY_HELP = [([], ROOT), (["config"], ROOT.commands["config"]), *COMMANDS]


def rendered_help(path: list[str]) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return result.stdout


def _flat(text: str) -> str:
    """Whitespace-normalised text with the help panels' box drawing removed (wrapped cells rejoin)."""
    return " ".join(re.sub(r"[│╭╮╰╯─┃━]", " ", text).split())


# --------------------------------------------------------------------------------------------
# rendering
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("path", "command"), EVERY_HELP, ids=["lvcg", "config", *IDS])
def test_help_texts_render_literally(path, command):
    """Placeholders such as RUN_FOLDER or <x>, underscores and stars reach the reader as written."""
    shown = _flat(rendered_help(path))
    for param in command.params:
        if getattr(param, "help", None):
            assert _flat(param.help.replace("`", "")) in shown, f"{param.name}: help rendered differently"
    for paragraph in re.split(r"\n\s*\n", (command.help or "").split("\f")[0]):
        text = _flat(paragraph.replace("`", ""))
        if text:
            assert text in shown, f"`lvcg {' '.join(path)} --help` renders this paragraph differently: {text}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_flags_show_as_flags(path, command):
    text = rendered_help(path)
    assert "<bool>" not in text
    for param in command.params:
        if getattr(param, "is_flag", False):
            line = next(line for line in text.splitlines() if f" {param.opts[0]} " in f"{line} ")
            assert not re.search(rf"{re.escape(param.opts[0])}\s+(-\w\s+)?<", line), line


def test_a_flag_given_a_value_says_so():
    result = runner.invoke(app, ["prepare-data", "ludb", "--force", "true"])
    assert isinstance(result.exception, LvcgError)
    assert str(result.exception) == "--force is a flag and takes no value (--force true: write --force alone)"


def test_probe_help_shows_the_real_defaults_and_every_tasks():
    text = _flat(rendered_help(["probe"]))
    defaults = ProbeSettings()
    assert f"mean +/- std (default: {defaults.seeds[0]})" in text
    assert f"(default: {defaults.ratio:g})" in text and f"(default: {defaults.dataset})" in text
    assert "(default: a new runs/probe-YYYYmmdd-HHMMSS-XXXX)" in text
    assert "(default: RUN_FOLDER/probing_results.csv)" in text
    for dataset, tasks in PROBE_TASKS.items():
        assert f"{dataset}: {', '.join(tasks)}" in text


def _plan_tasks(name: str, root: Path) -> tuple[list[str], str | None]:
    from lvcg_cli.datasets.registry import module_for

    plan = module_for(name).build_plan(root, Settings())
    return list(plan.tasks), plan.default_task


@pytest.mark.parametrize(
    ("name", "root"),
    [
        ("ptbxl", "ptbxl"),
        ("cpsc2018", "cpsc2018"),
        ("chapman", "chapman"),
        ("ai-readi", "ai-readi"),
        ("ludb", "ludb"),
    ],
)
def test_the_task_lists_in_help_are_what_prepare_data_writes(name, root):
    tasks, default = _plan_tasks(name, FIXTURES / "releases" / root)
    assert sorted(PROBE_TASKS[name]) == sorted(tasks)
    assert PROBE_TASKS[name][0] == default  # listed first: the default


def test_the_sim_task_list_is_what_the_builtin_set_has(tmp_path):
    from lvcg_cli.datasets.prepared import open_datasets
    from lvcg_cli.settings import resolve_settings

    settings = resolve_settings(overrides={"paths.cache_dir": str(tmp_path)})
    cache = open_datasets(["sim"], settings)[0]
    assert (
        list(cache.tasks) == list(PROBE_TASKS["sim"]) and cache.meta["default_task"] == PROBE_TASKS["sim"][0]
    )


# --------------------------------------------------------------------------------------------
# examples
# --------------------------------------------------------------------------------------------
def _help_examples() -> list[tuple[str, str]]:
    found = []
    for path, command in COMMANDS:
        for line in (command.help or "").splitlines():
            line = line.strip()
            if re.match(r"^([A-Z_][A-Z0-9_]*=\S+\s+)*lvcg\s", line) or "-m lvcg_cli" in line:
                found.append((f"lvcg {' '.join(path)} --help", line))
    return found


def _doc_examples() -> list[tuple[str, str, str | None]]:
    """(file, command line, the error it must print or None) from bash and console blocks."""
    found = []
    for doc in [
        REPO / "README.md",
        *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "examples").glob("*.md")),
    ]:
        text = doc.read_text()
        for kind, block in re.findall(r"```(bash|console)\n(.*?)```", text, flags=re.S):
            lines = block.replace("\\\n", " ").splitlines()
            for i, line in enumerate(lines):
                command = line[2:] if kind == "console" and line.startswith("$ ") else line
                if kind == "console" and not line.startswith("$ "):
                    continue
                if not (re.search(r"(^|\s)lvcg\s", command) or "-m lvcg_cli" in command):
                    continue
                after = lines[i + 1] if i + 1 < len(lines) else ""
                error = after.removeprefix("lvcg: error: ") if after.startswith("lvcg: error: ") else None
                found.append((str(doc.relative_to(REPO)), command.strip(), error))
    return found


HELP_EXAMPLES = _help_examples()
DOC_EXAMPLES = _doc_examples()


class _Parsed(Exception):
    """Raised where a command has parsed and validated its options into settings (no work done)."""

    def __init__(self, settings: Settings):
        self.settings = settings


def lvcg_args(line: str) -> tuple[list[str], dict[str, str]]:
    """The arguments after ``lvcg`` (or ``-m lvcg_cli``) and the environment assignments before it."""
    line = re.sub(
        r"\$\{?[A-Z_][A-Z0-9_]*\}?", "1", line
    )  # a shell variable ($SLURM_ARRAY_TASK_ID) holds a number
    tokens = shlex.split(line, comments=True)
    env = {}
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):
        key, value = tokens.pop(0).split("=", 1)
        env[key] = value
    if "-m" in tokens and tokens[tokens.index("-m") + 1] == "lvcg_cli":
        args = tokens[tokens.index("-m") + 2 :]
    else:
        start = tokens.index("lvcg")
        env.update(dict(t.split("=", 1) for t in tokens[:start] if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", t)))
        args = tokens[start + 1 :]
    cut = next((i for i, t in enumerate(args) if t in REDIRECTS or t.startswith(("2>", ">"))), len(args))
    return args[:cut], env


def parse_example(line: str, monkeypatch) -> Settings | None:
    """Run ``line`` through the real command up to its resolved settings; LvcgError if it is wrong.

    Returns the settings (None for commands that resolve none, e.g. ``config presets``).
    """
    import lvcg_cli.commands.config as config_cmd
    import lvcg_cli.commands.embed as embed_cmd
    import lvcg_cli.commands.prepare_data as prepare_cmd
    import lvcg_cli.commands.pretrain as pretrain_cmd
    import lvcg_cli.commands.probe as probe_cmd
    import lvcg_cli.commands.reconstruct as reconstruct_cmd

    def stop(*args, **kwargs):
        kwargs["config"] = None  # --config files in examples are the user's own
        raise _Parsed(_common.settings_from(*args, **kwargs))

    for module in (config_cmd, embed_cmd, prepare_cmd, pretrain_cmd, probe_cmd, reconstruct_cmd):
        monkeypatch.setattr(module, "settings_from", stop)
    args, env = lvcg_args(line)
    for token in args:  # bundled files named in examples exist
        if token.startswith("lvcg_cli/"):
            assert (REPO / token).exists(), f"{line}: {token} does not exist"
    result = runner.invoke(app, args, env=env)
    if isinstance(result.exception, _Parsed):
        settings = result.exception.settings
    elif isinstance(result.exception, LvcgError):
        raise result.exception
    else:
        assert result.exit_code == 0, f"{line}: {result.output}"
        settings = None
    _check_names(args, settings)
    return settings


def _known_data(name: str) -> bool:
    return "/" in name or name.startswith((".", "~")) or name in DATASETS or name in builtin.BUILTIN_NAMES


def _check_names(args: list[str], settings: Settings | None) -> None:
    """Data-set names and tasks in an example must exist."""
    command = args[0] if args else ""
    if command == "pretrain" and settings is not None and settings.data.meta_root is None:
        for name in settings.data.datasets:
            if not _known_data(name):
                raise LvcgError(f"{name}: unknown data set")
    if command in {"reconstruct", "embed"} and "--data" in args:
        name = args[args.index("--data") + 1]
        if not _known_data(name):
            raise LvcgError(f"{name}: unknown data set")
    if command == "probe" and settings is not None and "--all" not in args:
        dataset, task = settings.probe.dataset, settings.probe.task
        if not _known_data(dataset):
            raise LvcgError(f"{dataset}: unknown data set")
        if dataset in PROBE_TASKS and task != "default" and task not in PROBE_TASKS[dataset]:
            raise LvcgError(f"{dataset}: no task {task!r}")


def test_there_are_examples_to_check():
    assert len(HELP_EXAMPLES) >= 15 and len(DOC_EXAMPLES) >= 15
    assert {line.split()[1] for _, line in HELP_EXAMPLES if line.startswith("lvcg ")} >= {
        "prepare-data",
        "pretrain",
        "probe",
        "reconstruct",
        "embed",
        "config",
    }


@pytest.mark.parametrize(("where", "line"), HELP_EXAMPLES, ids=[f"{w}: {x}" for w, x in HELP_EXAMPLES])
def test_every_help_example_parses(where, line, monkeypatch):
    parse_example(line, monkeypatch)


@pytest.mark.parametrize(
    ("where", "line", "error"), DOC_EXAMPLES, ids=[f"{w}: {x}" for w, x, _ in DOC_EXAMPLES]
)
def test_every_documented_example_parses_or_fails_as_documented(where, line, error, monkeypatch):
    if error is None:
        parse_example(line, monkeypatch)
    else:
        with pytest.raises(LvcgError) as exc:
            parse_example(line, monkeypatch)
        assert str(exc.value) == error


def test_the_example_checker_catches_wrong_examples(monkeypatch):
    """The checks above can fail: wrong names, options, settings and values are caught."""
    for wrong in (
        "lvcg pretrain --preset lvcg-base --data mimic-iv-ecg --gpus 4",
        "lvcg prepare-data ptb-xl --root x",
        "lvcg probe --dataset ptbxl --task superclass",
        "lvcg probe --ratio 2",
        "lvcg pretrain --train.lrr 1",
        "lvcg prepare-data ludb --force true",
        "lvcg embed file.hea --no-such-option 3",
    ):
        with pytest.raises((LvcgError, AssertionError)):
            parse_example(wrong, monkeypatch)


def test_an_unknown_data_set_name_suggests_one_that_works(monkeypatch):
    from lvcg_cli.datasets.prepared import open_datasets

    with pytest.raises(LvcgError) as exc:
        open_datasets(["mimic-iv-ecg"], Settings())
    message = str(exc.value)
    assert message.startswith("mimic-iv-ecg: unknown data set (did you mean 'mimic'?)")
    with pytest.raises(LvcgError) as exc:
        open_datasets(["mimic"], Settings())
    suggested = re.search(r"run `(lvcg prepare-data [^`]+)`", str(exc.value)).group(1)
    assert suggested == "lvcg prepare-data mimic --root PATH"
    parse_example(suggested, monkeypatch)  # the suggested fix is itself accepted

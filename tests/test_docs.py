"""The docs promise things that must stay true: the README's set-up commands and CI agree."""

from __future__ import annotations

import re

from conftest import REPO


def _bash_blocks(markdown: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.S)]


def test_ci_runs_exactly_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    setup = [b for b in _bash_blocks(readme) if b.startswith("python3 -m venv")]
    assert len(setup) == 2, "the README's set-up is two copy-paste commands"
    main_job, test_command = setup
    assert main_job.endswith("lvcg pretrain")
    assert test_command.endswith("pytest -q")
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci


def test_architecture_doc_names_only_modules_that_exist():
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text()
    for module in sorted(set(re.findall(r"`(lvcg_cli/[\w/]+\.py)`", text))):
        assert (REPO / module).is_file(), f"docs/ARCHITECTURE.md names {module}, which does not exist"


def test_the_readme_python_example_runs(monkeypatch):
    """The notebook-sized API example works as printed (bundled weights and records)."""
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README shows the Python API"
    monkeypatch.chdir(REPO)
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)  # noqa: S102 - our own documentation
    assert scope["vector"].shape == (len(scope["names"]),)
    assert scope["full"].shape == scope["record"].signal.shape
    assert list(scope["table"].columns) == scope["names"]

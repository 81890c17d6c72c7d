"""``python -m lvcg_cli`` is the same as ``lvcg`` (needed for ``torchrun -m lvcg_cli``)."""

from lvcg_cli.main import run

if __name__ == "__main__":
    run()

"""Turn a training checkpoint into shippable weights: drop optimiser, scheduler and RNG states.

    python scripts/export_weights.py runs/bundled-tiny/final.pt lvcg_cli/assets/weights/lvcg-tiny.pt

The result is still an ``lvcg-checkpoint/2`` file (``load_model`` reads it, strictly, with
``weights_only=True``) that holds only the weights, the architecture/preprocessing settings and
the step; machine-specific paths in the settings are reset so nothing local is shipped. The
script reloads what it wrote and checks that the weights are bit-identical.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import torch

from lvcg_cli.atomic import atomic_path
from lvcg_cli.engine.checkpoint import checkpoint_settings, load_checkpoint, load_model
from lvcg_cli.settings import PathSettings, RunSettings


def export(source: Path, target: Path) -> dict:
    ckpt = load_checkpoint(source)
    settings = checkpoint_settings(ckpt, source)
    settings.paths = PathSettings()
    settings.run = RunSettings(run_id=settings.run.run_id)
    settings.data.meta_root = None
    slim = {
        "format": ckpt["format"],
        "model_state": {k: v.detach().clone().contiguous() for k, v in ckpt["model_state"].items()},
        "settings": settings.model_dump(mode="json"),
        "arch": ckpt["arch"],
        "step": ckpt["step"],
    }
    with atomic_path(target) as tmp:
        torch.save(slim, tmp)
    model, _ = load_model(target)
    for key, value in model.state_dict().items():
        if not torch.equal(value, ckpt["model_state"][key].to(value.dtype)):
            raise SystemExit(f"{target}: reloaded weights differ at {key}")
    return {
        "path": str(target),
        "bytes": target.stat().st_size,
        "sha256": hashlib.sha256(target.read_bytes()).hexdigest(),
        "step": slim["step"],
        "arch": slim["arch"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("source", type=Path, help="Training checkpoint (e.g. runs/<id>/final.pt).")
    parser.add_argument("target", type=Path, help="Where to write the weights-only file.")
    args = parser.parse_args()
    info = export(args.source, args.target)
    print(
        f"wrote {info['path']}: {info['bytes'] / 1e6:.2f} MB, step {info['step']}, {info['arch']['name']} "
        f"({info['arch']['n_params']:,} parameters), sha256 {info['sha256']}"
    )


if __name__ == "__main__":
    main()

"""Where one training step spends its time: torch.profiler over the optimiser step of the real loop.

    python benchmarks/profile_step.py                              # lvcg-tiny and lvcg-base, batch 16 and 64, CPU
    python benchmarks/profile_step.py --presets lvcg-base --batches 64 --device cuda --json out/profile.json

The step is the trainer's (``engine/trainer.py``): autocast, forward, ``model.loss``, backward,
gradient clip, AdamW (``build_optimizer``: fused on CUDA). The batch is real records (the bundled
PTB-XL/LUDB excerpts) through ``make_sample`` with the training visible-lead distribution. After
``--warmup`` steps, ``--steps`` steps are profiled; figures are per step:

* **phases**: forward / loss / backward / optimiser (clip + AdamW) share of the step;
* **stages**: forward and backward CPU time of each stage (physics lift, learned lift, cut,
  encoder, dynamics, decoder, stitch, project, refine; "loss: X" = stage X called by the loss),
  labelled from here with hooks and wrappers (the model's code is not changed); backward time is
  mapped to the forward operator that created it through autograd's sequence numbers; "glue" is
  the rest (masking, indexing, the loss's own arithmetic, gradient accumulation);
* **operators**: the top ``--top`` by self CPU time, with calls per step;
* **operator calls per step**, all and top-level (called from Python, not from inside another
  operator: roughly the kernel launches a GPU would see);
* **synchronisations**: calls per step of the operators that make a CUDA host wait for the device
  (``aten::nonzero``, ``aten::_local_scalar_dense`` = ``.item()``/``bool()``/``int()`` of a
  tensor, ``aten::_linalg_check_errors`` = the error check of ``torch.linalg.solve``), each with
  the stage it is called from. They are found on the CPU too: the operators are the same.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile, record_function

SYNC_OPS = ("aten::nonzero", "aten::_local_scalar_dense", "aten::_linalg_check_errors")
MODULE_STAGES = {
    "lifter": "learned lift",
    "encoder": "encoder",
    "dynamics": "dynamics (GRU)",
    "decoder": "decoder",
}
MODULE_STAGES["refine"] = "refine"
PHASES = ("forward", "loss", "backward", "optimizer")
BACKWARD_PREFIX = "autograd::engine::evaluate_function: "


def real_batch(settings: Any, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """``batch`` bundled open records as training samples (visible leads drawn as in training)."""
    from lvcg_cli.datasets.default import open_records_batch

    return open_records_batch(settings, batch, seed)


def _labelled(fn: Any, label: str) -> Any:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with record_function(f"stage/{label}"):
            return fn(*args, **kwargs)

    return wrapper


def label_stages(model: torch.nn.Module) -> list[Any]:
    """Name every stage of the model in the profile, from outside (the model's code is not changed).

    Modules get forward pre/post hooks; the physics lift and projection (methods of the lead field)
    and cut/stitch (functions) are wrapped where the model and the loss look them up. Returns the
    hook handles and the originals, for :func:`unlabel_stages`.
    """
    from lvcg_cli.model import losses as losses_mod
    from lvcg_cli.model import lvcg as lvcg_mod

    undo: list[Any] = []
    for attr, label in MODULE_STAGES.items():
        module = getattr(model, attr, None)
        if module is None:
            continue
        open_ranges: list[Any] = []

        def pre(_m, _args, label=label, open_ranges=open_ranges):
            open_ranges.append(record_function(f"stage/{label}").__enter__())

        def post(_m, _args, _out, open_ranges=open_ranges):
            open_ranges.pop().__exit__(None, None, None)

        undo.append(module.register_forward_pre_hook(pre).remove)
        undo.append(module.register_forward_hook(post).remove)
    field = model.lead_field
    for method, label in (("lift", "physics lift"), ("project", "project")):
        setattr(field, method, _labelled(getattr(field, method), label))
        undo.append(lambda method=method: delattr(field, method))
    for module in (lvcg_mod, losses_mod):
        for name, label in (("cut_beats", "cut"), ("stitch_beats", "stitch")):
            if hasattr(module, name):
                original = getattr(module, name)
                setattr(module, name, _labelled(original, label))
                undo.append(
                    lambda module=module, name=name, original=original: setattr(module, name, original)
                )
    return undo


def _innermost_label(ev: Any) -> tuple[str, str]:
    """(phase, stage) an event runs in: its innermost stage/ range and the step/ range around it."""
    stage, parent = None, ev.cpu_parent
    while parent is not None:
        if stage is None and parent.name.startswith("stage/"):
            stage = parent.name[len("stage/") :]
        if parent.name.startswith("step/"):
            return parent.name[len("step/") :], stage or "glue"
        parent = parent.cpu_parent
    return "?", stage or "glue"


def profile_config(preset: str, batch: int, device: torch.device, warmup: int, steps: int, top: int) -> dict:
    from lvcg_cli.engine.device import autocast, select_precision
    from lvcg_cli.engine.trainer import build_optimizer
    from lvcg_cli.model.registry import build_model
    from lvcg_cli.settings import resolve_settings

    settings = resolve_settings(preset=preset)
    batch_dict = {k: v.to(device) for k, v in real_batch(settings, batch).items()}
    torch.manual_seed(0)
    model = build_model(settings.model, settings.data).to(device)
    optimizer = build_optimizer(model, settings.train)
    precision = select_precision(device, settings.engine.precision)
    t = settings.train

    def step() -> None:
        with record_function("step/forward"), autocast(device, precision):
            out = model(batch_dict)
        with record_function("step/loss"), autocast(device, precision):
            loss = model.loss(batch_dict, out, t.loss)["total"]
        with record_function("step/backward"):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
        with record_function("step/optimizer"):
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            optimizer.step()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall_ms = 1000 * (time.perf_counter() - start) / steps  # without the profiler's overhead

    undo = label_stages(model)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
    for fn in undo:
        fn()

    events = prof.events()
    per_step = 1.0 / (1000 * steps)  # us over all steps -> ms per step
    phase_ms = {p: 0.0 for p in PHASES}
    for ev in events:
        if ev.name.startswith("step/"):
            phase_ms[ev.name[len("step/") :]] += ev.cpu_time_total * per_step
    step_ms = sum(phase_ms.values())

    # Forward (and loss) time of each stage; backward time mapped back through the autograd
    # sequence numbers that link each backward function to the forward operator that made it.
    cost: dict[str, dict[str, float]] = defaultdict(lambda: {"forward": 0.0, "loss": 0.0, "backward": 0.0})
    origin: dict[int, str] = {}
    for ev in events:
        if ev.name.startswith("stage/"):
            phase, _ = _innermost_label(ev)
            name = ev.name[len("stage/") :]
            if phase in ("forward", "loss"):
                cost[name if phase == "forward" else f"loss: {name}"][phase] += ev.cpu_time_total * per_step
        elif ev.sequence_nr >= 0 and not ev.name.startswith(BACKWARD_PREFIX):
            phase, stage = _innermost_label(ev)
            if phase in ("forward", "loss"):
                origin.setdefault(ev.sequence_nr, stage if phase == "forward" else f"loss: {stage}")
    for ev in events:
        if ev.name.startswith(BACKWARD_PREFIX):
            cost[origin.get(ev.sequence_nr, "glue")]["backward"] += ev.cpu_time_total * per_step
    labelled = sum(c["forward"] for k, c in cost.items() if k != "glue")
    cost["glue"]["forward"] = max(phase_ms["forward"] - labelled, 0.0)
    labelled = sum(c["loss"] for k, c in cost.items() if k != "loss: glue")
    cost["loss: glue"]["loss"] = max(phase_ms["loss"] - labelled, 0.0)
    stages = {
        name: {
            "forward_ms": round(c["forward"] + c["loss"], 2),
            "backward_ms": round(c["backward"], 2),
            "pct_of_step": round(100 * (c["forward"] + c["loss"] + c["backward"]) / step_ms, 1),
        }
        for name, c in sorted(cost.items(), key=lambda kv: -sum(kv[1].values()))
    }

    aten = [ev for ev in events if ev.name.startswith("aten::")]
    top_level = [ev for ev in aten if ev.cpu_parent is None or not ev.cpu_parent.name.startswith("aten::")]
    syncs: Counter[str] = Counter()
    for ev in aten:
        if ev.name in SYNC_OPS:
            phase, stage = _innermost_label(ev)
            syncs[f"{ev.name} ({phase}: {stage})"] += 1
    table = prof.key_averages()
    total_self = sum(e.self_cpu_time_total for e in table) or 1.0
    top_ops = sorted(table, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
    return {
        "preset": preset,
        "batch": batch,
        "device": device.type,
        "precision": precision.name,
        "threads": torch.get_num_threads(),
        "step_ms_wall": round(wall_ms, 1),
        "step_ms_profiled": round(step_ms, 1),
        "samples_per_s": round(1000 * batch / wall_ms, 1),
        "phases_pct": {p: round(100 * v / step_ms, 1) for p, v in phase_ms.items()},
        "stages": stages,
        "operator_calls_per_step": round(len(aten) / steps),
        "top_level_operator_calls_per_step": round(len(top_level) / steps),
        "sync_ops_per_step": {k: v / steps for k, v in sorted(syncs.items())},
        "top_ops": [
            {
                "op": e.key,
                "self_cpu_pct": round(100 * e.self_cpu_time_total / total_self, 1),
                "self_cpu_ms_per_step": round(e.self_cpu_time_total / 1000 / steps, 2),
                "calls_per_step": round(e.count / steps, 1),
            }
            for e in top_ops
        ],
    }


def _print(r: dict) -> None:
    print(
        f"\n== {r['preset']} batch {r['batch']} on {r['device']} ({r['precision']}, {r['threads']} threads): "
        f"{r['step_ms_wall']} ms/step, {r['samples_per_s']} samples/s (profiled: {r['step_ms_profiled']} ms/step)"
    )
    print("phases (% of step): " + ", ".join(f"{k} {v}" for k, v in r["phases_pct"].items()))
    print(f"{'stage':28s} {'fwd ms':>8s} {'bwd ms':>8s} {'% step':>7s}")
    for name, c in r["stages"].items():
        print(f"{name:28s} {c['forward_ms']:8.2f} {c['backward_ms']:8.2f} {c['pct_of_step']:7.1f}")
    print(
        f"operator calls per step: {r['operator_calls_per_step']} "
        f"({r['top_level_operator_calls_per_step']} top-level)"
    )
    print("sync operators per step:")
    for k, v in r["sync_ops_per_step"].items():
        print(f"  {k} x{v:g}")
    print(f"{'operator':40s} {'self CPU %':>10s} {'ms/step':>9s} {'calls/step':>10s}")
    for op in r["top_ops"]:
        print(
            f"{op['op']:40s} {op['self_cpu_pct']:10.1f} {op['self_cpu_ms_per_step']:9.2f} {op['calls_per_step']:10.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=["lvcg-tiny", "lvcg-base"])
    parser.add_argument("--batches", nargs="+", type=int, default=[16, 64])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {load:.1f}")
    results = []
    for preset in args.presets:
        for batch in args.batches:
            r = profile_config(preset, batch, device, args.warmup, args.steps, args.top)
            _print(r)
            results.append(r)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"load_average_1min": load, "results": results}, indent=1))


if __name__ == "__main__":
    main()

"""Forward+backward throughput of the LVCG architectures on simulated records (prints figures).

    python benchmarks/model_forward.py                       # lvcg-tiny and lvcg-base, batch 32, CPU
    python benchmarks/model_forward.py --models lvcg-tiny --threads 2 --steps 10 --set beat_len=64

Reports parameters, embedding size and samples/s (median over timed steps, after warm-up) of
``model.loss(batch, model(batch)).backward()``; also eval-mode ``embed`` throughput.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import yaml

from lvcg_cli.datasets.simulator import simulate
from lvcg_cli.model.registry import build_model, model_settings
from lvcg_cli.settings import DataSettings, LossWeights
from lvcg_cli.signals.model_input import make_batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["lvcg-tiny", "lvcg-base"])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", nargs="*", default=[], help="model overrides key=value (YAML values)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    data = DataSettings()
    sim = simulate(args.batch, seed=0, fs=data.fs, duration_s=data.window_s)
    visible = np.zeros(12, dtype=bool)
    visible[[0, 1, 7]] = True  # I, II, V2
    for name in args.models:
        ms = model_settings(name, **overrides)
        batch = make_batch(sim.signals, np.ones(12, dtype=bool), visible, data, ms)
        batch = {k: v.to(device) for k, v in batch.items()}
        model = build_model(ms, data).to(device)
        n_params = sum(p.numel() for p in model.parameters())
        times = []
        for step in range(args.steps + 2):
            t0 = time.perf_counter()
            out = model(batch)
            model.loss(batch, out, LossWeights())["total"].backward()
            model.zero_grad(set_to_none=True)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 2:
                times.append(time.perf_counter() - t0)
        model.eval()
        with torch.no_grad():
            model.embed(batch)
            t0 = time.perf_counter()
            model.embed(batch)
            t_embed = time.perf_counter() - t0
        dt = statistics.median(times)
        print(
            f"{name}: {n_params / 1e6:.3f}M params, embedding {model.embedding_dim}, "
            f"train fwd+bwd {args.batch / dt:.1f} samples/s (batch {args.batch}, {args.threads} threads, "
            f"{device}), embed {args.batch / t_embed:.1f} samples/s, "
            f"mean valid beats {batch['beat_mask'].sum(1).float().mean():.1f}"
        )


if __name__ == "__main__":
    main()

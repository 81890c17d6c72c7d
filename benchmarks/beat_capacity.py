"""How much of a beat of the latent field can a 64-number token hold? PCA vs the beat autoencoder.

Usage::

    python benchmarks/beat_capacity.py [--data ../shared/data] [--steps 1500] [--d-token 64]

Beats: the reference field of every open-corpus record (the least-squares field of all its
leads through the Dower lead field), divided by its RMS as the model does, cut into the model's
beats (R peaks on all leads) and resampled to 128 samples; pretraining records (PTB-XL strat_fold
1-8, CinC, CPSC) to fit, validation records (strat_fold 9) to score. Score: Pearson r between a
held-out beat (3 x 128, flattened) and its reconstruction, mean over beats, and the MSE.

Rows: ``pca-k`` (the k leading principal components of the training beats: the best *linear*
code of k numbers), ``conv`` (the model's beat encoder and decoder with their linear paths
removed: lvcg 0.1's design) and ``conv+linear`` (this version's encoder and decoder), both
trained ``--steps`` AdamW steps on batches of 256 beats with a cosine schedule.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from open_corpus import DEFAULT_DATA, load_windows, split_paths  # noqa: E402

from lvcg_cli.model.beats import cut_beats  # noqa: E402
from lvcg_cli.model.decoder import BeatDecoder  # noqa: E402
from lvcg_cli.model.encoder import BeatEncoder  # noqa: E402
from lvcg_cli.model.geometry import LeadField  # noqa: E402
from lvcg_cli.model.registry import model_settings  # noqa: E402
from lvcg_cli.settings import DataSettings  # noqa: E402
from lvcg_cli.signals.model_input import make_batch  # noqa: E402


def beats_of(root: Path, split: str, data: DataSettings, model) -> torch.Tensor:
    """(N, 3, L) RMS-normalised reference-field beats of every record of ``split``."""
    x, present = load_windows(split_paths(root, split), data)
    lead_field = LeadField("dower")
    out = []
    for lo in range(0, len(x), 128):
        batch = make_batch(x[lo : lo + 128], present[lo : lo + 128], present[lo : lo + 128], data, model)
        ref = lead_field.lift(batch["target"], batch["present"])
        ref = ref / ref.pow(2).mean(dim=(1, 2), keepdim=True).sqrt().clamp(min=1e-3)
        beats = cut_beats(ref, batch["bounds"], model.beat_len, batch["beat_mask"])
        out.append(beats[batch["beat_mask"]])
    return torch.cat(out)


def score(rec: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    a, b = rec - rec.mean(1, keepdims=True), ref - ref.mean(1, keepdims=True)
    r = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return float(r.mean()), float(((rec - ref) ** 2).mean())


def train_autoencoder(train, val, d_token: int, linear: bool, steps: int, seed: int = 0):
    torch.manual_seed(seed)
    channels, length = [32, 48, 64], train.shape[-1]
    enc, dec = BeatEncoder(channels, 1, d_token, length), BeatDecoder(d_token, channels, length)
    if not linear:  # lvcg 0.1: conv paths only; their zero-initialised outputs start them at 0
        for layer in (enc.linear, dec.linear):
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
            layer.requires_grad_(False)
        torch.nn.init.xavier_uniform_(enc.head[-1].weight)
        torch.nn.init.xavier_uniform_(dec.proj.weight)
    params = [p for p in (*enc.parameters(), *dec.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-3)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * step / steps))
        batch = train[torch.randint(0, len(train), (256,), generator=gen)]
        loss = (dec(enc(batch).flatten(1)) - batch).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    enc.eval(), dec.eval()
    with torch.no_grad():
        rec = dec(enc(val).flatten(1))
    return score(rec.flatten(1).numpy(), val.flatten(1).numpy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--d-token", type=int, default=64)
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(1)
    data, model = DataSettings(), model_settings("lvcg-tiny")
    train, val = beats_of(args.data, "train", data, model), beats_of(args.data, "val", data, model)
    print(f"beats: {len(train)} to fit (pretraining records), {len(val)} to score (validation records)")
    print("| code | numbers per beat | val beat r | val MSE |")
    print("|---|---|---|---|")
    xt, xv = train.flatten(1).numpy().astype(np.float64), val.flatten(1).numpy().astype(np.float64)
    mean = xt.mean(0)
    _, _, vt = np.linalg.svd(xt - mean, full_matrices=False)
    for k in (32, args.d_token, 2 * args.d_token):
        basis = vt[:k]
        r, mse = score((xv - mean) @ basis.T @ basis + mean, xv)
        print(f"| pca-{k} | {k} | {r:.4f} | {mse:.4f} |")
    for name, linear in (("conv", False), ("conv+linear", True)):
        r, mse = train_autoencoder(train, val, args.d_token, linear, args.steps)
        print(f"| {name} ({args.steps} steps) | {args.d_token} | {r:.4f} | {mse:.4f} |")
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()

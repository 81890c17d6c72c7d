"""Hidden-lead reconstruction and 3-lead vs 12-lead embeddings on open records the weights never saw.

Usage::

    python benchmarks/reconstruction.py [--checkpoint CKPT | --random-init] [--split test|val]
                                        [--data ../shared/data] [--boot 2000] [--limit N]

Records: the ``--split`` part of the open corpus (``benchmarks/open_corpus.py``): ``test`` is
PTB-XL strat_fold 10 (100-Hz files) and all of LUDB (500 Hz, never pretrained on); ``val``
(PTB-XL strat_fold 9) is what design choices were made on. Each record is preprocessed exactly
like model input (100 Hz, 0.67-40 Hz zero-phase band-pass, first 10 s).

Methods reconstruct all leads from each visible set: ``physics-dower`` / ``physics-ideal`` (lift
through the visible rows of the lead field, project through all rows), ``linear`` (population
least squares) and ``copy`` (best single visible lead with a gain), both fitted on the corpus's
*training* records (the ones the model was pretrained on), and the model read two ways:
``lvcg-decoded`` (the projection of the decoded field alone: encode -> GRU -> decode -> stitch ->
fixed geometry) and ``lvcg`` (the full model's ``recon``; the same unless ``residual_refine``).

Score per record: the mean Pearson r (and RMSE, mV) over its hidden *independent* leads (those of
I, II, V1-V6 not visible), both sides band-passed with the model filter
(:func:`lvcg_cli.downstream.reconstruct.score_windows`). Table cells: mean over records with a
95 % bootstrap interval; ``gain`` is the model minus the best baseline of that row, with a paired
bootstrap interval over records.

The embedding section embeds every record from I, II, V2 and from all its leads and reports the
cosine of the two vectors per record (raw, as ``lvcg embed`` writes them, and after standardising
each dimension with the 12-lead embeddings' mean and standard deviation), overall and per block.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from open_corpus import DEFAULT_DATA, load_windows, source_of, split_paths  # noqa: E402

from lvcg_cli.downstream.baselines import fit_copy_best, fit_linear  # noqa: E402
from lvcg_cli.downstream.metrics import bootstrap_mean  # noqa: E402
from lvcg_cli.downstream.reconstruct import Reconstructor, evaluate_windows  # noqa: E402
from lvcg_cli.settings import DataSettings  # noqa: E402
from lvcg_cli.signals.leads import CANONICAL_LEADS, INDEPENDENT_LEADS, parse_leads, visible_mask  # noqa: E402

VISIBLE_SETS = ("I", "I,II", "I,II,V2", "II,V2,V5", "I,II,V1,V4")
BASELINES = ("physics-dower", "physics-ideal", "linear", "copy")


class FixedMaps:
    """A baseline given as a function visible-mask -> LeadMap (same interface as a Reconstructor)."""

    def __init__(self, make):
        self.make = make
        self.maps = {}

    def reconstruct_windows(self, signals, present, visible):
        out = np.empty_like(signals)
        for key in np.unique(visible, axis=0):
            rows = (visible == key).all(axis=1)
            if key.tobytes() not in self.maps:
                self.maps[key.tobytes()] = self.make(key)
            out[rows] = self.maps[key.tobytes()].apply(signals[rows])
        return out, None


def per_record(scores, hidden: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N,) mean r, mean RMSE and median peak-to-peak ratio over the hidden independent leads of each record."""
    cols = [CANONICAL_LEADS.index(n) for n in hidden]
    return (
        np.nanmean(scores.r[:, cols], axis=1),
        np.nanmean(scores.rmse[:, cols], axis=1),
        np.nanmedian(scores.ptp_ratio[:, cols], axis=1),
    )


def load_model_and_data(args):
    import torch

    from lvcg_cli.engine.checkpoint import load_model

    if args.random_init:
        from lvcg_cli.model.registry import build_model, model_settings

        torch.manual_seed(0)
        data, model_cfg = DataSettings(), model_settings("lvcg-tiny")
        return build_model(model_cfg, data).eval(), data, model_cfg, "random init"
    model, ckpt = load_model(args.checkpoint)
    return model, ckpt.data, ckpt.model, args.checkpoint or "bundled weights"


def reconstruction_table(args, model, data, model_cfg, windows, present) -> None:
    train_paths = split_paths(args.data, "train")
    train, train_present = load_windows(train_paths, data)
    print(
        f"training records for linear/copy: {len(train)} (the model's pretraining records, without the simulator)"
    )
    methods = {
        "physics-dower": Reconstructor("physics", data, geometry="dower", eps=model_cfg.lift_eps),
        "physics-ideal": Reconstructor("physics", data, geometry="ideal", eps=model_cfg.lift_eps),
        "linear": FixedMaps(lambda v: fit_linear(train, v, train_present)),
        "copy": FixedMaps(lambda v: fit_copy_best(train, v, train_present)),
        "lvcg-decoded": Reconstructor(
            "lvcg", data, model=model, model_settings=model_cfg, batch_size=64, readout="decoded"
        ),
        "lvcg": Reconstructor("lvcg", data, model=model, model_settings=model_cfg, batch_size=64),
    }
    print()
    print("| visible | " + " | ".join(methods) + " | gain lvcg - best baseline | gain decoded - linear |")
    print("|---|" + "---|" * (len(methods) + 2))
    rmse_rows, gain_rows = [], []
    for spec in VISIBLE_SETS:
        mask = visible_mask(parse_leads(spec))
        hidden = [n for n in INDEPENDENT_LEADS if not mask[CANONICAL_LEADS.index(n)]]
        scores = evaluate_windows(windows, present, mask, methods, data)
        r, e, a = {}, {}, {}
        for name, s in scores.items():
            r[name], e[name], a[name] = per_record(s, hidden)
        best = max(BASELINES, key=lambda n: np.nanmean(r[n]))
        cells = [str(bootstrap_mean(r[n], n_boot=args.boot)) for n in methods]
        gain = bootstrap_mean(r["lvcg"] - r[best], n_boot=args.boot)
        gain_dec = bootstrap_mean(r["lvcg-decoded"] - r["linear"], n_boot=args.boot)
        label = "{" + spec.replace(",", ", ") + "}"
        print(f"| {label} | " + " | ".join(cells) + f" | {gain:+} vs {best} | {gain_dec:+} |")
        rmse_rows.append((label, {n: f"{np.nanmean(e[n]):.4f} / {np.nanmedian(a[n]):.2f}" for n in methods}))
        gain_rows.append((label, {b: bootstrap_mean(r["lvcg"] - r[b], n_boot=args.boot) for b in BASELINES}))
    print(
        "\ncells: mean Pearson r over records [95 % bootstrap interval]; gains: paired bootstrap over records"
    )
    print("\nlvcg minus each baseline, mean r gain [95 % paired bootstrap interval over records]:")
    print("| visible | " + " | ".join(BASELINES) + " |")
    print("|---|" + "---|" * len(BASELINES))
    for label, row in gain_rows:
        print(f"| {label} | " + " | ".join(f"{row[b]:+}" for b in BASELINES) + " |")
    print(
        "\nmean RMSE (mV) / median peak-to-peak ratio (reconstruction / original; 1 = right size) "
        "over the hidden independent leads:"
    )
    print("| visible | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for label, row in rmse_rows:
        print(f"| {label} | " + " | ".join(row[n] for n in methods) + " |")


def stage_table(args, model, data, model_cfg, windows, present) -> None:
    """Hidden-lead r of each stage's field projected through the fixed geometry, per visible set.

    ``lifted`` (stage 1, before the bottleneck), ``decoded`` (through the tokens: what the model
    outputs), and ``reference`` (the least-squares field of all twelve true leads: the ceiling of
    any rank-3 field through this geometry). The gap lifted -> decoded is what the beat
    bottleneck costs.
    """
    import torch

    from lvcg_cli.downstream.metrics import pearson_r
    from lvcg_cli.signals.model_input import make_batch
    from lvcg_cli.signals.preprocess import bandpass

    print("\nstage read-outs, mean r over the hidden independent leads (all: every independent lead):")
    print("| visible | lifted | decoded | reference (12 true leads) |")
    print("|---|---|---|---|")
    for spec in (*VISIBLE_SETS[2:], "all"):
        mask = visible_mask(parse_leads(spec))
        cols = [
            CANONICAL_LEADS.index(n)
            for n in INDEPENDENT_LEADS
            if spec == "all" or not mask[CANONICAL_LEADS.index(n)]
        ]
        scores: dict[str, list[np.ndarray]] = {"lifted": [], "decoded": [], "reference": []}
        for lo in range(0, len(windows), 64):
            batch = make_batch(windows[lo : lo + 64], present[lo : lo + 64], mask, data, model_cfg)
            with torch.no_grad():
                out = model(batch)
                fields = {
                    "lifted": out["lifted"],
                    "decoded": out["field"],
                    "reference": model.lead_field.lift(batch["target"], batch["present"]),
                }
            ref = bandpass(
                batch["target"].numpy().astype(np.float64), data.fs, tuple(data.bandpass), data.filter_order
            )
            for name, field in fields.items():
                leads = model.lead_field.project(field).numpy().astype(np.float64)
                leads = bandpass(leads, data.fs, tuple(data.bandpass), data.filter_order)
                r = pearson_r(leads, ref)[:, cols]
                scores[name].append(
                    np.nanmean(np.where(batch["present"].numpy()[:, cols], r, np.nan), axis=1)
                )
        cells = [str(bootstrap_mean(np.concatenate(scores[n]), n_boot=args.boot)) for n in scores]
        print(f"| {{{spec.replace(',', ', ')}}} | " + " | ".join(cells) + " |")


def embedding_table(args, model, data, model_cfg, windows, present) -> None:
    from lvcg_cli.downstream.embed import Embedder

    embedder = Embedder(model, data, model_cfg, batch_size=64)
    three = visible_mask(parse_leads("I,II,V2"))
    full = embedder.embed_windows(windows, present)
    reduced = embedder.embed_windows(windows, present, present & three[None])
    mean, std = full.mean(0), full.std(0)
    std = np.where(std > 1e-8, std, 1.0)

    def cosine(a, b):
        num = (a * b).sum(1)
        den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
        return num / np.maximum(den, 1e-12)

    blocks = {"all": slice(0, full.shape[1]), **model.embedding_layout()}
    print("\ncosine of the embedding from I, II, V2 to the one from all leads (mean over records [95 % CI]):")
    print("| block | dims | spread (mean sd over records) | raw | standardised |")
    print("|---|---|---|---|---|")
    for name, sl in blocks.items():
        raw = cosine(reduced[:, sl], full[:, sl])
        zs = cosine((reduced[:, sl] - mean[sl]) / std[sl], (full[:, sl] - mean[sl]) / std[sl])
        dims = sl.stop - sl.start
        spread = float(full[:, sl].std(0).mean())  # a block that does not vary is dead, whatever its cosine
        dead = " (DEAD: does not vary)" if spread < 1e-6 else ""
        print(
            f"| {name} | {dims} | {spread:.3g}{dead} | {bootstrap_mean(raw, n_boot=args.boot)} | "
            f"{bootstrap_mean(zs, n_boot=args.boot)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the open records (shared/data)")
    parser.add_argument("--checkpoint", default=None, help="model checkpoint (default: the bundled weights)")
    parser.add_argument("--random-init", action="store_true", help="untrained lvcg-tiny (checks the script)")
    parser.add_argument("--split", choices=("test", "val"), default="test")
    parser.add_argument("--boot", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N records")
    parser.add_argument("--skip-embedding", action="store_true")
    parser.add_argument("--stages", action="store_true", help="also the lifted/decoded/reference read-outs")
    args = parser.parse_args()
    started = time.perf_counter()

    model, data, model_cfg, label = load_model_and_data(args)
    paths = split_paths(args.data, args.split)[: args.limit or None]
    windows, present = load_windows(paths, data)
    sources = [source_of(p) for p in paths]
    print(
        f"model: {label}; {args.split} records: {len(paths)} "
        f"({sources.count('ptbxl')} PTB-XL, {sources.count('ludb')} LUDB)"
    )
    reconstruction_table(args, model, data, model_cfg, windows, present)
    if args.stages:
        stage_table(args, model, data, model_cfg, windows, present)
    if not args.skip_embedding:
        embedding_table(args, model, data, model_cfg, windows, present)
    print(f"\n{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()

"""The streaming torch Dataset: visible-lead draws, splits, samplers, manifests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from lvcg_cli.datasets.torch_data import (
    VAL_STREAM,
    EpochIndices,
    ManifestSource,
    PretrainDataset,
    ResumableSampler,
    build_loader,
    collate,
    open_sources,
    resolve_num_workers,
    sample_rng,
    split_items,
)
from lvcg_cli.datasets.visible_leads import VisibleLeads
from lvcg_cli.errors import LvcgError, SettingsError
from lvcg_cli.settings import resolve_settings
from lvcg_cli.signals.leads import parse_leads, visible_mask

RECORDS = Path(__file__).resolve().parents[1] / "lvcg_cli" / "assets" / "records"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class ArraySource:
    """A tiny in-memory source with a given split column."""

    def __init__(self, n: int, splits: list[str] | None = None, present: np.ndarray | None = None):
        rng = np.random.default_rng(0)
        self.signals = rng.normal(size=(n, 12, 1000)).astype(np.float32)
        self.present = np.ones((n, 12), dtype=bool) if present is None else present
        self._splits = np.array(splits if splits is not None else [""] * n, dtype=object)

    def __len__(self) -> int:
        return len(self.signals)

    def get(self, i: int):
        return self.signals[i], self.present[i]

    def splits(self) -> np.ndarray:
        return self._splits


def choose_visible(present, rng, low, high):
    return VisibleLeads(k_min=low, k_max=high).draw(present, rng)


@pytest.mark.parametrize("low,high", [(1, 1), (3, 3), (2, 8), (1, 12)])
def test_random_subsets_are_present_leads_of_every_size_in_range(low, high):
    present = np.ones(12, dtype=bool)
    present[[4, 9]] = False  # 10 present leads
    sizes = set()
    for index in range(200):
        visible = choose_visible(present, sample_rng(0, 0, index), low, high)
        assert not (visible & ~present).any()  # only present leads are shown
        k = int(visible.sum())
        assert min(low, 9) <= k <= min(high, 9)  # at least one present lead stays hidden
        sizes.add(k)
    assert sizes == set(range(min(low, 9), min(high, 9) + 1))  # every size in range occurs


def test_visible_draw_is_a_function_of_seed_epoch_and_index():
    present = np.ones(12, dtype=bool)
    draw = lambda s, e, i: choose_visible(present, sample_rng(s, e, i), 1, 11)  # noqa: E731
    assert np.array_equal(draw(3, 1, 17), draw(3, 1, 17))
    different = [
        not np.array_equal(draw(3, 1, 17), other)
        for other in (draw(4, 1, 17), draw(3, 2, 17), draw(3, 1, 18))
    ]
    assert all(different)


def test_record_with_one_present_lead_shows_it():
    present = np.zeros(12, dtype=bool)
    present[1] = True
    visible = choose_visible(present, sample_rng(0, 0, 0), 3, 3)
    assert visible.tolist() == present.tolist()


def test_mixed_distribution_draws_the_named_sets_at_their_share():
    """The default 'mixed' distribution: each named set at fraction/6, the rest random subsets."""
    train = resolve_settings(environ={}).train
    dist = VisibleLeads.from_settings(train)
    named = {tuple(visible_mask(parse_leads(spec)).tolist()): spec for spec in train.visible_sets}
    assert len(named) == 6 and train.visible == "mixed" and train.visible_fraction == 0.5
    present = np.ones(12, dtype=bool)
    n = 6000
    counts: dict[str, int] = {}
    sizes = set()
    for index in range(n):
        mask = dist.draw(present, sample_rng(0, 0, index))
        key = named.get(tuple(mask.tolist()), "random")
        counts[key] = counts.get(key, 0) + 1
        if key == "random":
            sizes.add(int(mask.sum()))
    for spec in train.visible_sets:  # 1/12 each; binomial sd ~ 21 on 500
        assert abs(counts[spec] - n / 12) < 5 * np.sqrt(n / 12), (spec, counts[spec])
    assert counts["all"] > 0 and sizes == set(range(1, 12))  # random part: 1..11 leads, one kept hidden
    # a random subset can coincide with a named one (e.g. lead I alone), hence ">=" not "=="
    assert counts["random"] <= n / 2 + 5 * np.sqrt(n / 4)


def test_named_sets_are_cut_to_present_leads_and_random_only_is_v0_1_training():
    present = np.zeros(12, dtype=bool)
    present[[0, 1, 6, 7, 8]] = True  # I, II, V1-V3
    only = VisibleLeads(sets=((0, 1, 7), (10, 11)), set_fraction=1.0)
    for index in range(50):
        mask = only.draw(present, sample_rng(0, 0, index))
        # (10, 11) = V5, V6 is absent: falls back to a random subset of present leads
        assert not (mask & ~present).any() and mask.any()
    train = resolve_settings(
        environ={},
        overrides=["--train.visible", "random", "--train.visible_min", "3", "--train.visible_max", "3"],
    ).train
    dist = VisibleLeads.from_settings(train)
    assert dist.set_fraction == 0.0
    assert all(int(dist.draw(np.ones(12, bool), sample_rng(0, 0, i)).sum()) == 3 for i in range(100))


def test_split_items_uses_val_split_and_never_trains_on_test():
    source = ArraySource(10, ["train", "val", "test", "", "train", "val", "test", "train", "", "train"])
    split = split_items([source], val_fraction=0.5, seed=0)
    assert sorted(split.train[:, 1].tolist()) == [0, 3, 4, 7, 8, 9]
    assert sorted(split.val[:, 1].tolist()) == [1, 5]


def test_split_items_holds_out_a_fixed_fraction_when_there_is_no_val_split():
    sources = [ArraySource(100), ArraySource(40, ["train"] * 40)]
    split = split_items(sources, val_fraction=0.1, seed=5)
    again = split_items(sources, val_fraction=0.1, seed=5)
    assert np.array_equal(split.val, again.val)
    for s, n, n_val in ((0, 100, 10), (1, 40, 4)):
        train = set(split.train[split.train[:, 0] == s, 1].tolist())
        val = set(split.val[split.val[:, 0] == s, 1].tolist())
        assert len(val) == n_val and not train & val and train | val == set(range(n))


def _dataset(n: int = 24, **kw) -> PretrainDataset:
    settings = resolve_settings(preset="lvcg-tiny")
    source = ArraySource(n)
    items = np.stack([np.zeros(n, dtype=np.int64), np.arange(n)], axis=1)
    args = {"visible": VisibleLeads(k_min=2, k_max=5), "seed": 1, **kw}
    return PretrainDataset([source], items, settings.data, settings.model, **args)


def test_sample_is_reproducible_and_its_visible_leads_change_with_the_epoch():
    data = _dataset()
    a, b = data[3], data[3]
    assert set(a) == {
        "signal",
        "target",
        "visible",
        "present",
        "scale",
        "bounds",
        "beat_mask",
        "rr",
        "rpeaks",
    }
    assert torch.equal(a["visible"], b["visible"]) and torch.equal(a["signal"], b["signal"])
    assert 2 <= int(a["visible"].sum()) <= 5
    masks = set()
    for epoch in range(6):
        data.set_epoch(epoch)
        masks.add(tuple(data[3]["visible"].tolist()))
    assert len(masks) > 1


def test_validation_stream_ignores_the_epoch():
    data = _dataset(stream=VAL_STREAM)
    first = data[5]["visible"].clone()
    data.set_epoch(9)
    assert torch.equal(data[5]["visible"], first)


def test_batches_do_not_depend_on_the_number_of_workers():
    data = _dataset(n=16)

    def batches(workers: int) -> list[torch.Tensor]:
        sampler = ResumableSampler(data, num_replicas=1, rank=0, seed=4)
        sampler.set_epoch(2)
        loader = DataLoader(
            data, batch_size=4, sampler=sampler, num_workers=workers, collate_fn=collate, drop_last=True
        )
        return [torch.cat([b["signal"], b["visible"].float()[..., None]], -1) for b in loader]

    for x, y in zip(batches(0), batches(2), strict=True):
        assert torch.equal(x, y)


def test_persistent_workers_see_every_epoch_like_the_training_process():
    """Workers started once (persistent) hold a copy of the dataset made at start; the epoch must
    reach them with the indices, or every epoch would repeat epoch 0's visible leads."""
    data = _dataset(n=16)

    def epochs(workers: int) -> list[list[torch.Tensor]]:
        sampler = ResumableSampler(data, num_replicas=1, rank=0, seed=4)
        loader = build_loader(
            data,
            batch_size=4,
            sampler=sampler,
            drop_last=True,
            num_workers=workers,
            device=torch.device("cpu"),
            seed=4,
        )
        assert loader.persistent_workers == (workers > 0)
        out = []
        for epoch in range(3):
            sampler.set_epoch(epoch)
            sampler.set_start(4 if epoch == 1 else 0)  # a resumed epoch starts part-way
            data.set_epoch(epoch)  # what the trainer does; persistent workers never see it
            out.append([torch.cat([b["signal"], b["visible"].float()[..., None]], -1) for b in loader])
        return out

    in_process, workers = epochs(0), epochs(2)
    assert [len(e) for e in in_process] == [4, 3, 4]
    for x, y in zip(in_process, workers, strict=True):
        for a, b in zip(x, y, strict=True):
            assert torch.equal(a, b)
    assert not torch.equal(in_process[0][0], in_process[2][0])  # the epochs really differ


def test_epoch_indices_carry_the_epoch_and_items_accept_them():
    data = _dataset(n=8)
    sampler = ResumableSampler(data, num_replicas=1, rank=0, seed=1)
    sampler.set_epoch(5)
    tagged = list(EpochIndices(sampler))
    assert [i for _, i in tagged] == list(sampler) and {e for e, _ in tagged} == {5}
    data.set_epoch(5)
    epoch5 = data[3]
    data.set_epoch(0)
    assert torch.equal(data[(5, 3)]["visible"], epoch5["visible"])
    assert torch.equal(data[(5, 3)]["signal"], epoch5["signal"])


@pytest.mark.parametrize(
    "setting,device,cpus,local_world,expected",
    [
        ("auto", "cuda", 16, 1, 8),  # capped
        ("auto", "cuda", 8, 1, 7),  # one core drives training
        ("auto", "cuda", 16, 4, 3),  # 4 GPUs share 16 cores: 4 each, one of them for the loop
        ("auto", "cuda", 2, 1, 1),
        ("auto", "cuda", 1, 1, 0),  # nothing spare: prepare in the training process
        ("auto", "cpu", 16, 1, 1),  # on the CPU the model's threads need the cores
        ("auto", "cpu", 2, 2, 0),
        (3, "cuda", 1, 1, 3),  # a number is taken as given
        (0, "cuda", 16, 1, 0),
    ],
)
def test_num_workers_auto(setting, device, cpus, local_world, expected):
    assert resolve_num_workers(setting, device, local_world_size=local_world, cpus=cpus) == expected


def test_num_workers_auto_reads_the_local_world_size_of_the_launcher(monkeypatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert resolve_num_workers("auto", "cuda", cpus=10) == 4


def test_num_workers_setting_takes_auto_or_a_count():
    assert resolve_settings().data.num_workers == "auto"
    assert resolve_settings(overrides={"data.num_workers": "3"}).data.num_workers == 3
    for bad in ("-1", "many"):
        with pytest.raises(SettingsError, match="data.num_workers"):
            resolve_settings(overrides={"data.num_workers": bad})


def test_loaders_pin_memory_and_prefetch_for_a_gpu():
    data = _dataset(n=8)
    sampler = ResumableSampler(data, num_replicas=1, rank=0, seed=0)
    cuda = build_loader(
        data, batch_size=2, sampler=sampler, num_workers=2, device=torch.device("cuda"), seed=0
    )
    assert cuda.pin_memory and cuda.persistent_workers and cuda.prefetch_factor == 4 and cuda.num_workers == 2
    assert isinstance(cuda.sampler, EpochIndices)
    cpu = build_loader(data, batch_size=2, num_workers=0, device=torch.device("cpu"), seed=0)
    assert not cpu.pin_memory and not cpu.persistent_workers and cpu.prefetch_factor is None


def test_resumable_sampler_skips_exactly_the_consumed_indices_and_ranks_are_disjoint():
    data = list(range(50))
    full = list(ResumableSampler(data, num_replicas=1, rank=0, seed=3).__iter__())
    sampler = ResumableSampler(data, num_replicas=1, rank=0, seed=3)
    sampler.set_start(20)
    assert list(sampler) == full[20:] and len(sampler) == 30
    ranks = [list(ResumableSampler(data, num_replicas=2, rank=r, seed=3)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 25 and not set(ranks[0]) & set(ranks[1])


def _manifest(tmp_path: Path) -> Path:
    """An original-LVCG manifest: WFDB record paths without extension, one of them broken."""
    folder = tmp_path / "files"
    folder.mkdir()
    for name in ("00001_hr", "00002_hr"):
        for ext in (".hea", ".dat"):
            shutil.copy(RECORDS / "ptbxl" / f"{name}{ext}", folder / f"{name}{ext}")
    (folder / "broken.hea").write_text("this is not a WFDB header\n")
    lines = [
        {"id": "1", "ecg_path": "files/00001_hr"},
        {"id": "bad", "ecg_path": "files/broken"},
        {"id": "2", "ecg_path": str(folder / "00002_hr")},
    ]
    path = tmp_path / "mimic_manifest.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_manifest_source_reads_records_and_skips_a_bad_one_with_a_warning(tmp_path, capsys):
    settings = resolve_settings(overrides={"data.meta_root": str(_manifest(tmp_path))})
    sources = open_sources(settings)
    assert isinstance(sources[0], ManifestSource) and len(sources[0]) == 3
    signal, present = sources[0].get(0)
    assert signal.shape == (12, settings.data.n_samples) and present.all()
    items = np.stack([np.zeros(3, dtype=np.int64), np.arange(3)], axis=1)
    data = PretrainDataset(
        sources, items, settings.data, settings.model, visible=VisibleLeads(k_min=3, k_max=3), seed=0
    )
    substitute, following = data[1], data[2]  # item 1 is unreadable: the next record stands in
    assert torch.equal(substitute["target"] != 0, following["target"] != 0)
    assert "broken" in capsys.readouterr().err


def test_manifest_errors_are_one_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "path": "x"}\n')
    with pytest.raises(LvcgError, match="line 1 is not a JSON object with 'ecg_path'"):
        ManifestSource(bad, resolve_settings().data)
    with pytest.raises(LvcgError, match="manifest not found"):
        ManifestSource(tmp_path / "missing.jsonl", resolve_settings().data)

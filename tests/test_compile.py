"""``train.compile``: the compiled model computes what the eager one does (CPU, TorchInductor)."""

from __future__ import annotations

import pytest
import torch

from lvcg_cli.engine.distributed import DistContext
from lvcg_cli.engine.trainer import wrap_model
from lvcg_cli.model.registry import build_model
from lvcg_cli.settings import resolve_settings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {
    "model.encoder_channels": "8,16",
    "model.lifter_channels": 8,
    "model.lifter_layers": 1,
    "model.state_dim": 16,
    "model.d_token": 16,
}


def real_batch(settings, rows: list[int], seed: int) -> dict[str, torch.Tensor]:
    """Bundled open records (PTB-XL/LUDB excerpts) as training samples."""
    from lvcg_cli.datasets.default import open_records_batch

    return open_records_batch(settings, rows, seed)


def compiler_works() -> str | None:
    """None when torch.compile can build a CPU kernel here, else why not (no C++ compiler ...)."""
    try:
        out = torch.compile(lambda x: torch.sin(x) * 2 + 1)(torch.linspace(0, 1, 8))
        if not torch.allclose(out, torch.sin(torch.linspace(0, 1, 8)) * 2 + 1):
            return "torch.compile gave a wrong result on a one-line function"
    except Exception as exc:  # BackendCompilerFailed, missing toolchain, unsupported platform ...
        return f"torch.compile unavailable here: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None


def test_the_switch_compiles_the_module_the_loop_calls_and_nothing_else():
    settings = resolve_settings(preset="lvcg-tiny", overrides=SMALL)
    raw = build_model(settings.model, settings.data)
    assert wrap_model(raw, DistContext(), compile_model=False) is raw
    compiled = wrap_model(raw, DistContext(), compile_model=True)  # lazy: nothing is compiled yet
    assert isinstance(compiled, torch._dynamo.eval_frame.OptimizedModule) and compiled._orig_mod is raw
    assert dict(compiled.named_parameters()).keys() == {f"_orig_mod.{k}" for k, _ in raw.named_parameters()}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's own, raised while compiling
def test_compiled_forward_and_loss_equal_eager_on_real_records():
    reason = compiler_works()
    if reason:
        pytest.skip(reason)
    settings = resolve_settings(preset="lvcg-tiny", overrides=SMALL)
    torch.manual_seed(0)
    model = build_model(settings.model, settings.data).eval()
    compiled = wrap_model(model, DistContext(), compile_model=True)
    # two batches with different numbers of valid beats: the second runs with other shapes after
    # the data-dependent selection of valid beats (recompiled or dynamic, it must agree)
    batches = [
        real_batch(settings, [0, 5, 9, 20], seed=1),
        real_batch(settings, [40, 41, 70, 100, 200], seed=2),
    ]
    assert batches[0]["beat_mask"].sum() != batches[1]["beat_mask"].sum()
    with torch.no_grad():
        for batch in batches:
            eager, fast = model(batch), compiled(batch)
            assert eager.keys() == fast.keys()
            for key, want in eager.items():
                got = fast[key]
                assert got.shape == want.shape and got.dtype == want.dtype, key
                if want.dtype.is_floating_point:
                    scale = max(1.0, float(want.abs().max()))
                    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * scale, msg=key)
                else:
                    assert torch.equal(got, want), key
            losses_eager = model.loss(batch, eager, settings.train.loss)
            losses_fast = model.loss(batch, fast, settings.train.loss)
            for name, value in losses_eager.items():
                torch.testing.assert_close(losses_fast[name], value, rtol=1e-4, atol=1e-6, msg=name)
            assert float(losses_eager["total"]) > 0

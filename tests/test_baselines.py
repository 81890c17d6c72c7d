"""Reconstruction baselines against closed-form truths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lvcg_cli.downstream.baselines import (
    complete_limb_leads,
    fit_copy_best,
    fit_linear,
    linear_map,
    physics_map,
)
from lvcg_cli.model.geometry import lead_field_matrix
from lvcg_cli.signals.leads import parse_leads, visible_mask


def _dipole(n: int, t: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, t))


@pytest.mark.parametrize("geometry", ["dower", "ideal"])
@pytest.mark.parametrize("leads", ["I,II,V2", "II,V2,V5", "I,II,V1,V4", "independent"])
def test_physics_is_exact_on_a_pure_dipole(geometry, leads):
    m = lead_field_matrix(geometry)
    signal = m @ _dipole(1, 400, 1)[0]
    mask = visible_mask(parse_leads(leads))
    out = physics_map(mask, geometry, eps=0.0).apply(signal)
    np.testing.assert_allclose(out, signal, rtol=1e-5, atol=1e-5)
    ridge = physics_map(mask, geometry, eps=1e-3).apply(signal)  # the model's ridge: close, not exact
    assert np.abs(ridge - signal).max() < 1e-2 * np.abs(signal).max()


def test_physics_ignores_hidden_rows():
    mask = visible_mask(parse_leads("I,II,V2"))
    x = np.random.default_rng(0).standard_normal((12, 50))
    y = x.copy()
    y[~mask] = 1e6
    lead_map = physics_map(mask)
    np.testing.assert_array_equal(lead_map.apply(x), lead_map.apply(y))


@given(seed=st.integers(0, 10_000), k=st.integers(1, 6))
@settings(max_examples=20, deadline=None)
def test_linear_recovers_a_known_linear_map(seed, k):
    rng = np.random.default_rng(seed)
    vis = np.sort(rng.choice(12, size=k, replace=False))
    truth = rng.standard_normal((12, k))
    truth[vis] = np.eye(k)
    x = rng.standard_normal((20, k, 100))
    signals = np.einsum("lk,nkt->nlt", truth, x)
    fitted = fit_linear(signals, vis)
    np.testing.assert_allclose(fitted.weights[:, vis], truth, atol=1e-4)
    hidden = np.setdiff1d(np.arange(12), vis)
    assert np.all(fitted.weights[:, hidden] == 0)


def test_linear_uses_only_records_that_have_the_target_lead():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((30, 1, 200))
    signals = np.repeat(x, 12, axis=1) * np.arange(1, 13)[None, :, None]
    present = np.ones((30, 12), dtype=bool)
    signals[:10, 5] = 0.0  # aVF absent in a third of the records: zeros must not bias its gain
    present[:10, 5] = False
    fitted = fit_linear(signals, [0], present)
    np.testing.assert_allclose(fitted.weights[:, 0], np.arange(1, 13), rtol=1e-5)


def test_copy_picks_the_best_single_lead_with_its_gain():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 40, 300))
    signals = np.zeros((40, 12, 300))
    signals[:, 0], signals[:, 1] = a, b
    signals[:, 6] = -2.0 * a + 0.05 * rng.standard_normal((40, 300))  # V1 ~ -2 I
    signals[:, 7] = 0.5 * b  # V2 = 0.5 II
    copy = fit_copy_best(signals, [0, 1])
    assert copy.weights[6, 0] == pytest.approx(-2.0, abs=0.01) and copy.weights[6, 1] == 0
    assert copy.weights[7, 1] == pytest.approx(0.5, abs=1e-6) and copy.weights[7, 0] == 0


def test_linear_map_is_fitted_once_and_cached(tmp_path):
    rng = np.random.default_rng(6)
    truth = rng.standard_normal((12, 2))
    truth[[0, 1]] = np.eye(2)
    signals = np.einsum("lk,nkt->nlt", truth, rng.standard_normal((10, 2, 100))).astype(np.float32)
    train = tmp_path / "train.npz"
    np.savez(train, signals=signals)
    first = linear_map([0, 1], train, cache_dir=tmp_path / "cache")
    cached = list((tmp_path / "cache" / "linear").glob("*.npz"))
    assert len(cached) == 1
    second = linear_map([0, 1], train, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(first.weights, second.weights)
    np.testing.assert_allclose(first.weights[:, :2], truth, atol=1e-3)


@given(seed=st.integers(0, 1000), pair=st.sampled_from([(0, 1), (0, 2), (3, 4), (1, 5), (2, 4)]))
@settings(max_examples=25, deadline=None)
def test_limb_leads_follow_einthoven_and_goldberger_from_any_two(seed, pair):
    rng = np.random.default_rng(seed)
    lead_i, lead_ii = rng.standard_normal((2, 50))
    truth = np.zeros((12, 50))
    truth[0], truth[1], truth[2] = lead_i, lead_ii, lead_ii - lead_i
    truth[3], truth[4], truth[5] = -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2
    known = np.zeros(12, dtype=bool)
    known[list(pair)] = True
    partial = np.where(known[:, None], truth, 0.0)
    out, derived = complete_limb_leads(partial, known)
    np.testing.assert_allclose(out[:6], truth[:6], atol=1e-9)
    assert derived[:6].sum() == 4 and not derived[list(pair)].any()


def test_one_limb_lead_derives_nothing():
    x = np.ones((12, 5))
    known = np.zeros(12, dtype=bool)
    known[0] = True
    out, derived = complete_limb_leads(x, known)
    assert not derived.any() and out is x

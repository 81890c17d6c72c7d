"""Figures: files are real images, paper grid conventions, and a clear error without matplotlib."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from lvcg_cli.errors import LvcgError
from lvcg_cli.plots import MAJOR_MV, MAJOR_S, MINOR_MV, MINOR_S, ecg_paper, plot_vcg, require_matplotlib


def test_ecg_paper_grid_is_0_2_s_by_0_5_mv_with_square_major_boxes():
    plt = require_matplotlib()
    fig, ax = plt.subplots()
    ecg_paper(ax, 0.0, 2.0, -1.0, 1.0)
    assert np.diff(ax.xaxis.get_majorticklocs())[0] == pytest.approx(MAJOR_S)
    assert np.diff(ax.yaxis.get_majorticklocs())[0] == pytest.approx(MAJOR_MV)
    assert np.diff(ax.xaxis.get_minorticklocs()).min() == pytest.approx(MINOR_S)
    assert np.diff(ax.yaxis.get_minorticklocs()).min() == pytest.approx(MINOR_MV)
    assert ax.get_aspect() * MAJOR_MV == pytest.approx(MAJOR_S)  # 0.2 s and 0.5 mV span the same length
    plt.close(fig)


def test_vcg_plot_writes_a_png(tmp_path):
    t = np.linspace(0, 1, 200)
    field = np.stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t), 0.3 * t])
    out = plot_vcg(field, 200.0, tmp_path / "loop.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(LvcgError, match="3, T"):
        plot_vcg(field[:2], 200.0, tmp_path / "bad.png")


def test_missing_matplotlib_is_a_one_line_install_hint(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(LvcgError) as info:
        require_matplotlib()
    assert str(info.value) == "plotting needs matplotlib: pip install 'lvcg[plot]'"

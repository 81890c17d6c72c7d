"""Figures drawn the way clinicians read them, checked by numbers: layout, paper scale, grid,
calibration, what each trace is, and the VCG loops' planes, units and direction."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from lvcg_cli.downstream.vcg import median_beat
from lvcg_cli.errors import LvcgError
from lvcg_cli.plots import (
    CALIBRATION_S,
    GRID_LAYOUT,
    MAJOR_MV,
    MAJOR_S,
    MARGIN_MM,
    MINOR_MV,
    MINOR_S,
    PAPER_DPI,
    ecg_figure,
    ecg_paper,
    plot_reconstruction,
    plot_vcg,
    require_matplotlib,
    row_range,
    vcg_figure,
)
from lvcg_cli.signals.leads import CANONICAL_LEADS


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


# --------------------------------------------------------------------------------------------
# the 12-lead ECG
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def twelve_lead():
    """A 10-s simulated record (500 Hz) and a "reconstruction" whose chest leads are at 0.6 of their size."""
    from lvcg_cli.datasets.simulator import simulate

    sim = simulate(1, seed=4, fs=500.0, noise=False)
    original = sim.signals[0].astype(np.float64)
    recon = original.copy()
    recon[6:] *= 0.6
    return original, recon


def _mm_per_unit(fig, ax) -> tuple[float, float]:
    """Millimetres of figure per second (x) and per mV (y), measured through the drawing transforms."""
    fig.canvas.draw()
    (x0, y0), (x1, y1) = ax.transData.transform([(0.0, 0.0), (1.0, 1.0)])
    return (x1 - x0) / fig.dpi * 25.4, (y1 - y0) / fig.dpi * 25.4


def test_twelve_lead_figure_is_3_by_4_plus_rhythm_strip_at_true_paper_scale(twelve_lead):
    plt = require_matplotlib()
    original, recon = twelve_lead
    visible = np.isin(CANONICAL_LEADS, ["I", "II", "V2"])
    fig = ecg_figure(original, 500.0, reconstruction=recon, visible=visible)
    rows = [ax for ax in fig.axes if ax.get_gid() and ax.get_gid().startswith(("row-", "rhythm"))]
    assert [ax.get_gid() for ax in rows] == ["row-0", "row-1", "row-2", "rhythm"]
    lo, hi = row_range([original, recon[~visible]])
    # the figure size is the paper's: 25 mm/s over calibration + 10 s, 10 mm/mV over 4 rows, plus margins
    width_mm = MARGIN_MM["left"] + (CALIBRATION_S + 10.0) * 25.0 + MARGIN_MM["right"]
    height_mm = MARGIN_MM["top"] + 4 * (hi - lo) * 10.0 + MARGIN_MM["bottom"]
    assert fig.get_size_inches() == pytest.approx((width_mm / 25.4, height_mm / 25.4))
    for ax in rows:
        assert ax.get_xlim() == pytest.approx((-CALIBRATION_S, 10.0)) and ax.get_ylim() == pytest.approx(
            (lo, hi)
        )
        mm_per_s, mm_per_mv = _mm_per_unit(fig, ax)
        assert mm_per_s == pytest.approx(25.0, rel=1e-3) and mm_per_mv == pytest.approx(10.0, rel=1e-3)
        assert np.diff(ax.xaxis.get_majorticklocs()) == pytest.approx(MAJOR_S)  # 5-mm major squares
        assert np.diff(ax.yaxis.get_majorticklocs()) == pytest.approx(MAJOR_MV)
        assert np.diff(ax.xaxis.get_minorticklocs()).min() == pytest.approx(MINOR_S)  # 1-mm minor squares
        assert np.diff(ax.yaxis.get_minorticklocs()).min() == pytest.approx(MINOR_MV)
        # the calibration pulse: 1 mV (10 mm) high, 0.2 s (5 mm) wide, before t = 0
        (pulse,) = [line for line in ax.get_lines() if line.get_gid() == "calibration"]
        x, y = pulse.get_xdata(), pulse.get_ydata()
        assert y.max() - y.min() == pytest.approx(1.0) and y[0] == y[-1] == 0.0
        top = x[y == y.max()]
        assert top.max() - top.min() == pytest.approx(0.2) and x.max() <= 0.0
    texts = [t.get_text() for t in fig.texts]
    assert "25 mm/s, 10 mm/mV" in texts
    plt.close(fig)


def test_each_lead_is_drawn_in_its_column_with_its_own_samples(twelve_lead):
    plt = require_matplotlib()
    original, recon = twelve_lead
    visible = np.isin(CANONICAL_LEADS, ["I", "II", "V2"])
    fig = ecg_figure(original, 500.0, reconstruction=recon, visible=visible)
    rows = {ax.get_gid(): ax for ax in fig.axes}
    for r, names in enumerate(GRID_LAYOUT):
        lines = {line.get_gid(): line for line in rows[f"row-{r}"].get_lines()}
        labels = {text.get_gid(): text for text in rows[f"row-{r}"].texts}
        for c, name in enumerate(names):
            j = CANONICAL_LEADS.index(name)
            trace = lines[f"original-{name}"]
            t = trace.get_xdata()
            assert t.min() == pytest.approx(2.5 * c)
            assert 2.5 * (c + 1) - 1 / 500 - 1e-9 <= t.max() <= 2.5 * (c + 1) + 1e-9  # joins the next column
            np.testing.assert_allclose(trace.get_ydata(), original[j, np.round(t * 500).astype(int)])
            assert labels[f"label-{name}"].get_text() == name
            assert 2.5 * c <= labels[f"label-{name}"].get_position()[0] < 2.5 * (c + 1)
            assert (f"reconstruction-{name}" in lines) == (not visible[j])  # hidden leads only
    rhythm = {line.get_gid(): line for line in rows["rhythm"].get_lines()}
    strip = rhythm["original-II"]
    assert strip.get_xdata()[0] == 0.0 and strip.get_xdata()[-1] == pytest.approx(10.0 - 1 / 500)
    np.testing.assert_allclose(strip.get_ydata(), original[CANONICAL_LEADS.index("II")])
    plt.close(fig)


def test_reconstruction_figure_labels_hidden_leads_with_r_and_amplitude_error(twelve_lead, tmp_path):
    from lvcg_cli.downstream.reconstruct import Reconstruction, score_leads
    from lvcg_cli.settings import DataSettings

    original, recon = twelve_lead
    visible = np.isin(CANONICAL_LEADS, ["I", "II", "V2"])
    rec = Reconstruction(
        "sim", "sim.hea", 500.0, "lvcg", recon.astype(np.float32), original.astype(np.float32),
        np.ones(12, bool), visible, np.zeros(12, bool),
    )  # fmt: skip
    rec.scores = score_leads(recon, original, 500.0, DataSettings(), ~visible)
    assert rec.scores["V4"].ptp_ratio == pytest.approx(0.6, abs=1e-6)  # r alone would look perfect
    fig = ecg_figure(original, 500.0, reconstruction=recon, visible=visible, scores=rec.scores)
    texts = {t.get_gid(): t.get_text() for ax in fig.axes for t in ax.texts}
    assert texts["score-V4"] == "hidden, r 1.00, RMSE " + f"{rec.scores['V4'].rmse:.3f} mV, p-p 0.60"
    assert texts["score-V2"] == "visible"
    require_matplotlib().close(fig)

    path = plot_reconstruction(rec, tmp_path / "ecg.png")
    from PIL import Image

    with Image.open(path) as image:
        dpi = image.info["dpi"]
        size = image.size
    assert dpi == pytest.approx((PAPER_DPI, PAPER_DPI), rel=1e-3)
    lo, hi = row_range([original, recon[~visible]])
    width_mm = MARGIN_MM["left"] + (CALIBRATION_S + 10.0) * 25.0 + MARGIN_MM["right"]
    height_mm = MARGIN_MM["top"] + 4 * (hi - lo) * 10.0 + MARGIN_MM["bottom"]
    assert size == (round(width_mm / 25.4 * PAPER_DPI), round(height_mm / 25.4 * PAPER_DPI))


def test_rows_fit_the_traces_on_the_grid_within_limits():
    assert row_range([np.array([-0.3, 0.8])]) == (-1.0, 2.0)  # never smaller than the pulse needs
    assert row_range([np.array([-1.7, 2.2])]) == (-2.5, 3.0)  # half a major square of margin
    assert row_range([np.array([-9.0, 9.0])]) == (-3.0, 3.5)  # capped


# --------------------------------------------------------------------------------------------
# the VCG loops
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def beat():
    from lvcg_cli.datasets.simulator import simulate

    sim = simulate(1, seed=2, fs=100.0, noise=False)
    return median_beat(sim.vcg[0], 100.0, sim.rpeaks[0])


def test_vcg_figure_shows_three_planes_on_equal_axes_in_mv(beat):
    plt = require_matplotlib()
    fig = vcg_figure(beat, title="test")
    planes = {ax.get_gid(): ax for ax in fig.axes if ax.get_gid() in {"frontal", "transverse", "sagittal"}}
    assert set(planes) == {"frontal", "transverse", "sagittal"}
    fig.canvas.draw()
    spans = set()
    for name, ax in planes.items():
        assert ax.get_aspect() == 1.0  # one mV is as long across as up
        x0, x1 = ax.get_xlim()
        y0, y1 = ax.get_ylim()
        spans.add(round(abs(x1 - x0), 9))
        spans.add(round(abs(y1 - y0), 9))
        assert "(mV)" in ax.get_xlabel() and "(mV)" in ax.get_ylabel()
        assert (y0 > y1) == (name != "transverse")  # inferior (+y) points down
    assert len(spans) == 1  # every plane on the same scale
    frontal = {line.get_gid(): line for line in planes["frontal"].get_lines()}
    qrs = beat.loop("QRS")
    np.testing.assert_allclose(frontal["loop-QRS"].get_xdata(), qrs[0])
    np.testing.assert_allclose(frontal["loop-QRS"].get_ydata(), qrs[1])
    plt.close(fig)


def test_vcg_arrows_point_forward_in_time(beat):
    plt = require_matplotlib()
    fig = vcg_figure(beat)
    for ax in fig.axes[:3]:
        arrows = [a for a in ax.texts if (a.get_gid() or "").startswith("arrow-")]
        names = {a.get_gid().split("-")[1] for a in arrows}
        assert {"QRS", "T"} <= names
        h, v = {"frontal": (0, 1), "transverse": (0, 2), "sagittal": (2, 1)}[ax.get_gid()]
        for arrow in arrows:
            _, name, tail, head = arrow.get_gid().split("-")
            tail, head = int(tail), int(head)
            assert head > tail
            loop = beat.loop(name)
            assert arrow.xyann == pytest.approx((loop[h, tail], loop[v, tail]))  # from the earlier sample
            assert arrow.xy == pytest.approx((loop[h, head], loop[v, head]))  # to the later one
    plt.close(fig)


def test_vcg_plot_writes_an_image_and_rejects_a_bad_field(tmp_path, beat):
    fs = 250.0
    t = np.arange(int(8 * fs)) / fs
    phase = (t % 1.0) - 0.5  # one beat a second, R at the middle of each second
    qrs = np.exp(-0.5 * (phase / 0.012) ** 2)
    field = np.stack([qrs, 0.5 * qrs, 0.2 * np.exp(-0.5 * ((phase - 0.25) / 0.04) ** 2)])
    out = plot_vcg(field, fs, tmp_path / "loop.png")
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(LvcgError, match="3, T"):
        plot_vcg(field[:2], fs, tmp_path / "bad.png")
    with pytest.raises(LvcgError, match="no beat"):
        plot_vcg(np.zeros((3, 2000)), fs, tmp_path / "flat.png")


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

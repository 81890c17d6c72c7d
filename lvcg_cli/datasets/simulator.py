"""A physiological 12-lead ECG simulator: the built-in default data and test data with known truth.

**This is a simulator, not clinical data.** It makes every command runnable on a fresh machine
without downloads and gives tests signals whose dipole, lead field, R peaks and conditions are
known exactly. Its labels follow the rules below, not a cardiologist; nothing learned from it
says anything about patients.

How one record is made
----------------------
1. **Rhythm.** A mean heart rate (bpm) is drawn: normal 63-97, ``brady`` 38-55, ``tachy``
   105-150. Sinus RR intervals carry respiratory sinus arrhythmia (1-5 % at 0.15-0.4 Hz) plus
   1.5 % jitter; ``afib`` RR intervals are log-normal with a coefficient of variation of 15-30 %
   ("irregularly irregular"). RR is clipped to 0.3-2.2 s. The first beat starts at a random phase.
2. **Beat dipole.** Each beat is a sum of 3-D Gaussian waves (direction x amplitude x Gaussian in
   time, centred relative to the R peak): P (0.08-0.2 mV, 150-200 ms before R, frontal 40-70 deg),
   Q (0.05-0.2 mV, septal: right-anterior), R (0.8-1.5 mV, 10-30 deg posterior), S (0.15-0.45
   mV, right-superior-posterior), T (0.2-0.45 mV, asymmetric, frontal 15-60 deg, 10-40 deg
   anterior, peak 0.26 sqrt(RR) s after R). The QRS waves (Q, R, S and a notch R') are rotated by
   a random rotation of up to 20 deg, then turned about the z axis so that the frontal angle of
   the net QRS area vector equals the drawn axis: normal +30..+70 deg. QT scales with sqrt(RR).
   Beat amplitudes follow respiration (2-10 %).
3. **Lead field.** Each record has its own *perturbed* Dower lead field (so the fixed geometry
   layer is not trivially exact): the electrode lead vectors of I, II, V1..V6 get an independent
   perturbation (6 % of the row norm per component), a per-lead gain (log-normal, sd 0.1) and a
   common random rotation of up to 12 deg; III, aVR, aVL, aVF are derived by Einthoven and
   Goldberger, as an electrocardiograph does, so those relations hold exactly on every record,
   noisy or not. A small **non-dipolar** part is added per independent lead: ``0.01 s * W dv/dt``
   with random ``W`` (8 % of the row norm), i.e. what a lead-specific activation delay of a few
   ms would add; no 12 x 3 matrix can express it.
4. **Noise** (``noise=True``), drawn per electrode (RA, LA, LL, V1..V6) and seen through the lead
   definitions, each with a random per-record level: baseline wander (3 sinusoids, 0.05-0.7 Hz,
   up to 0.3 mV), mains hum (50 or 60 Hz, up to 0.05 mV; left out when the mains frequency is
   above 0.45 fs, as the anti-aliasing filter of a real recorder at that rate would remove it),
   muscle (EMG) noise (high-passed white noise with a breathing-rate envelope, up to 0.06 mV)
   and white noise (3-20 uV). Noise comes from its own random stream: ``noise=False`` gives
   exactly the clean part of the same seed's noisy records.

Conditions (multi-label; prevalence; the rule that creates each)
-----------------------------------------------------------------
``afib`` 12 %
    no P waves; RR log-normal with CV 15-30 %; fibrillatory f-waves 4-9 Hz, 0.03-0.1 mV, with
    slow frequency and amplitude modulation, pointing right-anterior (largest in V1).
``brady`` / ``tachy`` 15 % / 15 % (exclusive)
    drawn from the rate ranges above; the label is then the *measured* rule on the true R
    peaks: ``60 fs / mean(diff(rpeaks)) < 60`` (brady) or ``> 100`` (tachy); a record with
    fewer than 2 R peaks in its window (short windows only) uses its drawn mean rate.
``lad`` 15 %
    the net QRS area vector's frontal angle is drawn in -75..-45 deg instead of +30..+70
    (left axis deviation: clinical axis < -30 deg).
``wide_qrs`` 12 %
    QRS Gaussians 1.6-1.9x wider and later, plus a notch wave R' 50-65 ms after R: right
    bundle-branch-like (R' right-anterior, rsR' in V1) or left-like (no septal Q, notched broad
    R). QRS duration (span of the QRS waves at +-2.5 sd) is about 140-190 ms, against 78-100 ms.
``st_elev`` 12 %
    an ST-segment vector (a plateau from the J point into the T wave, 0.15-0.35 mV) pointing to
    one territory: anterior (V1-V4), inferior (II, III, aVF) or lateral (I, aVL, V5, V6).
``t_inv`` 12 %
    the T vector points opposite its normal direction (0.15-0.35 mV), so T is negative in the
    leads where it is normally upright (I, II, V4-V6).
``lvh`` 12 %
    QRS amplitudes x2.0-2.6 (high voltage, Sokolow-Lyon-like).

A record with none of these is normal (about 30 %).

Speed: parameters are drawn for all records at once; beats are placed by FFT convolution of
an impulse train with each record's beat template; noise is generated per chunk of records.
The same seed gives bit-identical output (for the same n, fs and duration).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft

from lvcg_cli.errors import LvcgError

__all__ = ["LABEL_NAMES", "PREVALENCE", "SimulatedECG", "simulate"]

LABEL_NAMES: tuple[str, ...] = ("afib", "brady", "tachy", "lad", "wide_qrs", "st_elev", "t_inv", "lvh")
#: Probability with which each condition is *drawn* (brady and tachy are exclusive).
PREVALENCE: dict[str, float] = {
    "afib": 0.12,
    "brady": 0.15,
    "tachy": 0.15,
    "lad": 0.15,
    "wide_qrs": 0.12,
    "st_elev": 0.12,
    "t_inv": 0.12,
    "lvh": 0.12,
}

# Dower forward matrix for I, II, V1..V6 (Frank X, Y, Z); kept here so the simulator does not
# depend on the model package. tests/test_simulator.py checks it equals the geometry layer's.
_DOWER_8 = np.array(
    [
        [0.632, -0.235, 0.059],
        [0.235, 1.066, -0.132],
        [-0.515, 0.157, -0.917],
        [0.044, 0.164, -1.387],
        [0.882, 0.098, -1.277],
        [1.213, 0.127, -0.601],
        [1.125, 0.127, -0.086],
        [0.831, 0.076, 0.230],
    ]
)
# I, II, V1..V6 -> 12 leads (Einthoven and Goldberger).
_DERIVE = np.zeros((12, 8))
_DERIVE[0, 0] = _DERIVE[1, 1] = 1.0
_DERIVE[2, :2] = (-1.0, 1.0)
_DERIVE[3, :2] = (-0.5, -0.5)
_DERIVE[4, :2] = (1.0, -0.5)
_DERIVE[5, :2] = (-0.5, 1.0)
_DERIVE[6:, 2:] = np.eye(6)
# Electrode potentials RA, LA, LL, V1..V6 -> I, II, V1..V6 (V against Wilson's central terminal).
_ELECTRODES = np.zeros((8, 9))
_ELECTRODES[0, :3] = (-1.0, 1.0, 0.0)
_ELECTRODES[1, :3] = (-1.0, 0.0, 1.0)
_ELECTRODES[2:, :3] = -1.0 / 3.0
_ELECTRODES[2:, 3:] = np.eye(6)

_PRE_S = 0.35  # beat template span before the R peak (P wave)
_POST_S = 0.65  # and after it (T wave of the slowest, widest beats)
_RR_MIN, _RR_MAX = 0.3, 2.2
_CHUNK = 256  # records per noise/synthesis chunk (bounds memory at high fs)
_NONDIPOLAR_TAU_S = 0.01

# Canonical QRS directions (before the per-record rotation), our axes: x left, y inferior, z posterior.
_Q_DIR = np.array([-0.55, -0.1, -0.83])
_S_DIR = np.array([-0.4, -0.55, 0.73])
_RBBB_DIR = np.array([-0.6, 0.05, -0.8])
_ST_DIRS = np.array([[0.35, 0.1, -0.93], [0.1, 0.97, 0.2], [0.9, -0.3, 0.3]])  # anterior, inferior, lateral
_F_DIR = np.array([-0.35, 0.3, -0.89])


@dataclass
class SimulatedECG:
    """Simulated records with their truth.

    ``signals`` (n, 12, T) float32 mV in canonical lead order; ``vcg`` (n, 3, T) float32 true
    dipole (Frank-like X, Y, Z in mV, our axes); ``labels`` (n, C) bool in ``label_names`` order;
    ``rpeaks`` true R-peak sample indices per record (R wave centres inside the window);
    ``lead_fields`` (n, 12, 3) the per-record perturbed lead fields; ``nondipolar`` (n, 12, T)
    float32 the non-dipolar part (only with ``keep_components=True``), so that
    ``signals == lead_fields @ vcg + nondipolar`` when ``noise=False``; ``params`` per-record
    generation values (``hr_bpm``, ``axis_deg``, ``qrs_ms``, ``rr_cv``, ``st_territory`` ...).
    """

    signals: np.ndarray
    vcg: np.ndarray
    labels: np.ndarray
    label_names: tuple[str, ...]
    rpeaks: list[np.ndarray]
    fs: float
    lead_fields: np.ndarray | None = None
    nondipolar: np.ndarray | None = None
    params: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.signals.shape[0])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _angles_dir(frontal_deg: np.ndarray, elevation_deg: np.ndarray) -> np.ndarray:
    """Unit vectors at a frontal angle (from +x towards +y) tilted by an elevation towards +z."""
    a, e = np.deg2rad(frontal_deg), np.deg2rad(elevation_deg)
    return np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1)


def _random_rotations(rng: np.random.Generator, n: int, max_deg: float) -> np.ndarray:
    """(n, 3, 3) rotations about uniformly random axes by angles uniform in [0, max_deg]."""
    axis = _unit(rng.standard_normal((n, 3)))
    angle = np.deg2rad(rng.uniform(0.0, max_deg, n))
    k = np.zeros((n, 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k = k - k.transpose(0, 2, 1)
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


def _rot_z(angle_rad: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    r = np.zeros((angle_rad.shape[0], 3, 3))
    r[:, 0, 0], r[:, 0, 1], r[:, 1, 0], r[:, 1, 1], r[:, 2, 2] = c, -s, s, c, 1.0
    return r


def _draw_record_params(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Every per-record random quantity except noise, for all records at once."""
    p: dict[str, np.ndarray] = {}
    u = rng.random((n, 7))
    p["afib"] = u[:, 0] < PREVALENCE["afib"]
    rate_u = u[:, 1]
    p["brady_drawn"] = rate_u < PREVALENCE["brady"]
    p["tachy_drawn"] = rate_u >= 1.0 - PREVALENCE["tachy"]
    p["lad"] = u[:, 2] < PREVALENCE["lad"]
    p["wide_qrs"] = u[:, 3] < PREVALENCE["wide_qrs"]
    p["st_elev"] = u[:, 4] < PREVALENCE["st_elev"]
    p["t_inv"] = u[:, 5] < PREVALENCE["t_inv"]
    p["lvh"] = u[:, 6] < PREVALENCE["lvh"]

    hr = np.where(
        p["brady_drawn"],
        rng.uniform(38, 55, n),
        np.where(p["tachy_drawn"], rng.uniform(105, 150, n), rng.uniform(63, 97, n)),
    )
    p["rr_mean"] = 60.0 / hr
    p["rsa_amp"] = rng.uniform(0.01, 0.05, n)
    p["resp_hz"] = rng.uniform(0.15, 0.4, n)
    p["resp_phase"] = rng.uniform(0, 2 * np.pi, n)
    p["af_cv"] = rng.uniform(0.15, 0.30, n)
    p["beat_mod"] = rng.uniform(0.02, 0.10, n)
    p["start_phase"] = rng.random(n)

    # QRS timing and widths (s); wide_qrs stretches them and adds a notch R'.
    wf = np.where(p["wide_qrs"], rng.uniform(1.6, 1.9, n), 1.0)
    p["q_c"] = -rng.uniform(0.020, 0.026, n) * wf
    p["q_s"] = rng.uniform(0.007, 0.009, n) * wf
    p["r_s"] = rng.uniform(0.009, 0.012, n) * wf
    p["s_c"] = rng.uniform(0.020, 0.026, n) * wf
    p["s_s"] = rng.uniform(0.008, 0.010, n) * wf
    p["n_c"] = rng.uniform(0.050, 0.065, n)
    p["n_s"] = rng.uniform(0.012, 0.016, n)
    p["bbb"] = np.where(p["wide_qrs"], 1 + (rng.random(n) < 0.5), 0)  # 1 right-like, 2 left-like
    lvh_gain = np.where(p["lvh"], rng.uniform(2.0, 2.6, n), 1.0)
    p["lvh_gain"] = lvh_gain
    r_amp = rng.uniform(0.8, 1.5, n)
    p["q_a"] = rng.uniform(0.05, 0.2, n) * lvh_gain * (p["bbb"] != 2)
    p["r_a"] = r_amp * lvh_gain
    p["s_a"] = rng.uniform(0.15, 0.45, n) * lvh_gain
    p["n_a"] = rng.uniform(0.4, 0.8, n) * r_amp * lvh_gain * p["wide_qrs"]
    starts = np.stack([p["q_c"] - 2.5 * p["q_s"], -2.5 * p["r_s"]], axis=1).min(axis=1)
    ends = np.stack(
        [p["s_c"] + 2.5 * p["s_s"], np.where(p["wide_qrs"], p["n_c"] + 2.5 * p["n_s"], -np.inf)], axis=1
    ).max(axis=1)
    p["qrs_on"], p["qrs_off"] = starts, ends
    p["qrs_ms"] = 1000.0 * (ends - starts)

    # QRS directions: canonical template, random rotation, then the frontal axis set exactly.
    r_dir = _angles_dir(np.full(n, 50.0), rng.uniform(10, 30, n))
    q_dir = _unit(_Q_DIR + 0.15 * rng.standard_normal((n, 3)))
    s_dir = _unit(_S_DIR + 0.15 * rng.standard_normal((n, 3)))
    n_dir = np.where((p["bbb"] == 1)[:, None], _unit(_RBBB_DIR + 0.1 * rng.standard_normal((n, 3))), r_dir)
    dirs = np.stack([q_dir, r_dir, s_dir, n_dir], axis=1)  # (n, 4, 3)
    dirs = dirs @ _random_rotations(rng, n, 20.0).transpose(0, 2, 1)
    areas = np.stack([p["q_a"] * p["q_s"], p["r_a"] * p["r_s"], p["s_a"] * p["s_s"], p["n_a"] * p["n_s"]], 1)
    net = np.einsum("nk,nkc->nc", areas, dirs)
    axis = np.where(p["lad"], rng.uniform(-75, -45, n), rng.uniform(30, 70, n))
    turn = np.deg2rad(axis) - np.arctan2(net[:, 1], net[:, 0])
    p["qrs_dirs"] = dirs @ _rot_z(turn).transpose(0, 2, 1)
    p["axis_deg"] = axis

    # P and T waves; QT follows sqrt(RR).
    sq = np.sqrt(p["rr_mean"])
    p["p_a"] = rng.uniform(0.08, 0.2, n) * ~p["afib"]
    p["p_c"] = -rng.uniform(0.15, 0.20, n)
    p["p_s"] = rng.uniform(0.018, 0.028, n)
    p["p_dir"] = _angles_dir(rng.uniform(40, 70, n), rng.uniform(-15, 5, n))
    t_dir = _angles_dir(rng.uniform(15, 60, n), rng.uniform(-40, -10, n))
    p["t_dir"] = np.where(p["t_inv"][:, None], -t_dir, t_dir)
    p["t_a"] = np.where(p["t_inv"], rng.uniform(0.15, 0.35, n), rng.uniform(0.2, 0.45, n))
    p["t_c"] = 0.26 * sq + np.maximum(ends - 0.05, 0.0)
    p["t_sl"] = rng.uniform(0.05, 0.06, n) * sq
    p["t_sr"] = rng.uniform(0.032, 0.04, n) * sq

    territory = rng.integers(0, 3, n)
    p["st_territory"] = np.where(p["st_elev"], territory, -1)
    p["st_dir"] = _unit(_ST_DIRS[territory] + 0.1 * rng.standard_normal((n, 3)))
    p["st_a"] = rng.uniform(0.15, 0.35, n) * p["st_elev"]

    # f-waves of atrial fibrillation.
    p["f_a"] = rng.uniform(0.03, 0.1, n) * p["afib"]
    p["f_hz"] = rng.uniform(4, 9, n)
    p["f_dev"] = rng.uniform(0.5, 1.5, n)  # Hz of slow frequency modulation
    p["f_mod_hz"] = rng.uniform(0.1, 0.5, n)
    p["f_phase"] = rng.uniform(0, 2 * np.pi, (n, 3))
    p["f_dir"] = _unit(_F_DIR + 0.2 * rng.standard_normal((n, 3)))

    # Per-record perturbed lead field and non-dipolar weights.
    row_norm = np.linalg.norm(_DOWER_8, axis=1)[None, :, None]
    lf8 = _DOWER_8[None] + 0.06 * row_norm * rng.standard_normal((n, 8, 3))
    lf8 = lf8 * np.exp(0.1 * rng.standard_normal((n, 8, 1)))
    p["lead_field_8"] = lf8 @ _random_rotations(rng, n, 12.0)
    p["nondipolar_w"] = 0.08 * row_norm / np.sqrt(3.0) * rng.standard_normal((n, 8, 3))
    return p


def _rr_sequences(rng: np.random.Generator, p: dict[str, np.ndarray], n_beats: int) -> np.ndarray:
    n = p["rr_mean"].shape[0]
    rr0 = p["rr_mean"][:, None]
    b = np.arange(n_beats)[None, :]
    sinus = rr0 * (
        1.0
        + p["rsa_amp"][:, None]
        * np.sin(2 * np.pi * p["resp_hz"][:, None] * b * rr0 + p["resp_phase"][:, None])
        + 0.015 * rng.standard_normal((n, n_beats))
    )
    cv = p["af_cv"][:, None]
    af = rr0 * np.exp(cv * rng.standard_normal((n, n_beats)) - 0.5 * cv**2)
    return np.clip(np.where(p["afib"][:, None], af, sinus), _RR_MIN, _RR_MAX)


def _gauss(t: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * ((t - c[:, None]) / s[:, None]) ** 2)


def _templates(p: dict[str, np.ndarray], idx: np.ndarray, fs: float, pre: int, post: int) -> np.ndarray:
    """(m, 3, pre + post + 1) beat dipoles with the R peak at sample ``pre``."""
    t = (np.arange(-pre, post + 1) / fs)[None, :]
    g = lambda key_c, key_s: _gauss(t, p[key_c][idx], p[key_s][idx])  # noqa: E731
    m = idx.shape[0]
    zeros = np.zeros(m)
    qrs = p["qrs_dirs"][idx]
    waves = [
        (g("q_c", "q_s") * p["q_a"][idx, None], qrs[:, 0]),
        (_gauss(t, zeros, p["r_s"][idx]) * p["r_a"][idx, None], qrs[:, 1]),
        (g("s_c", "s_s") * p["s_a"][idx, None], qrs[:, 2]),
        (g("n_c", "n_s") * p["n_a"][idx, None], qrs[:, 3]),
        (g("p_c", "p_s") * p["p_a"][idx, None], p["p_dir"][idx]),
    ]
    tc = p["t_c"][idx, None]
    t_width = np.where(t < tc, p["t_sl"][idx, None], p["t_sr"][idx, None])
    waves.append((np.exp(-0.5 * ((t - tc) / t_width) ** 2) * p["t_a"][idx, None], p["t_dir"][idx]))
    j_point = p["qrs_off"][idx, None]
    st_end = tc + p["t_sr"][idx, None]
    plateau = 1.0 / (1.0 + np.exp(-(t - j_point) / 0.006)) / (1.0 + np.exp(-(st_end - t) / 0.02))
    waves.append((plateau * p["st_a"][idx, None], p["st_dir"][idx]))
    shapes = np.stack([w for w, _ in waves], axis=1)  # (m, W, L)
    dirs = np.stack([d for _, d in waves], axis=1)  # (m, W, 3)
    return np.einsum("mwl,mwc->mcl", shapes, dirs)


def _f_waves(p: dict[str, np.ndarray], idx: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(m, 3, T) fibrillatory waves (zero for records without afib)."""
    ph = p["f_phase"][idx]
    fm = p["f_mod_hz"][idx, None]
    phase = (
        2 * np.pi * p["f_hz"][idx, None] * t
        + (p["f_dev"][idx, None] / fm) * np.sin(2 * np.pi * fm * t + ph[:, :1])
        + ph[:, 1:2]
    )
    envelope = 1.0 + 0.3 * np.sin(2 * np.pi * 0.7 * fm * t + ph[:, 2:3])
    wave = p["f_a"][idx, None] * envelope * (np.sin(phase) + 0.3 * np.sin(2 * phase + 1.0))
    return wave[:, None, :] * p["f_dir"][idx][:, :, None]


def _electrode_noise(rng: np.random.Generator, m: int, n_samples: int, fs: float) -> np.ndarray:
    """(m, 9, T) float32 noise at the electrodes RA, LA, LL, V1..V6."""
    t = (np.arange(n_samples) / fs).astype(np.float32)
    # Baseline wander: 3 slow sinusoids per record, mixed into each electrode.
    freqs = np.stack([rng.uniform(lo, hi, m) for lo, hi in ((0.05, 0.15), (0.15, 0.4), (0.4, 0.7))], 1)
    phases = rng.uniform(0, 2 * np.pi, (m, 3, 1))
    waves = np.sin((2 * np.pi * freqs[:, :, None] * t + phases).astype(np.float32))
    wander_level = rng.uniform(0.0, 0.3, m) * (rng.random(m) < 0.8)
    mix = (rng.standard_normal((m, 9, 3)) / np.sqrt(3.0) * wander_level[:, None, None]).astype(np.float32)
    noise = mix @ waves
    # Mains hum, only where the sampling rate could carry it.
    line_hz = np.where(rng.random(m) < 0.5, 50.0, 60.0)
    line_level = rng.uniform(0.0, 0.05, m) * (line_hz < 0.45 * fs)
    line_gain = (rng.uniform(0.5, 1.5, (m, 9)) * line_level[:, None]).astype(np.float32)
    hum = np.sin((2 * np.pi * line_hz[:, None] * t + rng.uniform(0, 2 * np.pi, (m, 1))).astype(np.float32))
    noise += line_gain[:, :, None] * hum[:, None, :]
    # Muscle noise (first difference of white noise: high-passed, with a slow envelope) and
    # white noise, both from one draw.
    emg_level = 0.06 * rng.random(m) ** 2
    env_hz = rng.uniform(0.1, 0.5, (m, 1))
    env = np.clip(1.0 + 0.8 * np.sin((2 * np.pi * env_hz * t).astype(np.float32)), 0.2, None)
    env *= np.float32(1 / np.sqrt(2.0)) * emg_level[:, None].astype(np.float32)
    white = rng.standard_normal((m, 9, n_samples + 1), dtype=np.float32)
    noise += (white[:, :, 1:] - white[:, :, :-1]) * env[:, None, :]
    white_level = rng.uniform(0.003, 0.02, (m, 1, 1)).astype(np.float32)
    noise += white[:, :, 1:] * white_level
    return noise


def simulate(
    n: int,
    seed: int = 0,
    fs: float = 100.0,
    duration_s: float = 10.0,
    noise: bool = True,
    *,
    keep_components: bool = False,
) -> SimulatedECG:
    """Simulate ``n`` 12-lead records of ``duration_s`` seconds at ``fs`` Hz (see the module doc).

    Deterministic: the same arguments give bit-identical output. ``noise=False`` returns the
    clean signals of the same records. ``keep_components=True`` also returns the non-dipolar part.
    """
    if int(n) != n or n < 0:
        raise LvcgError(f"simulate: n must be a non-negative integer (got {n})")
    if not fs >= 50:
        raise LvcgError(f"simulate: fs must be >= 50 Hz to resolve a QRS complex (got {fs})")
    if not duration_s >= 1:
        raise LvcgError(f"simulate: duration_s must be >= 1 s (got {duration_s})")
    n, fs = int(n), float(fs)
    n_samples = int(round(fs * duration_s))
    params_seq, beats_seq, noise_seq = np.random.SeedSequence(seed).spawn(3)
    p = _draw_record_params(np.random.default_rng(params_seq), n)

    pre, post = int(np.ceil(_PRE_S * fs)), int(np.ceil(_POST_S * fs))
    n_beats = int(np.ceil((duration_s + _PRE_S + _POST_S) / _RR_MIN)) + 2
    rr = _rr_sequences(np.random.default_rng(beats_seq), p, n_beats)
    first = -_POST_S + p["start_phase"][:, None] * rr[:, :1]
    beat_t = first + np.concatenate([np.zeros((n, 1)), np.cumsum(rr[:, :-1], axis=1)], axis=1)
    beat_i = np.round(beat_t * fs).astype(np.int64)
    beat_amp = 1.0 + p["beat_mod"][:, None] * np.sin(
        2 * np.pi * p["resp_hz"][:, None] * beat_t + p["resp_phase"][:, None]
    )
    rpeaks = [row[(row >= 0) & (row < n_samples)] for row in beat_i]

    # Everything ends in the 12 leads through per-record 12 x k maps built from the 8 independent
    # leads (Einthoven/Goldberger rows), so the derived leads obey the relations on every term.
    lead_fields = np.einsum("lk,nkc->nlc", _DERIVE, p["lead_field_8"])
    nondip_maps = (_NONDIPOLAR_TAU_S * np.einsum("lk,nkc->nlc", _DERIVE, p["nondipolar_w"])).astype(
        np.float32
    )
    lead_fields32 = lead_fields.astype(np.float32)
    electrode_map = (_DERIVE @ _ELECTRODES).astype(np.float32)
    signals = np.empty((n, 12, n_samples), dtype=np.float32)
    vcg = np.empty((n, 3, n_samples), dtype=np.float32)
    nondipolar = np.empty((n, 12, n_samples), dtype=np.float32) if keep_components else None
    noise_rng = np.random.default_rng(noise_seq)
    # Extended time axis: impulses at beat sample + post, convolved with templates of length
    # pre + post + 1, so the window [0, T) of the record sits at offset pre + post.
    n_ext = n_samples + pre + post
    n_fft = scipy.fft.next_fast_len(n_ext + pre + post + 1, real=True)
    t = np.arange(n_samples) / fs
    for lo in range(0, n, _CHUNK):
        hi = min(lo + _CHUNK, n)
        idx = np.arange(lo, hi)
        m = hi - lo
        impulses = np.zeros((m, n_ext), dtype=np.float32)
        cols = beat_i[lo:hi] + post
        ok = (cols >= 0) & (cols < n_ext)
        rows = np.broadcast_to(np.arange(m)[:, None], cols.shape)
        impulses[rows[ok], cols[ok]] = beat_amp[lo:hi][ok]
        template = _templates(p, idx, fs, pre, post).astype(np.float32)
        spectrum = scipy.fft.rfft(impulses, n_fft)[:, None, :] * scipy.fft.rfft(template, n_fft)
        dipole = scipy.fft.irfft(spectrum, n_fft)[:, :, pre + post : pre + post + n_samples]
        af = np.flatnonzero(p["afib"][lo:hi])
        if af.size:
            dipole[af] += _f_waves(p, lo + af, t).astype(np.float32)
        vcg[lo:hi] = dipole
        nondip = nondip_maps[lo:hi] @ (np.gradient(dipole, axis=-1) * np.float32(fs))
        out = lead_fields32[lo:hi] @ dipole
        out += nondip
        if noise:
            out += electrode_map @ _electrode_noise(noise_rng, m, n_samples, fs)
        signals[lo:hi] = out
        if nondipolar is not None:
            nondipolar[lo:hi] = nondip

    # Rate labels follow the measured rule on the true R peaks (beats inside the window are
    # consecutive, so their RR intervals are the consecutive differences of in-window beats).
    inside = (beat_i >= 0) & (beat_i < n_samples)
    pair = inside[:, 1:] & inside[:, :-1]
    n_rr = pair.sum(axis=1)
    rr_s = np.diff(beat_i, axis=1) / fs
    rr_mean = np.where(n_rr > 0, (rr_s * pair).sum(axis=1) / np.maximum(n_rr, 1), p["rr_mean"])
    rr_var = (((rr_s - rr_mean[:, None]) ** 2) * pair).sum(axis=1) / np.maximum(n_rr, 1)
    hr = 60.0 / rr_mean
    labels = np.stack(
        [p["afib"], hr < 60.0, hr > 100.0, p["lad"], p["wide_qrs"], p["st_elev"], p["t_inv"], p["lvh"]],
        axis=1,
    )
    params = {
        "hr_bpm": hr,
        "rr_cv": np.where(n_rr >= 2, np.sqrt(rr_var) / rr_mean, 0.0),
        "axis_deg": p["axis_deg"],
        "qrs_ms": p["qrs_ms"],
        "bbb": p["bbb"],
        "st_territory": p["st_territory"],
        "lvh_gain": p["lvh_gain"],
    }
    return SimulatedECG(
        signals=signals,
        vcg=vcg,
        labels=labels.astype(bool),
        label_names=LABEL_NAMES,
        rpeaks=rpeaks,
        fs=fs,
        lead_fields=lead_fields,
        nondipolar=nondipolar,
        params=params,
    )

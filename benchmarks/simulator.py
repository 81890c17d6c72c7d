"""Simulator speed, and the geometry layer's lift against real Frank leads.

    python benchmarks/simulator.py            # both
    python benchmarks/simulator.py speed      # records/s at 100 Hz and 500 Hz
    python benchmarks/simulator.py frank      # Pearson r of lifted vs measured vx, vy, vz (PTB s0010_re)

Prints figures only (docs/BENCHMARKS.md records them); never used by the tests.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy.signal
import torch

from lvcg_cli.datasets.simulator import simulate
from lvcg_cli.model.geometry import GEOMETRY_LEADS, INDEPENDENT_INDEX, LeadField

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("LVCG_SHARED_DATA", REPO.parent / "shared" / "data"))


def speed(repeats: int = 3) -> None:
    print(
        f"# simulator speed ({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, best of {repeats})"
    )
    simulate(16, seed=0)  # warm up imports and FFT plans
    for fs, n in ((100.0, 4000), (500.0, 800)):
        for noise in (True, False):
            best = min(
                _time(lambda fs=fs, n=n, noise=noise: simulate(n, seed=1, fs=fs, noise=noise))
                for _ in range(repeats)
            )
            print(f"fs={fs:5.0f} Hz  10 s records  noise={noise!s:5}  n={n:5d}  {n / best:8.0f} records/s")


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def frank_correlations(record: Path, geometry: str, lift: str, leads: list[int]) -> np.ndarray:
    """Pearson r per axis between the lifted leads and the measured Frank vx, vy, vz (0.67-40 Hz)."""
    import wfdb

    rec = wfdb.rdrecord(str(record))  # reads the .dat (12 leads) and the .xyz (vx, vy, vz) files
    names = [n.lower() for n in rec.sig_name]
    sos = scipy.signal.butter(2, [0.67, 40.0], btype="band", fs=rec.fs, output="sos")
    x = scipy.signal.sosfiltfilt(sos, rec.p_signal.T, axis=-1)
    twelve = torch.as_tensor(x[[names.index(n.lower()) for n in GEOMETRY_LEADS]][None])
    frank = x[[names.index(n) for n in ("vx", "vy", "vz")]]
    visible = torch.zeros(1, 12, dtype=torch.bool)
    visible[0, leads] = True
    lifted = LeadField(geometry, lift=lift).double().lift(twelve, visible)[0].numpy()
    return np.array([np.corrcoef(lifted[i], frank[i])[0, 1] for i in range(3)])


def frank() -> None:
    record = SHARED_DATA / "ptb_diagnostic" / "s0010_re"
    if not record.with_suffix(".xyz").is_file():
        print(f"# PTB record not found at {record}; skipped")
        return
    print("# lifted vs measured Frank leads, PTB Diagnostic s0010_re, 0.67-40 Hz, 38.4 s at 1000 Hz")
    eight, twelve = list(INDEPENDENT_INDEX), list(range(12))
    for geometry, lift, leads, label in (
        ("dower", "pinv", eight, "inverse Dower (pinv of Dower, I II V1-V6)"),
        ("dower", "pinv", twelve, "ridge pinv of Dower, all 12 leads"),
        ("dower", "kors", eight, "Kors regression (I II V1-V6)"),
        ("ideal", "pinv", eight, "ridge pinv of ideal, I II V1-V6"),
    ):
        r = frank_correlations(record, geometry, lift, leads)
        print(f"{label:45s}  r_x {r[0]:+.3f}  r_y {r[1]:+.3f}  r_z {r[2]:+.3f}")


if __name__ == "__main__":
    what = sys.argv[1:] or ["speed", "frank"]
    if "speed" in what:
        speed()
    if "frank" in what:
        frank()

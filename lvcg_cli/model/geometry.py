"""The fixed geometry layer: lead-field matrices between a 3-D cardiac dipole and the 12 leads.

A 12-lead ECG is (to first order) a linear view of one time-varying 3-D dipole ``d(t)``:
``leads(t) = M d(t)`` with a fixed 12 x 3 *lead-field matrix* ``M``. The model keeps ``M``
fixed (a registered buffer, never trained) so that its latent field stays a physically
meaningful vectorcardiogram (VCG) and the same latent can be viewed through any lead subset.

Conventions (rows and axes are the same for every geometry):

* rows ``I, II, III, aVR, aVL, aVF, V1 .. V6`` (:data:`GEOMETRY_LEADS`);
* columns x right -> left, y superior -> inferior, z anterior -> posterior (Frank X, Y, Z as
  used in Dower's matrix: the Z column of V1 is negative because V1 faces the front);
* for ``dower``, III, aVR, aVL and aVF are derived from I and II by Einthoven and Goldberger
  (``III = II - I``, ``aVR = -(I + II)/2``, ``aVL = I - II/2``, ``aVF = II - I/2``), as in real
  recordings, so the relations hold on every projected signal (to float32 rounding of the
  stored buffer, ~1e-7 relative).

Geometries:

``dower``
    Dower, Machado & Osborne (1980): Frank XYZ -> I, II, V1..V6, in mV per mV of Frank lead.
    Its pseudo-inverse over the 8 independent leads is the *inverse Dower* matrix of Edenbrandt
    & Pahlm (1988) to within 5e-4 (pinned in the tests), i.e. the published inverse is just the
    pseudo-inverse of this forward matrix rounded to three decimals.
``ideal``
    The paper's idealised unit lead directions: limb leads in the frontal plane at their
    hexaxial angles (I 0, II 60, III 120, aVR -150, aVL -30, aVF 90 degrees), precordial leads
    on a ring tilted 10 degrees inferior at azimuths V1 110, V2 70, V3 40, V4 10, V5 -20,
    V6 -50 degrees: ``(cos e cos a, sin e, cos e sin a)`` with ``e`` = 10 degrees. Note the sign
    of z: as specified, V1 gets z = +0.925 (V1 is a *posterior*-pointing lead on our z axis),
    the opposite of Dower's V1 (z = -0.917). A field lifted through ``ideal`` therefore has
    its z axis flipped relative to Frank/Dower; never compare latents across geometries.
    All rows are unit vectors (no torso scaling). Einthoven holds (III = II - I exactly), but the
    unit augmented leads are 2/sqrt(3) times Goldberger's (aVR = -(I + II)/sqrt(3) here, not
    -(I + II)/2): in the Einthoven-triangle model the true augmented lead vectors have length
    sqrt(3)/2. Kept as specified; pinned in the tests.

``kors`` (Kors et al. 1990) is not a lead field but a *lift*: a regression from the 8
independent leads to Frank XYZ (:func:`kors_matrix`). It is fitted to real Frank leads, not
derived from Dower, so ``kors_matrix() @ dower[I, II, V1..V6]`` is only roughly the identity
(off-diagonal up to -0.38). It is only allowed as ``LeadField(geometry="dower", lift="kors")``
(both are calibrated to Frank XYZ, same axes, Z posterior) and only when all 8 independent
leads are visible; anything else raises :class:`~lvcg_cli.errors.LvcgError` rather than
silently mixing two different inverses.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from lvcg_cli.errors import LvcgError

__all__ = [
    "GEOMETRY_LEADS",
    "GEOMETRIES",
    "INDEPENDENT_INDEX",
    "LIFTS",
    "LeadField",
    "derive_limb_leads_matrix",
    "kors_matrix",
    "lead_field_matrix",
]

GEOMETRY_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
#: Rows of the 12-lead order that are electrically independent (I, II, V1..V6).
INDEPENDENT_INDEX: tuple[int, ...] = (0, 1, 6, 7, 8, 9, 10, 11)
GEOMETRIES: tuple[str, ...] = ("dower", "ideal")
LIFTS: tuple[str, ...] = ("pinv", "kors")

# Dower, Machado & Osborne 1980, rows I, II, V1..V6; columns Frank X, Y, Z.
_DOWER_8 = np.array(
    [
        [0.632, -0.235, 0.059],  # I
        [0.235, 1.066, -0.132],  # II
        [-0.515, 0.157, -0.917],  # V1
        [0.044, 0.164, -1.387],  # V2
        [0.882, 0.098, -1.277],  # V3
        [1.213, 0.127, -0.601],  # V4
        [1.125, 0.127, -0.086],  # V5
        [0.831, 0.076, 0.230],  # V6
    ],
    dtype=np.float64,
)

# Kors et al. 1990 regression, rows X, Y, Z; columns I, II, V1..V6 (Z posterior, as Frank/Dower).
_KORS = np.array(
    [
        [0.38, -0.07, -0.13, 0.05, -0.01, 0.14, 0.06, 0.54],
        [-0.07, 0.93, 0.06, -0.02, -0.05, 0.06, -0.17, 0.13],
        [0.11, -0.23, -0.43, -0.06, -0.14, -0.20, -0.11, 0.31],
    ],
    dtype=np.float64,
)

_IDEAL_LIMB_DEG = (0.0, 60.0, 120.0, -150.0, -30.0, 90.0)  # I, II, III, aVR, aVL, aVF
_IDEAL_PRECORDIAL_AZIMUTH_DEG = (110.0, 70.0, 40.0, 10.0, -20.0, -50.0)  # V1..V6
_IDEAL_PRECORDIAL_ELEVATION_DEG = 10.0  # ring tilted towards inferior (+y)


def derive_limb_leads_matrix() -> np.ndarray:
    """The (12, 8) matrix taking I, II, V1..V6 to the 12 leads (Einthoven + Goldberger).

    Real electrocardiographs record the 8 independent leads and compute the other four this way,
    so any 12-lead signal (or lead field) built through this matrix satisfies the relations exactly.
    """
    d = np.zeros((12, 8), dtype=np.float64)
    d[0, 0] = 1.0  # I
    d[1, 1] = 1.0  # II
    d[2, 0], d[2, 1] = -1.0, 1.0  # III = II - I
    d[3, 0], d[3, 1] = -0.5, -0.5  # aVR = -(I + II) / 2
    d[4, 0], d[4, 1] = 1.0, -0.5  # aVL = I - II / 2
    d[5, 0], d[5, 1] = -0.5, 1.0  # aVF = II - I / 2
    for k in range(6):
        d[6 + k, 2 + k] = 1.0
    return d


def _ideal() -> np.ndarray:
    m = np.zeros((12, 3), dtype=np.float64)
    limb = np.deg2rad(np.asarray(_IDEAL_LIMB_DEG))
    m[:6, 0] = np.cos(limb)
    m[:6, 1] = np.sin(limb)
    az = np.deg2rad(np.asarray(_IDEAL_PRECORDIAL_AZIMUTH_DEG))
    el = np.deg2rad(_IDEAL_PRECORDIAL_ELEVATION_DEG)
    m[6:, 0] = np.cos(el) * np.cos(az)
    m[6:, 1] = np.sin(el)
    m[6:, 2] = np.cos(el) * np.sin(az)
    return m


def lead_field_matrix(name: str) -> np.ndarray:
    """The fixed (12, 3) float64 lead-field matrix of a geometry (``"dower"`` or ``"ideal"``).

    A fresh copy each call, so callers may modify it.
    """
    key = str(name).lower()
    if key == "dower":
        return derive_limb_leads_matrix() @ _DOWER_8
    if key == "ideal":
        return _ideal()
    if key == "kors":
        raise LvcgError(
            "geometry 'kors' does not exist: Kors is a regression lift (12 leads -> XYZ), not a lead "
            "field; use geometry 'dower' with lift 'kors'"
        )
    raise LvcgError(f"unknown geometry {name!r}; choose one of {', '.join(GEOMETRIES)}")


def kors_matrix() -> np.ndarray:
    """The (3, 8) Kors regression matrix: rows X, Y, Z; columns I, II, V1..V6 (a fresh copy)."""
    return _KORS.copy()


class LeadField(nn.Module):
    """Fixed projection between a 3-D field and 12 leads, and its lift back from visible leads.

    ``matrix`` is a registered float32 buffer (moves with ``.to()``, saved in ``state_dict``,
    never a parameter, never trained). ``lift`` inverts it per sample from whichever leads are
    visible with a ridge pseudo-inverse ``(U^T U + eps I)^-1 U^T`` where ``U`` is the matrix with
    hidden rows zeroed: exact (up to ``eps``) on well-conditioned subsets, the minimum-norm-like
    ridge solution on rank-deficient ones (e.g. limb leads only carry no z information, so the
    lifted z is ~0). ``eps = 0`` uses the Moore-Penrose pseudo-inverse instead (via SVD).
    """

    matrix: Tensor

    kors: Tensor  # a buffer, like matrix (for type checkers; registered in __init__)

    def __init__(self, geometry: str = "dower", lift: str = "pinv", eps: float = 1e-3):
        super().__init__()
        geometry = str(geometry).lower()
        lift = str(lift).lower()
        if lift not in LIFTS:
            raise LvcgError(f"unknown lift {lift!r}; choose one of {', '.join(LIFTS)}")
        if lift == "kors" and geometry != "dower":
            raise LvcgError(
                f"lift 'kors' needs geometry 'dower' (Kors regresses onto Frank XYZ, the axes of Dower's "
                f"matrix); geometry {geometry!r} has different axes and scale"
            )
        if not eps >= 0:
            raise LvcgError(f"lift eps must be >= 0 (got {eps})")
        self.geometry = geometry
        self.lift_kind = lift
        self.eps = float(eps)
        self.register_buffer("matrix", torch.as_tensor(lead_field_matrix(geometry), dtype=torch.float32))
        kors = np.zeros((3, 12), dtype=np.float64)
        kors[:, list(INDEPENDENT_INDEX)] = _KORS
        # Not persistent: a constant of the code, not of a checkpoint.
        self.register_buffer("kors", torch.as_tensor(kors, dtype=torch.float32), persistent=False)

    def extra_repr(self) -> str:
        return f"geometry={self.geometry!r}, lift={self.lift_kind!r}, eps={self.eps:g}"

    def project(self, field: Tensor) -> Tensor:
        """(B, 3, T) field -> (B, 12, T) leads through the fixed matrix (in the field's dtype)."""
        if field.dim() != 3 or field.shape[1] != 3:
            raise ValueError(f"field must be (B, 3, T), got {tuple(field.shape)}")
        return torch.einsum("lc,bct->blt", self.matrix.to(field.dtype), field)

    def lift_matrix(self, visible: Tensor) -> Tensor:
        """(B, 12) bool visible leads -> (B, 3, 12) lift matrices (zero columns for hidden leads).

        Computed in float32 (float64 if the buffer is float64) with autocast off, because the
        3 x 3 solves are not available (nor accurate) in half precision.
        """
        if visible.dim() != 2 or visible.shape[1] != 12:
            raise ValueError(f"visible must be (B, 12), got {tuple(visible.shape)}")
        matrix = self.matrix
        dtype = torch.float64 if matrix.dtype == torch.float64 else torch.float32
        visible = visible.to(device=matrix.device, dtype=torch.bool)
        with torch.autocast(device_type=matrix.device.type, enabled=False):
            if self.lift_kind == "kors":
                return self._kors_lift_matrix(visible).to(dtype)
            u = matrix.to(dtype).unsqueeze(0) * visible.unsqueeze(-1).to(dtype)  # (B, 12, 3)
            ut = u.transpose(1, 2)  # (B, 3, 12)
            if self.eps == 0.0:
                return torch.linalg.pinv(u)
            gram = ut @ u + self.eps * torch.eye(3, dtype=dtype, device=u.device)
            # solve_ex: no error check, hence no host-device sync on a GPU; the ridge term keeps the
            # 3 x 3 Gram matrix invertible for every visible subset, so there is nothing to check
            return torch.linalg.solve_ex(gram, ut)[0]

    def _kors_lift_matrix(self, visible: Tensor) -> Tensor:
        needed = visible[:, list(INDEPENDENT_INDEX)]
        if not bool(needed.all()):
            bad = int((~needed.all(dim=1)).nonzero()[0, 0])
            missing = [GEOMETRY_LEADS[i] for i in INDEPENDENT_INDEX if not bool(visible[bad, i])]
            raise LvcgError(
                f"lift 'kors' needs all of I, II, V1-V6 visible (sample {bad} lacks {', '.join(missing)}); "
                "use lift 'pinv' for reduced lead sets"
            )
        return self.kors.unsqueeze(0).expand(visible.shape[0], 3, 12)

    def lift(self, leads: Tensor, visible: Tensor) -> Tensor:
        """(B, 12, T) leads, (B, 12) bool visible -> (B, 3, T) field; hidden leads are ignored.

        Differentiable with respect to ``leads``; returned in the dtype of ``leads``.
        """
        if leads.dim() != 3 or leads.shape[1] != 12:
            raise ValueError(f"leads must be (B, 12, T), got {tuple(leads.shape)}")
        if visible.shape[0] != leads.shape[0]:
            raise ValueError(f"visible has {visible.shape[0]} rows for a batch of {leads.shape[0]}")
        visible = visible.to(device=leads.device, dtype=torch.bool)
        lift = self.lift_matrix(visible)
        # Zero the hidden leads first: their columns are zero, but 0 * NaN would still leak.
        shown = leads.masked_fill(~visible.unsqueeze(-1), 0.0)
        with torch.autocast(device_type=leads.device.type, enabled=False):
            out = torch.bmm(lift, shown.to(lift.dtype))
        return out.to(leads.dtype)

"""The 12 standard leads: their canonical order and how names in files and on the command line map to it.

Every array of leads in lvcg is ``(12, ...)`` in :data:`CANONICAL_LEADS` order. Files name their
leads in many spellings (PTB-XL ``AVR``, LUDB ``avr``, CinC ``aVR``) and some store them in another
order (MIMIC-IV-ECG puts aVF before aVL), so leads are always matched by *name*, never by position.

Matching is deliberately narrow: case is ignored, surrounding blanks and the prefixes that clinical
formats put before a lead name are dropped (``lead`` and ``ECG `` as in EDF/DICOM, ``MDC_ECG_LEAD_``
as in HL7 aECG, a trailing ``(Einthoven)``/``(Goldberger)``/``(Wilson)`` as in DICOM code meanings),
and the European Roman/Arabic limb-lead names ``DI/DII/DIII`` (``D1/D2/D3``, used e.g. by CODE-15) are
accepted. Other leads (``V3R``, ``V7``, Frank ``X/Y/Z``, ``-aVR``) are *not* the standard leads and
are never matched: treating them as such would feed the geometry layer a lead it does not describe.
The one exception is :func:`assign_leads`, which reads ``MLII`` (MIT-BIH's modified lead II, close to
II) as II when a file has no real II, and says so in a warning; ``--lead-map`` covers the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from lvcg_cli.errors import LvcgError

CANONICAL_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
"""The 12 standard leads in the order every (12, T) array uses."""

INDEPENDENT_LEADS: tuple[str, ...] = ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
"""The 8 linearly independent leads (III and the augmented leads are combinations of I and II)."""

N_LEADS = len(CANONICAL_LEADS)

_ALIASES: dict[str, str] = {"di": "I", "dii": "II", "diii": "III", "d1": "I", "d2": "II", "d3": "III"}
_BY_KEY: dict[str, int] = {name.lower(): i for i, name in enumerate(CANONICAL_LEADS)}
_BY_KEY.update({alias: CANONICAL_LEADS.index(name) for alias, name in _ALIASES.items()})


_PREFIXES = ("mdc_ecg_lead_", "ecg", "lead")
_QUALIFIER = re.compile(r"\s*\((einthoven|goldberger|wilson)\)$")


def _key(name: str) -> str:
    key = _QUALIFIER.sub("", name.strip().lower())
    for prefix in _PREFIXES:  # "ECG Lead II" loses both, in this order
        if key.startswith(prefix):
            key = key[len(prefix) :].strip(" _-:")
    return key


def lead_index(name: str) -> int | None:
    """Canonical index (0-11) of a lead name, or ``None`` if it is not one of the 12 standard leads.

    >>> lead_index("AVR"), lead_index("avr"), lead_index("aVR"), lead_index("DII"), lead_index("MLII")
    (3, 3, 3, 1, None)
    >>> lead_index("Lead I (Einthoven)"), lead_index("MDC_ECG_LEAD_AVF"), lead_index("ECG V1"), lead_index("V3R")
    (0, 5, 6, None)
    """
    if not isinstance(name, str):
        return None
    return _BY_KEY.get(_key(name))


def canonical_name(name: str) -> str | None:
    """The canonical spelling of a lead name (``"avr"`` -> ``"aVR"``), or ``None``."""
    index = lead_index(name)
    return None if index is None else CANONICAL_LEADS[index]


def parse_leads(spec: str | Iterable[str]) -> list[int]:
    """Parse a lead list such as ``"I,II,V2"`` into canonical indices, in the order given.

    Also accepts an iterable of names, and the words ``all`` (the 12 leads) and ``independent``
    (:data:`INDEPENDENT_LEADS`). Duplicates are dropped. Raises :class:`LvcgError` naming the unknown
    lead and the valid names, or when the list is empty.
    """
    if isinstance(spec, str):
        text = spec.strip()
        if text.lower() == "all":
            return list(range(N_LEADS))
        if text.lower() == "independent":
            return [CANONICAL_LEADS.index(name) for name in INDEPENDENT_LEADS]
        names = [part.strip() for part in text.replace(";", ",").split(",")]
    else:
        names = [str(part).strip() for part in spec]
    names = [name for name in names if name]
    if not names:
        raise LvcgError(f"no leads given; choose from {', '.join(CANONICAL_LEADS)} (or 'all')")
    indices: list[int] = []
    for name in names:
        index = lead_index(name)
        if index is None:
            raise LvcgError(
                f"unknown lead {name!r}; valid leads are {', '.join(CANONICAL_LEADS)} "
                "(case-insensitive; 'all' selects the 12)"
            )
        if index not in indices:
            indices.append(index)
    return indices


def visible_mask(indices: Iterable[int]) -> np.ndarray:
    """A (12,) bool mask that is True at the given canonical lead indices."""
    mask = np.zeros(N_LEADS, dtype=bool)
    idx = np.asarray(list(indices), dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= N_LEADS):
        raise LvcgError(f"lead indices must be in 0..{N_LEADS - 1} (got {idx.tolist()})")
    mask[idx] = True
    return mask


def lead_names(mask: np.ndarray) -> list[str]:
    """Canonical names of the leads where ``mask`` is True (for messages and file headers)."""
    return [name for name, on in zip(CANONICAL_LEADS, np.asarray(mask, dtype=bool), strict=True) if on]


# --------------------------------------------------------------------------------------------
# channels of a file -> canonical leads
# --------------------------------------------------------------------------------------------
DROP = "-"
"""Lead-map target that drops a channel (``--lead-map "Pleth=-"``)."""

_MONITORING_ALIASES: dict[str, str] = {"mlii": "II", "ml2": "II"}
"""Monitoring leads close enough to a standard lead to stand in for it, with a warning."""


def parse_lead_map(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"ECG1=I,ECG2=II,Pleth=-"`` (or a mapping) -> ``{file label (lower case): canonical lead or "-"}``.

    The left side is a channel label as the file writes it (matched ignoring case and surrounding
    blanks); the right side must be one of the 12 standard leads, or ``-`` to ignore the channel.
    Raises :class:`LvcgError` (one line) for a malformed entry or an unknown target lead.
    """
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        pairs = [(str(k), str(v)) for k, v in spec.items()]
    else:
        pairs = []
        for part in str(spec).split(","):
            if not part.strip():
                continue
            old, sep, new = part.partition("=")
            if not sep or not old.strip() or not new.strip():
                raise LvcgError(f"--lead-map: expected OLD=NEW pairs such as 'ECG1=I,ECG2=II' (got {part!r})")
            pairs.append((old, new))
    mapping: dict[str, str] = {}
    for old, new in pairs:
        target = new.strip()
        if target != DROP:
            canonical = canonical_name(target)
            if canonical is None:
                raise LvcgError(
                    f"--lead-map: {old.strip()}={target}: {target!r} is not a standard lead; "
                    f"use one of {', '.join(CANONICAL_LEADS)} or '-' to ignore the channel"
                )
            target = canonical
        mapping[old.strip().lower()] = target
    return mapping


@dataclass
class LeadAssignment:
    """Which canonical lead each channel of a file is, and what was assumed to get there.

    ``index[c]`` is the canonical index of channel ``c``, or ``None`` for a channel that is not one
    of the 12 leads (kept as an extra) or that the lead map drops (listed in ``dropped``).
    """

    index: list[int | None]
    dropped: list[int] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def assign_leads(names: Iterable[str], lead_map: Mapping[str, str] | str | None = None) -> LeadAssignment:
    """Match a file's channel labels to the 12 leads: the lead map first, then the known spellings.

    ``MLII`` stands in for II (flag ``lead_alias:MLII->II`` and a warning) only when no channel is
    a real II; every other unknown label stays unmatched. Applied map entries are flagged
    ``lead_map:OLD->NEW``.
    """
    mapping = lead_map if isinstance(lead_map, dict) else parse_lead_map(lead_map)
    labels = [str(n) for n in names]
    out = LeadAssignment(index=[None] * len(labels))
    for col, label in enumerate(labels):
        target = mapping.get(label.strip().lower())
        if target == DROP:
            out.dropped.append(col)
            out.flags.append(f"lead_map:{label.strip()}->{DROP}")
        elif target is not None:
            out.index[col] = CANONICAL_LEADS.index(target)
            out.flags.append(f"lead_map:{label.strip()}->{target}")
        else:
            out.index[col] = lead_index(label)
    for col, label in enumerate(labels):
        alias = _MONITORING_ALIASES.get(_key(label))
        if out.index[col] is None and col not in out.dropped and alias is not None:
            target = CANONICAL_LEADS.index(alias)
            if target not in out.index:
                out.index[col] = target
                out.flags.append(f"lead_alias:{label.strip()}->{alias}")
                out.warnings.append(
                    f"{label.strip()} (a modified monitoring lead) is read as lead {alias}; it is close to, "
                    f"not identical with, the standard lead (use --lead-map '{label.strip()}=-' to ignore it)"
                )
    return out


LIMB_FROM_I_II: dict[str, tuple[float, float]] = {
    "III": (-1.0, 1.0),  # Einthoven: III = II - I
    "aVR": (-0.5, -0.5),  # Goldberger: aVR = -(I + II) / 2
    "aVL": (1.0, -0.5),  # aVL = I - II / 2
    "aVF": (-0.5, 1.0),  # aVF = II - I / 2
}
"""Coefficients (of I, of II) of the leads that I and II determine exactly."""

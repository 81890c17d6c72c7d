"""The 12 standard leads: their canonical order and how names in files and on the command line map to it.

Every array of leads in lvcg is ``(12, ...)`` in :data:`CANONICAL_LEADS` order. Files name their
leads in many spellings (PTB-XL ``AVR``, LUDB ``avr``, CinC ``aVR``) and some store them in another
order (MIMIC-IV-ECG puts aVF before aVL), so leads are always matched by *name*, never by position.

Matching is deliberately narrow: case is ignored, surrounding blanks and a ``lead`` prefix are
dropped, and the European Roman/Arabic limb-lead names ``DI/DII/DIII`` (``D1/D2/D3``, used e.g. by
CODE-15) are accepted. Modified or bipolar monitoring leads (``MLII``, ``V5`` of a Holter ``CM5``)
are *not* the standard leads and are not matched: treating them as such would feed the geometry
layer a lead it does not describe.
"""

from __future__ import annotations

from collections.abc import Iterable

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


def _key(name: str) -> str:
    key = name.strip().lower()
    if key.startswith("lead"):
        key = key[4:].strip(" _-")
    return key


def lead_index(name: str) -> int | None:
    """Canonical index (0-11) of a lead name, or ``None`` if it is not one of the 12 standard leads.

    >>> lead_index("AVR"), lead_index("avr"), lead_index("aVR"), lead_index("DII"), lead_index("MLII")
    (3, 3, 3, 1, None)
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

"""Lead names: canonical order, case-insensitive matching, parsing of lead lists."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lvcg_cli.errors import LvcgError
from lvcg_cli.signals.leads import (
    CANONICAL_LEADS,
    INDEPENDENT_LEADS,
    canonical_name,
    lead_index,
    lead_names,
    parse_leads,
    visible_mask,
)


def test_canonical_order_and_independent_subset():
    assert CANONICAL_LEADS == ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
    assert INDEPENDENT_LEADS == ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6")
    assert set(INDEPENDENT_LEADS) <= set(CANONICAL_LEADS)


@pytest.mark.parametrize(
    ("name", "index"),
    [
        ("I", 0),
        ("ii", 1),
        ("III", 2),
        ("AVR", 3),
        ("avr", 3),
        ("aVR", 3),
        ("AVL", 4),
        ("avf", 5),
        ("v1", 6),
        ("V6", 11),
        (" V2 ", 7),
        ("DI", 0),
        ("DII", 1),
        ("d3", 2),
        ("Lead II", 1),
    ],
)
def test_lead_index_matches_spellings(name, index):
    assert lead_index(name) == index


@pytest.mark.parametrize("name", ["MLII", "vx", "VY", "V7", "", "aV", "I I", "CM5"])
def test_lead_index_rejects_non_standard(name):
    assert lead_index(name) is None


@given(st.sampled_from(range(12)), st.lists(st.booleans(), min_size=4, max_size=4))
def test_lead_index_ignores_case(index, upper):
    name = CANONICAL_LEADS[index]
    mixed = "".join(c.upper() if u else c.lower() for c, u in zip(name, upper + [False] * 4, strict=False))
    assert lead_index(mixed) == index
    assert canonical_name(mixed) == name


def test_parse_leads_keeps_order_and_drops_duplicates():
    assert parse_leads("I,II,V2") == [0, 1, 7]
    assert parse_leads("v2, avl ,I,V2") == [7, 4, 0]
    assert parse_leads(["II", "AVF"]) == [1, 5]
    assert parse_leads("all") == list(range(12))
    assert parse_leads("independent") == [0, 1, 6, 7, 8, 9, 10, 11]


def test_parse_leads_names_the_unknown_lead_and_valid_names():
    with pytest.raises(LvcgError) as info:
        parse_leads("I,XX,V2")
    message = str(info.value)
    assert "'XX'" in message and "aVR" in message and "V6" in message
    assert "\n" not in message
    with pytest.raises(LvcgError, match="no leads"):
        parse_leads(" , ")


def test_visible_mask_and_names():
    mask = visible_mask(parse_leads("I,II,V2"))
    assert mask.dtype == bool and mask.shape == (12,)
    assert np.flatnonzero(mask).tolist() == [0, 1, 7]
    assert lead_names(mask) == ["I", "II", "V2"]
    assert not visible_mask([]).any()
    with pytest.raises(LvcgError):
        visible_mask([12])

"""PTB-XL records written to DICOM (pydicom), EDF+ (edfio) and GE MUSE XML, read back by lvcg.

The bundled PTB-XL records (CC BY 4.0) are the source, so these tests run without ../shared. Each
format is read back to within its own resolution, and embedding a converted file gives the same
vector as embedding the WFDB original.
"""

from __future__ import annotations

import numpy as np
import pytest
from clinical_writers import PTBXL, canonical, ptbxl, write_dicom, write_edf, write_muse

from lvcg_cli.signals.io import read_record
from lvcg_cli.signals.leads import CANONICAL_LEADS

RECORDS = ["00001_hr", "00002_hr", "00003_hr"]


def in_canonical_order(mv: np.ndarray, names: list[str]) -> np.ndarray:
    """(T, C) in file order -> (12, T) canonical."""
    order = [canonical(n) for n in names]
    return np.stack([mv[:, order.index(lead)] for lead in CANONICAL_LEADS])


@pytest.mark.parametrize("name", RECORDS)
def test_dicom_round_trip_within_one_lsb(tmp_path, name):
    mv, fs, names = ptbxl(name)
    digits = write_dicom(tmp_path / f"{name}.dcm", mv, fs, names, uv_per_lsb=2.5)
    record = read_record(tmp_path / f"{name}.dcm")
    assert record.meta["format"] == "dicom" and record.meta["waveform_group"] == "RHYTHM"
    assert record.fs == fs and record.signal.shape == (12, mv.shape[0]) and record.present.all()
    assert record.flags == [] and record.meta["age"] == 56 and record.meta["sex"] == "M"
    expected = in_canonical_order(digits * 2.5e-3, names)
    np.testing.assert_allclose(record.signal, expected, atol=1e-6)  # exactly the stored values
    np.testing.assert_allclose(record.signal, in_canonical_order(mv, names), atol=1.25e-3 + 1e-6)  # LSB / 2


@pytest.mark.parametrize("name", RECORDS)
def test_edf_round_trip_within_resolution(tmp_path, name):
    mv, fs, names = ptbxl(name)
    signals = write_edf(tmp_path / f"{name}.edf", mv, fs, names)
    record = read_record(tmp_path / f"{name}.edf")
    assert record.meta["format"] == "edf" and record.fs == fs and record.present.all()
    assert record.meta["leads_in_file"][3] == "ECG aVR"  # EDF+ labels with the "ECG " prefix
    truth = in_canonical_order(mv, names)
    for row, lead in enumerate(CANONICAL_LEADS):
        signal = signals[[canonical(n) for n in names].index(lead)]
        low, high = signal.physical_range
        resolution = (high - low) / 65535  # 16-bit EDF
        assert np.abs(record.signal[row] - truth[row]).max() <= resolution / 2 + 1e-6


def test_muse_round_trip_derives_the_limb_leads(tmp_path):
    mv, fs, names = ptbxl("00001_hr")
    digits = write_muse(tmp_path / "muse.xml", mv, fs, names)
    record = read_record(tmp_path / "muse.xml")
    assert record.meta["format"] == "muse" and record.meta["sex"] == "F" and record.n_samples == mv.shape[0]
    truth = in_canonical_order(mv, names)
    for j, lead in enumerate(["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]):
        row = CANONICAL_LEADS.index(lead)
        np.testing.assert_allclose(record.signal[row], digits[:, j] * 4.88e-3, atol=1e-6)
        assert np.abs(record.signal[row] - truth[row]).max() <= 2.44e-3 + 1e-6
    assert record.flags == [f"derived_lead:{lead}" for lead in ("III", "aVR", "aVL", "aVF")]
    lead_i, lead_ii = record.signal[0].astype(np.float64), record.signal[1].astype(np.float64)
    np.testing.assert_allclose(record.signal[2], lead_ii - lead_i, atol=1e-6)
    np.testing.assert_allclose(record.signal[3], -(lead_i + lead_ii) / 2, atol=1e-6)
    np.testing.assert_allclose(record.signal[4], lead_i - lead_ii / 2, atol=1e-6)
    np.testing.assert_allclose(record.signal[5], lead_ii - lead_i / 2, atol=1e-6)
    # PTB-XL's own III/aVR/aVL/aVF agree with the derived ones to within the recording's rounding
    assert np.abs(record.signal[2:6] - truth[2:6]).max() < 0.02


def test_embedding_a_converted_file_equals_embedding_the_wfdb_original(tmp_path):
    from lvcg_cli.downstream.embed import Embedder
    from lvcg_cli.engine.checkpoint import load_model

    model, settings = load_model(None)
    embedder = Embedder(model, settings.data, settings.model, workers=1)
    paths = []
    for name in RECORDS[:2]:
        mv, fs, names = ptbxl(name)
        write_dicom(tmp_path / f"{name}.dcm", mv, fs, names)
        write_edf(tmp_path / f"{name}.edf", mv, fs, names)
        write_muse(tmp_path / f"{name}.xml", mv, fs, names)
        paths += [
            PTBXL / f"{name}.hea",
            tmp_path / f"{name}.dcm",
            tmp_path / f"{name}.edf",
            tmp_path / f"{name}.xml",
        ]
    result = embedder.embed_paths(paths)
    assert result.skipped == [] and result.embeddings.shape[0] == len(paths)
    vectors = result.embeddings / np.linalg.norm(result.embeddings, axis=1, keepdims=True)
    for k in range(2):
        original, *converted = vectors[4 * k : 4 * k + 4]
        for vector in converted:
            assert float(vector @ original) >= 0.99
    # and the two records are told apart (the check is not vacuous)
    assert float(vectors[0] @ vectors[4]) < float(vectors[0] @ vectors[1])

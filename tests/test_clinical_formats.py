"""Every example file in ../shared/data/clinical, read by lvcg and checked against an independent decoder.

The reference is ecgdatakit (its own DICOM/EDF/XML/SCP/XLI decoders, none shared with lvcg's readers),
plus facts from the files' SOURCE.md (rates, lengths, lead sets) and raw-byte decodings. Several files
are GPL-3.0: they are read where they lie and never copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lvcg_cli.signals.io import find_records, read_record
from lvcg_cli.signals.leads import CANONICAL_LEADS, lead_index

# file -> (format, fs, n samples, leads in the file (canonical spelling), leads kept as extras)
EXPECTED = {
    "dicom/pydicom_waveform_ecg.dcm": ("dicom", 1000.0, 10000, CANONICAL_LEADS, ()),
    "muse/EGM_muse-sinus.xml": ("muse", 500.0, 5000, ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"), ()),
    "muse/BRAVEHEART_example1.xml": (
        "muse",
        500.0,
        5000,
        ("I", "II", "V1", "V2", "V3", "V4", "V5", "V6"),
        (),
    ),
    "aecg/HL7_Example_aECG.xml": ("aecg", 500.0, 5000, CANONICAL_LEADS, ()),
    "scp/ECGToolkit_Example.scp": ("scp", 500.0, 5000, CANONICAL_LEADS, ()),
    "scp/SCPTools_ECG_20060620_112352_ANON000002.SCP": (
        "scp",
        600.0,
        6000,
        ("I", "II", "V1", "V2", "V4", "V6"),
        ("V3R", "V7"),
    ),
    # 5500 samples stored; the trailing calibration pulse (all leads equal: 0, 1 mV, 0) is cut off
    "sierra/sierra_1-03_129DYPRG.XML": ("philips", 500.0, 5264, CANONICAL_LEADS, ()),
    "sierra/sierra_1-04_3191723_ZZDEMOPTONLY_orig.xml": ("philips", 500.0, 5300, CANONICAL_LEADS, ()),
    "edf/contec_0000050.ECG.edf": ("edf", 800.0, 37855, CANONICAL_LEADS, ()),
}
LIMB = ("III", "aVR", "aVL", "aVF")
FLAT = {"edf/contec_0000050.ECG.edf": ("V1", "V2", "V3", "V4", "V5", "V6")}
"""Leads stored as constants (the Contec recording has limb leads only): flagged flat, made absent."""


@pytest.fixture(scope="module")
def clinical(shared_data) -> Path:
    folder = shared_data / "clinical"
    if not folder.is_dir():
        pytest.skip(f"clinical example files not found at {folder}")
    return folder


def reference(path: Path) -> dict[str, np.ndarray]:
    """ecgdatakit's decoding: {lead label as it reports it: samples in mV}."""
    from ecgdatakit.parsing.parser import FileParser

    record = FileParser.parse(path)
    assert all(lead.units == "mV" for lead in record.leads)
    return {lead.label: np.asarray(lead.samples, dtype=np.float64) for lead in record.leads}


def idx(name: str) -> int:
    return CANONICAL_LEADS.index(name)


def test_every_example_file_is_covered(clinical):
    files = sorted(p.relative_to(clinical).as_posix() for p in clinical.rglob("*") if p.is_file())
    assert sorted(EXPECTED) == [f for f in files if f != "SOURCE.md"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reads_like_the_reference_decoder(clinical, name):
    fmt, fs, n, in_file, extras = EXPECTED[name]
    path = clinical / name
    record = read_record(path)
    assert record.meta["format"] == fmt and record.fs == fs and record.signal.shape == (12, n)
    assert record.signal.dtype == np.float32 and np.isfinite(record.signal).all()
    derived = [lead for lead in LIMB if lead not in in_file]
    assert [f for f in record.flags if f.startswith("derived_lead:")] == [
        f"derived_lead:{d}" for d in derived
    ]
    flat = FLAT.get(name, ())
    assert [f for f in record.flags if f.startswith("flat_lead:")] == [f"flat_lead:{lead}" for lead in flat]
    present = (set(in_file) | set(derived)) - set(flat)
    assert record.present.tolist() == [lead in present for lead in CANONICAL_LEADS]
    ref = reference(path)
    standard = {label: x for label, x in ref.items() if lead_index(label) is not None}
    assert {CANONICAL_LEADS[lead_index(label)] for label in standard} == set(in_file)
    for label, samples in standard.items():
        if fmt == "philips":  # what was cut is the calibration pulse: 0 or 1 mV, the same on every lead
            assert samples.size == 5500 and set(np.round(samples[n:], 6)) <= {0.0, 1.0}
            samples = samples[:n]
        assert samples.size == n
        if CANONICAL_LEADS[lead_index(label)] in flat:
            assert np.ptp(samples) == 0 and not record.present[lead_index(label)]
            continue
        np.testing.assert_allclose(
            record.signal[lead_index(label)], samples, rtol=1e-6, atol=1e-5, err_msg=f"{name} {label}"
        )
    # amplitudes are physiological mV (not uV, not digital units)
    assert 0.2 < np.abs(record.signal[idx("II")]).max() < 10
    assert sorted(record.meta.get("extra_signals", {})) == sorted(extras)
    for extra in extras:
        np.testing.assert_allclose(record.meta["extra_signals"][extra], ref[extra], rtol=1e-6, atol=1e-5)
        assert f"extra_lead:{extra}" in record.flags


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_limb_leads_obey_einthoven_and_goldberger(clinical, name):
    """Derived leads exactly; leads stored in the file to within their quantisation."""
    record = read_record(clinical / name)
    lead_i, lead_ii = record.signal[idx("I")].astype(np.float64), record.signal[idx("II")].astype(np.float64)
    truth = {"III": lead_ii - lead_i, "aVR": -(lead_i + lead_ii) / 2, "aVL": lead_i - lead_ii / 2}
    truth["aVF"] = lead_ii - lead_i / 2
    stored = EXPECTED[name][3]
    assert record.present[[idx("I"), idx("II")]].all()
    for lead, expected in truth.items():
        got = record.signal[idx(lead)]
        if lead in stored:
            # devices derive these from their own I and II and round: a few LSB (<= 10 uV) apart;
            # the Contec EDF converter rounds to 30.5 uV steps
            tolerance = 0.1 if name.startswith("edf/") else 0.012
            assert np.abs(got - expected).max() < tolerance, (name, lead)
        else:
            np.testing.assert_allclose(got, expected, atol=1e-6, err_msg=f"{name} {lead}")


def test_dicom_rhythm_group_against_raw_bytes(clinical):
    """Group 0 (RHYTHM, 10000 x 12) decoded by hand: int16 little-endian x 1.25 uV, not the median beat."""
    import pydicom

    path = clinical / "dicom" / "pydicom_waveform_ecg.dcm"
    ds = pydicom.dcmread(path)
    raw = np.frombuffer(ds.WaveformSequence[0].WaveformData, dtype="<i2").reshape(10000, 12)
    record = read_record(path)
    np.testing.assert_allclose(record.signal.T, raw * 1.25e-3, atol=1e-6)
    assert record.meta["waveform_group"] == "RHYTHM" and record.meta["n_waveform_groups"] == 2
    assert record.meta["leads_in_file"][0] == "Lead I (Einthoven)"
    np.testing.assert_array_equal(raw[:, 2], raw[:, 1] - raw[:, 0])  # SOURCE.md: III = II - I exactly


def test_aecg_and_its_scp_conversion_are_the_same_signal(clinical):
    """SOURCE.md: ECG Toolkit converted the HL7 example to SCP; two decoders, one signal."""
    aecg = read_record(clinical / "aecg" / "HL7_Example_aECG.xml")
    scp = read_record(clinical / "scp" / "ECGToolkit_Example.scp")
    np.testing.assert_allclose(aecg.signal, scp.signal, atol=1e-7)
    assert aecg.meta["leads_in_file"][9] == "MDC_ECG_LEAD_AVR" and aecg.meta["sex"] == "M"
    # the first samples of lead I in the file's <digits> are "-2 -2 -2 -2 -3 -4" at 2.5 uV
    np.testing.assert_allclose(aecg.signal[0, :6], np.array([-2, -2, -2, -2, -3, -4]) * 2.5e-3, atol=1e-9)


def test_paediatric_scp_keeps_v3r_and_v7_out_of_v3_and_v5(clinical):
    record = read_record(clinical / "scp" / "SCPTools_ECG_20060620_112352_ANON000002.SCP")
    assert not record.present[idx("V3")] and not record.present[idx("V5")]
    assert np.all(record.signal[[idx("V3"), idx("V5")]] == 0)
    assert any("V3R, V7" in w and "V3, V5" in w for w in record.meta["warnings"])
    assert record.meta["age"] == 36


def test_muse_metadata_and_rhythm_not_median(clinical):
    record = read_record(clinical / "muse" / "EGM_muse-sinus.xml")
    assert record.meta["age"] == 43 and record.meta["sex"] == "M" and record.meta["device"] == "MV360"
    assert record.n_samples == 5000  # the Median waveform (600 samples) comes first in the file
    assert "Normal Sinus rhythm" in record.meta["header"]["diagnosis"]


def test_folder_of_clinical_files_is_found_by_content(clinical):
    found = find_records([clinical])
    assert sorted(p.relative_to(clinical).as_posix() for p in found) == sorted(EXPECTED)

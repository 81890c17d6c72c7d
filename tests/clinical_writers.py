"""Write open records in clinical formats with the formats' own libraries (pydicom, edfio) or by the
format's definition (GE MUSE XML), so the readers are tested against files they did not write.

Used by the clinical-format tests; the sources are the bundled PTB-XL records (CC BY 4.0).
"""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import numpy as np
import wfdb

REPO = Path(__file__).resolve().parents[1]
PTBXL = REPO / "lvcg_cli" / "assets" / "records" / "ptbxl"
SCP_CODES = {"I": 1, "II": 2, "V1": 3, "V2": 4, "V3": 5, "V4": 6, "V5": 7, "V6": 8}
SCP_CODES.update({"III": 61, "aVR": 62, "aVL": 63, "aVF": 64})
DICOM_MEANINGS = {"I": "Lead I (Einthoven)", "II": "Lead II", "III": "Lead III"}


def ptbxl(name: str = "00001_hr") -> tuple[np.ndarray, float, list[str]]:
    """A bundled PTB-XL record as (T, 12) mV, fs and its lead names as written (``AVR`` ...)."""
    rec = wfdb.rdrecord(str(PTBXL / name))
    return rec.p_signal, float(rec.fs), list(rec.sig_name)


def canonical(name: str) -> str:
    return {"AVR": "aVR", "AVL": "aVL", "AVF": "aVF"}.get(name, name)


def write_dicom(
    path: Path, mv: np.ndarray, fs: float, names: list[str], uv_per_lsb: float = 1.0, median: bool = True
) -> np.ndarray:
    """A 12-lead ECG Waveform Storage file: a RHYTHM group (+ a MEDIAN BEAT group first if ``median``).

    Returns the int16 samples written (T, C), so a test can compute the expected values itself.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    digits = np.round(mv * 1000.0 / uv_per_lsb).astype(np.int16)

    def group(label: str, data: np.ndarray, originality: str) -> Dataset:
        g = Dataset()
        g.MultiplexGroupLabel = label
        g.WaveformOriginality = originality
        g.NumberOfWaveformChannels = data.shape[1]
        g.NumberOfWaveformSamples = data.shape[0]
        g.SamplingFrequency = f"{fs:g}"
        g.WaveformBitsAllocated = 16
        g.WaveformSampleInterpretation = "SS"
        channels = []
        for name in names:
            lead = canonical(name)
            source = Dataset()
            source.CodeValue = f"5.6.3-9-{SCP_CODES[lead]}"
            source.CodingSchemeDesignator = "SCPECG"
            source.CodeMeaning = DICOM_MEANINGS.get(lead, f"Lead {lead}")
            units = Dataset()
            units.CodeValue = "uV"
            units.CodingSchemeDesignator = "UCUM"
            units.CodeMeaning = "microvolt"
            ch = Dataset()
            ch.ChannelSourceSequence = [source]
            ch.ChannelSensitivity = f"{uv_per_lsb:g}"
            ch.ChannelSensitivityUnitsSequence = [units]
            ch.ChannelSensitivityCorrectionFactor = "1"
            ch.ChannelBaseline = "0"
            ch.ChannelSampleSkew = "0"
            ch.WaveformBitsStored = 16
            channels.append(ch)
        g.ChannelDefinitionSequence = channels
        g.WaveformData = np.ascontiguousarray(data, dtype="<i2").tobytes()
        return g

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.9.1.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "ECG"
    ds.PatientSex = "M"
    ds.PatientAge = "056Y"
    groups = [group("RHYTHM", digits, "ORIGINAL")]
    if median:  # a decoy first: a beat-long group with other values
        groups.insert(0, group("MEDIAN BEAT", digits[:600] // 2, "DERIVED"))
    ds.WaveformSequence = groups
    ds.save_as(path, enforce_file_format=True)
    return digits


def write_edf(path: Path, mv: np.ndarray, fs: float, names: list[str], prefix: str = "ECG ") -> list:
    """EDF+ with edfio, one 16-bit signal per lead labelled ``ECG I`` ...; returns the edfio signals."""
    from edfio import Edf, EdfSignal

    signals = []
    for col, name in enumerate(names):
        data = mv[:, col]
        low, high = float(data.min()) - 0.01, float(data.max()) + 0.01
        signals.append(
            EdfSignal(
                data,
                sampling_frequency=fs,
                label=f"{prefix}{canonical(name)}",
                physical_dimension="mV",
                physical_range=(low, high),
            )
        )
    Edf(signals).write(path)
    return signals


def write_muse(
    path: Path, mv: np.ndarray, fs: float, names: list[str], uv_per_bit: float = 4.88
) -> np.ndarray:
    """A GE MUSE XML file of the 8 independent leads (Median waveform first, then Rhythm), as MUSE does.

    Returns the int16 samples written (T, 8) in the order I, II, V1..V6.
    """
    order = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    cols = [[canonical(n) for n in names].index(lead) for lead in order]
    digits = np.round(mv[:, cols] * 1000.0 / uv_per_bit).astype("<i2")

    def waveform(kind: str, data: np.ndarray) -> str:
        leads = []
        for j, lead in enumerate(order):
            raw = np.ascontiguousarray(data[:, j]).tobytes()
            leads.append(
                f"<LeadData><LeadByteCountTotal>{len(raw)}</LeadByteCountTotal>"
                f"<LeadSampleCountTotal>{data.shape[0]}</LeadSampleCountTotal>"
                f"<LeadAmplitudeUnitsPerBit>{uv_per_bit}</LeadAmplitudeUnitsPerBit>"
                f"<LeadAmplitudeUnits>MICROVOLTS</LeadAmplitudeUnits><LeadID>{lead}</LeadID>"
                f"<LeadDataCRC32>{zlib.crc32(raw)}</LeadDataCRC32>"
                f"<WaveFormData>{base64.encodebytes(raw).decode()}</WaveFormData></LeadData>"
            )
        return (
            f"<Waveform><WaveformType>{kind}</WaveformType><NumberofLeads>8</NumberofLeads>"
            f"<SampleBase>{fs:g}</SampleBase><SampleExponent>0</SampleExponent>{''.join(leads)}</Waveform>"
        )

    text = (
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n<!DOCTYPE RestingECG SYSTEM "restecg.dtd">\n'
        "<RestingECG><PatientDemographics><PatientAge>56</PatientAge><AgeUnits>YEARS</AgeUnits>"
        "<Gender>FEMALE</Gender></PatientDemographics>"
        f"{waveform('Median', digits[:600] // 3)}{waveform('Rhythm', digits)}</RestingECG>"
    )
    path.write_text(text, encoding="latin-1")
    return digits

"""Inputs around the clinical readers: lead vocabularies and lead maps, folder expansion (content
detection, natural order, multi-segment records, duplicates, empty folders), malformed files and the
command-line options. Everything here is written by the tests, so nothing needs ../shared."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb
from clinical_writers import ptbxl, write_dicom, write_edf, write_muse
from typer.testing import CliRunner

from lvcg_cli.errors import LvcgError, RecordError
from lvcg_cli.main import app
from lvcg_cli.signals.io import find_records, natural_key, read_record
from lvcg_cli.signals.leads import CANONICAL_LEADS, assign_leads, lead_index, parse_lead_map

runner = CliRunner()


def invoke(args: list) -> tuple[int, object, str]:
    result = runner.invoke(app, [str(a) for a in args])
    if isinstance(result.exception, LvcgError):
        return 2, result, str(result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result, ""


def one_line(error: BaseException, path) -> None:
    message = str(error)
    assert "\n" not in message and "Traceback" not in message and Path(path).name in message


def wfdb_record(folder: Path, name: str, names: list[str], n: int = 5000, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 500
    x = np.sin(2 * np.pi * 1.2 * t)[:, None] * rng.uniform(0.3, 1.5, len(names)) + 0.01 * rng.normal(
        size=(n, len(names))
    )
    wfdb.wrsamp(
        name,
        fs=500,
        units=["mV"] * len(names),
        sig_name=names,
        p_signal=x,
        fmt=["16"] * len(names),
        write_dir=str(folder),
    )
    return folder / f"{name}.hea"


# ---------------------------------------------------------------------------- lead names
@pytest.mark.parametrize(
    ("label", "lead"),
    [
        ("Lead I (Einthoven)", "I"),
        ("Lead III", "III"),
        ("Lead aVR", "aVR"),
        ("Lead aVF (Goldberger)", "aVF"),
        ("Lead V2 (Wilson)", "V2"),
        ("MDC_ECG_LEAD_AVR", "aVR"),
        ("MDC_ECG_LEAD_V6", "V6"),
        ("mdc_ecg_lead_ii", "II"),
        ("ECG aVL", "aVL"),
        ("ECG I", "I"),
        ("ECG V1", "V1"),
        ("ecg lead II", "II"),
        ("  avf ", "aVF"),
        ("DIII", "III"),
    ],
)
def test_clinical_vocabularies_map_to_the_standard_leads(label, lead):
    assert lead_index(label) == CANONICAL_LEADS.index(lead)


@pytest.mark.parametrize(
    "label",
    ["V3R", "V7", "MDC_ECG_LEAD_V3R", "Lead V4R", "X", "Y", "Z", "-aVR", "CM5", "MLII", "ECG", "1", "61"],
)
def test_non_standard_leads_are_never_matched(label):
    assert lead_index(label) is None


def test_mlii_stands_in_for_ii_only_without_a_real_ii():
    alone = assign_leads(["MLII", "V1"])
    assert alone.index == [1, 6] and alone.flags == ["lead_alias:MLII->II"] and "MLII" in alone.warnings[0]
    beside = assign_leads(["II", "MLII"])
    assert beside.index == [1, None] and beside.flags == [] and beside.warnings == []


def test_lead_map_parsing_and_precedence():
    assert parse_lead_map("ECG1=I, ecg2 = avr ,Pleth=-") == {"ecg1": "I", "ecg2": "aVR", "pleth": "-"}
    mapping = assign_leads(["ECG1", "Ecg2", "PLETH", "V1", "MLII"], "ECG1=I,ECG2=aVR,Pleth=-,MLII=-")
    assert mapping.index == [0, 3, None, 6, None] and mapping.dropped == [2, 4]
    assert mapping.flags == [
        "lead_map:ECG1->I",
        "lead_map:Ecg2->aVR",
        "lead_map:PLETH->-",
        "lead_map:MLII->-",
    ]
    for bad in ("ECG1", "ECG1=", "=I", "ECG1=V3R"):
        with pytest.raises(LvcgError, match="--lead-map"):
            parse_lead_map(bad)


def test_read_record_with_lead_map_mlii_and_extras(tmp_path):
    header = wfdb_record(tmp_path, "holter", ["MLII", "V1", "ch3", "V3R"])
    record = read_record(header)
    assert record.present.tolist() == [i in (1, 6) for i in range(12)]  # II (from MLII) and V1 only
    assert "lead_alias:MLII->II" in record.flags and "extra_lead:ch3" in record.flags
    assert set(record.meta["extra_signals"]) == {"ch3", "V3R"} and not record.present[8]
    assert any("MLII" in w for w in record.meta["warnings"])
    mapped = read_record(header, lead_map="ch3=V2,V3R=-")
    raw = wfdb.rdrecord(str(tmp_path / "holter")).p_signal
    np.testing.assert_allclose(mapped.signal[7], raw[:, 2], atol=1e-6)  # ch3 read as V2
    assert set(mapped.meta.get("extra_signals", {})) == set() and "lead_map:ch3->V2" in mapped.flags
    with pytest.raises(
        RecordError, match=r"no recognisable ECG lead names \(found: a, b\).*--lead-map"
    ) as info:
        read_record(wfdb_record(tmp_path, "odd", ["a", "b"]))
    one_line(info.value, tmp_path / "odd.hea")


def test_limb_leads_are_derived_only_from_i_and_ii(tmp_path):
    with_i_ii = read_record(wfdb_record(tmp_path, "eight", ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]))
    assert with_i_ii.present.all()
    lead_i, lead_ii = with_i_ii.signal[0].astype(np.float64), with_i_ii.signal[1].astype(np.float64)
    np.testing.assert_allclose(with_i_ii.signal[2], lead_ii - lead_i, atol=1e-6)
    np.testing.assert_allclose(with_i_ii.signal[3], -(lead_i + lead_ii) / 2, atol=1e-6)
    np.testing.assert_allclose(with_i_ii.signal[4], lead_i - lead_ii / 2, atol=1e-6)
    np.testing.assert_allclose(with_i_ii.signal[5], lead_ii - lead_i / 2, atol=1e-6)
    # without lead I nothing is derived, and nothing but the four limb leads ever is
    no_i = read_record(wfdb_record(tmp_path, "noI", ["II", "III", "V1"]))
    assert no_i.present.tolist() == [i in (1, 2, 6) for i in range(12)]
    assert not any(f.startswith("derived_lead:") for f in no_i.flags)
    some = read_record(wfdb_record(tmp_path, "some", ["I", "II", "aVR"]))
    assert [f for f in some.flags if f.startswith("derived")] == [
        "derived_lead:III",
        "derived_lead:aVL",
        "derived_lead:aVF",
    ]
    assert not some.present[6:].any()


# ---------------------------------------------------------------------------- finding records
def test_folder_finds_every_format_by_content_in_natural_order(tmp_path):
    mv, fs, names = ptbxl()
    (tmp_path / "deep").mkdir()
    write_dicom(tmp_path / "IM10", mv, fs, names)  # DICOM files often have no suffix
    write_dicom(tmp_path / "IM2", mv, fs, names)
    write_edf(tmp_path / "deep" / "night.rec", mv, fs, names)  # content, not suffix
    write_muse(tmp_path / "muse.xml", mv, fs, names)
    wfdb_record(tmp_path, "rec1", list(CANONICAL_LEADS))
    (tmp_path / "notes.xml").write_text("<?xml version='1.0'?><notes>not an ECG</notes>")
    (tmp_path / "readme.txt").write_text("hello")
    found = find_records([tmp_path])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "IM2",
        "IM10",
        "deep/night.rec",
        "muse.xml",
        "rec1.hea",
    ]
    assert [read_record(p).meta["format"] for p in found] == ["dicom", "dicom", "edf", "muse", "wfdb"]
    assert sorted(["r10", "r2", "r1", "a/r3"], key=natural_key) == ["a/r3", "r1", "r2", "r10"]
    assert find_records([str(tmp_path / "IM*")]) == [tmp_path / "IM2", tmp_path / "IM10"]


def test_multi_segment_record_is_one_record_under_one_id(tmp_path):
    names = list(CANONICAL_LEADS)
    for k in (1, 2):
        wfdb_record(tmp_path, f"multi_000{k}", names, seed=k)
    (tmp_path / "multi.hea").write_text("multi/2 12 500 10000\nmulti_0001 5000\nmulti_0002 5000\n")
    wfdb_record(tmp_path, "single", names)
    assert find_records([tmp_path]) == [tmp_path / "multi.hea", tmp_path / "single.hea"]
    assert find_records([str(tmp_path / "*.hea")]) == [tmp_path / "multi.hea", tmp_path / "single.hea"]
    record = read_record(tmp_path / "multi.hea")
    assert record.id == "multi" and record.n_samples == 10000
    first = wfdb.rdrecord(str(tmp_path / "multi_0001")).p_signal
    np.testing.assert_allclose(record.signal[:, :5000].T, first, atol=1e-5)
    assert find_records([tmp_path / "multi_0001.hea"]) == [tmp_path / "multi_0001.hea"]  # asked for by name


def test_duplicate_inputs_are_reported_and_read_once(tmp_path):
    header = wfdb_record(tmp_path, "a", list(CANONICAL_LEADS))
    messages: list[str] = []
    found = find_records([header, header, tmp_path / "a.dat", tmp_path], warn=messages.append)
    assert found == [header]
    assert len(messages) == 3 and all("a.hea" in m and "read once" in m for m in messages)
    assert "given more than once" in messages[0] and "given again as" in messages[1]


def test_folder_without_records_says_what_it_holds(tmp_path):
    (tmp_path / "notes.txt").write_text("1.25 µV → 3 mV\n", encoding="utf-8")
    (tmp_path / "scan.pdf").write_bytes(b"%PDF-1.4 \x00\x01\x02\xff")
    (tmp_path / "orphan.dat").write_bytes(b"\x00" * 64)
    (tmp_path / "report.xml").write_text("<?xml version='1.0'?><CardiologyXML/>")
    with pytest.raises(RecordError) as info:
        find_records([tmp_path])
    message = str(info.value)
    one_line(info.value, tmp_path)
    for part in (
        "4 file(s)",
        "notes.txt: a text file",
        "orphan.dat: WFDB signal file without its .hea header",
        "report.xml: XML with root element <CardiologyXML>",
        "scan.pdf",
        "DICOM",
        "SCP-ECG",
    ):
        assert part in message
    code, result, error = invoke(["embed", tmp_path, "-o", tmp_path / "out.npy"])
    assert code == 2 and "no ECG record among 4 file(s)" in error


# ---------------------------------------------------------------------------- malformed files
def _damaged(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    mv, fs, names = ptbxl()
    out: dict[str, tuple[Path, str]] = {}
    dcm = tmp_path / "good.dcm"
    write_dicom(dcm, mv, fs, names)
    data = dcm.read_bytes()
    (tmp_path / "truncated.dcm").write_bytes(data[: len(data) // 2])
    out["dicom truncated"] = (tmp_path / "truncated.dcm", "DICOM")
    edf = tmp_path / "good.edf"
    write_edf(edf, mv, fs, names)
    (tmp_path / "truncated.edf").write_bytes(edf.read_bytes()[:5000])
    out["edf header only"] = (tmp_path / "truncated.edf", "EDF: truncated file")
    (tmp_path / "half.edf").write_bytes(edf.read_bytes()[:-3000])
    out["edf truncated"] = (tmp_path / "half.edf", "EDF: truncated file")
    (tmp_path / "garbled.edf").write_bytes(edf.read_bytes()[:256] + b"x" * 5000)
    out["edf garbled header"] = (tmp_path / "garbled.edf", "EDF")
    muse = tmp_path / "good.xml"
    write_muse(muse, mv, fs, names)
    text = muse.read_text(encoding="latin-1")
    (tmp_path / "crc.xml").write_text(
        text.replace("<WaveFormData>", "<WaveFormData>AAAA", 9), encoding="latin-1"
    )
    out["muse crc"] = (tmp_path / "crc.xml", "CRC32 mismatch")
    (tmp_path / "cut.xml").write_text(text[: len(text) // 2], encoding="latin-1")
    out["muse cut"] = (tmp_path / "cut.xml", "not well-formed XML")
    (tmp_path / "norhythm.xml").write_text(
        text.replace("<WaveformType>Rhythm", "<WaveformType>Other"), encoding="latin-1"
    )
    out["muse no rhythm"] = (tmp_path / "norhythm.xml", "no Rhythm waveform")
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE AnnotatedECG [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        "<AnnotatedECG><x>&b;</x></AnnotatedECG>"
    )
    (tmp_path / "bomb.xml").write_text(bomb)
    out["aecg entities"] = (tmp_path / "bomb.xml", "refused unsafe XML")
    (tmp_path / "empty_aecg.xml").write_text(
        '<AnnotatedECG xmlns="urn:hl7-org:v3"><component/></AnnotatedECG>'
    )
    out["aecg no series"] = (tmp_path / "empty_aecg.xml", "no series")
    (tmp_path / "philips.xml").write_text("<restingecgdata><documentinfo/></restingecgdata>")
    out["philips empty"] = (tmp_path / "philips.xml", "Philips XML")
    scp = bytearray(b"\x00\x00" + (200).to_bytes(4, "little") + b"\x00" * 194)
    scp[8:10] = (0).to_bytes(2, "little")
    scp[10:14] = (16 + 10).to_bytes(4, "little")
    scp[16:22] = b"SCPECG"
    (tmp_path / "broken.scp").write_bytes(bytes(scp))
    out["scp no sections"] = (tmp_path / "broken.scp", "SCP-ECG")
    (tmp_path / "random.ecg").write_bytes(np.random.default_rng(0).bytes(3000))
    out["random bytes"] = (tmp_path / "random.ecg", "not an ECG record in a supported format")
    return out


def test_every_malformed_file_is_one_record_error_naming_it(tmp_path):
    for case, (path, problem) in _damaged(tmp_path).items():
        with pytest.raises(RecordError) as info:
            read_record(path)
        assert problem in str(info.value), (case, str(info.value))
        one_line(info.value, path)


def test_missing_optional_library_gives_an_install_hint(tmp_path, monkeypatch):
    mv, fs, names = ptbxl()
    write_dicom(tmp_path / "a.dcm", mv, fs, names)
    monkeypatch.setitem(sys.modules, "pydicom", None)  # import pydicom now raises ImportError
    with pytest.raises(
        RecordError, match=r"needs the pydicom package: pip install 'lvcg\[clinical\]'"
    ) as info:
        read_record(tmp_path / "a.dcm")
    one_line(info.value, tmp_path / "a.dcm")


# ---------------------------------------------------------------------------- commands
def test_embed_and_reconstruct_take_clinical_files_and_a_lead_map(tmp_path):
    mv, fs, names = ptbxl()
    write_edf(tmp_path / "a.edf", mv, fs, names, prefix="Chan ")  # labels "Chan I" ...: unknown
    code, _, error = invoke(["embed", tmp_path / "a.edf", "-o", tmp_path / "x.npy"])
    assert code == 2 and "no recognisable ECG lead names" in error
    spec = ",".join(f"Chan {lead}={lead}" for lead in CANONICAL_LEADS)
    code, result, _ = invoke(
        ["embed", tmp_path / "a.edf", tmp_path / "a.edf", "--lead-map", spec, "-o", tmp_path / "x.npy"]
    )
    assert code == 0 and np.load(tmp_path / "x.npy").shape[0] == 1
    assert "given more than once" in result.stderr
    code, _, error = invoke(
        ["embed", tmp_path / "a.edf", "--lead-map", "Chan I=V9", "-o", tmp_path / "y.npy"]
    )
    assert code == 2 and "not a standard lead" in error
    out = tmp_path / "full.npy"
    code, result, _ = invoke(
        [
            "reconstruct",
            tmp_path / "a.edf",
            "--lead-map",
            spec,
            "--visible",
            "I,II,V2",
            "--method",
            "physics",
            "-o",
            out,
        ]
    )
    assert code == 0 and np.load(out).shape == (12, mv.shape[0])


def test_prepare_data_folder_reads_clinical_files_with_a_lead_map(tmp_path):
    from lvcg_cli.datasets.cache import PackedCache

    mv, fs, names = ptbxl()
    root = tmp_path / "export"
    root.mkdir()
    write_dicom(root / "IM1", mv, fs, names)
    write_muse(root / "muse.xml", mv, fs, names)
    shutil.copy(Path(__file__).parent / "clinical_writers.py", root / "notes.py")  # not a record: ignored
    write_edf(root / "c.edf", mv, fs, names, prefix="Chan ")
    spec = ",".join(f"Chan {lead}={lead}" for lead in CANONICAL_LEADS)
    out = tmp_path / "prepared"
    code, result, error = invoke(
        ["prepare-data", "folder", "--root", root, "--out", out, "--workers", "1", "--lead-map", spec]
    )
    assert code == 0, error or result.output
    cache = PackedCache.open(out)
    assert len(cache) == 3 and sorted(cache.manifest["source"]) == ["IM1", "c.edf", "muse.xml"]
    assert cache.meta["preprocessing"]["lead_map"]["chan i"] == "I"
    muse_row = list(cache.manifest["source"]).index("muse.xml")
    assert "derived_lead:III" in cache.manifest["flags"][muse_row]
    first, present = cache.get(0)
    assert present.all() and np.isfinite(first).all()
    # a cache prepared with another lead map is not silently reused
    code, _, error = invoke(["prepare-data", "folder", "--root", root, "--out", out, "--workers", "1"])
    assert code == 2 and "with --lead-map chan i=I" in error and "(now (none))" in error

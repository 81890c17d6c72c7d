"""Which format a file is, from its first bytes: magic numbers and the XML root element.

Suffixes lie (``.xml`` is three different formats, DICOM files often have none, ``.ecg`` means
anything), so detection looks at content only; the suffix is used for nothing but messages.
Sniffing reads at most :data:`HEAD_BYTES` (more only for an XML prologue full of comments), so
listing a large folder stays cheap.
"""

from __future__ import annotations

import re
import struct
from pathlib import Path

HEAD_BYTES = 8192
XML_HEAD_BYTES = 65536

XML_ROOTS = {"restingecg": "muse", "annotatedecg": "aecg", "restingecgdata": "philips"}
"""Root element (lower case, namespace prefix dropped) -> format."""

_ROOT = re.compile(r"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
_PROLOGUE = re.compile(r"\s*(<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(\[.*?\])?\s*>)", re.S)


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of a file (``b""`` when it cannot be read)."""
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def sniff(path: Path, head: bytes | None = None) -> str | None:
    """``dicom``, ``edf``, ``scp``, ``muse``, ``aecg``, ``philips``, ``cpsc`` or ``None``."""
    head = read_head(path) if head is None else head
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    if _is_edf(head):
        return "edf"
    if head.startswith(b"MATLAB 5.0 MAT-file"):
        return "cpsc"
    if _is_scp(path, head):
        return "scp"
    root = xml_root(path, head)
    return XML_ROOTS.get(root.lower()) if root else None


def _is_edf(head: bytes) -> bool:
    """EDF/EDF+: version "0" padded to 8 bytes, then a numeric header size of 256 * (1 + signals)."""
    if len(head) < 256 or head[:8] != b"0       ":
        return False
    try:
        header_bytes, n_signals = int(head[184:192]), int(head[252:256])
    except ValueError:
        return False
    return n_signals > 0 and header_bytes == 256 * (1 + n_signals)


def _is_scp(path: Path, head: bytes) -> bool:
    """SCP-ECG: CRC, a record size equal to the file size, then section 0 (id 0, "SCPECG" or a sane length)."""
    if len(head) < 22:
        return False
    size = struct.unpack_from("<I", head, 2)[0]
    section_id, section_len = struct.unpack_from("<HI", head, 8)  # after the section's own CRC
    try:
        file_size = path.stat().st_size
    except OSError:
        return False
    if size != file_size or section_id != 0 or not 16 <= section_len <= size:
        return False
    return head[16:22] == b"SCPECG" or (section_len - 16) % 10 == 0


def xml_root(path: Path, head: bytes) -> str | None:
    """The root element's local name if the file is XML (any of UTF-8/16 with or without BOM)."""
    text = _decode_head(head)
    if text is None or not text.lstrip().startswith("<"):
        return None
    match = _root_after_prologue(text)
    if match is None and len(head) >= HEAD_BYTES:  # a long comment block before the root
        text = _decode_head(read_head(path, XML_HEAD_BYTES))
        match = _root_after_prologue(text or "")
    return match


def _root_after_prologue(text: str) -> str | None:
    position = 0
    while True:
        prologue = _PROLOGUE.match(text, position)
        if prologue is None:
            break
        position = prologue.end()
    rest = text[position:].lstrip()
    match = _ROOT.match(rest)
    return match.group(2) if match else None


def _decode_head(head: bytes) -> str | None:
    if head.startswith(b"\xef\xbb\xbf"):
        head, encoding = head[3:], "utf-8"
    elif head.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif head[:4] == b"<\x00?\x00":
        encoding = "utf-16-le"
    elif head[:4] == b"\x00<\x00?":
        encoding = "utf-16-be"
    else:
        encoding = "latin-1"  # any byte decodes; only the ASCII markup matters here
    if encoding.startswith("utf-16") and len(head) % 2:
        head = head[:-1]
    return head.decode(encoding, errors="replace")

"""Safe XML for files that come from outside: every parse goes through defusedxml.

defusedxml refuses entity expansion bombs and external entities (XXE), which a plain
``xml.etree`` parse of an untrusted hospital export would allow. The document is parsed from bytes
so the parser honours the encoding declaration and byte-order mark (Philips files are UTF-16).
"""

from __future__ import annotations

from pathlib import Path
from typing import overload
from xml.etree.ElementTree import Element

from lvcg_cli.errors import RecordError
from lvcg_cli.signals.readers._common import first_line, read_bytes


def parse_xml(path: Path, what: str) -> Element:
    """The root element of an XML file with namespaces stripped from every tag (``{ns}a`` -> ``a``)."""
    try:
        from defusedxml import ElementTree as SafeTree
        from defusedxml.common import DefusedXmlException
    except ImportError:
        raise RecordError(
            path, f"reading {what} needs the defusedxml package: pip install defusedxml"
        ) from None
    data = read_bytes(path)
    try:
        root = SafeTree.fromstring(data, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise RecordError(path, f"{what}: refused unsafe XML ({type(exc).__name__})") from None
    except Exception as exc:  # ParseError and encoding errors: a damaged or truncated file
        raise RecordError(path, f"{what}: not well-formed XML ({first_line(exc)})") from None
    for element in root.iter():
        if isinstance(element.tag, str) and "}" in element.tag:
            element.tag = element.tag.rsplit("}", 1)[1]
    return root


@overload
def text(element: Element | None, path: str, default: str) -> str: ...


@overload
def text(element: Element | None, path: str, default: None = None) -> str | None: ...


def text(element: Element | None, path: str, default: str | None = None) -> str | None:
    """Stripped text of the first element at ``path`` below ``element`` (or ``default``)."""
    if element is None:
        return default
    found = element.find(path)
    if found is None or found.text is None:
        return default
    value = found.text.strip()
    return value if value else default

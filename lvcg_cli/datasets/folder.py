"""Any folder of records, unlabelled: every ``.hea`` (a multi-segment record once), every CPSC-style
``.mat`` without a header, and every DICOM, GE MUSE XML, HL7 aECG, SCP-ECG, Philips XML or EDF file.

For pretraining on a user's own data: the tree is walked with the signals layer's
``find_records``, ids are the paths relative to the root (unique even when stems repeat).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lvcg_cli.datasets.registry import Plan
from lvcg_cli.errors import DataLayoutError

NAME = "folder"
ROOT_SETTING = "folder_root"
EXPECTED = (
    "a folder holding ECG records at any depth: WFDB (.hea with .dat/.mat), CPSC 2018 .mat, DICOM, "
    "GE MUSE XML, HL7 aECG, SCP-ECG, Philips XML or EDF"
)


def check_layout(root: Path, settings) -> None:
    if next(root.rglob("*.hea"), None) is not None or next(root.rglob("*.mat"), None) is not None:
        return  # the common case, decided without reading any file
    from lvcg_cli.errors import RecordError
    from lvcg_cli.signals.io import find_records

    try:
        find_records([root])
    except RecordError as exc:
        raise DataLayoutError(f"{NAME}: {root}: {exc.problem}") from None


def build_plan(root: Path, settings) -> Plan:
    from lvcg_cli.signals.io import find_records

    found = find_records([root])
    relative = [p.relative_to(root).as_posix() for p in found]
    frame = pd.DataFrame(
        {
            "id": [r.rsplit(".", 1)[0] for r in relative],
            "path": [str(p) for p in found],
            "source": relative,
        }
    )
    return Plan(dataset=NAME, root=root, records=frame, info={"licence": "the user's own data"})

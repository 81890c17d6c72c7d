"""Cost of header and record validation (lvcg_cli/signals/validate.py) per read_record call.

Reads the same records with the checks on and with them replaced by no-ops, alternating the two
several times and keeping the best pass of each (the machine is shared), and prints ms per record.

    python benchmarks/validate.py                       # ../shared/data/ptbxl records500 and records100
    python benchmarks/validate.py --records 300 --repeat 5
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from lvcg_cli.signals import io, validate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ptbxl"


def _pass(headers: list[Path]) -> float:
    start = time.perf_counter()
    for header in headers:
        io.read_record(header)
    return (time.perf_counter() - start) / len(headers) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300, help="records per folder")
    parser.add_argument("--repeat", type=int, default=5, help="alternating passes of each variant")
    args = parser.parse_args()
    checks = (validate.check_wfdb_header, validate.check_cpsc_file, validate.check_signals)
    for folder in ("records500", "records100"):
        headers = sorted((SHARED / folder).rglob("*.hea"))[: args.records]
        if not headers:
            print(f"{folder}: no records under {SHARED / folder}")
            continue
        _pass(headers)  # warm the page cache and imports
        best = {"with checks": float("inf"), "without": float("inf")}
        for _ in range(args.repeat):
            best["with checks"] = min(best["with checks"], _pass(headers))
            io.validate.check_wfdb_header = lambda *a, **k: None
            io.validate.check_cpsc_file = lambda *a, **k: None
            io.validate.check_signals = lambda *a, **k: None
            try:
                best["without"] = min(best["without"], _pass(headers))
            finally:
                io.validate.check_wfdb_header, io.validate.check_cpsc_file, io.validate.check_signals = checks
        extra = best["with checks"] - best["without"]
        print(
            f"{folder} ({len(headers)} records): read_record {best['without']:.3f} ms without checks, "
            f"{best['with checks']:.3f} ms with (+{extra:.3f} ms per record)"
        )


if __name__ == "__main__":
    main()

"""Compare two results folders file by file: are the outputs of two runs (two commits) identical?

    python benchmarks/compare_results.py OLD_RESULTS NEW_RESULTS

Every file under results/ is compared by SHA-256, except what legitimately differs between two runs of the
same code: logs/, benchmarks/ and the report (wall times), the timing columns of each training's
metrics.csv (seconds, images_per_second), each atlas's cost (cost.json, the cost key of atlas.json, the cost
paragraph of index.html: seconds and projections per second), the modification time in checksum sidecars, and
the creation date inside PDF files. Prints one line per difference and a summary; exits 1 if anything differs,
2 if a file is in one folder only.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sys
from pathlib import Path

import pandas as pd

SKIPPED_DIRS = {"logs", "benchmarks"}
SKIPPED_FILES = {"report.html", "report.zip", "README.md"}
TIMING_COLUMNS = ["seconds", "images_per_second"]
PDF_DATE = re.compile(rb"/CreationDate \(D:[^)]*\)")
ATLAS_COST = re.compile(rb'<h2>Cost</h2><p class="note">[^<]*')


def comparable_bytes(path: Path) -> bytes:
    """The file's bytes without the parts that record when or how fast it was made."""
    data = path.read_bytes()
    if path.suffix == ".pdf":
        return PDF_DATE.sub(b"", data)
    if path.name.endswith(".sha256.json"):  # a checksum sidecar: its file's modification time is when it ran
        record = json.loads(data)
        record.pop("mtime_ns", None)
        return json.dumps(record, sort_keys=True).encode()
    if path.name == "index.html" and (path.parent / "cost.json").exists():  # an atlas: its cost is timings
        return ATLAS_COST.sub(b"", data)
    if path.name == "atlas.json" and (path.parent / "cost.json").exists():
        return json.dumps({k: v for k, v in json.loads(data).items() if k != "cost"}, sort_keys=True).encode()
    if path.name == "metrics.csv":
        table = pd.read_csv(io.BytesIO(data))
        return table.drop(columns=[c for c in TIMING_COLUMNS if c in table]).to_csv(index=False).encode()
    return data


def digests(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or rel.parts[0] in SKIPPED_DIRS or str(rel) in SKIPPED_FILES or \
                (rel.parts[0] == "atlas" and path.name == "cost.json"):
            continue
        out[str(rel)] = hashlib.sha256(comparable_bytes(path)).hexdigest()
    return out


def main(argv: list[str]) -> int:
    old, new = (digests(Path(arg)) for arg in argv[1:3])
    only = sorted(set(old) ^ set(new))
    differ = sorted(name for name in set(old) & set(new) if old[name] != new[name])
    for name in only:
        print(f"only in {'old' if name in old else 'new'}: {name}")
    for name in differ:
        print(f"differs: {name}")
    print(f"{len(set(old) & set(new))} files compared, {len(differ)} differ, {len(only)} in one folder only")
    return 2 if only else 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

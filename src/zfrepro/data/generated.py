"""What the generator wrote, and whether a generated dataset still holds it.

The generator lists every file it wrote, with its size, in the dataset's `synthetic.json` ("files"). Before a
generated folder is read (the workflow's planning, the loaders of prepare, the parts CSV of the correspondence
study), the folder is compared with that list: a deleted, truncated or added file would otherwise change the
study silently (a prepared split one image short) or fail much later naming the wrong file. The fix is always
the same: generation is deterministic, so regenerating writes the same images again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

MANIFEST = "synthetic.json"
NOT_WRITTEN_BY_THE_GENERATOR = {MANIFEST, ".snakemake_timestamp"}  # Snakemake stamps a directory output it made


def file_sizes(root: str | os.PathLike) -> dict[str, int]:
    """Every file under `root` but the manifest and Snakemake's stamp: relative POSIX path -> size in bytes."""
    root = Path(root)
    return {path.relative_to(root).as_posix(): path.stat().st_size for path in sorted(root.rglob("*"))
            if path.is_file() and path.relative_to(root).as_posix() not in NOT_WRITTEN_BY_THE_GENERATOR}


def generated_root(path: str | os.PathLike) -> Path | None:
    """The generated dataset folder that holds `path` (the nearest folder with a manifest), or None."""
    path = Path(path).expanduser().absolute()
    for folder in [path, *path.parents]:
        if (folder / MANIFEST).is_file():
            return folder
    return None


def regenerate_advice(root: str | os.PathLike) -> str:
    return (f"regenerate it: delete the folder (rm -r {root}) and rerun (make reproduce, or your snakemake command): "
            "rule generate_synthetic writes it again, the same images from synthetic.seed")


def generated_data_problem(root: str | os.PathLike) -> str | None:
    """One line if the generated dataset `root` no longer holds the files its generator listed; None if it does,
    or if `root` is not generated data (no manifest) or was generated before the list was recorded."""
    root = Path(root)
    try:
        listed = json.loads((root / MANIFEST).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(listed, dict):
        return None
    present = file_sizes(root)
    missing = sorted(set(listed) - set(present))
    resized = sorted(name for name in set(listed) & set(present) if present[name] != listed[name])
    added = sorted(set(present) - set(listed))
    if not (missing or resized or added):
        return None
    parts = [f"{len(names)} {what} ({names[0]}{', ...' if len(names) > 1 else ''})"
             for names, what in ((missing, "missing"), (resized, "of another size"), (added, "added"))
             if names]
    return (f"generated data {root} is not what the generator wrote: {len(listed)} files listed in "
            f"{root / MANIFEST}, {'; '.join(parts)}; {regenerate_advice(root)}.")

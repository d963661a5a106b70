"""The parts CSV of the correspondence study (Table 1, Fig 8): one line per part box of an image, read
and checked (missing files, misspelt part names, boxes outside the image) with the line at fault named."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from zfrepro.data.generated import generated_data_problem, generated_root, regenerate_advice
from zfrepro.errors import DataError

PARTS_COLUMNS = ("image", "part", "x0", "y0", "x1", "y1")


PAPER_PARTS = ("right_eye", "left_eye", "nose")  # the rows of Table 1, in the paper's order


PARTS_CSV_HELP = (
    "columns image,part,x0,y0,x1,y1: image path relative to the CSV's folder (or absolute); part name "
    "(right_eye, left_eye, nose, ...); the box covers pixels [y0:y1, x0:x1] of the original image "
    "(0-based, half-open); lines starting with # are comments"
)


@dataclass
class PartsImage:
    """One image of the parts CSV: where it is, its class folder, and its part boxes (x0, y0, x1, y1)."""

    name: str  # as written in the CSV
    path: Path  # resolved file
    group: str  # the parent folder's name: the wnid in the ImageNet layout
    boxes: dict[str, tuple[int, int, int, int]]
    line: int  # the CSV line of its first row, for messages about the image as a whole
    lines: dict[str, int] = field(default_factory=dict)  # part -> the CSV line of its box, for messages about it


def _number(value: str, path: Path, line: int, column: str) -> int:
    """A box coordinate as an integer pixel edge (annotation tools may write 12.0 or 12.4: rounded)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise DataError(f"parts CSV {path}, line {line}, column {column}: {value!r} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise DataError(f"parts CSV {path}, line {line}, column {column}: {value!r} must be a pixel "
                        "coordinate >= 0") from None
    return int(round(number))


def _rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """(line number, row dict) of the CSV, skipping blank and # comment lines; checks the header (and, for the CSV
    of generated data, that its folder still holds what the generator wrote)."""
    generated = generated_root(path.parent)
    if generated is not None and (problem := generated_data_problem(generated)):
        raise DataError(problem)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"parts CSV {path} does not exist: make one ({PARTS_CSV_HELP}); "
                        "config/correspondence_parts.template.csv is a template") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"parts CSV {path} cannot be read: {exc}") from exc
    numbered = [(i + 1, line) for i, line in enumerate(text.splitlines())
                if line.strip() and not line.lstrip().startswith("#")]
    if not numbered:
        raise DataError(f"parts CSV {path} is empty: it needs a header and rows ({PARTS_CSV_HELP})")
    reader = csv.reader(line for _, line in numbered)
    header = [h.strip() for h in next(reader)]
    missing = [c for c in PARTS_COLUMNS if c not in header]
    if missing:
        raise DataError(f"parts CSV {path}, line {numbered[0][0]}: missing column(s) {', '.join(missing)} "
                        f"in the header {','.join(header)}; {PARTS_CSV_HELP}")
    rows = []
    for (line, _), values in zip(numbered[1:], reader, strict=True):
        if len(values) != len(header):
            raise DataError(f"parts CSV {path}, line {line}: {len(values)} fields, the header has {len(header)}")
        rows.append((line, {h: v.strip() for h, v in zip(header, values, strict=True)}))
    if not rows:
        raise DataError(f"parts CSV {path} has a header but no rows: add one row per image and part")
    return rows


def _one_edit(a: str, b: str) -> bool:
    """Whether a and b differ by at most one wrong, missing, extra or swapped (adjacent) character."""
    if abs(len(a) - len(b)) > 1:
        return False
    # i: the first position where they differ (zip stops at the shorter one, hence strict=False)
    i = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    return (a[i + 1 :] == b[i + 1 :] or a[i:] == b[i + 1 :] or a[i + 1 :] == b[i:]
            or (a[i : i + 2] == b[i : i + 2][::-1] and a[i + 2 :] == b[i + 2 :]))


def misspelt_part(part: str) -> str | None:
    """The paper part (right_eye, left_eye, nose) that `part` is a typo of, or None.

    Other part names are allowed on purpose (they get their own row in Table 1), so only a slip is caught: the
    same name up to case and separators, or one character off. A similarity ratio cannot draw that line:
    'noze' and the legitimate 'left_ear' are both 0.75 from nose and left_eye in difflib's.
    """
    if part in PAPER_PARTS:
        return None
    plain = part.lower().replace("-", "_").replace(" ", "_")
    return next((known for known in PAPER_PARTS if _one_edit(plain, known)), None)


def load_parts_csv(path: str | Path, check_files: bool = True) -> list[PartsImage]:
    """Read a parts CSV (see PARTS_CSV_HELP) into one PartsImage per image, in order of first appearance.

    Every error names the file, the line and the column at fault.
    """
    path = Path(path).expanduser()
    images: dict[str, PartsImage] = {}
    for line, row in _rows(path):
        name, part = row["image"], row["part"]
        for column, value in (("image", name), ("part", part)):
            if not value:
                raise DataError(f"parts CSV {path}, line {line}, column {column}: empty")
        # A typo would otherwise make a part of its own that the other images lack, and the run would fail
        # much later with "no usable images".
        known = misspelt_part(part)
        if known is not None:
            raise DataError(f"parts CSV {path}, line {line}, column part: {part!r} is not a known part; did you mean "
                            f"{known!r}? Correct the spelling (the parts of Table 1 are {', '.join(PAPER_PARTS)})")
        x0, y0, x1, y1 = (_number(row[c], path, line, c) for c in ("x0", "y0", "x1", "y1"))
        for lo, hi, a, b in ((x0, x1, "x0", "x1"), (y0, y1, "y0", "y1")):
            if hi <= lo:
                raise DataError(f"parts CSV {path}, line {line}, columns {a},{b}: {b} ({hi}) must be larger than "
                                f"{a} ({lo}); boxes are half-open [{a}, {b})")
        if name not in images:
            file = Path(name).expanduser()
            file = file if file.is_absolute() else path.parent / file
            if check_files and not file.is_file():
                generated = generated_root(path)
                advice = (f"the CSV came with generated data, which lost the image: {regenerate_advice(generated)}"
                          if generated is not None else "relative paths are taken from the CSV's folder")
                raise DataError(f"parts CSV {path}, line {line}, column image: image file {file} does not exist "
                                f"({advice})")
            images[name] = PartsImage(name, file, file.parent.name, {}, line)
        entry = images[name]
        if part in entry.boxes:
            raise DataError(f"parts CSV {path}, line {line}, column part: {part!r} of {name} is listed twice")
        entry.boxes[part] = (x0, y0, x1, y1)
        entry.lines[part] = line
    return list(images.values())


def part_order(names: set[str] | list[str]) -> list[str]:
    """The paper's parts first (right eye, left eye, nose), any others after, alphabetically."""
    return [p for p in PAPER_PARTS if p in names] + sorted(set(names) - set(PAPER_PARTS))


def part_label(part: str) -> str:
    """right_eye -> 'right eye' (the paper's row names)."""
    return part.replace("_", " ")

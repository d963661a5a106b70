"""Generated data checks itself: the generator lists what it wrote, and readers compare the folder with the list."""

from __future__ import annotations

import json

import pytest

from zfrepro.analysis.parts_csv import load_parts_csv
from zfrepro.data.generated import MANIFEST, file_sizes, generated_data_problem, generated_root
from zfrepro.errors import DataError


def _generated(tmp_path):
    root = tmp_path / "imagenet"
    (root / "train/n01").mkdir(parents=True)
    for name, size in (("a.JPEG", 10), ("b.JPEG", 20), ("c.JPEG", 30)):
        (root / "train/n01" / name).write_bytes(b"x" * size)
    (root / "parts.csv").write_text("image,part,x0,y0,x1,y1\ntrain/n01/a.JPEG,nose,0,0,2,2\n")
    (root / MANIFEST).write_text(json.dumps({"dataset": "imagenet", "files": file_sizes(root)}))
    return root


def test_the_list_is_what_the_folder_holds(tmp_path):
    root = _generated(tmp_path)
    assert json.loads((root / MANIFEST).read_text())["files"] == {
        "parts.csv": 53, "train/n01/a.JPEG": 10, "train/n01/b.JPEG": 20, "train/n01/c.JPEG": 30}
    (root / ".snakemake_timestamp").write_text("")  # Snakemake's stamp on a directory output
    assert generated_data_problem(root) is None
    assert generated_root(root / "train/n01/a.JPEG") == root and generated_root(tmp_path) is None


def test_missing_resized_and_added_files_are_each_named(tmp_path):
    root = _generated(tmp_path)
    (root / "train/n01/b.JPEG").unlink()
    (root / "train/n01/c.JPEG").write_bytes(b"x")
    (root / "train/n01/d.JPEG").write_bytes(b"x")
    assert generated_data_problem(root) == (
        f"generated data {root} is not what the generator wrote: 4 files listed in {root / MANIFEST}, 1 missing "
        "(train/n01/b.JPEG); 1 of another size (train/n01/c.JPEG); 1 added (train/n01/d.JPEG); regenerate it: delete "
        f"the folder (rm -r {root}) and rerun (make reproduce, or your snakemake command): rule generate_synthetic "
        "writes it again, the same images from synthetic.seed.")


def test_real_data_and_data_generated_before_the_list_are_not_checked(tmp_path):
    assert generated_data_problem(tmp_path) is None  # no manifest: real data
    (tmp_path / MANIFEST).write_text(json.dumps({"dataset": "voc"}))  # an older generator's manifest
    assert generated_data_problem(tmp_path) is None


def test_the_parts_csv_of_generated_data_says_to_regenerate(tmp_path):
    root = _generated(tmp_path)
    assert len(load_parts_csv(root / "parts.csv")) == 1
    (root / "train/n01/a.JPEG").unlink()
    with pytest.raises(DataError, match=r"is not what the generator wrote: .*1 missing \(train/n01/a\.JPEG\); "
                                        r"regenerate it: delete the folder"):
        load_parts_csv(root / "parts.csv")
    (root / MANIFEST).write_text(json.dumps({"dataset": "imagenet"}))  # no list: the image check still advises
    with pytest.raises(DataError, match=r"image file .*a\.JPEG does not exist \(the CSV came with generated data, "
                                        r"which lost the image: regenerate it"):
        load_parts_csv(root / "parts.csv")

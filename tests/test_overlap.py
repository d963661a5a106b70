"""The Caltech/ImageNet overlap analysis: planted duplicates of the generated data are found (and nothing
else), the chunked search equals a brute-force np.corrcoef scan, the table, and dropping the duplicates from
the prepared ImageNet training split."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from zfrepro.analysis import overlap
from zfrepro.commands import analyses as analyses_commands
from zfrepro.data import synthetic
from zfrepro.data.datasets import image_list, open_caltech101, open_imagenet
from zfrepro.data.prepare import prepare_imagenet
from zfrepro.errors import ConfigError, DataError
from zfrepro.report import overlap_table

from conftest import TINY_DATA

CALTECH = {"image_size": 72, "classes": 3, "min_per_class": 4, "max_per_class": 6, "background_images": 3}
PLANTED = 2
SIZE = 16


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def caltech(tiny_imagenet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny generated Caltech-101 with two of the tiny ImageNet's training images copied in."""
    root = tmp_path_factory.mktemp("overlap") / "caltech101"
    synthetic.generate("caltech101", root, {**CALTECH, "imagenet_duplicates": PLANTED}, seed=0, workers=1,
                       imagenet_root=tiny_imagenet)
    return root


@pytest.fixture(scope="module")
def paths(caltech: Path, tiny_imagenet: Path) -> tuple[list[str], list[str]]:
    """(every Caltech image, background included; every ImageNet training image)."""
    return (image_list(open_caltech101(caltech, include_background=True))[0],
            image_list(open_imagenet(tiny_imagenet, "train"))[0])


def _planted(caltech: Path, imagenet: Path) -> set[tuple[str, str]]:
    entries = json.loads((caltech / "synthetic.json").read_text())["imagenet_duplicates"]
    return {(os.path.abspath(caltech / e["caltech"]), os.path.abspath(imagenet / e["imagenet"])) for e in entries}


# --- the generator's planted duplicates ---------------------------------------------------------------------


def test_generator_plants_resized_reencoded_copies(caltech: Path, tiny_imagenet: Path, tmp_path: Path) -> None:
    planted = _planted(caltech, tiny_imagenet)
    assert len(planted) == PLANTED
    counts = json.loads((caltech / "synthetic.json").read_text())["counts"]
    dataset = open_caltech101(caltech)  # torchvision finds every file: the numbering has no gaps
    assert len(dataset) == sum(counts) + PLANTED
    for copy, original in planted:
        assert Path(original).parent.parent == tiny_imagenet / "train" and Path(copy).is_file()
        assert Path(copy).read_bytes() != Path(original).read_bytes()  # re-encoded, found by content only
        with Image.open(copy) as img:
            assert img.format == "JPEG" and min(img.size) == CALTECH["image_size"]

    # Everything else is exactly the default data (no key, or 0, writes what it always wrote).
    synthetic.generate("caltech101", tmp_path / "plain", dict(CALTECH), seed=0, workers=1)
    synthetic.generate("caltech101", tmp_path / "zero", {**CALTECH, "imagenet_duplicates": 0}, seed=0, workers=1)
    plain, zero, with_copies = (_digest(p) for p in (tmp_path / "plain", tmp_path / "zero", caltech))
    assert plain == zero and "imagenet_duplicates" not in (tmp_path / "plain" / "synthetic.json").read_text()
    copies = {Path(c).relative_to(caltech).as_posix() for c, _ in planted}
    assert {k: v for k, v in with_copies.items() if k not in copies | {"synthetic.json"}} == \
        {k: v for k, v in plain.items() if k != "synthetic.json"}


@pytest.mark.parametrize("params, imagenet, key", [
    ({"imagenet_duplicates": 2}, None, "synthetic.caltech101.imagenet_duplicates"),
    ({"imagenet_duplicates": -1}, None, "synthetic.caltech101.imagenet_duplicates"),
    ({"imagenet_duplicates": 10_000}, "tiny", "synthetic.caltech101.imagenet_duplicates"),
    ({"imagenet_duplicates": 1}, "empty", "synthetic.caltech101.imagenet_duplicates"),
])
def test_generator_errors_name_the_key(params, imagenet, key, tiny_imagenet: Path, tmp_path: Path) -> None:
    root = {"tiny": tiny_imagenet, "empty": tmp_path, None: None}[imagenet]
    with pytest.raises(ConfigError, match=key):
        synthetic.generate("caltech101", tmp_path / "out", {**CALTECH, **params}, seed=0, imagenet_root=root)
    with pytest.raises(ConfigError, match="synthetic.imagenet.imagenet_duplicates is not a known key"):
        synthetic.check_params("imagenet", {"image_size": 72, "imagenet_duplicates": 1})


# --- the search ---------------------------------------------------------------------------------------------


def test_thumbnail_is_a_zero_mean_unit_vector(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)).save(tmp_path / "noise.png")
    Image.new("RGB", (40, 30), (90, 120, 30)).save(tmp_path / "flat.png")
    v = overlap.thumbnail(tmp_path / "noise.png", 8)
    assert v.dtype == np.float32 and v.shape == (64,)
    assert abs(v.mean()) < 1e-6 and abs(np.linalg.norm(v) - 1) < 1e-5
    assert not overlap.thumbnail(tmp_path / "flat.png", 8).any()  # a flat image matches nothing


def test_finds_exactly_the_planted_pairs(caltech: Path, tiny_imagenet: Path, paths) -> None:
    found = overlap.find_duplicates(*paths, size=SIZE, threshold=0.95, batch=7, threads=1)
    assert list(found.columns) == overlap.COLUMNS
    assert set(zip(found["caltech_path"], found["imagenet_path"], strict=True)) == _planted(caltech, tiny_imagenet)
    assert (found["correlation"] > 0.99).all()
    # no false positives at 0.95, with room to spare
    assert found.attrs["best_below_threshold"] < 0.9
    assert found.attrs["queries"] == len(paths[0]) and found.attrs["references"] == len(paths[1])


def _grey(path: str, size: int) -> np.ndarray:
    """An independent thumbnail: PIL's greyscale and resize, no normalisation (corrcoef normalises)."""
    with Image.open(path) as img:
        img = img.convert("RGB")  # the quirky ImageNet files: grey, CMYK, PNG (no transparent pixels)
        return np.asarray(img.convert("L").resize((size, size), Image.Resampling.BILINEAR), dtype=np.float64)


def test_chunked_search_equals_brute_force_corrcoef(paths) -> None:
    queries, references = paths
    ref = [_grey(p, SIZE).ravel() for p in references]
    best = []
    for q in queries:
        r = [np.corrcoef(_grey(q, SIZE).ravel(), x)[0, 1] for x in ref]
        best.append((int(np.argmax(r)), float(np.max(r))))
    # threshold just above -1: every query gets its best match; chunks of 5 do not divide the 48 references
    got = overlap.find_duplicates(queries, references, size=SIZE, threshold=-0.999, batch=5, threads=2)
    assert got["caltech_path"].tolist() == [os.path.abspath(q) for q in queries]
    assert got["imagenet_path"].tolist() == [os.path.abspath(references[i]) for i, _ in best]
    np.testing.assert_allclose(got["correlation"], [c for _, c in best], atol=1e-5)


def test_search_in_chunks_of_one_equals_one_chunk(paths) -> None:
    """Memory bound of the search: ImageNet thumbnails scored one at a time (and decoded in workers, a few
    at a time) give the same matches as all of them in one matrix product decoded in the main process."""
    queries, references = paths
    one = overlap.find_duplicates(queries, references, size=SIZE, threshold=-0.999, batch=len(references), threads=1)
    tiny = overlap.find_duplicates(queries, references, size=SIZE, threshold=-0.999, batch=1, threads=2)
    assert tiny[["caltech_path", "imagenet_path"]].equals(one[["caltech_path", "imagenet_path"]])
    np.testing.assert_allclose(tiny["correlation"], one["correlation"], rtol=0, atol=1e-6)
    assert tiny.attrs == pytest.approx(one.attrs)


def test_search_settings_name_the_keys(paths) -> None:
    with pytest.raises(ConfigError, match="transfer.overlap.size"):
        overlap.find_duplicates(*paths, size=1)
    with pytest.raises(ConfigError, match="transfer.overlap.threshold"):
        overlap.find_duplicates(*paths, threshold=1.5)


# --- command, table and exclusion ----------------------------------------------------------------------------


def _run(configure, command, argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    configure(parser)
    command(parser.parse_args(argv))


@pytest.fixture(scope="module")
def overlap_csv(caltech: Path, tiny_imagenet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("analysis") / "caltech101.csv"
    _run(analyses_commands.configure_overlap_parser, analyses_commands.overlap_command,
         ["--dataset", "caltech101", "--root", str(caltech), "--imagenet-root", str(tiny_imagenet),
          "--size", str(SIZE), "--threshold", "0.95", "--out", str(out)])
    return out


def test_command_and_table(overlap_csv: Path, caltech: Path, tiny_imagenet: Path, tmp_path: Path) -> None:
    df = pd.read_csv(overlap_csv)
    assert set(zip(df["caltech_path"], df["imagenet_path"], strict=True)) == _planted(caltech, tiny_imagenet)
    summary = json.loads(overlap_csv.with_suffix(".json").read_text())
    assert summary["imagenet_train_images"] == 48 and summary["caltech_images"] == len(open_caltech101(
        caltech, include_background=True))

    csv, md = tmp_path / "overlap.csv", tmp_path / "overlap.md"
    _run(analyses_commands.configure_overlap_table_parser, analyses_commands.overlap_table_command,
         ["--inputs", json.dumps([str(overlap_csv)]), "--threshold", "0.95", "--drop", "true", "--out-csv", str(csv),
          "--out-md", str(md)])
    row = pd.read_csv(csv).iloc[0]
    assert row["dataset"] == "caltech101" and row["paper_duplicates"] == 44
    assert row["duplicates_found"] == PLANTED and row["planted"] == PLANTED and row["planted_found"] == PLANTED
    text = md.read_text()
    assert "removed from the pretraining set" in text and ">= 0.95" in text

    # a stricter threshold re-counts; a looser one than the search used cannot
    assert overlap_table.overlap_table([overlap_csv], threshold=0.99999)["duplicates_found"].iloc[0] == 0
    with pytest.raises(ConfigError, match="transfer.overlap.threshold"):
        overlap_table.overlap_table([overlap_csv], threshold=0.5)
    overlap_csv.with_suffix(".json").rename(tmp_path / "moved.json")
    try:
        with pytest.raises(DataError, match="rerun"):
            overlap_table.overlap_table([overlap_csv], threshold=0.95)
    finally:
        (tmp_path / "moved.json").rename(overlap_csv.with_suffix(".json"))


def test_prepare_drops_the_excluded_training_images(overlap_csv: Path, tiny_imagenet: Path, tmp_path: Path) -> None:
    exclude = overlap.excluded_paths([overlap_csv, overlap_csv])  # listed twice, dropped once
    assert len(exclude) == PLANTED
    params = {**TINY_DATA, "cache": "stream"}  # stream mode lists the kept files
    manifest = prepare_imagenet(tiny_imagenet, tmp_path / "prep", params, threads=1, exclude=exclude)
    train = torch.load(tmp_path / "prep" / "train.pt", weights_only=True)
    every = image_list(open_imagenet(tiny_imagenet, "train"))[0]
    assert manifest["excluded"] == PLANTED and manifest["counts"]["train"] == len(every) - PLANTED
    assert sorted(train["paths"]) == sorted(os.path.abspath(p) for p in every if p not in set(exclude))
    assert json.loads((tmp_path / "prep" / "manifest.json").read_text())["excluded"] == PLANTED

    with pytest.raises(DataError, match="rerun the overlap analysis"):
        prepare_imagenet(tiny_imagenet, tmp_path / "stale", params, threads=1, exclude=[tmp_path / "x.JPEG"])
    bad = tmp_path / "bad.csv"
    bad.write_text("path\nx\n")
    with pytest.raises(DataError, match="imagenet_path"):
        overlap.excluded_paths([bad])

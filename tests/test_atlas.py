"""The feature atlas (zfrepro.analysis.atlas, zfrepro.report.atlas), built from tiny randomly initialised
networks in seconds and checked against facts computed independently of the atlas: the network's channel
counts, the mining result's values and positions, mining.patch_box, the prepared images' pixels, a fresh
mining pass with each checkpoint, and the files the pages reference."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from zfrepro.analysis import atlas as atlas_mod
from zfrepro.analysis.atlas import evolution_maps
from zfrepro.analysis.mining import crop_u8, load_images, mine_top9, mining_indices, patch_box, receptive_fields
from zfrepro.commands.visualize import (
    atlas_command,
    atlas_compare_command,
    configure_atlas_compare_parser,
    configure_atlas_parser,
)
from zfrepro.data.splits import PreparedSplit
from zfrepro.errors import ConfigError, DataError
from zfrepro.io import atomic_torch_save
from zfrepro.model.architectures import spec_from_config
from zfrepro.model.network import ConvNet, init_weights_
from zfrepro.model.spec import spec_to_dict

from conftest import TINY_ARCHS, run_command

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5")


# ---------------------------------------------------------------------------------------------- tiny inputs


def random_checkpoint(path: Path, arch: str, classes: list[str], seed: int, epoch: int, crop: int = 64) -> ConvNet:
    """A tiny randomly initialised network saved in train's checkpoint format (He init, random biases so some
    maps fire often and some rarely or never)."""
    spec = spec_from_config(arch, TINY_ARCHS[arch], num_classes=len(classes), input_size=crop)
    gen = torch.Generator().manual_seed(seed)
    model = init_weights_(ConvNet(spec), "kaiming", generator=gen).eval()
    with torch.no_grad():
        for conv in model.conv_layers().values():
            conv.bias.copy_(torch.empty_like(conv.bias).uniform_(-0.3, 0.2, generator=gen))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_torch_save(path, {"arch": arch, "spec": spec_to_dict(spec), "model": model.state_dict(), "epoch": epoch,
                             "classes": classes, "crop_size": crop, "seed": seed, "training": {}})
    return model


def tiny_inputs(root: Path, data_dir: Path, arch: str = "zf") -> dict:
    """final.pt (epoch 3), epoch1.pt, epoch2.pt and the mining result of final.pt over `data_dir`'s val split."""
    split = PreparedSplit(data_dir / "val.pt")
    mean = torch.load(data_dir / "mean.pt", weights_only=True)
    models = {name: random_checkpoint(root / f"{name}.pt", arch, split.classes, seed, epoch)
              for name, seed, epoch in (("epoch1", 1, 1), ("epoch2", 2, 2), ("final", 3, 3))}
    mined = mine_top9(models["final"], split, mean, 64)
    atomic_torch_save(root / "top9.pt", {**mined, "split": "val", "model": str(root / "final.pt")})
    return {"model": root / "final.pt", "top9": root / "top9.pt", "data_dir": data_dir, "net": models["final"],
            "mined": mined, "split": split, "mean": mean,
            "checkpoints": {"1": str(root / "epoch1.pt"), "2": str(root / "epoch2.pt")}}


EVOLUTION = {"conv1": "all", "conv3": [0, 5], "conv5": 2}


def build_atlas(inputs: dict, out: Path, evolution: bool = True, extra: list[str] | None = None) -> Path:
    argv = ["--model", str(inputs["model"]), "--top9", str(inputs["top9"]), "--data-dir", str(inputs["data_dir"]),
            "--out-dir", str(out), "--device", "cpu", "--chunk", "16"]
    if evolution:
        argv += ["--checkpoints", json.dumps(inputs["checkpoints"]), "--evolution-maps", json.dumps(EVOLUTION),
                 "--evolution-split", "train", "--evolution-images", "20"]
    run_command(configure_atlas_parser, atlas_command, argv + (extra or []))
    return out


@pytest.fixture(scope="module")
def zf_inputs(tiny_prepared, tmp_path_factory, one_torch_thread):
    return tiny_inputs(tmp_path_factory.mktemp("atlas_zf_inputs"), tiny_prepared, "zf")


@pytest.fixture(scope="module")
def zf_atlas(zf_inputs, tmp_path_factory) -> Path:
    return build_atlas(zf_inputs, tmp_path_factory.mktemp("atlas") / "zf")


class _Page(HTMLParser):
    """The parts of a page the tests look at: every src/href, the cards of each grid, the drawn boxes."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.imgs: list[dict] = []
        self.cards: list[dict] = []
        self.boxes: list[str] = []
        self.figures: list[dict] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.links.append(a[key])
        if tag == "img":
            self.imgs.append(a)
        if tag == "div" and "card" in (a.get("class") or "").split():
            self.cards.append(a)
        if tag == "div" and a.get("class") == "box":
            self.boxes.append(a["data-box"])
        if tag == "figure":
            self.figures.append(a)


def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text())
    return page


# ---------------------------------------------------------------------------------------------- the atlas


def test_every_map_of_every_layer_has_a_card(zf_atlas, zf_inputs):
    channels = {name: conv.out_channels for name, conv in zf_inputs["net"].conv_layers().items()}
    data = json.loads((zf_atlas / "atlas.json").read_text())
    assert list(data["layers"]) == list(LAYERS)
    for layer in LAYERS:
        assert len(data["layers"][layer]["maps"]) == channels[layer]
        page = parse(zf_atlas / f"layer_{layer}.html")
        assert sorted(int(c["data-map"]) for c in page.cards) == list(range(channels[layer]))
        lazy = [i for i in page.imgs if "cards/" in i["src"]]
        assert len(lazy) == channels[layer] and all(i.get("loading") == "lazy" for i in lazy)
        assert all((zf_atlas / "maps" / layer / f"{m:04d}.html").exists() for m in range(channels[layer]))


def test_values_are_the_mining_results_in_descending_order(zf_atlas, zf_inputs):
    data = json.loads((zf_atlas / "atlas.json").read_text())
    for layer in LAYERS:
        mined = zf_inputs["mined"][layer]
        for entry in data["layers"][layer]["maps"]:
            m = entry["map"]
            filled = mined["image"][m] >= 0
            values = [t["value"] for t in entry["top"]]
            assert values == pytest.approx(mined["value"][m][filled].tolist(), rel=0, abs=0)
            assert values == sorted(values, reverse=True)
            assert [t["image"] for t in entry["top"]] == mined["image"][m][filled].tolist()
            labels = zf_inputs["split"].labels[mined["image"][m][filled]].tolist()
            assert [t["label"] for t in entry["top"]] == labels
            assert [t["wnid"] for t in entry["top"]] == [zf_inputs["split"].classes[i] for i in labels]
    # the page shows the same values, in the same order
    page = parse(zf_atlas / "maps" / "conv2" / "0003.html")
    shown = [float(f["data-value"]) for f in page.figures]
    assert shown == pytest.approx(zf_inputs["mined"]["conv2"]["value"][3][:len(shown)].tolist())


def test_boxes_drawn_are_mining_patch_boxes(zf_atlas, zf_inputs):
    rfs = receptive_fields(zf_inputs["net"].spec)
    for layer in LAYERS:
        mined = zf_inputs["mined"][layer]
        for m in (0, mined["value"].shape[0] - 1):
            page = parse(zf_atlas / "maps" / layer / f"{m:04d}.html")
            expected = [",".join(map(str, patch_box(rfs[layer], int(y), int(x), 64)))
                        for y, x, i in zip(mined["y"][m], mined["x"][m], mined["image"][m], strict=True) if i >= 0]
            assert page.boxes == expected
            # each box's source image is that entry's image, and the image file exists
            imgs = [i["src"] for i in page.imgs if "images/" in i["src"]]
            assert [int(re.search(r"_(\d+)\.jpg", s).group(1)) for s in imgs] == \
                [int(i) for i in mined["image"][m] if i >= 0]


def test_patch_tiles_are_the_images_pixels_under_the_box(zf_atlas, zf_inputs):
    # conv1's tiles are small enough to be stored unscaled and losslessly (PNG): the right half of a map's
    # large card, slot 0, is the crop of the prepared image at patch_box, wherever the box lies inside.
    data = json.loads((zf_atlas / "atlas.json").read_text())
    info = data["layers"]["conv1"]
    side = info["side"]
    assert side == info["large"] == receptive_fields(zf_inputs["net"].spec)["conv1"].size
    checked = 0
    for entry in info["maps"]:
        t = entry["top"][0]
        top, left, bottom, right = t["box"]
        if bottom - top != side or right - left != side:
            continue  # a border unit: its tile is padded with grey
        with Image.open(zf_atlas / entry["large"]) as im:
            assert im.format == "PNG"
            card = np.asarray(im.convert("RGB"))
        grid = 3 * side + 2 * 2
        patch = card[:side, card.shape[1] - grid:card.shape[1] - grid + side]
        image = crop_u8(load_images(zf_inputs["split"], [t["image"]]), 64)[0].permute(1, 2, 0).numpy()
        assert np.array_equal(patch, image[top:bottom, left:right])
        checked += 1
    assert checked > 0


def test_a_map_that_never_fires_is_marked_and_its_projections_are_blank(zf_atlas):
    data = json.loads((zf_atlas / "atlas.json").read_text())
    dead = [(layer, e) for layer, info in data["layers"].items() for e in info["maps"] if not e["fires"]]
    assert sum(info["dead"] for info in data["layers"].values()) == len(dead)
    for layer, e in dead[:3]:
        assert e["top_value"] is None or e["top_value"] <= 0
        with Image.open(zf_atlas / e["large"]) as im:
            card = np.asarray(im.convert("RGB")).astype(int)
        side = data["layers"][layer]["large"]
        left = card[:side, :side]  # slot 0's projection: a zero signal is uniform mid grey
        assert np.abs(left - 128).max() <= 1


def test_every_referenced_file_exists_and_links_are_relative(zf_atlas):
    pages = sorted(zf_atlas.rglob("*.html"))
    assert (zf_atlas / "index.html") in pages
    for page in pages:
        text = page.read_text()
        assert "http://" not in text and "https://" not in text and "<script src" not in text, page
        for link in parse(page).links:
            target = link.split("#")[0]
            if not target:
                continue
            assert not target.startswith("/"), (page, link)
            assert (page.parent / target).resolve().is_file(), (page, link)
    files = {p.relative_to(zf_atlas).as_posix() for p in zf_atlas.rglob("*") if p.is_file()}
    data = json.loads((zf_atlas / "atlas.json").read_text())
    for info in data["layers"].values():
        for e in info["maps"]:
            assert {e["card"], e["large"], e["page"], *(t["file"] for t in e["top"])} <= files


def test_cost_is_measured_and_written(zf_atlas, zf_inputs):
    cost = json.loads((zf_atlas / "cost.json").read_text())
    filled = sum(int((zf_inputs["mined"][layer]["image"] >= 0).sum()) for layer in LAYERS)
    assert cost["projections"]["atlas"] == filled
    assert cost["projections_per_second"] > 0 and cost["total_seconds"] > 0
    assert "projections/s" in cost["summary"]
    assert json.loads((zf_atlas / "atlas.json").read_text())["cost"] == cost
    assert "projections/s" in (zf_atlas / "index.html").read_text()


def test_evolution_is_a_fresh_top9_at_each_checkpoint(zf_atlas, zf_inputs):
    data = json.loads((zf_atlas / "atlas.json").read_text())["evolution"]
    assert data["epochs"] == [1, 2, 3]  # the checkpoints, then final.pt's own epoch
    net = zf_inputs["net"]
    assert data["maps"] == {"conv1": list(range(net.conv1.out_channels)), "conv3": [0, 5],
                            "conv5": data["maps"]["conv5"]}
    assert len(data["maps"]["conv5"]) == 2
    train = PreparedSplit(zf_inputs["data_dir"] / "train.pt")
    indices = mining_indices(len(train), 20, 0)
    from zfrepro.model.checkpoint import load_model

    model, _ = load_model(zf_inputs["checkpoints"]["2"])
    fresh = mine_top9(model, train, zf_inputs["mean"], 64, layers=("conv3",), indices=indices)["conv3"]
    for m in (0, 5):
        rows = data["rows"]["conv3"][str(m)]
        assert [r["epoch"] for r in rows] == [1, 2, 3]
        epoch2 = rows[1]
        filled = fresh["image"][m] >= 0
        assert epoch2["values"] == pytest.approx(fresh["value"][m][filled].tolist())
        assert epoch2["images"] == fresh["image"][m][filled].tolist()
        assert all((zf_atlas / r["strip"]).is_file() for r in rows)
        page = (zf_atlas / "maps" / "conv3" / f"{m:04d}.html").read_text()
        assert "Evolution during training" in page and "epoch 2" in page
    assert "Evolution during training" not in (zf_atlas / "maps" / "conv3" / "0001.html").read_text()
    evo_page = parse(zf_atlas / "evolution.html")
    assert len([i for i in evo_page.imgs if "_fig4" in i["src"]]) == sum(len(v) for v in data["maps"].values())


def test_evolution_maps_requests():
    top9 = {"conv1": {"value": torch.tensor([[1.0], [0.0], [2.0], [3.0]])}}
    assert evolution_maps({"conv1": "all"}, top9, {"conv1": 4})["conv1"].tolist() == [0, 1, 2, 3]
    assert evolution_maps({"conv1": [3, 1, 3]}, top9, {"conv1": 4})["conv1"].tolist() == [1, 3]
    chosen = evolution_maps({"conv1": 2}, top9, {"conv1": 4})["conv1"].tolist()
    assert len(chosen) == 2 and 1 not in chosen  # random maps that fire, as Fig 2 chooses them
    with pytest.raises(ConfigError, match="conv9"):
        evolution_maps({"conv9": "all"}, top9, {"conv1": 4})
    with pytest.raises(ConfigError, match=r"\[7\].*0\.\.3"):
        evolution_maps({"conv1": [7]}, top9, {"conv1": 4})
    with pytest.raises(ConfigError, match="expected"):
        evolution_maps({"conv1": "some"}, top9, {"conv1": 4})


# ---------------------------------------------------------------------------------------------- failures


def test_a_mining_result_of_another_network_is_refused(zf_inputs, tmp_path):
    mined = torch.load(zf_inputs["top9"], weights_only=True)
    mined["conv2"] = {key: v[:-1] for key, v in mined["conv2"].items()}  # one map fewer than the network has
    atomic_torch_save(tmp_path / "other.pt", mined)
    with pytest.raises(DataError, match=r"conv2 has \d+ maps but the model has \d+.*rerun `zfrepro mine`"):
        build_atlas(dict(zf_inputs, top9=tmp_path / "other.pt"), tmp_path / "atlas", evolution=False)
    assert not (tmp_path / "atlas").exists()


def test_a_stale_mining_result_is_refused(zf_inputs, tmp_path):
    # mined before the model changed: the strongest conv3 activation no longer matches the model's
    mined = torch.load(zf_inputs["top9"], weights_only=True)
    m = int(mined["conv3"]["value"][:, 0].argmax())
    mined["conv3"]["value"][m, 0] += 1.0
    atomic_torch_save(tmp_path / "stale.pt", mined)
    with pytest.raises(DataError, match=rf"conv3 map {m}'s strongest activation .* rerun `zfrepro mine`"):
        build_atlas(dict(zf_inputs, top9=tmp_path / "stale.pt"), tmp_path / "atlas", evolution=False)
    assert not (tmp_path / "atlas").exists()


def test_a_failure_leaves_no_atlas_and_no_temporary_folder(zf_inputs, tmp_path, monkeypatch):
    out = tmp_path / "out" / "atlas"
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    real = atlas_mod.project_entries
    monkeypatch.setattr(atlas_mod, "project_entries", failing)
    with pytest.raises(RuntimeError, match="boom"):
        build_atlas(zf_inputs, out, evolution=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_rebuilding_replaces_the_atlas_atomically(zf_inputs, tmp_path):
    out = tmp_path / "atlas"
    out.mkdir()
    (out / "stale.html").write_text("old")
    build_atlas(zf_inputs, out, evolution=False, extra=["--title", "again"])
    assert not (out / "stale.html").exists() and "again" in (out / "index.html").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["atlas"]
    assert not (out / "evolution.html").exists()


# ---------------------------------------------------------------------------------------------- comparison


@pytest.fixture(scope="module")
def kr_atlas(tiny_prepared, tmp_path_factory, one_torch_thread) -> tuple[Path, dict]:
    inputs = tiny_inputs(tmp_path_factory.mktemp("atlas_kr_inputs"), tiny_prepared, "krizhevsky")
    return build_atlas(inputs, tmp_path_factory.mktemp("atlas") / "krizhevsky", evolution=False), inputs


def test_comparison_pairs_layers_1_and_2_of_both_networks(zf_atlas, zf_inputs, kr_atlas, tmp_path):
    kr_dir, kr_inputs = kr_atlas
    out = tmp_path / "compare"
    run_command(configure_atlas_compare_parser, atlas_compare_command,
                ["--atlases", json.dumps([str(zf_atlas), str(kr_dir)]), "--out-dir", str(out)])
    page = parse(out / "index.html")
    grids: dict[tuple[str, int], int] = {}
    text = (out / "index.html").read_text()
    for match in re.finditer(r'<div class="grid" id="(conv\d)-n(\d)"[^>]*data-maps="(\d+)"', text):
        grids[(match.group(1), int(match.group(2)))] = int(match.group(3))
    for i, net in enumerate((zf_inputs["net"], kr_inputs["net"])):
        for layer in ("conv1", "conv2"):
            assert grids[(layer, i)] == net.conv_layers()[layer].out_channels
    assert len(page.cards) == sum(grids.values())
    for link in page.links:
        target = (out / link.split("#")[0]).resolve()
        if link.startswith("n0/") or link.startswith("n1/") or link.endswith(".css"):
            assert target.is_file(), link  # copied in: the page stands alone
        elif link.endswith(".html"):
            assert target.is_file(), link  # the maps' own pages, in their atlases
    # strongest first: the cards of each grid are in descending order of their top activation
    tops = [float(c["data-top"]) for c in page.cards]
    first = tops[:grids[("conv1", 0)]]
    assert first == sorted(first, reverse=True)


def test_comparison_refuses_a_folder_that_is_not_an_atlas(zf_atlas, tmp_path):
    with pytest.raises(DataError, match="atlas.json"):
        run_command(configure_atlas_compare_parser, atlas_compare_command,
                    ["--atlases", json.dumps([str(zf_atlas), str(tmp_path)]), "--out-dir", str(tmp_path / "c")])
    with pytest.raises(ConfigError, match="conv7"):
        run_command(configure_atlas_compare_parser, atlas_compare_command,
                    ["--atlases", json.dumps([str(zf_atlas), str(zf_atlas)]), "--layers", '["conv7"]',
                     "--out-dir", str(tmp_path / "c")])

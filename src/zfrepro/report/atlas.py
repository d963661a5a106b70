"""The feature atlas as static pages: every map of conv1..conv5 as a Fig 2 card (its top-9 deconvnet
projections beside their image patches, with activation values and class labels), a page per map with the
top-9 source images in full and the patch box drawn, the evolution of chosen maps over the training
checkpoints (Fig 4 for any map), and a page pairing two networks' layer 1 and 2 maps (Fig 6 for every map).

Plain HTML and PNG/JPEG files with relative links only (no server, no scripts from elsewhere; a few lines of
inline JavaScript sort a grid), so the directory opens from disk, from a copy, or inside Snakemake's report
(its `htmlindex` is index.html). Thumbnails are lazy-loaded, so a layer of 384 maps still opens quickly.
The directory is written in a temporary folder beside it and renamed at the end: a crash leaves no
half-written atlas that looks complete. atlas.json lists everything drawn (values, images, boxes, files),
for tests and for `zfrepro atlas-compare`; cost.json says what building it cost.
"""

from __future__ import annotations

import html
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from zfrepro.errors import ConfigError, DataError

THUMB_TILE = 40  # largest tile side on the layer grids (bigger fields are shrunk; smaller ones are scaled by CSS)
LARGE_TILE = 128  # largest tile side on a map's own page
CARD_WIDTH = 264  # CSS pixels a grid card's image is scaled up to (by whole factors, pixelated)
SOURCE_WIDTH = 224  # CSS pixels a full source image is scaled up to (by whole factors)
BACKGROUND = 255
STRIP_TILE = 48  # CSS pixels an evolution tile is scaled up to (by whole factors)
SMALL_TILE = 24  # cards with tiles up to this side are PNG (magnified by CSS), larger ones JPEG

CSS = """
body{font:14px/1.35 system-ui,sans-serif;margin:0 18px 40px;color:#222;background:#fafafa}
header{position:sticky;top:0;background:#fafafa;padding:8px 0;border-bottom:1px solid #ddd;z-index:2}
header h1{font-size:18px;margin:0 0 4px}
nav a{margin-right:10px}
a{color:#1a55a5;text-decoration:none} a:hover{text-decoration:underline}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(282px,1fr));gap:10px;margin-top:10px}
.card{background:#fff;border:1px solid #ddd;border-radius:4px;padding:6px}
.card.dead{opacity:.6}
.card img,.big,.strip{image-rendering:pixelated;display:block}
.cap{font-size:13px;margin:4px 0 2px}
.top9{margin:0;padding-left:20px;font-size:11px;line-height:1.3}
.top9 li{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.top9 b{font-variant-numeric:tabular-nums;font-weight:600;margin-right:4px}
.sources{display:grid;grid-template-columns:repeat(3,max-content);gap:12px;margin-top:10px}
.frame{position:relative;display:inline-block;line-height:0}
.frame img{image-rendering:pixelated}
.box{position:absolute;border:2px solid #ff2d2d;box-sizing:border-box;box-shadow:0 0 0 1px #fff}
figure{margin:0;background:#fff;border:1px solid #ddd;padding:6px;border-radius:4px}
figcaption{font-size:12px;margin-top:4px;max-width:230px}
table{border-collapse:collapse} td,th{padding:3px 8px;border-bottom:1px solid #e4e4e4;text-align:left}
.num{text-align:right;font-variant-numeric:tabular-nums}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:16px}
.note{color:#555;font-size:13px;max-width:900px}
button{font-size:12px}
"""

SORT_JS = """<script>
function sortCards(id, key) {
  const grid = document.getElementById(id);
  const cards = Array.from(grid.children);
  cards.sort((a, b) => key === 'top' ? (b.dataset.top - a.dataset.top) || (a.dataset.map - b.dataset.map)
                                     : a.dataset.map - b.dataset.map);
  cards.forEach(c => grid.appendChild(c));
}
</script>"""


# ---------------------------------------------------------------------------------------------- files


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_dir_beside(final: Path) -> Path:
    """An empty folder beside `final` (same file system, so the last rename is atomic)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; give it the permissions mkdir would
    return tmp


def commit_dir(tmp: Path, final: Path) -> Path:
    """Rename the finished folder `tmp` to `final`, replacing an older one (moved aside, then deleted)."""
    if final.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
        os.replace(final, old / "x")
        os.replace(tmp, final)
        shutil.rmtree(old)
    else:
        os.replace(tmp, final)
    return final


def _save_png(path: Path, hwc: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(hwc).save(path, format="PNG", compress_level=6)


def _save_card(path: Path, hwc: np.ndarray, tile: int) -> str:
    """A card as PNG when its tiles are small (they are magnified, where JPEG's blocks would show) and as
    JPEG otherwise (a fifth of the bytes: the paper-shape atlas stays tens of MB); returns the file name."""
    if tile <= SMALL_TILE:
        path = path.with_suffix(".png")
        _save_png(path, hwc)
    else:
        path = path.with_suffix(".jpg")
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(hwc).save(path, format="JPEG", quality=90)
    return path.name


def _to_u8(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """[.., 3, h, w] floats on 0..1 -> uint8 [.., h, w, 3]."""
    a = np.asarray(x, dtype=np.float64)
    return np.moveaxis(np.clip(np.rint(a * 255), 0, 255).astype(np.uint8), -3, -1)


def _resize(x: torch.Tensor, side: int) -> torch.Tensor:
    """Float images [n, 3, s, s] to side x side (area average when shrinking; unchanged when s <= side)."""
    if x.shape[-1] <= side:
        return x
    return F.interpolate(x, size=(side, side), mode="area")


def grid_shape(n: int) -> tuple[int, int]:
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def mosaic(tiles: np.ndarray, gap: int) -> np.ndarray:
    """uint8 tiles [k, t, t, 3] in a near-square grid on white."""
    k, t = tiles.shape[0], tiles.shape[1]
    rows, cols = grid_shape(k)
    out = np.full((rows * t + (rows - 1) * gap, cols * t + (cols - 1) * gap, 3), BACKGROUND, dtype=np.uint8)
    for i in range(k):
        r, c = divmod(i, cols)
        out[r * (t + gap):r * (t + gap) + t, c * (t + gap):c * (t + gap) + t] = tiles[i]
    return out


def card(projections: np.ndarray, patches: np.ndarray, gap: int) -> np.ndarray:
    """Fig 2's layout for one map: the top-k projections (left) beside their patches (right)."""
    left, right = mosaic(projections, gap), mosaic(patches, gap)
    sep = np.full((left.shape[0], 4 * gap + 2, 3), BACKGROUND, dtype=np.uint8)
    return np.concatenate([left, sep, right], axis=1)


def row(tiles: np.ndarray, gap: int) -> np.ndarray:
    """uint8 tiles [k, t, t, 3] in one row on white (an evolution strip)."""
    k, t = tiles.shape[0], tiles.shape[1]
    out = np.full((t, k * t + (k - 1) * gap, 3), BACKGROUND, dtype=np.uint8)
    for i in range(k):
        out[:, i * (t + gap):i * (t + gap) + t] = tiles[i]
    return out


def _scale(natural: int, target: int) -> int:
    """Whole-number CSS scale that brings `natural` pixels closest to `target` without exceeding it (>= 1)."""
    return max(1, target // max(1, natural))


def _fmt(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, body: str, css_href: str, script: str = "") -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_e(title)}</title><link rel=\"stylesheet\" href=\"{css_href}\">{script}</head>\n"
            f"<body>\n{body}\n</body></html>\n")


def _map_file(layer: str, m: int) -> str:
    return f"{layer}/{m:04d}"


# ---------------------------------------------------------------------------------------------- the atlas


class AtlasWriter:
    """Builds the atlas in a temporary folder: tiles arrive a chunk of entries at a time (add_chunk), each
    layer's cards and source images are written when it ends, the pages and atlas.json at finish()."""

    def __init__(self, out_dir: str | Path, model, ckpt: Mapping, split, data_dir: str | Path, top9: Mapping,
                 layers: Sequence[str], title: str | None = None, percentile: float = 0.0,
                 model_path: str | Path = "", top9_path: str | Path = ""):
        from zfrepro.analysis.mining import receptive_fields
        from zfrepro.data.splits import class_names

        if not 0 <= percentile < 50:
            raise ConfigError(f"--percentile: must be in [0, 50), got {percentile}")
        self.final = Path(out_dir)
        self.tmp = temp_dir_beside(self.final)
        self.model, self.split, self.top9, self.layers = model, split, top9, list(layers)
        self.percentile = percentile
        self.crop = int(model.spec.input_size)
        self.rf = receptive_fields(model.spec)
        self.wnids = list(split.classes)
        self.names = class_names(data_dir, self.wnids)
        self.split_name = str(top9.get("split", "val"))
        self.meta = {"title": title or f"{model.spec.name}", "arch": model.spec.name,
                     "model": str(model_path), "top9": str(top9_path), "epoch": ckpt.get("epoch"),
                     "split": self.split_name, "crop": self.crop, "k": int(top9.get("k", 9)),
                     "images_mined": int(len(top9["indices"])) if "indices" in top9 else None,
                     "percentile": percentile}
        self.entries: dict[str, list[dict]] = {}
        self.layer_info: dict[str, dict] = {}
        self.images: set[int] = set()
        self._tiles: dict[str, np.ndarray] = {}
        self.evolution: dict | None = None

    # ------------------------------------------------------------------ tiles

    def _display(self, projections: torch.Tensor) -> torch.Tensor:
        """Fig 2's contrast stretch (zero = mid grey, each projection on its own), float [n, 3, s, s] on 0..1."""
        from zfrepro.report.figures.style import normalize_for_display

        return torch.from_numpy(normalize_for_display(projections.float(), self.percentile, symmetric=True))

    def begin_layer(self, layer: str) -> None:
        channels = int(self.top9[layer]["value"].shape[0])
        k = int(self.top9[layer]["value"].shape[1])
        side = min(self.rf[layer].size, self.crop)
        thumb, large = min(side, THUMB_TILE), min(side, LARGE_TILE)
        self.layer_info[layer] = {"channels": channels, "k": k, "rf": self.rf[layer].size, "side": side,
                                  "thumb": thumb, "large": large}
        for name, t in (("thumb_p", thumb), ("thumb_i", thumb), ("large_p", large), ("large_i", large)):
            self._tiles[name] = np.full((channels, k, t, t, 3), BACKGROUND, dtype=np.uint8)

    def add_chunk(self, layer: str, chunk) -> None:
        info = self.layer_info[layer]
        shown = self._display(chunk.projections)
        patches = chunk.patches.float() / 255.0
        m, s = chunk.maps.numpy(), chunk.slots.numpy()
        for size in ("thumb", "large"):
            self._tiles[f"{size}_p"][m, s] = _to_u8(_resize(shown, info[size]))
            self._tiles[f"{size}_i"][m, s] = _to_u8(_resize(patches, info[size]))

    def end_layer(self, layer: str) -> None:
        from zfrepro.analysis.atlas import entry_boxes

        mined, info = self.top9[layer], self.layer_info[layer]
        gap_t, gap_l = 1, 2
        maps = []
        cards = self.tmp / "cards" / layer
        for m in range(info["channels"]):
            name = _map_file(layer, m)
            thumb = _save_card(cards / f"{m:04d}", card(self._tiles["thumb_p"][m], self._tiles["thumb_i"][m], gap_t),
                               info["thumb"])
            large = _save_card(cards / f"{m:04d}_large", card(self._tiles["large_p"][m], self._tiles["large_i"][m],
                                                              gap_l), info["large"])
            top = []
            boxes = entry_boxes(self.model, layer, mined["y"][m], mined["x"][m])
            for slot in range(info["k"]):
                image = int(mined["image"][m, slot])
                if image < 0:
                    continue  # fewer images than k were mined
                self.images.add(image)
                label = int(self.split.labels[image])
                top.append({"slot": slot, "value": float(mined["value"][m, slot]), "image": image,
                            "label": label, "wnid": self.wnids[label], "class": self.names[label],
                            "y": int(mined["y"][m, slot]), "x": int(mined["x"][m, slot]), "box": boxes[slot],
                            "file": _image_file(self.split_name, image)})
            maps.append({"map": m, "card": f"cards/{layer}/{thumb}", "large": f"cards/{layer}/{large}",
                         "page": f"maps/{name}.html", "top": top,
                         "top_value": top[0]["value"] if top else None, "fires": bool(top) and top[0]["value"] > 0})
        with Image.open(self.tmp / maps[0]["card"]) as im:
            info["card_size"] = list(im.size)
        with Image.open(self.tmp / maps[0]["large"]) as im:
            info["large_size"] = list(im.size)
        info["dead"] = sum(not e["fires"] for e in maps)
        self.entries[layer] = maps
        self._tiles.clear()
        self._write_sources()

    def _write_sources(self) -> None:
        """The centre crop (what the model saw) of every source image not written yet, once each."""
        from zfrepro.analysis.mining import crop_u8, load_images

        todo = sorted(i for i in self.images if not (self.tmp / _image_file(self.split_name, i)).exists())
        for start in range(0, len(todo), 256):
            part = todo[start:start + 256]
            crops = crop_u8(load_images(self.split, part), self.crop)
            for i, img in zip(part, crops, strict=True):
                path = self.tmp / _image_file(self.split_name, i)
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img.permute(1, 2, 0).numpy()).save(path, format="JPEG", quality=92)

    # ------------------------------------------------------------------ evolution

    def begin_evolution(self, epochs: Sequence[int], maps: Mapping[str, torch.Tensor], split: str,
                        images: int) -> None:
        self.evolution = {"epochs": [int(e) for e in epochs], "split": split, "images": int(images),
                          "maps": {layer: [int(m) for m in ms] for layer, ms in maps.items()},
                          "rows": {}, "_fig4": {}}

    def add_evolution(self, epoch: int, layer: str, sel: Mapping[str, torch.Tensor], chunks: Iterable,
                      split) -> None:
        """One epoch's top-k of the chosen maps of `layer`: one strip per map (strongest first)."""
        evo = self.evolution
        maps = evo["maps"][layer]
        row_of = {m: i for i, m in enumerate(maps)}
        k = sel["value"].shape[1]
        side = min(self.rf[layer].size, self.crop)
        t = min(side, THUMB_TILE)
        tiles = np.full((len(maps), k, t, t, 3), BACKGROUND, dtype=np.uint8)
        for chunk in chunks:
            rows = np.array([row_of[int(m)] for m in chunk.maps])
            tiles[rows, chunk.slots.numpy()] = _to_u8(_resize(self._display(chunk.projections), t))
        for i, m in enumerate(maps):
            rel = f"evolution/{_map_file(layer, m)}_e{epoch:03d}.png"
            _save_png(self.tmp / rel, row(tiles[i], 1))
            values = [float(v) for v, img in zip(sel["value"][i], sel["image"][i], strict=True) if img >= 0]
            labels = [self.names[int(split.labels[int(img)])] for img in sel["image"][i] if img >= 0]
            evo["rows"].setdefault(layer, {}).setdefault(m, []).append(
                {"epoch": int(epoch), "strip": rel, "values": values, "classes": labels,
                 "images": [int(img) for img in sel["image"][i] if img >= 0]})
            evo["_fig4"].setdefault((layer, m), []).append(tiles[i, 0])

    def end_evolution(self) -> None:
        """Fig 4 for each chosen map: the strongest projection at every epoch in one row."""
        evo = self.evolution
        for (layer, m), tiles in evo.pop("_fig4").items():
            rel = f"evolution/{_map_file(layer, m)}_fig4.png"
            _save_png(self.tmp / rel, row(np.stack(tiles), 2))
            evo.setdefault("fig4", {}).setdefault(layer, {})[m] = rel

    # ------------------------------------------------------------------ pages

    def finish(self, cost, total_seconds: float, threads: int = 1) -> str:
        """Write the pages, atlas.json and cost.json, rename the folder into place; return the cost line."""
        self._write_cost(cost, total_seconds, threads)
        (self.tmp / "atlas.css").write_text(CSS)
        self._write_index()
        for layer in self.layers:
            self._write_layer(layer)
            for i, entry in enumerate(self.entries[layer]):
                self._write_map(layer, i, entry)
        if self.evolution:
            self._write_evolution()
        data = {**self.meta, "layers": {layer: {**self.layer_info[layer], "maps": self.entries[layer]}
                                        for layer in self.layers},
                "evolution": _json_evolution(self.evolution), "cost": self.cost}
        (self.tmp / "atlas.json").write_text(json.dumps(data, indent=1) + "\n")
        commit_dir(self.tmp, self.final)
        return self.cost["summary"]

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _write_cost(self, cost, total: float, threads: int) -> None:
        atlas_n, atlas_s = cost.projections.get("atlas", 0), cost.seconds.get("atlas", 0.0)
        evo_n = cost.projections.get("evolution", 0)
        rate = cost.rate("atlas")
        summary = (f"{atlas_n} projections in {atlas_s:.1f} s ({rate or 0:.1f} projections/s); evolution "
                   f"{evo_n} projections in {cost.seconds.get('evolution', 0.0):.1f} s + mining "
                   f"{cost.seconds.get('evolution mining', 0.0):.1f} s; "
                   f"writing {cost.seconds.get('writing', 0.0):.1f} s; "
                   f"total {total:.1f} s on {threads} thread(s)")
        self.cost = {"projections": dict(cost.projections),
                     "seconds": {k: round(v, 3) for k, v in cost.seconds.items()},
                     "projections_per_second": round(rate, 2) if rate else None,
                     "evolution_projections_per_second": round(cost.rate("evolution"), 2)
                     if cost.rate("evolution") else None,
                     "total_seconds": round(total, 3), "threads": threads, "summary": summary}
        (self.tmp / "cost.json").write_text(json.dumps(self.cost, indent=2, sort_keys=True) + "\n")

    def _nav(self, prefix: str, current: str | None = None) -> str:
        links = [f'<a href="{prefix}index.html">index</a>']
        for layer in self.layers:
            label = f"<b>{layer}</b>" if layer == current else layer
            links.append(f'<a href="{prefix}layer_{layer}.html">{label}</a>')
        if self.evolution:
            links.append(f'<a href="{prefix}evolution.html">evolution</a>')
        return f"<nav>{''.join(links)}</nav>"

    def _header(self, prefix: str, heading: str, current: str | None = None) -> str:
        return f"<header><h1>{_e(heading)}</h1>{self._nav(prefix, current)}</header>"

    def _write_index(self) -> None:
        m = self.meta
        rows = "".join(
            f'<tr><td><a href="layer_{layer}.html">{layer}</a></td><td class="num">{i["channels"]}</td>'
            f'<td class="num">{i["dead"]}</td><td class="num">{i["rf"]}</td></tr>'
            for layer in self.layers for i in [self.layer_info[layer]])
        evo = ""
        if self.evolution:
            e = self.evolution
            counts = ", ".join(f"{layer}: {len(ms)}" for layer, ms in e["maps"].items())
            evo = (f'<h2>Evolution during training</h2><p><a href="evolution.html">Fig 4 for {counts} maps</a> at '
                   f'epochs {", ".join(map(str, e["epochs"]))} (top-{m["k"]} over {e["images"]} {e["split"]} images '
                   f"at each epoch).</p>")
        heading = f"Feature atlas: {m['title']}"
        body = (f"{self._header('', heading)}"
                f"<p class=\"note\">Every feature map of layers 1-5 of <code>{_e(m['model'])}</code> (epoch "
                f"{_e(m['epoch'])}): its {m['k']} strongest activations over the {_e(m['split'])} split "
                f"({_e(m['images_mined'])} images, from <code>{_e(m['top9'])}</code>), each projected to pixels by "
                f"the deconvnet (left 3x3 grid, zero = grey) beside the image patch under its receptive field (right "
                f"grid), as in Fig 2. Under each card: the activation values, strongest first, and the class of each "
                f"source image. Open a map for its source images in full with the patch box drawn.</p>"
                f"<table><tr><th>layer</th><th>maps</th><th>never fire</th><th>receptive field (px)</th></tr>{rows}"
                f"</table>{evo}<h2>Cost</h2><p class=\"note\">{_e(self.cost['summary'])} "
                f'(<a href="cost.json">cost.json</a>, <a href="atlas.json">atlas.json</a>)</p>')
        (self.tmp / "index.html").write_text(_page(f"Feature atlas: {m['title']}", body, "atlas.css"))

    def _card_html(self, layer: str, entry: Mapping, prefix: str = "") -> str:
        info = self.layer_info[layer]
        w, h = info["card_size"]
        f = _scale(w, CARD_WIDTH)
        items = "".join(f'<li title="{_e(t["class"])} ({_e(t["wnid"])}) · {self.split_name} image {t["image"]}">'
                        f'<b>{_fmt(t["value"])}</b>{_e(t["class"])}</li>' for t in entry["top"])
        dead = "" if entry["fires"] else " dead"
        note = "" if entry["fires"] else " · never fires"
        return (f'<div class="card{dead}" id="m{entry["map"]}" data-map="{entry["map"]}" '
                f'data-top="{entry["top_value"] if entry["top_value"] is not None else 0}">'
                f'<a href="{prefix}{entry["page"]}"><img loading="lazy" src="{prefix}{entry["card"]}" width="{w * f}" '
                f'height="{h * f}" alt="{layer} map {entry["map"]}: top-{info["k"]} projections and patches"></a>'
                f'<div class="cap"><a href="{prefix}{entry["page"]}">map {entry["map"]}</a> · max '
                f'{_fmt(entry["top_value"])}{note}</div><ol class="top9">{items}</ol></div>')

    def _write_layer(self, layer: str) -> None:
        info = self.layer_info[layer]
        cards = "".join(self._card_html(layer, e) for e in self.entries[layer])
        heading = f"{self.meta['title']} · {layer}: {info['channels']} maps"
        body = (f"{self._header('', heading, layer)}"
                f"<p class=\"note\">{info['channels']} maps, {info['dead']} never fire on the {self.split_name} split. "
                f"Receptive field {info['rf']} px (tiles {info['side']} px). Sort: "
                f"<button onclick=\"sortCards('grid','map')\">map order</button> "
                f"<button onclick=\"sortCards('grid','top')\">strongest first</button></p>"
                f'<div class="grid" id="grid" data-layer="{layer}" data-maps="{info["channels"]}">{cards}</div>')
        (self.tmp / f"layer_{layer}.html").write_text(
            _page(f"{self.meta['title']} {layer}", body, "atlas.css", SORT_JS))

    def _write_map(self, layer: str, i: int, entry: Mapping) -> None:
        info, m, n = self.layer_info[layer], entry["map"], self.layer_info[layer]["channels"]
        pre = "../../"
        w, h = info["large_size"]
        f = _scale(w, 720)
        links = [f'<a href="{pre}layer_{layer}.html#m{m}">all {layer} maps</a>']
        if i > 0:
            links.insert(0, f'<a href="{pre}maps/{_map_file(layer, m - 1)}.html">← map {m - 1}</a>')
        if i < n - 1:
            links.append(f'<a href="{pre}maps/{_map_file(layer, m + 1)}.html">map {m + 1} →</a>')
        s = _scale(self.crop, SOURCE_WIDTH)
        figures = []
        for rank, t in enumerate(entry["top"], 1):
            top, left, bottom, right = t["box"]
            c = self.crop
            box = (f'<div class="box" data-box="{top},{left},{bottom},{right}" style="left:{100 * left / c:.4f}%;'
                   f'top:{100 * top / c:.4f}%;width:{100 * (right - left) / c:.4f}%;'
                   f'height:{100 * (bottom - top) / c:.4f}%"></div>')
            figures.append(
                f'<figure data-slot="{t["slot"]}" data-value="{t["value"]!r}" data-image="{t["image"]}">'
                f'<div class="frame"><img src="{pre}{t["file"]}" width="{c * s}" height="{c * s}" '
                f'alt="{self.split_name} image {t["image"]}">{box}</div>'
                f'<figcaption>#{rank} · activation <b>{_fmt(t["value"])}</b><br>{_e(t["class"])}<br>'
                f'<small>{_e(t["wnid"])} · {self.split_name} image {t["image"]} · unit ({t["y"]}, {t["x"]}) · '
                f'box rows {top}-{bottom}, cols {left}-{right}</small></figcaption></figure>')
        evo = self._map_evolution(layer, m, pre)
        heading = f"{self.meta['title']} · {layer} · map {m} of {n}"
        dead = "" if entry["fires"] else " This map never fires: its projections are blank."
        body = (f"{self._header(pre, heading, layer)}"
                f"<p>{' · '.join(links)}</p>"
                f'<p class="note">Top-{info["k"]} over the {self.split_name} split: deconvnet projections (left) '
                f'beside the patches (right), strongest first, row by row; then each source image in full (the '
                f'centre crop the network saw) with the patch box in red.{dead}</p>'
                f'<img class="big" src="{pre}{entry["large"]}" width="{w * f}" height="{h * f}" '
                f'alt="{layer} map {m}: projections and patches">'
                f'<div class="sources">{"".join(figures)}</div>{evo}')
        path = self.tmp / entry["page"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_page(f"{self.meta['title']} {layer} map {m}", body, f"{pre}atlas.css"))

    def _map_evolution(self, layer: str, m: int, pre: str) -> str:
        if not self.evolution or m not in self.evolution["rows"].get(layer, {}):
            return ""
        rows = []
        for r in self.evolution["rows"][layer][m]:
            with Image.open(self.tmp / r["strip"]) as im:
                w, h = im.size
            f = _scale(h, STRIP_TILE)
            rows.append(f'<tr><td>epoch {r["epoch"]}</td><td><img class="strip" src="{pre}{r["strip"]}" '
                        f'width="{w * f}" height="{h * f}" alt="{layer} map {m} at epoch {r["epoch"]}"></td>'
                        f'<td class="num">{_fmt(r["values"][0] if r["values"] else None)}</td>'
                        f'<td>{_e(r["classes"][0]) if r["classes"] else ""}</td></tr>')
        e = self.evolution
        return (f'<h2>Evolution during training</h2><p class="note">At each checkpoint, this map\'s '
                f'top-{self.meta["k"]}'
                f' over {e["images"]} {e["split"]} images, projected with that epoch\'s weights (strongest first; '
                f'Fig 4 shows the first).</p><table><tr><th>epoch</th><th>projections</th><th>max</th>'
                f'<th>class of the strongest</th></tr>{"".join(rows)}</table>')

    def _write_evolution(self) -> None:
        e = self.evolution
        parts = []
        for layer, maps in e["maps"].items():
            rows = []
            for m in maps:
                rel = e["fig4"][layer][m]
                with Image.open(self.tmp / rel) as im:
                    w, h = im.size
                f = _scale(h, 2 * STRIP_TILE)
                rows.append(f'<tr><td><a href="maps/{_map_file(layer, m)}.html">map {m}</a></td><td>'
                            f'<img loading="lazy" '
                            f'class="strip" src="{rel}" width="{w * f}" height="{h * f}" '
                            f'alt="{layer} map {m}: strongest projection per epoch"></td></tr>')
            parts.append(f'<h2 id="{layer}">{layer} ({len(maps)} maps)</h2><table><tr><th>map</th><th>epochs '
                         f'{" · ".join(map(str, e["epochs"]))}</th></tr>{"".join(rows)}</table>')
        heading = f"{self.meta['title']} · evolution during training"
        body = (f"{self._header('', heading)}"
                f'<p class="note">Fig 4 for each chosen map: the strongest activation over {e["images"]} {e["split"]} '
                f'images at each checkpoint epoch, projected with that epoch\'s weights (each projection stretched on '
                f"its own). Open a map for its whole top-{self.meta['k']} at every epoch.</p>{''.join(parts)}")
        (self.tmp / "evolution.html").write_text(_page(f"{self.meta['title']} evolution", body, "atlas.css"))


def _image_file(split: str, image: int) -> str:
    return f"images/{split}_{image:06d}.jpg"


def _json_evolution(evo: Mapping | None) -> dict | None:
    if not evo:
        return None
    return {"epochs": evo["epochs"], "split": evo["split"], "images": evo["images"], "maps": evo["maps"],
            "rows": {layer: {str(m): r for m, r in rows.items()} for layer, rows in evo["rows"].items()},
            "fig4": {layer: {str(m): p for m, p in ms.items()} for layer, ms in evo.get("fig4", {}).items()}}


# ---------------------------------------------------------------------------------------------- comparison


def read_atlas(path: str | Path) -> dict:
    """atlas.json of an atlas directory; a DataError naming it if missing or broken."""
    file = Path(path) / "atlas.json"
    if not file.exists():
        raise DataError(f"{path} is not an atlas (no atlas.json): build it with `zfrepro atlas --out-dir {path}`")
    try:
        return json.loads(file.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{file}: not valid JSON ({err.msg}); delete {path} and rebuild it with `zfrepro atlas`") \
            from None


def write_comparison(atlases: Sequence[str | Path], out_dir: str | Path, layers: Sequence[str] = ("conv1", "conv2"),
                     order: str = "top") -> Path:
    """Fig 6 for every map: the same layers of several atlases side by side (each network's maps, strongest
    first by default, with how many never fire). The cards are copied in, so the page stands alone; each map
    also links to its page in its own atlas (a relative link, live when the atlases sit where they were)."""
    if order not in ("top", "map"):
        raise ConfigError(f"--order: expected top or map, got {order!r}")
    if len(atlases) < 2:
        raise ConfigError(f"--atlases: give at least two atlas directories to compare, got {list(atlases)}")
    final = Path(out_dir)
    data = [read_atlas(a) for a in atlases]
    for a, d in zip(atlases, data, strict=True):
        missing = [layer for layer in layers if layer not in d["layers"]]
        if missing:
            raise ConfigError(f"--layers: {missing} not in the atlas {a} (it has {list(d['layers'])})")
    tmp = temp_dir_beside(final)
    try:
        sections, summary = [], []
        for layer in layers:
            columns = []
            for idx, (a, d) in enumerate(zip(atlases, data, strict=True)):
                info = d["layers"][layer]
                maps = list(info["maps"])
                if order == "top":
                    maps.sort(key=lambda e: (-(e["top_value"] if e["top_value"] is not None else -math.inf), e["map"]))
                name = f"n{idx}"
                cards = []
                w, h = info["card_size"]
                f = _scale(w, CARD_WIDTH)
                for e in maps:
                    for key in ("card", "large"):
                        dst = tmp / name / e[key]
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(Path(a) / e[key], dst)
                    src_page = os.path.relpath(Path(a) / e["page"], final)
                    values = " ".join(_fmt(t["value"]) for t in e["top"][:3])
                    cards.append(
                        f'<div class="card{"" if e["fires"] else " dead"}" data-map="{e["map"]}" '
                        f'data-top="{e["top_value"] if e["top_value"] is not None else 0}">'
                        f'<a href="{name}/{e["large"]}"><img loading="lazy" src="{name}/{e["card"]}" '
                        f'width="{w * f}" height="{h * f}" alt="{_e(d["title"])} {layer} map {e["map"]}"></a>'
                        f'<div class="cap">map {e["map"]} · {values}{"" if e["fires"] else " · never fires"} · '
                        f'<a href="{_e(src_page)}">in its atlas</a></div></div>')
                gid = f"{layer}-{name}"
                columns.append(f'<div><h3>{_e(d["title"])}: {info["channels"]} maps, {info["dead"]} never fire '
                               f'(receptive field {info["rf"]} px)</h3><div class="grid" id="{gid}" '
                               f'data-layer="{layer}" data-maps="{info["channels"]}">{"".join(cards)}</div></div>')
                summary.append(f'<tr><td>{_e(d["title"])}</td><td>{layer}</td><td class="num">{info["channels"]}</td>'
                               f'<td class="num">{info["dead"]}</td><td class="num">{info["rf"]}</td></tr>')
            ids = [f"{layer}-n{i}" for i in range(len(data))]
            calls = {k: ";".join(f"sortCards('{g}','{k}')" for g in ids) for k in ("top", "map")}
            buttons = " ".join(f'<button onclick="{calls[k]}">{label}</button>'
                               for k, label in (("top", "strongest first"), ("map", "map order")))
            sections.append(f'<h2 id="{layer}">{layer}</h2><p>{buttons}</p>'
                            f'<div class="pair" style="grid-template-columns:repeat({len(data)},1fr)">'
                            f'{"".join(columns)}</div>')
        titles = " vs ".join(d["title"] for d in data)
        nav = "".join(f'<a href="#{layer}">{layer}</a>' for layer in layers)
        body = (f"<header><h1>{_e(titles)}: layers {', '.join(layers)}</h1><nav>{nav}</nav></header>"
                f'<p class="note">Fig 6 for every map: each network\'s maps of the same layer side by side (strongest '
                f"first), each card its top-9 deconvnet projections beside the patches (Fig 2) and the 3 strongest "
                f"activations. The paper's claim 2: the 7x7 stride-2 first layer gives more distinctive layer-1 "
                f"features, fewer dead ones, and no aliasing in layer 2. Click a card for it larger.</p>"
                f"<table><tr><th>network</th><th>layer</th><th>maps</th><th>never fire</th><th>receptive field</th>"
                f"</tr>{''.join(summary)}</table>{''.join(sections)}")
        (tmp / "atlas.css").write_text(CSS)
        (tmp / "index.html").write_text(_page(f"Atlas comparison: {titles}", body, "atlas.css", SORT_JS))
        (tmp / "compare.json").write_text(json.dumps(
            {"atlases": [str(a) for a in atlases], "titles": [d["title"] for d in data], "layers": list(layers),
             "order": order}, indent=1) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return commit_dir(tmp, final)

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

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from zfrepro.errors import ConfigError
from zfrepro.io import commit_dir, temp_dir_beside
from zfrepro.report.atlas_html import CSS, SORT_JS, escape, format_value, html_page, image_file, map_file
from zfrepro.report.atlas_tiles import (
    BACKGROUND,
    CARD_WIDTH,
    LARGE_TILE,
    SOURCE_WIDTH,
    STRIP_TILE,
    THUMB_TILE,
    card,
    css_scale,
    row,
    save_card,
    save_png,
    shrink_to,
    to_u8,
)


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
            self._tiles[f"{size}_p"][m, s] = to_u8(shrink_to(shown, info[size]))
            self._tiles[f"{size}_i"][m, s] = to_u8(shrink_to(patches, info[size]))

    def end_layer(self, layer: str) -> None:
        from zfrepro.analysis.atlas import entry_boxes

        mined, info = self.top9[layer], self.layer_info[layer]
        gap_t, gap_l = 1, 2
        maps = []
        cards = self.tmp / "cards" / layer
        for m in range(info["channels"]):
            name = map_file(layer, m)
            thumb = save_card(cards / f"{m:04d}", card(self._tiles["thumb_p"][m], self._tiles["thumb_i"][m], gap_t),
                               info["thumb"])
            large = save_card(cards / f"{m:04d}_large", card(self._tiles["large_p"][m], self._tiles["large_i"][m],
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
                            "file": image_file(self.split_name, image)})
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

        todo = sorted(i for i in self.images if not (self.tmp / image_file(self.split_name, i)).exists())
        for start in range(0, len(todo), 256):
            part = todo[start:start + 256]
            crops = crop_u8(load_images(self.split, part), self.crop)
            for i, img in zip(part, crops, strict=True):
                path = self.tmp / image_file(self.split_name, i)
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
            tiles[rows, chunk.slots.numpy()] = to_u8(shrink_to(self._display(chunk.projections), t))
        for i, m in enumerate(maps):
            rel = f"evolution/{map_file(layer, m)}_e{epoch:03d}.png"
            save_png(self.tmp / rel, row(tiles[i], 1))
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
            rel = f"evolution/{map_file(layer, m)}_fig4.png"
            save_png(self.tmp / rel, row(np.stack(tiles), 2))
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
        return f"<header><h1>{escape(heading)}</h1>{self._nav(prefix, current)}</header>"

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
                f"<p class=\"note\">Every feature map of layers 1-5 of <code>{escape(m['model'])}</code> (epoch "
                f"{escape(m['epoch'])}): its {m['k']} strongest activations over the {escape(m['split'])} split "
                f"({escape(m['images_mined'])} images, from <code>{escape(m['top9'])}</code>), each projected to "
                f"pixels by "
                f"the deconvnet (left 3x3 grid, zero = grey) beside the image patch under its receptive field (right "
                f"grid), as in Fig 2. Under each card: the activation values, strongest first, and the class of each "
                f"source image. Open a map for its source images in full with the patch box drawn.</p>"
                f"<table><tr><th>layer</th><th>maps</th><th>never fire</th><th>receptive field (px)</th></tr>{rows}"
                f"</table>{evo}<h2>Cost</h2><p class=\"note\">{escape(self.cost['summary'])} "
                f'(<a href="cost.json">cost.json</a>, <a href="atlas.json">atlas.json</a>)</p>')
        (self.tmp / "index.html").write_text(html_page(f"Feature atlas: {m['title']}", body, "atlas.css"))

    def _card_html(self, layer: str, entry: Mapping, prefix: str = "") -> str:
        info = self.layer_info[layer]
        w, h = info["card_size"]
        f = css_scale(w, CARD_WIDTH)
        items = "".join(f'<li title="{escape(t["class"])} ({escape(t["wnid"])}) · {self.split_name} image '
                        f'{t["image"]}">'
                        f'<b>{format_value(t["value"])}</b>{escape(t["class"])}</li>' for t in entry["top"])
        dead = "" if entry["fires"] else " dead"
        note = "" if entry["fires"] else " · never fires"
        return (f'<div class="card{dead}" id="m{entry["map"]}" data-map="{entry["map"]}" '
                f'data-top="{entry["top_value"] if entry["top_value"] is not None else 0}">'
                f'<a href="{prefix}{entry["page"]}"><img loading="lazy" src="{prefix}{entry["card"]}" width="{w * f}" '
                f'height="{h * f}" alt="{layer} map {entry["map"]}: top-{info["k"]} projections and patches"></a>'
                f'<div class="cap"><a href="{prefix}{entry["page"]}">map {entry["map"]}</a> · max '
                f'{format_value(entry["top_value"])}{note}</div><ol class="top9">{items}</ol></div>')

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
            html_page(f"{self.meta['title']} {layer}", body, "atlas.css", SORT_JS))

    def _write_map(self, layer: str, i: int, entry: Mapping) -> None:
        info, m, n = self.layer_info[layer], entry["map"], self.layer_info[layer]["channels"]
        pre = "../../"
        w, h = info["large_size"]
        f = css_scale(w, 720)
        links = [f'<a href="{pre}layer_{layer}.html#m{m}">all {layer} maps</a>']
        if i > 0:
            links.insert(0, f'<a href="{pre}maps/{map_file(layer, m - 1)}.html">← map {m - 1}</a>')
        if i < n - 1:
            links.append(f'<a href="{pre}maps/{map_file(layer, m + 1)}.html">map {m + 1} →</a>')
        s = css_scale(self.crop, SOURCE_WIDTH)
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
                f'<figcaption>#{rank} · activation <b>{format_value(t["value"])}</b><br>{escape(t["class"])}<br>'
                f'<small>{escape(t["wnid"])} · {self.split_name} image {t["image"]} · unit ({t["y"]}, {t["x"]}) · '
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
        path.write_text(html_page(f"{self.meta['title']} {layer} map {m}", body, f"{pre}atlas.css"))

    def _map_evolution(self, layer: str, m: int, pre: str) -> str:
        if not self.evolution or m not in self.evolution["rows"].get(layer, {}):
            return ""
        rows = []
        for r in self.evolution["rows"][layer][m]:
            with Image.open(self.tmp / r["strip"]) as im:
                w, h = im.size
            f = css_scale(h, STRIP_TILE)
            rows.append(f'<tr><td>epoch {r["epoch"]}</td><td><img class="strip" src="{pre}{r["strip"]}" '
                        f'width="{w * f}" height="{h * f}" alt="{layer} map {m} at epoch {r["epoch"]}"></td>'
                        f'<td class="num">{format_value(r["values"][0] if r["values"] else None)}</td>'
                        f'<td>{escape(r["classes"][0]) if r["classes"] else ""}</td></tr>')
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
                f = css_scale(h, 2 * STRIP_TILE)
                rows.append(f'<tr><td><a href="maps/{map_file(layer, m)}.html">map {m}</a></td><td>'
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
        (self.tmp / "evolution.html").write_text(html_page(f"{self.meta['title']} evolution", body, "atlas.css"))


def _json_evolution(evo: Mapping | None) -> dict | None:
    if not evo:
        return None
    return {"epochs": evo["epochs"], "split": evo["split"], "images": evo["images"], "maps": evo["maps"],
            "rows": {layer: {str(m): r for m, r in rows.items()} for layer, rows in evo["rows"].items()},
            "fig4": {layer: {str(m): p for m, p in ms.items()} for layer, ms in evo.get("fig4", {}).items()}}

"""Fig 6 for every map: several feature atlases' layers side by side, read from their atlas.json."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from zfrepro.errors import ConfigError, DataError
from zfrepro.io import commit_dir, temp_dir_beside
from zfrepro.report.atlas_html import CSS, SORT_JS, escape, format_value, html_page
from zfrepro.report.atlas_tiles import CARD_WIDTH, css_scale


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
                f = css_scale(w, CARD_WIDTH)
                for e in maps:
                    for key in ("card", "large"):
                        dst = tmp / name / e[key]
                        dst.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(Path(a) / e[key], dst)
                    src_page = os.path.relpath(Path(a) / e["page"], final)
                    values = " ".join(format_value(t["value"]) for t in e["top"][:3])
                    cards.append(
                        f'<div class="card{"" if e["fires"] else " dead"}" data-map="{e["map"]}" '
                        f'data-top="{e["top_value"] if e["top_value"] is not None else 0}">'
                        f'<a href="{name}/{e["large"]}"><img loading="lazy" src="{name}/{e["card"]}" '
                        f'width="{w * f}" height="{h * f}" alt="{escape(d["title"])} {layer} map {e["map"]}"></a>'
                        f'<div class="cap">map {e["map"]} · {values}{"" if e["fires"] else " · never fires"} · '
                        f'<a href="{escape(src_page)}">in its atlas</a></div></div>')
                gid = f"{layer}-{name}"
                columns.append(f'<div><h3>{escape(d["title"])}: {info["channels"]} maps, {info["dead"]} never fire '
                               f'(receptive field {info["rf"]} px)</h3><div class="grid" id="{gid}" '
                               f'data-layer="{layer}" data-maps="{info["channels"]}">{"".join(cards)}</div></div>')
                summary.append(f'<tr><td>{escape(d["title"])}</td><td>{layer}</td>'
                               f'<td class="num">{info["channels"]}</td>'
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
        body = (f"<header><h1>{escape(titles)}: layers {', '.join(layers)}</h1><nav>{nav}</nav></header>"
                f'<p class="note">Fig 6 for every map: each network\'s maps of the same layer side by side (strongest '
                f"first), each card its top-9 deconvnet projections beside the patches (Fig 2) and the 3 strongest "
                f"activations. The paper's claim 2: the 7x7 stride-2 first layer gives more distinctive layer-1 "
                f"features, fewer dead ones, and no aliasing in layer 2. Click a card for it larger.</p>"
                f"<table><tr><th>network</th><th>layer</th><th>maps</th><th>never fire</th><th>receptive field</th>"
                f"</tr>{''.join(summary)}</table>{''.join(sections)}")
        (tmp / "atlas.css").write_text(CSS)
        (tmp / "index.html").write_text(html_page(f"Atlas comparison: {titles}", body, "atlas.css", SORT_JS))
        (tmp / "compare.json").write_text(json.dumps(
            {"atlases": [str(a) for a in atlases], "titles": [d["title"] for d in data], "layers": list(layers),
             "order": order}, indent=1) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return commit_dir(tmp, final)

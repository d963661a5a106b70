"""The atlas's HTML: the style sheet, the sorting script, the page frame and the files pages link to."""

from __future__ import annotations

import html
from typing import Any

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


def format_value(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


def html_page(title: str, body: str, css_href: str, script: str = "") -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><link rel=\"stylesheet\" href=\"{css_href}\">{script}</head>\n"
            f"<body>\n{body}\n</body></html>\n")


def map_file(layer: str, m: int) -> str:
    return f"{layer}/{m:04d}"


def image_file(split: str, image: int) -> str:
    return f"images/{split}_{image:06d}.jpg"

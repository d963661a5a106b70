"""The feature atlas in a real browser: headless Chromium opens every page of two tiny atlases and their
comparison, forces every lazy image to load, and reports each image that did not decode (naturalWidth 0)
and each grid's card count; screenshots of the main pages are saved for a person to look at.

Chromium is Debian's package at /usr/bin/chromium (tests/browser/install_chromium.sh installs it; this test
installs nothing). No browser-automation dependency: a harness page loads each atlas page in an iframe and
writes its findings into its own DOM, which `chromium --dump-dom` prints. Screenshots go to
$ZFREPRO_BROWSER_RESULTS (a folder; default: the test's temporary folder).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_atlas import LAYERS, build_atlas, parse, tiny_inputs

from zfrepro.commands.visualize import atlas_compare_command, configure_atlas_compare_parser

from conftest import run_command

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium "
                                                                "(run tests/browser/install_chromium.sh)")]

HARNESS = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body><pre id="out">pending</pre>
<script>
const pages = %s;
async function check(url) {
  const f = document.createElement('iframe');
  f.style.width = '1400px'; f.style.height = '900px';
  document.body.appendChild(f);
  await new Promise(r => { f.onload = r; f.src = url; });
  const d = f.contentDocument;
  const imgs = Array.from(d.images);
  imgs.forEach(i => { i.loading = 'eager'; });  // lazy thumbnails below the fold load now
  // complete: loaded or broken (a broken image never fires again); a deferred lazy one is not complete
  await Promise.all(imgs.map(i => i.complete ? 0 : new Promise(r => { i.onload = r; i.onerror = r; })));
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const grids = Array.from(d.querySelectorAll('.grid')).map(
      g => ({id: g.id, layer: g.dataset.layer, maps: Number(g.dataset.maps),
             cards: g.querySelectorAll('.card').length}));
  f.remove();
  return {url, images: imgs.length, broken, grids, title: d.title};
}
(async () => {
  const results = [];
  try { for (const p of pages) results.push(await check(p)); }
  catch (e) { results.push({error: String(e)}); }
  document.getElementById('out').textContent = JSON.stringify(results);
  document.getElementById('out').className = 'done';
})();
</script></body></html>
"""


def chromium(args: list[str], profile: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
           f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def browse(pages: list[Path], workdir: Path) -> list[dict]:
    """Open each page in Chromium (one browser, one page after another); what the harness found on each."""
    workdir.mkdir(parents=True, exist_ok=True)
    harness = workdir / "check.html"
    urls = [os.path.relpath(p, workdir) for p in pages]
    harness.write_text(HARNESS % json.dumps(urls))
    res = chromium(["--allow-file-access-from-files", "--virtual-time-budget=600000", "--dump-dom",
                    harness.as_uri()], workdir / "profile")
    found = re.search(r'<pre id="out" class="done">(.*?)</pre>', res.stdout, re.DOTALL)
    assert found, f"the harness did not finish:\n{res.stdout[-1000:]}\n{res.stderr[-2000:]}"
    results = json.loads(html.unescape(found.group(1)))
    assert not any("error" in r for r in results), results
    return results


def screenshot(page: Path, png: Path, profile: Path, size: str = "1400,1000") -> np.ndarray:
    png.parent.mkdir(parents=True, exist_ok=True)
    res = chromium([f"--window-size={size}", "--virtual-time-budget=5000", f"--screenshot={png}", page.as_uri()],
                   profile)
    assert png.exists(), res.stderr[-2000:]
    with Image.open(png) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"), dtype=np.float64)


@pytest.fixture(scope="module")
def built(tiny_prepared, tmp_path_factory, one_torch_thread) -> dict:

    root = tmp_path_factory.mktemp("browser")
    nets, dirs = {}, {}
    for arch in ("zf", "krizhevsky"):
        inputs = tiny_inputs(root / f"{arch}_inputs", tiny_prepared, arch)
        nets[arch] = inputs["net"]
        dirs[arch] = build_atlas(inputs, root / "atlas" / arch, evolution=arch == "zf")
    dirs["compare"] = root / "atlas" / "compare"
    run_command(configure_atlas_compare_parser, atlas_compare_command,
                ["--atlases", json.dumps([str(dirs["zf"]), str(dirs["krizhevsky"])]),
                 "--out-dir", str(dirs["compare"])])
    return {"nets": nets, "dirs": dirs, "root": root}


def test_every_image_on_every_page_loads_and_every_layer_shows_all_its_maps(built):
    dirs, nets = built["dirs"], built["nets"]
    pages = sorted(p for d in dirs.values() for p in d.rglob("*.html"))
    results = browse(pages, built["root"] / "harness")
    assert len(results) == len(pages)
    for page, r in zip(pages, results, strict=True):
        assert r["broken"] == [], f"{page}: images that did not load: {r['broken']}"
        assert r["images"] == len(parse(page).imgs), page  # the browser saw every <img> of the file
    by_url = {Path(built["root"] / "harness" / r["url"]).resolve(): r for r in results}
    for arch in ("zf", "krizhevsky"):
        for layer in LAYERS:
            r = by_url[(dirs[arch] / f"layer_{layer}.html").resolve()]
            channels = nets[arch].conv_layers()[layer].out_channels
            assert [(g["maps"], g["cards"]) for g in r["grids"]] == [(channels, channels)], (arch, layer)
            assert r["images"] == channels
    compare = by_url[(dirs["compare"] / "index.html").resolve()]
    expected = {f"{layer}-n{i}": nets[arch].conv_layers()[layer].out_channels
                for layer in ("conv1", "conv2") for i, arch in enumerate(("zf", "krizhevsky"))}
    assert {g["id"]: g["cards"] for g in compare["grids"]} == expected
    assert sum(r["images"] for r in results) > 1000  # the check ran over real pages, not empty ones


def test_the_harness_reports_an_image_that_does_not_load(built, tmp_path):
    # The control: the same check on a copy of a layer page with one card deleted must name that card.
    copy = tmp_path / "atlas"
    shutil.copytree(built["dirs"]["zf"], copy)
    missing = sorted((copy / "cards" / "conv2").glob("0003.*"))[0]
    missing.unlink()
    (r,) = browse([copy / "layer_conv2.html"], tmp_path / "harness")
    assert r["broken"] == [f"cards/conv2/{missing.name}"]


def test_screenshots_of_the_main_pages(built, tmp_path):
    out = Path(os.environ.get("ZFREPRO_BROWSER_RESULTS") or tmp_path) / "atlas_screenshots"
    dirs = built["dirs"]
    shots = {"index": dirs["zf"] / "index.html", "layer_conv2": dirs["zf"] / "layer_conv2.html",
             "map_conv3_0000": dirs["zf"] / "maps" / "conv3" / "0000.html",
             "evolution": dirs["zf"] / "evolution.html", "compare": dirs["compare"] / "index.html"}
    for name, page in shots.items():
        pixels = screenshot(page, out / f"{name}.png", tmp_path / "profile")
        assert pixels.shape[:2] == (1000, 1400)
        assert pixels.std() > 5, f"{name}: the screenshot is blank"

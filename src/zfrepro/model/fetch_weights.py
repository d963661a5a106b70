"""`zfrepro fetch-weights NAME`: download a published network's weights into a cache folder, only when asked.

The file is checked against its published checksum before it gets its name in the cache (written beside it, then
renamed), so a cached file is always a verified one; the workflow itself never downloads (it imports the file the
config names). imgclsmob releases each .pth inside a .zip; the .pth is what is kept and checked.
"""

from __future__ import annotations

import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from zfrepro.errors import DataError
from zfrepro.model.import_weights import checksum_matches, file_digest
from zfrepro.model.published import Published, published

CACHE_ENV = "ZFREPRO_WEIGHTS_CACHE"
BLOCK = 1 << 20


def default_cache() -> Path:
    """$ZFREPRO_WEIGHTS_CACHE, else ~/.cache/zfrepro/weights."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "zfrepro" / "weights").expanduser()


def _download(url: str, out: Path, timeout: float) -> None:
    """Stream `url` into `out`; DataError (one line) when it cannot be reached or arrives short."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(out, "wb") as f:
            expected = response.headers.get("Content-Length")
            received = 0
            while block := response.read(BLOCK):
                f.write(block)
                received += len(block)
    except http.client.IncompleteRead as err:
        raise DataError(f"{url}: the download stopped early ({len(err.partial)} more bytes missing); run "
                        "fetch-weights again") from err
    except urllib.error.HTTPError as err:
        raise DataError(f"{url}: the server answered {err.code} {err.reason}; check the URL (--url) or the "
                        "release") from err
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DataError(f"{url}: cannot be reached ({reason}); check the network, or download the file yourself "
                        "and name it in the config") from err
    if expected is not None and received != int(expected):
        raise DataError(f"{url}: the download stopped early ({received} of {expected} bytes); run fetch-weights "
                        "again")


def _unpacked(download: Path, entry: Published, work: Path) -> Path:
    """The .pth inside an imgclsmob .zip (named entry.file_name), or the download itself."""
    if not zipfile.is_zipfile(download) or entry.format != "pytorchcv":
        return download  # torch's own .pth files are zip archives too: only imgclsmob wraps them in another
    with zipfile.ZipFile(download) as archive:
        if entry.file_name not in archive.namelist():
            names = ", ".join(archive.namelist()[:3])
            raise DataError(f"{entry.url}: the archive holds {names}, not {entry.file_name}; check the URL")
        with archive.open(entry.file_name) as src, open(work / entry.file_name, "wb") as dst:
            shutil.copyfileobj(src, dst, BLOCK)
    return work / entry.file_name


def fetch_weights(name: str, cache: str | Path | None = None, url: str | None = None,
                  timeout: float = 60.0) -> Path:
    """The verified weights file of published network `name` in `cache`, downloaded if not there yet."""
    entry = published(name, "fetch-weights NAME")
    cache = Path(cache).expanduser() if cache else default_cache()
    target = cache / entry.file_name
    if target.is_file() and checksum_matches(target, entry):
        return target
    cache.mkdir(parents=True, exist_ok=True)
    source = url or entry.url
    with tempfile.TemporaryDirectory(dir=cache, prefix=".fetch-") as tmp:
        work = Path(tmp)
        download = work / "download"
        _download(source, download, timeout)
        try:
            weights = _unpacked(download, entry, work)
        except zipfile.BadZipFile as err:
            raise DataError(f"{source}: the archive is damaged ({err}); run fetch-weights again") from err
        if not checksum_matches(weights, entry):
            got = file_digest(weights, entry.hash_algorithm)
            raise DataError(f"{source}: {entry.file_name} has {entry.hash_algorithm} {got}, not the published "
                            f"{entry.checksum}; not kept (a wrong URL or a changed release)")
        os.replace(weights, target)  # same folder: atomic, so the cache never holds an unverified file
    return target

"""Making jobs into files: encoding (JPEG, or the real ImageNet's oddities) and the worker pool."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from zfrepro.data.synthetic.generators import render
from zfrepro.data.synthetic.scenes import Job, background_sources


def _encode(rgb: np.ndarray, fmt: str) -> bytes:
    """JPEG as usual, or one of the real ImageNet's oddities (grey/CMYK JPEG, PNG bytes named .JPEG)."""
    im = Image.fromarray(rgb)
    buf = io.BytesIO()
    if fmt == "jpeg":
        im.save(buf, "JPEG", quality=90)
    elif fmt == "grey":
        im.convert("L").save(buf, "JPEG", quality=90)
    elif fmt == "cmyk":
        im.convert("CMYK").save(buf, "JPEG", quality=90)
    elif fmt == "png_rgba":
        im.convert("RGBA").save(buf, "PNG")
    elif fmt == "png_palette":
        im.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buf, "PNG")
    elif fmt == "png_rgb":
        im.save(buf, "PNG")
    else:
        raise ValueError(f"unknown image format {fmt!r}")
    return buf.getvalue()


_ROOT: str = ""  # the temp output root, set in each worker


def _init_worker(root: str) -> None:
    global _ROOT
    _ROOT = root
    background_sources()


def _make(job: Job) -> dict:
    """Render and write one job under _ROOT; return its metadata."""
    rgb, meta = render(job)
    with open(os.path.join(_ROOT, job.path), "wb") as f:
        f.write(_encode(rgb, job.fmt))
    return meta


def run_jobs(jobs: list[Job], root: Path, workers: int, desc: str) -> list[dict]:
    """Make all jobs (in a process pool when there are many) and return their metadata in job order."""
    for d in sorted({os.path.dirname(j.path) for j in jobs}):
        (root / d).mkdir(parents=True, exist_ok=True)
    _init_worker(str(root))  # loaded once here, inherited by forked workers
    from zfrepro.progress import progress

    if workers <= 1 or len(jobs) < 64:
        return list(progress(map(_make, jobs), total=len(jobs), desc=f"generate {desc}", unit="img"))
    import multiprocessing

    with multiprocessing.Pool(workers, initializer=_init_worker, initargs=(str(root),)) as pool:
        it = pool.imap(_make, jobs, chunksize=16)
        return list(progress(it, total=len(jobs), desc=f"generate {desc}", unit="img"))

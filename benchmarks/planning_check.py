"""What the planning-time damage check costs: sizes and modification times against hashing every result.

Before any job, the workflow compares every checksummed result with its sidecar (zfrepro.io.damaged_results):
sizes always, the SHA-256 only of files whose modification time moved. This prints, for one results folder, the
seconds of that check as it runs at every start (nothing moved), against hashing every result (what it would cost
to check content unconditionally, and what it costs once after a `snakemake --touch` or a copy of the folder),
as a ratio, with the hashing throughput and, from it, the time to hash a larger configuration's results at every
start (`--estimate-gb`: their size, e.g. the paper's checkpoints and shards from benchmarks/paper_cost.py's
disk_gb). Writes the numbers to benchmarks/results/planning_check.json.

    .venv/bin/python benchmarks/planning_check.py results/demo [--repeats 3] [--estimate-gb 100]

Machines are shared and noisy: each time is the best of `--repeats` rounds taken in turns (the files in the page
cache; a cold disk reads slower).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

from zfrepro.io import SIDECAR_SUFFIX, atomic_write_json, damaged_results, sha256_of

OUT = Path(__file__).resolve().parent / "results" / "planning_check.json"


def best(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results_dir", type=Path)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--estimate-gb", type=float, default=None,
                    help="also estimate hashing this many GB of results (a larger configuration's models, shards)")
    args = ap.parse_args()
    files = [side.with_name(side.name[1 : -len(SIDECAR_SUFFIX)])
             for side in sorted(args.results_dir.rglob(f".*{SIDECAR_SUFFIX}"))]
    files = [f for f in files if f.exists()]
    size = sum(f.stat().st_size for f in files)
    problems = list(damaged_results(args.results_dir))  # also records moved times once, as a first start would
    check = best(lambda: list(damaged_results(args.results_dir)), args.repeats)
    hash_all = best(lambda: [sha256_of(f) for f in files], args.repeats)
    mb_per_s = size / 1e6 / hash_all
    result = {"results_dir": str(args.results_dir), "files": len(files), "bytes": size, "damaged": len(problems),
              "planning_check_s": check, "hash_all_s": hash_all, "ratio_hash_all_to_check": hash_all / check,
              "sha256_mb_per_s": mb_per_s, "estimate_gb": args.estimate_gb,
              "estimate_hash_all_s": args.estimate_gb * 1e3 / mb_per_s if args.estimate_gb else None,
              "machine": f"{platform.machine()} {platform.processor() or platform.node()}",
              "date": time.strftime("%Y-%m-%d")}
    atomic_write_json(OUT, result)
    estimate = (f"; {args.estimate_gb:.0f} GB would take {result['estimate_hash_all_s']:.0f} s to hash at every start"
                if args.estimate_gb else "")
    print(f"{len(files)} checksummed results, {size / 1e6:.0f} MB: planning check {check * 1e3:.1f} ms, hashing all "
          f"{hash_all * 1e3:.0f} ms ({hash_all / check:.1f}x; SHA-256 at {mb_per_s:.0f} MB/s){estimate}. -> {OUT}")


if __name__ == "__main__":
    main()

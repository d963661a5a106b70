#!/usr/bin/env bash
# The first run on a GPU, in under 10 minutes on one: three steps, one summary line each (issue 24).
#
#   1. benchmarks/gpu_check.py: train/compile/evaluate/data-path/JPEG-path speeds and MFU (JSON written stage by
#      stage, so a step cut short by its time limit keeps what it measured);
#   2. the tiny study (tests/config/tiny.yaml) run by Snakemake with device: cuda, from a scratch folder;
#   3. one training epoch at the paper's shape through zfrepro train itself (benchmarks/paper_epoch.py).
#
#   benchmarks/first_gpu_run.sh [OUT]           on a CUDA machine (OUT: /tmp/zfrepro-first-gpu)
#   benchmarks/first_gpu_run.sh --smoke [OUT]   anywhere: the same steps on the CPU at tiny sizes, the tiny study
#                                               as a dry run (tests/test_first_gpu_run.py runs this)
#
# Each step's output goes to OUT/<step>.log and its numbers to OUT/<step>.json; a failed step says so in its line
# and the next steps still run. Exit status: the number of failed steps.
set -uo pipefail
smoke=0
if [ "${1:-}" = --smoke ]; then smoke=1; shift; fi
repo=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-/tmp/zfrepro-first-gpu}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PY=${PYTHON:-$repo/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
SNAKEMAKE=${SNAKEMAKE:-$(dirname "$PY")/snakemake}
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
cores=$(nproc)
failed=0

# run NAME LIMIT_SECONDS SUMMARY_COMMAND COMMAND...: COMMAND under a time limit, then one line for it
run() {
  local name=$1 limit=$2 summary=$3; shift 3
  local start=$SECONDS rc=0
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1 || rc=$?
  local took=$((SECONDS - start))
  if [ "$rc" -eq 0 ]; then
    echo "$name (${took} s): $(eval "$summary")"
  else
    [ "$rc" -eq 124 ] && why="stopped at its ${limit} s limit" || why="exit $rc"
    echo "$name (${took} s): FAILED ($why); last line: $(tail -n 1 "$OUT/$name.log"); log: $OUT/$name.log"
    failed=$((failed + 1))
  fi
}

# 1. the GPU check
check_args=(--out "$OUT/gpu_check.json")
[ "$smoke" -eq 1 ] && check_args+=(--smoke --no-ddp)
run gpu_check 220 'tail -n 1 "$OUT/gpu_check.log"' "$PY" "$repo/benchmarks/gpu_check.py" "${check_args[@]}"
if [ ! -s "$OUT/gpu_check.json" ]; then echo "gpu_check: no JSON written"; fi

# 2. the tiny study on CUDA, from a scratch folder (as benchmarks/compare_commits.sh runs it)
study="$OUT/tiny_study"
rm -rf "$study" && mkdir -p "$study"
for name in Snakefile workflow config tests; do ln -s "$repo/$name" "$study/$name"; done
if [ "$smoke" -eq 1 ]; then
  device=cpu; dry=(-n)
else
  device=cuda; dry=()
fi
tiny_summary='n=$(find "$study/results" -type f 2>/dev/null | wc -l); jobs=$(grep -m1 -E "^total +[0-9]+" "$OUT/tiny_study.log" | awk "{print \$2}"); echo "tiny study on $device: ${jobs:-?} jobs $([ ${#dry[@]} -gt 0 ] && echo "planned (dry run)" || grep -o "[0-9]* of [0-9]* steps (100%) done" "$OUT/tiny_study.log" | tail -n 1), $n result files in $study/results"'
run tiny_study 220 "$tiny_summary" \
  bash -c 'cd "$1" && shift && exec "$@"' _ "$study" "$SNAKEMAKE" --configfile tests/config/tiny.yaml \
  --replace-workflow-config --config "device=$device" --cores "$cores" "${dry[@]}"

# 3. one training epoch at the paper's shape
epoch_args=(--out "$OUT/paper_epoch.json")
[ "$smoke" -eq 1 ] && epoch_args+=(--smoke)
run paper_epoch 140 'tail -n 1 "$OUT/paper_epoch.log"' "$PY" "$repo/benchmarks/paper_epoch.py" "${epoch_args[@]}"

exit "$failed"

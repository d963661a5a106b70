#!/usr/bin/env bash
# Run the workflow at two commits and compare their results file by file (benchmarks/compare_results.py).
#
#   benchmarks/compare_commits.sh OLD NEW [CONFIG]     (CONFIG: default tests/config/tiny.yaml)
#
# Each commit runs from its own git worktree, with this checkout's .venv and that worktree's src/ first on
# PYTHONPATH, in the same folder ($RUN) one after the other, so that absolute paths recorded in the results
# (the prepared data's root, the overlap CSVs) are the same. The configuration's results_dir lands in $OUT/old
# and $OUT/new.
set -euo pipefail
old=$1 new=$2 config=${3:-tests/config/tiny.yaml}
repo=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/zfrepro-compare.XXXXXX)}
RUN=${RUN:-/tmp/zfrepro-compare-run}
replace=$([ "$config" = tests/config/tiny.yaml ] && echo --replace-workflow-config || true)
# The configuration's own results folder (e.g. results/tiny): compare_results.py skips logs/ and benchmarks/ at the
# top of what it is given, so it must be given this folder, not results/ above it.
results_dir=$("$repo/.venv/bin/python" -c 'import sys, yaml
print(yaml.safe_load(open(sys.argv[1])).get("results_dir") or yaml.safe_load(open(sys.argv[2]))["results_dir"])' \
  "$([[ $config = /* ]] && echo "$config" || echo "$repo/$config")" "$repo/config/config.yaml")
for side in old new; do
  commit=${!side}
  tree="$OUT/tree-$side"
  git -C "$repo" worktree prune
  git -C "$repo" worktree add --detach --force "$tree" "$commit" >/dev/null
  rm -rf "$RUN" && mkdir -p "$RUN"
  for name in Snakefile workflow config tests; do ln -s "$tree/$name" "$RUN/$name"; done
  echo "$side ($commit): running the workflow on $config in $RUN" >&2
  (cd "$RUN" && PYTHONPATH="$tree/src" PATH="$repo/.venv/bin:$PATH" /usr/bin/time -f "$side wall %e s" \
     "$repo/.venv/bin/snakemake" --configfile "$config" $replace --cores 2 >"$OUT/$side.log" 2>&1)
  tail -n 1 "$OUT/$side.log" >&2
  mv "$RUN/$results_dir" "$OUT/$side"
  git -C "$repo" worktree remove --force "$tree" || { rm -rf "$tree"; git -C "$repo" worktree prune; }
done
"$repo/.venv/bin/python" "$repo/benchmarks/compare_results.py" "$OUT/old" "$OUT/new"

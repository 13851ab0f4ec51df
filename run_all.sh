#!/usr/bin/env bash
# Set up .venv if needed, run the sweep of a profile (default: quick), build its report;
# the last line printed is the path of report.html.
#   ./run_all.sh [PROFILE|CONFIG.yaml] [--plots DIR] [sweep arguments...]
# e.g. ./run_all.sh cpu --seeds 0   or   ./run_all.sh quick --methods retrain,finetune
set -euo pipefail
cd "$(dirname "$0")"
profile=quick
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
  profile="$1"
  shift
fi
if [ -f "$profile" ]; then
  config="$profile"
elif [ -f "configs/$profile.yaml" ]; then
  config="configs/$profile.yaml"
else
  echo "error: unknown profile '$profile'; allowed: $(ls configs | sed 's/\.yaml$//' | tr '\n' ' ')or a path to a YAML config" >&2
  exit 2
fi
source scripts/setup_env.sh
out=""
plots=()
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --plots) plots=(--plots "${2:?--plots needs a folder}"); shift 2; continue ;;
    --plots=*) plots=(--plots "${1#--plots=}"); shift; continue ;;
    --out) out="${2:-}" ;;
    --out=*) out="${1#--out=}" ;;
  esac
  args+=("$1")
  shift
done
if [ -z "$out" ]; then
  sweep="$(.venv/bin/python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["sweep"])' "$config" 2>/dev/null || true)"
  out="results/${sweep:-$profile}"
  args+=(--out "$out")
fi
# Ray, where installed (the dev extra), runs the cells as parallel tasks of resources.cpus
# cores each (the quick profile: one); results are the same as the local backend's.
backend=()
if [[ " ${args[*]-} " != *" --backend"* ]] && .venv/bin/python -c "import ray" 2>/dev/null; then
  backend=(--backend ray)
  echo "sweep backend: ray (--backend local runs the cells in this process)" >&2
fi
start=$SECONDS
.venv/bin/python -m bench.sweep --config "$config" "${backend[@]}" "${args[@]}"
.venv/bin/python -m bench.report --results "$out" "${plots[@]}"
echo "done in $((SECONDS - start)) s; results: $out/results.csv, run records: $out/runs/, tables: $out/tables/"
echo "$out/report.html"

#!/usr/bin/env bash
# Creates .venv when missing and installs the project with its dev extra; installs again
# when pyproject.toml changed since the last install. Sourced by run_all.sh and run_tests.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.unlearn-bench-installed"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "setting up $venv (first run: installs PyTorch, a few minutes)" >&2
  "${PYTHON:-python3}" -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # --no-compile: byte-compiling every installed module (PyTorch's thousands) is a third of a
  # fresh install (147 s against 97 s here); Python compiles the few it imports, once (below).
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile -e "$root[dev]" >&2
  echo "$want" > "$stamp"
fi
# The venv's own bytecode cache: with PYTHONDONTWRITEBYTECODE set (as on this project's
# machines) every process would compile PyTorch's modules again (imports 13 s instead of 6).
unset PYTHONDONTWRITEBYTECODE

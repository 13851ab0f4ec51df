#!/usr/bin/env bash
# Installs the system tools some tests drive for real, when missing: Debian's chromium (the
# report page is opened in headless Chromium) and pdflatex with booktabs (the LaTeX tables
# are compiled). About a minute the first time, nothing afterwards. Needs root and apt.
#   bash scripts/setup_system.sh
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if ! command -v pdflatex >/dev/null 2>&1 || ! kpsewhich booktabs.sty >/dev/null 2>&1; then
  missing+=(texlive-latex-base texlive-latex-recommended)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: ${missing[*]} missing and this is not a root shell with apt-get; install them by hand" >&2
  exit 2
fi
echo "installing ${missing[*]} (the report's browser and LaTeX tests use them)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1 \
  || { apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }

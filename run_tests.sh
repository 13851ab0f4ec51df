#!/usr/bin/env bash
# Set up .venv if needed, then run the test suite. Extra arguments go to pytest,
# e.g. ./run_tests.sh -m "not slow" to skip the tests that train on real datasets.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup_env.sh
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
# pytest's exit 5 means no test was collected: that is a failure here, not a pass.
exit $status

#!/bin/sh
# Everything CI checks, on a fresh or set-up Debian 12 machine, as root:
#
#   sh scripts/test.sh
#
# Sets the machine up (scripts/setup.sh), then runs ruff, mypy and the test suite twice: against
# the Cython engine and against its pure-Python twin (KTRACE_PUREPYTHON=1).  Every step runs even
# when an earlier one fails; the exit code is non-zero if any failed.
set -u

cd "$(dirname "$0")/.."
sh scripts/setup.sh || { echo "test: setup failed" >&2; exit 1; }

failed=""
step() {
    name=$1
    shift
    printf '\n== %s\n' "$name"
    "$@" || failed="$failed
  $name"
}

step "ruff check" .venv/bin/ruff check .
step "mypy" .venv/bin/mypy tracer chisels
step "pytest (cython engine)" env -u KTRACE_PUREPYTHON .venv/bin/pytest -q tests
step "pytest (pure-Python engine)" env KTRACE_PUREPYTHON=1 .venv/bin/pytest -q tests

if [ -n "$failed" ]; then
    printf '\ntest: FAILED:%s\n' "$failed" >&2
    exit 1
fi
printf '\ntest: all passed\n'

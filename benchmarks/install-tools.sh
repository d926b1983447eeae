#!/bin/sh
# Install the load generator of the HTTP benchmark (wrk, from Debian/Ubuntu) when it is missing.
# Run by `python -m benchmarks http` on first use; without apt-get or root rights it exits 1
# and the benchmark falls back to its Python load generator (benchmarks/loadgen.py).
set -eu

if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-tools: apt-get not found; install wrk yourself or use the Python load generator" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "install-tools: need root (or password-less sudo) to run apt-get install wrk" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y --no-install-recommends wrk >/dev/null; then
    # The package lists may be missing (fresh container): refresh them once and retry.
    $SUDO apt-get update -qq
    $SUDO apt-get install -y --no-install-recommends wrk >/dev/null
fi
command -v wrk >/dev/null 2>&1

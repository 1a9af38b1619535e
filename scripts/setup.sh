#!/usr/bin/env bash
# Installs what the build and the tests need beyond Node and npm, where it is missing:
#   scripts/setup.sh build   emcc (emscripten) for build.sh
#   scripts/setup.sh test    also the native sqlite3 CLI, Chromium, Firefox ESR, and the pinned runtimes
#                            of the test matrix (test/runtimes: Node 20/22/24/26, Bun)
# As root with apt-get it installs Debian's packages itself; otherwise it names the one command
# to run and fails. Does nothing when everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-build}

need=()
command -v emcc >/dev/null || need+=(emscripten)
if [[ $what == test ]]; then
  command -v sqlite3 >/dev/null || need+=(sqlite3)
  command -v chromium >/dev/null || need+=(chromium)
  command -v firefox-esr >/dev/null || need+=(firefox-esr)
fi
if ((${#need[@]})); then
  cmd="apt-get update && apt-get install -y --no-install-recommends ${need[*]}"
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]} (Debian packages)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: missing ${need[*]}. Install them, then run this again:" >&2
    if command -v apt-get >/dev/null; then echo "  sudo sh -c '$cmd'" >&2
    else echo "  (Debian/Ubuntu package names) ${need[*]}; emscripten also from https://emscripten.org" >&2; fi
    exit 1
  fi
fi

if [[ $what == test ]]; then
  if [[ $(uname -sm) == "Linux x86_64" ]]; then
    # npm install honours test/runtimes/package-lock.json and is quick when they are there.
    (cd test/runtimes && npm install --no-audit --no-fund --loglevel=error)
  else
    echo "setup: the pinned runtimes are Linux x86-64 builds; the runtime matrix will be skipped here"
  fi
fi

#!/usr/bin/env bash
# Installs the built library into a temp prefix, then configures, builds and runs
# an outside CMake project against it with find_package(diffuse).
set -euo pipefail
SRC=$1
BUILD=$2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cmake --install "$BUILD" --prefix "$TMP/prefix" >/dev/null
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$SRC/tests/consumer" -B "$TMP/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$TMP/prefix" "${launcher[@]}" >/dev/null
cmake --build "$TMP/build" >/dev/null
"$TMP/build/consumer"

#!/usr/bin/env bash
# The sanitizer build (ASan + UBSan) in its own build directory, and its tests. Any sanitizer
# report fails the test that caused it (see FORKLAB_SANITIZE in CMakeLists.txt).
#   tools/sanitize.sh [CTEST ARGS...]     e.g. tools/sanitize.sh -R probe
set -euo pipefail
cd "$(dirname "$0")/.."
build=${FORKLAB_SAN_BUILD_DIR:-build-san}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFORKLAB_SANITIZE=ON "${launcher[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
# The app tests run under Xvfb (the view tests need no display).
exec ctest --test-dir "$build" --output-on-failure -j2 --timeout 300 "$@"

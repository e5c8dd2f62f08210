#!/usr/bin/env bash
# ForkLab's one entry point on a Debian 12 machine:
#   ./forklab.sh [ARGS...]   install what is missing, build, start forklab with ARGS (no ARGS: the app)
#   ./forklab.sh test        install what is missing, build, run every test
# It asks for root (sudo) only when a package is missing.
set -euo pipefail
cd "$(dirname "$0")"

packages=(
  cmake g++ make pkg-config              # the build
  libglfw3-dev libimgui-dev libstb-dev    # window, UI, PNG screenshots
  python3-glad                            # generates the OpenGL loader at build time
  nlohmann-json3-dev libcli11-dev libmd4c-dev libmd4c-html0 doctest-dev
  libseccomp-dev                          # syscall names for this architecture (the probe)
  libdw-dev                               # a traced program's source file:line at each syscall (unwind + DWARF)
  fonts-dejavu-core                       # the scalable TTF font the app draws with
  xvfb xauth imagemagick                  # headless app tests and screenshots
  libx11-dev                              # tests/xdnd_drop: drops a trace on the app's window
  lsof procps strace iproute2             # tests and benchmarks compare with them (ss too)
  netcat-openbsd                          # nc: the outside client the prefork lesson suggests
  redis-server                            # optional: the shared-fd lesson's real-Redis variant
  libedit-dev                             # line editing and history in `forklab sandbox` (BSD licence)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "forklab.sh: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
      # No sudo (a plain Debian install): say what to run as root instead of failing on it.
      echo "forklab.sh: packages are missing and sudo is not installed. As root, run:" >&2
      echo "  su -c \"apt-get update && apt-get install -y --no-install-recommends ${missing[*]}\"" >&2
      echo "then run ./forklab.sh${*:+ $*} again." >&2
      exit 1
    fi
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# A package install may have started redis-server as a service: lessons start their own.

# Optional, for `test` only: clang and its libFuzzer runtime run the fuzz smoke tests (tests/fuzz).
# Without them those tests are not registered; the rest of the suite is the same.
optional=(clang-14 libclang-rt-14-dev)
opt_missing=()
for p in "${optional[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || opt_missing+=("$p")
done
if [ "${1:-}" = "test" ] && ((${#opt_missing[@]})); then
  echo "forklab.sh: installing ${opt_missing[*]} (optional: the fuzz tests)" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  { $sudo apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${opt_missing[@]}"; } ||
    echo "forklab.sh: could not install ${opt_missing[*]}: the fuzz tests will be skipped" >&2
fi

build=${FORKLAB_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo ${FORKLAB_CMAKE_ARGS:-} >/dev/null
cmake --build "$build" -j"$(nproc)"

if [ "${1:-}" = "test" ]; then
  cd "$build"
  exec ctest --output-on-failure -j2 --timeout 180
fi
exec "./$build/forklab" "$@"

#!/usr/bin/env bash
# The libFuzzer targets, built with clang apart from the main build (ctest runs both steps):
#   tests/fuzz/run.sh build DIR                  configure and build every target into DIR
#   tests/fuzz/run.sh run DIR NAME SECONDS [ARG...]
#                       run DIR/fuzz_NAME for SECONDS from its seeds (tests/fuzz/NAME), keeping
#                       what it finds in $FORKLAB_FUZZ_CORPUS if set; ARGs go to libFuzzer
#   tests/fuzz/run.sh selftest DIR
#                       the negative control: DIR/fuzz_selftest on each input in tests/fuzz/selftest
#                       (undefined behaviour, a leak, a hang, 1 GB); every one must fail its run
# Any crash, hang (5 s per input), leak, sanitizer report or 512 MB of memory fails the run and
# leaves the input in DIR/artifacts/NAME/. Exit 77: the target was not built here (skipped).
# Environment: FORKLAB_FUZZ_CXX (clang++), FORKLAB_FUZZ_LAUNCHER (e.g. ccache).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
what=${1:?usage: run.sh build DIR | run DIR NAME SECONDS}
dir=${2:?usage: run.sh build DIR | run DIR NAME SECONDS}

if [ "$what" = build ]; then
    cxx=${FORKLAB_FUZZ_CXX:-clang++}
    args=(-DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Fuzz)
    [ -n "${FORKLAB_FUZZ_LAUNCHER:-}" ] && args+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$FORKLAB_FUZZ_LAUNCHER")
    # ccache reuses objects built with a precompiled header only when told these may differ.
    export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
    cmake -S "$here" -B "$dir" "${args[@]}" >/dev/null
    exec nice -n 10 cmake --build "$dir" -j"$(nproc)"
fi

export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:${ASAN_OPTIONS:-}
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:${UBSAN_OPTIONS:-}
# Targets write their input to a file in TMPDIR (the readers open files): tmpfs when there is one.
tmp=$(mktemp -d /dev/shm/forklab-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# libFuzzer's own error exit code is 77, which ctest would take for "skipped": make it 1.
limits=(-timeout=5 -rss_limit_mb=512 -error_exitcode=1 -timeout_exitcode=1)

if [ "$what" = selftest ]; then
    bad=0
    for input in "$here"/selftest/*; do
        # Each must fail for its own reason: a hang caught as something else tests nothing.
        case $(basename "$input") in
            hang) want='libFuzzer: timeout' ;;
            leak) want='LeakSanitizer' ;;
            memory) want='libFuzzer: out-of-memory' ;;
            undefined) want='UndefinedBehaviorSanitizer' ;;
            *) want='ERROR' ;;
        esac
        if TMPDIR=$tmp "$dir/fuzz_selftest" "${limits[@]}" -artifact_prefix="$tmp/" "$input" \
            >"$tmp/log" 2>&1; then
            echo "FAIL: $(basename "$input") did not fail its run:"; cat "$tmp/log"; bad=1
        elif ! grep -q "$want" "$tmp/log"; then
            echo "FAIL: $(basename "$input") failed, but not with \"$want\":"; cat "$tmp/log"; bad=1
        else
            echo "ok: $(basename "$input") failed its run: $(grep -m1 -E 'SUMMARY|ERROR' "$tmp/log")"
        fi
    done
    exit $bad
fi

name=${3:?usage: run.sh run DIR NAME SECONDS}
secs=${4:?usage: run.sh run DIR NAME SECONDS}
shift 4
bin=$dir/fuzz_$name
if [ ! -x "$bin" ]; then
    echo "fuzz_$name was not built (see the fuzz_build test's output): skipped"
    exit 77
fi
# New inputs go to FORKLAB_FUZZ_CORPUS: by default a scratch directory, so a smoke run always
# starts from the seeds and its length does not grow with what earlier runs found.
corpus=${FORKLAB_FUZZ_CORPUS:-$tmp/corpus}
mkdir -p "$corpus" "$dir/artifacts/$name"
# Niced: the suite's timing tests run beside it on the same cores.
TMPDIR=$tmp nice -n 10 "$bin" -max_total_time="$secs" "${limits[@]}" -max_len=8192 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/$name/" "$@" \
    "$corpus" "$here/$name"

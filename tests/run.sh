#!/usr/bin/env bash
# Runs deckhand's whole test suite: every ctest (unit and integration, as root
# with runc), then the fuzzers for a bounded time. Exits non-zero on any
# failure, and when no test ran at all. A test executable whose subject cannot
# run here (not root, no kubectl, ...) exits 77 and ctest reports it as
# Skipped, not Passed; the summary at the end counts them and lists them in
# build/skipped-tests.txt (one name a line; .ci/run reads it).
#   DECKHAND_TEST_LABEL=unit   only the quick unit tests
#   DECKHAND_FUZZ_SECONDS=N    time per fuzzer (default 20; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."

timings=()
started=$SECONDS
# Records how long the part named $1 took since $started.
lap() {
  timings+=("$(printf '%-20s %5d s' "$1" $((SECONDS - started)))")
  started=$SECONDS
}

if [[ ! -f build/build.ninja ]]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
ninja -C build -j"${DECKHAND_JOBS:-2}"
lap build

label_args=()
if [[ -n "${DECKHAND_TEST_LABEL:-}" ]]; then
  label_args=(-L "$DECKHAND_TEST_LABEL")
fi
ctest_log=build/ctest-output.txt
(cd build && ctest --output-on-failure --no-tests=error --timeout 600 "${label_args[@]}") |
  tee "$ctest_log"
lap ctest
# ctest lists them under "The following tests did not run:" as
# "<tab>  N - NAME (Skipped)".
sed -nE 's/^[[:space:]]*[0-9]+ - ([^ ]+) \(Skipped\)$/\1/p' "$ctest_log" >build/skipped-tests.txt
skipped=$(wc -l <build/skipped-tests.txt)

fuzz_seconds="${DECKHAND_FUZZ_SECONDS:-20}"
if [[ "$fuzz_seconds" != 0 && -z "${DECKHAND_TEST_LABEL:-}" ]]; then
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DDECKHAND_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  targets=(fuzz_messages)
  if grep -q fuzz_layer build-fuzz/build.ninja; then targets+=(fuzz_layer); fi
  ninja -C build-fuzz -j"${DECKHAND_JOBS:-2}" "${targets[@]}"
  lap "fuzz build"
  for t in "${targets[@]}"; do
    corpus=$(mktemp -d)
    seeds="tests/fuzz/corpus/${t#fuzz_}"
    [[ -d "$seeds" ]] && cp -r "$seeds"/. "$corpus"/
    echo "== fuzzing $t for ${fuzz_seconds}s"
    if ! build-fuzz/bin/"$t" -max_total_time="$fuzz_seconds" -rss_limit_mb=2048 \
         -print_final_stats=1 "$corpus" >"build-fuzz/$t.log" 2>&1; then
      tail -50 "build-fuzz/$t.log"
      rm -rf "$corpus"
      echo "fuzzer $t found a problem"
      exit 1
    fi
    grep -E "stat::number_of_executed_units" "build-fuzz/$t.log" || true
    rm -rf "$corpus"
    lap "$t"
  done
fi

echo "== summary"
printf '%s\n' "${timings[@]}"
echo "skipped: $skipped test executable(s)"
sed 's/^/  /' build/skipped-tests.txt
echo "all tests passed ($skipped skipped)"

#!/bin/sh
# Profile where a pod's start time goes: runs bench_pod_start with --trace-dir
# under a system-wide `perf record` of scheduler and fsync tracepoints (cheap:
# no sampling, no ptrace), then lines everything up per pod with
# pod_start_profile.py. Needs root and perf (Debian: linux-perf).
#
#   tests/bench/profile_pod_start.sh OUTDIR [bench_pod_start flags...]
#   e.g. tests/bench/profile_pod_start.sh /tmp/prof --pods 50 --bin-dir build/bin
set -eu
out=$1
shift
here=$(dirname "$0")
bench=${BENCH_POD_START:-$(dirname "$here")/../build/bin/bench_pod_start}
[ -x "$bench" ] || { echo "set BENCH_POD_START to the bench_pod_start executable" >&2; exit 2; }
mkdir -p "$out"
python3 -c 'import time; print(time.time() - time.clock_gettime(time.CLOCK_MONOTONIC))' \
  > "$out/mono_to_wall"
perf record -k mono -o "$out/perf.data" \
  -e sched:sched_process_exec -e sched:sched_process_exit -e sched:sched_process_fork \
  -e syscalls:sys_enter_fsync -e syscalls:sys_exit_fsync \
  -e syscalls:sys_enter_fdatasync -e syscalls:sys_exit_fdatasync \
  -a > "$out/perf.log" 2>&1 &
perf_pid=$!
trap 'kill -INT $perf_pid 2>/dev/null || true' EXIT INT TERM
sleep 0.5
rc=0
"$bench" --trace-dir "$out" "$@" > "$out/bench.out" 2> "$out/bench.err" || rc=$?
kill -INT $perf_pid
wait $perf_pid || true
trap - EXIT INT TERM
perf script -i "$out/perf.data" -F comm,pid,tid,time,event,trace > "$out/perf.txt" 2>/dev/null
cat "$out/bench.out"
echo
python3 "$here/pod_start_profile.py" "$out"
exit $rc

#!/usr/bin/env python3
"""Where a pod's start time goes: lines up, per pod, the timestamps of

  - bench_pod_start --trace-dir DIR  (timeline.csv: wall-clock ms of the POST,
    its 201, the watch events; up.log: the components' logs; NAME.supervisor.log),
  - perf sched tracepoints (perf.txt: `perf script -F comm,pid,tid,time,event,trace`
    of sched_process_fork/exec/exit recorded with `-k mono`, and mono_to_wall:
    CLOCK_REALTIME - CLOCK_MONOTONIC in seconds),

and prints the p50 / p90 / mean of each stage. Run by profile_pod_start.sh.
"""

import csv
import datetime
import re
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def log_ms(stamp):
    # 2026-11-28T00:03:44.681, UTC
    dt = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%f")
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000.0


def pct(v, p):
    v = sorted(v)
    if not v:
        return float("nan")
    k = max(1, min(len(v), int(-(-p * len(v) // 1))))
    return v[k - 1]


def main(d):
    d = Path(d)
    offset_ms = float((d / "mono_to_wall").read_text()) * 1000.0
    pods = {}
    with open(d / "timeline.csv") as f:
        for row in csv.DictReader(f):
            if row["running"]:
                pods[row["uid"]] = {k: (float(v) if v and k not in ("name", "uid") else v)
                                    for k, v in row.items()}

    # Component logs.
    line_re = re.compile(r"^(\S+) \w (\w[\w-]*)\[(\d+)\] (.*)$")
    comp_pid = {}
    for line in (d / "up.log").read_text(errors="replace").splitlines():
        m = line_re.match(line)
        if not m:
            continue
        t, comp, cpid, rest = m.groups()
        comp_pid.setdefault(comp, int(cpid))
        u = re.search(r"uid=([0-9a-f-]{36})", rest)
        if not u or u.group(1) not in pods:
            continue
        p = pods[u.group(1)]
        if comp == "kubelet" and 'msg="starting pod"' in rest:
            p["k_starting"] = log_ms(t)
        elif comp == "runtime" and 'msg="sandbox created"' in rest:
            p["r_sandbox"] = log_ms(t)
        elif comp == "runtime" and 'msg="pod started"' in rest:
            p["r_started"] = log_ms(t)
            p["sup_pid"] = int(re.search(r"supervisor_pid=(\d+)", rest).group(1))
    for p in pods.values():
        f = d / (p["name"] + ".supervisor.log")
        if not f.exists():
            continue
        for line in f.read_text(errors="replace").splitlines():
            m = line_re.match(line)
            if not m:
                continue
            if 'msg="supervising"' in line and "s_supervising" not in p:
                p["s_supervising"] = log_ms(m.group(1))
            elif 'msg="started"' in line and "s_started" not in p:
                p["s_started"] = log_ms(m.group(1))

    # perf sched events.
    ev_re = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):\s+\w+:(\w+):\s*(.*)$")
    parent = {}
    sync_open = {}  # tid -> enter time
    syncs = defaultdict(list)  # tgid -> [(start, end)] of fsync/fdatasync
    execs = defaultdict(list)  # pid -> [(t, filename)]
    exits = defaultdict(float)  # tgid -> last thread exit time
    for line in (d / "perf.txt").read_text(errors="replace").splitlines():
        m = ev_re.match(line)
        if not m:
            continue
        _, pid, tid, t, ev, rest = m.groups()
        pid, tid, t = int(pid), int(tid), float(t) * 1000.0 + offset_ms
        if ev == "sched_process_fork":
            c = int(re.search(r"child_pid=(\d+)", rest).group(1))
            parent[c] = pid
        elif ev == "sched_process_exec":
            fn = re.search(r"filename=(\S+)", rest).group(1)
            execs[pid].append((t, fn))
        elif ev == "sched_process_exit":
            exits[pid] = max(exits[pid], t)
        elif ev in ("sys_enter_fsync", "sys_enter_fdatasync"):
            sync_open[tid] = t
        elif ev in ("sys_exit_fsync", "sys_exit_fdatasync") and tid in sync_open:
            syncs[pid].append((sync_open.pop(tid), t))
    children = defaultdict(list)
    for c, par in parent.items():
        if c != par:
            children[par].append(c)

    def descendants(p):
        out, pending = [], [p]
        while pending:
            x = pending.pop()
            for c in children.get(x, []):
                out.append(c)
                pending.append(c)
        return out

    for p in pods.values():
        s = p.get("sup_pid")
        if not s:
            continue
        for t, fn in execs.get(s, []):
            if fn.endswith("deckhand-pod-supervisor"):
                p["s_exec"] = t
        runcs = sorted((execs[c][0][0], c) for c in children.get(s, [])
                       if execs.get(c) and execs[c][0][1].endswith("runc"))
        started = p.get("s_started", p.get("running", float("inf")))
        p["runc_calls"] = sum(1 for t, _ in runcs if t < started)
        for i, (t, c) in enumerate(runcs):
            p[f"runc{i}_exec"] = t
            p[f"runc{i}_exit"] = exits.get(c, float("nan"))
            for dsc in descendants(c):
                for t2, fn in execs.get(dsc, []):
                    if fn in ("/bin/sh", "/usr/bin/sh"):
                        p[f"runc{i}_container_exec"] = t2

    def fsync_ms(tgid, a, b):
        return sum(min(e, b) - max(s_, a) for s_, e in syncs.get(tgid, [])
                   if e > a and s_ < b)

    def fsync_n(tgid, a, b):
        return sum(1 for s_, e in syncs.get(tgid, []) if e > a and s_ < b)

    for p in pods.values():
        if "k_starting" in p and "r_started" in p and "runtime" in comp_pid:
            p["fs_runtime"] = fsync_ms(comp_pid["runtime"], p["k_starting"] - 1, p["r_started"] + 1)
            p["fs_runtime_n"] = fsync_n(comp_pid["runtime"], p["k_starting"] - 1, p["r_started"] + 1)
        if "s_exec" in p and "runc2_exec" in p:
            p["fs_sup"] = fsync_ms(p["sup_pid"], p["s_exec"], p["runc2_exec"])
            p["fs_sup_n"] = fsync_n(p["sup_pid"], p["s_exec"], p["runc2_exec"])
        if "runc2_exit" in p and "apiserver" in comp_pid:
            p["fs_api"] = fsync_ms(comp_pid["apiserver"], p["runc2_exit"], p["running"])
            p["fs_api_n"] = fsync_n(comp_pid["apiserver"], p["runc2_exit"], p["running"])

    names = {0: "runc state", 1: "runc delete --force", 2: "runc run --detach"}
    stages = [
        ("POST until 201 (apiserver: validate, WAL fsync)", "post", "acked"),
        ("201 until bound (scheduler)", "acked", "bound"),
        ("bound until kubelet 'starting pod'", "bound", "k_starting"),
        ("kubelet until runtime 'sandbox created'", "k_starting", "r_sandbox"),
        ("sandbox created until supervisor exec", "r_sandbox", "s_exec"),
        ("supervisor exec until 'supervising' (process start)", "s_exec", "s_supervising"),
        ("'supervising' until 1st runc exec", "s_supervising", "runc0_exec"),
    ]
    for i in range(3):
        stages.append((f"{names[i]}: exec until exit", f"runc{i}_exec", f"runc{i}_exit"))
        if i < 2:
            stages.append((f"  gap until next runc exec", f"runc{i}_exit", f"runc{i+1}_exec"))
    stages += [
        ("  runc run: exec until container's sh exec", "runc2_exec", "runc2_container_exec"),
        ("runc run exit until 'started' log", "runc2_exit", "s_started"),
        ("runc run exit until watch sees Running", "runc2_exit", "running"),
        ("(kubelet side) runtime 'pod started' until 1st status", "r_started", "first_status"),
        ("END TO END: POST until watch sees Running", "post", "running"),
    ]
    calls = [p.get("runc_calls", 0) for p in pods.values()]
    print(f"pods {len(pods)}; runc invocations before the container started: "
          f"{min(calls) if calls else 0}..{max(calls) if calls else 0}")
    print(f"{'stage (ms)':<56} {'n':>4} {'p50':>8} {'p90':>8} {'mean':>8}")
    for label, a, b in stages:
        v = [p[b] - p[a] for p in pods.values()
             if isinstance(p.get(a), float) and isinstance(p.get(b), float)
             and p[b] == p[b] and p[a] == p[a]]
        if not v:
            print(f"{label:<56} {0:>4}")
            continue
        print(f"{label:<56} {len(v):>4} {pct(v, .5):8.1f} {pct(v, .9):8.1f} "
              f"{statistics.mean(v):8.1f}")
    print()
    print(f"{'fsync/fdatasync on the path (time inside the calls)':<56} {'n':>4} {'p50':>8} "
          f"{'p90':>8} {'mean':>8} {'calls':>6}")
    for label, key in (("runtime, 'starting pod' .. 'pod started'", "fs_runtime"),
                       ("supervisor, exec .. runc run exec", "fs_sup"),
                       ("apiserver, runc run exit .. watch Running", "fs_api")):
        v = [p[key] for p in pods.values() if key in p]
        n = [p[key + "_n"] for p in pods.values() if key in p]
        if v:
            print(f"{label:<56} {len(v):>4} {pct(v, .5):8.1f} {pct(v, .9):8.1f} "
                  f"{statistics.mean(v):8.1f} {statistics.mean(n):6.1f}")
    print("(log timestamps have 1 ms resolution; perf and watch times are sub-ms)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")

#pragma once

/// Pod and container cgroups: where they live, what they report, and how a
/// pod's are removed. deckhand uses runc's cgroupfs driver: a container's
/// linux.cgroupsPath is the same relative path under every v1 hierarchy and
/// under the unified (v2) one.

#include <cstdint>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/oci/bundle.hpp"

namespace deckhand::oci {

/// linux.cgroupsPath of a pod's container and of the pod itself (same on v1
/// and v2): "/deckhand/pod<uid>" and "/deckhand/pod<uid>/<container>".
std::string pod_cgroup_path(const std::string& pod_uid);
std::string container_cgroup_path(const std::string& pod_uid, const std::string& container);

/// How cgroups are mounted on this host: v1 only, v1 plus a unified hierarchy
/// at /sys/fs/cgroup/unified (hybrid; runc uses the v1 controllers), or pure v2.
enum class cgroup_mode { v1, hybrid, v2 };
cgroup_mode detect_cgroup_mode();

/// OOM kills recorded for the cgroup (v1 memory.oom_control "oom_kill", v2
/// memory.events "oom_kill"); 0 if unknown (no such cgroup, old kernel).
uint64_t cgroup_oom_kills(const std::string& cgroup_path);

/// A cgroup's usage, as the kubelet's summary API reports it. Working set is
/// usage minus inactive_file (never below 0), as cAdvisor computes it.
/// memory_limit_bytes is 0 when unlimited.
struct cgroup_stats {
  uint64_t cpu_usage_ns = 0, memory_usage_bytes = 0, memory_working_set_bytes = 0,
           memory_limit_bytes = 0, pids = 0;
};

/// Reads `cgroup_path` (a linux.cgroupsPath) from the v2 hierarchy on a pure
/// v2 host, else from the v1 memory, cpuacct and pids hierarchies.
/// `errc::not_found` when the cgroup does not exist.
result<cgroup_stats> read_cgroup_stats(const std::string& cgroup_path);

/// One control file write: `value` into `file` of the `controller`'s cgroup.
struct cgroup_file_value {
  std::string controller;  ///< "memory", "cpu", "pids"
  std::string file;        ///< "memory.max", "cpu.cfs_quota_us", ...
  std::string value;
  bool operator==(const cgroup_file_value&) const = default;
};

/// The control files that carry `limits` in `mode` (hybrid is v1 for
/// controllers), in the order they must be written: v1 memory.limit_in_bytes,
/// cpu.shares, cpu.cfs_period_us + cpu.cfs_quota_us, pids.max; v2 memory.max,
/// cpu.weight (converted from shares as runc does: 1 + (shares-2)*9999/262142),
/// cpu.max "QUOTA PERIOD", pids.max.
std::vector<cgroup_file_value> cgroup_limit_files(const resource_limits& limits, cgroup_mode mode);

/// Creates the pod's cgroup in the hierarchies that carry `limits` (memory,
/// cpu, pids) and writes them: Kubernetes' pod-level limits, which bound the
/// sum of the containers below it. Unset fields are left unlimited; an all-
/// unset `limits` is a no-op. Idempotent.
error apply_pod_cgroup_limits(const std::string& pod_uid, const resource_limits& limits);

/// Removes the pod's cgroup directories (every v1 hierarchy and/or the
/// unified one), children first; idempotent (a missing cgroup is success).
/// Processes still in them are SIGKILLed first (a `runc init` orphaned by
/// an interrupted `runc run`); fails if a cgroup stays busy for 2 s.
error remove_pod_cgroups(const std::string& pod_uid);

}  // namespace deckhand::oci

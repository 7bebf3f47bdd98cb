#pragma once

/// The kubelet's eviction manager (Kubernetes' node-pressure eviction, hard
/// thresholds only).
///
/// Every `monitoring_period` (the first time one period after start, once
/// the pods have been admitted) it observes the node's signals:
///   memory.available   MemTotal minus the working set (usage minus inactive
///                      file pages) of the root memory cgroup (v1), or the
///                      same computed from /proc/meminfo (v2);
///   nodefs.available   statvfs(data dir): f_bavail * f_frsize of f_blocks;
///   nodefs.inodesFree  statvfs: f_favail of f_files;
///   pid.available      kernel.pid_max minus the processes running;
///   imagefs.*          the same filesystem as nodefs here.
/// A signal below its threshold sets the matching node condition
/// (MemoryPressure, DiskPressure, PIDPressure) until it has stayed above for
/// `pressure_transition_period`, and evicts one pod per period in
/// Kubernetes' order: for memory, pods without stats, then pods using more
/// than they request, then by priority (all 0 here), then by usage above
/// request; remaining ties go BestEffort, Burstable, Guaranteed. The pod
/// gets phase Failed, reason Evicted and Kubernetes' message ("The node was
/// low on resource: memory. Threshold quantity: 100Mi, available: 50Mi. "),
/// and a Warning event `Evicted`.
///
/// The actor asks (CAF request) `pod_source` with `(pods_atom)` for the
/// active pods (a std::vector<wire::pod>), the runtime for container stats
/// (`runtime_client::container_stats`), and sends
///   (pressure_atom, std::vector<std::string>)  to each pressure listener
///                                              when the conditions change;
///   (evict_atom, std::string uid, std::string message)  to `evict_target`;
///   (record_atom, wire::event)                 to `recorder` (if set).

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include "deckhand/kubelet/node_status.hpp"
#include "deckhand/kubelet/runtime_client.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/model.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet {

/// Request for the active pods: replied with std::vector<wire::pod>.
using pods_atom = caf::atom_constant<caf::atom("dh_pods")>;
/// (evict_atom, uid, message) to the sync loop; (evict_atom, reason,
/// message) from the sync loop to the pod's worker.
using evict_atom = caf::atom_constant<caf::atom("dh_evict")>;

/// The node's eviction signals; -1 where unknown.
struct node_stats {
  int64_t memory_available = -1;
  int64_t memory_capacity = -1;
  int64_t nodefs_available = -1;
  int64_t nodefs_capacity = -1;
  int64_t nodefs_inodes_free = -1;
  int64_t nodefs_inodes = -1;
  int64_t pid_available = -1;
  int64_t pid_capacity = -1;
};

/// memory.available and capacity from /proc/meminfo's text (Kubernetes'
/// working-set formula: MemTotal - (MemTotal - MemFree - Inactive(file))).
/// Returns false if MemTotal is missing.
bool memory_from_meminfo(const std::string& meminfo, node_stats& out);

/// Reads every signal (root memory cgroup or /proc/meminfo, statvfs of
/// `data_dir`, pid_max).
node_stats read_node_stats(const std::filesystem::path& data_dir);

/// Usage of one pod: the sum of its containers' working sets, and each
/// container's.
struct pod_usage {
  int64_t memory_working_set = 0;
  std::map<std::string, int64_t> containers;
};
using pod_usages = std::map<std::string, pod_usage>;  ///< by pod uid

pod_usages usage_from_stats(const std::vector<wire::container_stats>& stats);

/// A threshold that is met now.
struct threshold_met {
  eviction_threshold threshold;
  int64_t quantity = 0;  ///< the threshold in the signal's unit
  int64_t available = 0;
  std::string resource;   ///< memory, ephemeral-storage, inodes, pids
  std::string condition;  ///< MemoryPressure, DiskPressure, PIDPressure
};

/// The thresholds `stats` crosses (signal < threshold), in configuration order.
std::vector<threshold_met> thresholds_met(const std::vector<eviction_threshold>& hard,
                                          const node_stats& stats);

/// `pods` in the order they are evicted for `resource` (see above).
std::vector<const wire::pod*> rank_for_eviction(const std::string& resource,
                                                std::vector<const wire::pod*> pods,
                                                const pod_usages& usage);

/// Kubernetes' eviction message for `pod`: "The node was low on resource:
/// memory. Threshold quantity: 100Mi, available: 50Mi. " plus, for memory,
/// "Container app was using 80Mi, request is 0, has larger consumption of
/// memory. " for each container using more than it requests.
std::string eviction_message(const threshold_met& met, const wire::pod& pod,
                             const pod_usages& usage);

/// What an evicted pod's status says from then on: phase Failed, reason
/// Evicted, the message, and the DisruptionTarget condition
/// (TerminationByKubelet).
void mark_evicted(wire::pod_status& status, const std::string& message, const std::string& now);

struct eviction_config {
  std::vector<eviction_threshold> hard = default_eviction_thresholds();
  std::chrono::milliseconds monitoring_period{10000};
  /// How long a pressure condition stays True after its signal recovered
  /// (--eviction-pressure-transition-period, 5 min in Kubernetes).
  std::chrono::milliseconds pressure_transition_period{std::chrono::minutes(5)};
  std::chrono::milliseconds request_deadline{5000};
};

/// What the eviction manager reads and whom it tells.
struct eviction_deps {
  /// The node's signals; runs on the actor's thread (a few small file reads).
  std::function<node_stats()> read_stats;
  /// The runtime, for container stats; unset: no per-pod usage (ranking
  /// then treats every pod as without stats).
  std::shared_ptr<runtime_client> runtime;
  caf::actor pod_source;
  caf::actor evict_target;
  caf::actor recorder;
  std::vector<caf::actor> pressure_listeners;
};

caf::actor spawn_eviction_manager(caf::actor_system& sys, eviction_deps deps, eviction_config cfg);

}  // namespace deckhand::kubelet

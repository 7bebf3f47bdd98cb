#pragma once

/// The kubelet's Node: registration, node status and the node Lease.
///
/// Kubernetes' split (KEP-589), which the node status actor follows:
///   - the Node object (capacity, allocatable, addresses, nodeInfo and the
///     conditions Ready / MemoryPressure / DiskPressure / PIDPressure) is
///     computed every `node_status_period` and sent (`node_heartbeat`) when
///     it changed, and at least every `status_report_frequency`;
///   - the Lease (coordination.k8s.io/v1, kube-node-lease/NODE) is renewed
///     every `lease_renew_period` (`lease_renew`): the cheap liveness signal.
///     An API server that does not serve lease_renew (an old one) makes the
///     actor fall back to sending node status every period, as before.
///
/// Allocatable is capacity minus kube-reserved, system-reserved and the hard
/// eviction thresholds of memory.available and nodefs.available, as
/// Kubernetes' node allocatable computes it.
///
/// Messages the node status actor accepts (besides its own timers):
///   (pressure_atom, std::vector<std::string>)  the pressure conditions now
///                                              True (from the eviction manager)
///   rpc_reply                                  replies to its own requests

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/atom.hpp>

#include "deckhand/common/result.hpp"
#include "deckhand/kubelet/api_client.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/model.hpp"

namespace deckhand::kubelet {

/// The pressure conditions that are True, e.g. {"MemoryPressure"}.
using pressure_atom = caf::atom_constant<caf::atom("dh_press")>;

/// Resource amounts in Kubernetes' base units: CPU in millicores, memory and
/// ephemeral storage in bytes, pods as a count.
struct resource_amounts {
  int64_t cpu_milli = 0;
  int64_t memory = 0;
  int64_t ephemeral_storage = 0;
  int64_t pods = 0;
};

/// One hard eviction threshold: `signal < quantity` or `signal < percentage`
/// of the signal's capacity ("memory.available<100Mi", "nodefs.available<10%").
struct eviction_threshold {
  std::string signal;     ///< memory.available, nodefs.available, ...
  int64_t quantity = 0;   ///< bytes; used when percentage is 0
  double percentage = 0;  ///< 0 < p <= 1 when given as a percentage
  std::string text;       ///< the value as configured: "100Mi", "10%"

  /// The threshold in bytes for a signal whose capacity is `capacity`.
  int64_t value_for(int64_t capacity) const;
};

/// Parses Kubernetes' --eviction-hard syntax: comma separated
/// `signal<quantity` or `signal<N%`. Signals: memory.available,
/// nodefs.available, nodefs.inodesFree, imagefs.available, pid.available.
/// An empty text gives no thresholds.
result<std::vector<eviction_threshold>> parse_eviction_thresholds(const std::string& text);

/// Kubernetes' default hard thresholds (Linux): memory.available<100Mi,
/// nodefs.available<10% (imagefs is the same filesystem here).
std::vector<eviction_threshold> default_eviction_thresholds();

/// Parses a reservation ("cpu=200m,memory=512Mi,ephemeral-storage=1Gi").
result<resource_amounts> parse_reserved(const std::string& text);

struct node_status_config {
  /// The pods capacity (--max-pods).
  int32_t max_pods = 110;
  resource_amounts kube_reserved;
  resource_amounts system_reserved;
  /// Subtracted from allocatable (memory.available, nodefs.available).
  std::vector<eviction_threshold> eviction_hard = default_eviction_thresholds();
  /// Node status is sent at least this often even when unchanged
  /// (nodeStatusReportFrequency).
  std::chrono::milliseconds status_report_frequency{std::chrono::minutes(5)};
  /// Lease renewal (nodeLeaseDurationSeconds / 4 in Kubernetes: 10 s).
  std::chrono::milliseconds lease_renew_period{10000};
  int32_t lease_duration_seconds = 40;
  /// For tests: the machine's capacity (cpu, memory, ephemeral-storage)
  /// instead of what sysinfo/statvfs say. `pods` is always max_pods.
  std::optional<resource_amounts> capacity_override;
  /// For tests: wall clock for heartbeat/transition times; system_clock if unset.
  std::function<std::chrono::system_clock::time_point()> wall_clock;
};

/// The machine's capacity: CPUs online, MemTotal, and the size of the
/// filesystem holding `data_dir`; pods = max_pods.
resource_amounts node_capacity(const node_status_config& cfg,
                               const std::filesystem::path& data_dir);

/// Capacity minus reservations and hard eviction thresholds (never below 0).
resource_amounts node_allocatable(const node_status_config& cfg, const resource_amounts& capacity);

/// Kubernetes' quantity text: "2" / "1500m" for CPU, "16318480Ki" for bytes
/// that are a whole number of KiB, else plain bytes.
std::string format_cpu(int64_t milli);
std::string format_bytes(int64_t bytes);
/// Quantity.String() of a BinarySI quantity: the largest of Ki..Ei that
/// divides the value exactly ("100Mi", "51200Ki", "1000Ti"), else the number.
std::string format_binary_si(int64_t bytes);

/// What the node status reports besides the machine's resources.
struct node_identity {
  std::string node_name;
  std::string host_ip;
};

/// The Node object without conditions: metadata, capacity, allocatable,
/// addresses (InternalIP, Hostname), nodeInfo.
wire::node make_node(const node_identity& id, const resource_amounts& capacity,
                     const resource_amounts& allocatable);

/// Sets the four conditions (MemoryPressure, DiskPressure, PIDPressure,
/// Ready, in Kubernetes' order) with Kubernetes' reasons and messages.
/// lastTransitionTime comes from `previous` when the status did not change;
/// lastHeartbeatTime is `now`.
void set_node_conditions(wire::node_status& status,
                         const std::vector<wire::node_condition>& previous,
                         const std::vector<std::string>& pressure, const std::string& now);

/// Whether two statuses differ in anything but heartbeat times (Kubernetes
/// sends node status only then, or when the report frequency is due).
bool node_status_changed(const wire::node_status& a, const wire::node_status& b);

/// RFC 3339 UTC to the second.
std::string format_time(std::chrono::system_clock::time_point t);

/// How the node status actor reaches the API server.
struct node_status_sink {
  std::shared_ptr<api_client> api;
  std::chrono::milliseconds request_deadline{5000};
};

/// Spawns the node status actor (registration, status, lease). It sends its
/// first heartbeat and lease renewal at once.
caf::actor spawn_node_status(caf::actor_system& sys, node_status_sink sink, node_identity id,
                             node_status_config cfg, std::filesystem::path data_dir,
                             std::chrono::milliseconds status_period);

}  // namespace deckhand::kubelet

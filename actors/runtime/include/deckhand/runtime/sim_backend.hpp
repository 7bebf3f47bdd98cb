#pragma once

/// The `sim` back-end: pods without processes, for scale experiments with
/// thousands of pods on one machine.
///
/// A simulated pod answers the same messages as a real one (run, stop,
/// remove, list) and goes through the same state machine: every pod has a
/// supervisor::pod_state, the pure core of the real pod supervisor, so
/// restart policy, back-off, CrashLoopBackOff, stop with grace period and
/// SIGKILL at the deadline behave exactly as with containers. What a
/// container "does" comes from the pod's annotations:
///
///   sim.deckhand.io/run-ms     a container exits this long after it starts
///                              (absent: it runs until stopped)
///   sim.deckhand.io/exit-code  its exit code then (default 0)
///   sim.deckhand.io/term-ms    how long it takes to exit after SIGTERM
///                              (default 0; beyond the grace period it is
///                              SIGKILLed at the deadline)
///
/// State is kept on disk in the ordinary pod directory (pod.json,
/// sandbox.json with state "sim", status.json), so a restarted runtime takes
/// its simulated pods back; a container that was running keeps running.
/// Images must be present in the store, as for real pods. Pod IPs come from
/// the pod CIDR without any interface behind them.

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/image/image_store.hpp"
#include "deckhand/messages/wire.hpp"
#include "deckhand/runtime/options.hpp"
#include "deckhand/runtime/sandbox_backend.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"
#include "deckhand/supervisor/pod_state.hpp"

#include <caf/fwd.hpp>

namespace deckhand::transport {
class bridge;
}

namespace deckhand::runtime {

/// Every simulated pod of a node. Not thread-safe: one actor owns it. Time
/// is passed in, so tests drive it with virtual time.
class sim_node {
 public:
  using time_point = supervisor::time_point;

  /// `images` may be null (no image check). `backoff` is the restart
  /// back-off the real supervisors would use.
  sim_node(runtime_options opts, const image::image_store* images,
           supervisor::backoff_config backoff);
  ~sim_node();

  /// Reloads the simulated pods found in the pods directory.
  void recover(time_point now);

  /// Starts pod `p`; idempotent by uid (an existing pod's status is returned).
  result<wire::sandbox_status> run(const wire::pod& p, time_point now);

  /// Starts stopping pod `uid`. Returns the status right away when there is
  /// nothing to wait for (unknown or already stopped pod); otherwise the
  /// reply comes later from take_finished_stops() with `token`.
  std::optional<wire::sandbox_status> stop(const std::string& uid, int64_t grace_seconds,
                                           uint64_t token, time_point now);

  /// Forgets pod `uid` and removes its directory. Idempotent.
  error remove(const std::string& uid);

  /// Every pod, ordered by uid.
  std::vector<wire::sandbox_status> list() const;
  std::optional<wire::sandbox_status> status(const std::string& uid) const;

  /// Time passed: simulated exits and restarts that are due.
  void tick(time_point now);
  /// When tick() next has something to do.
  std::optional<time_point> next_wakeup() const;

  /// Stops that completed since the last call: (token, final status).
  std::vector<std::pair<uint64_t, wire::sandbox_status>> take_finished_stops();

  std::size_t size() const { return pods_.size(); }

 private:
  struct sim_pod;
  void drain(sim_pod& sp, time_point now);
  std::string allocate_ip(const std::string& uid);

  runtime_options opts_;
  const image::image_store* images_;
  supervisor::backoff_config backoff_;
  std::map<std::string, std::unique_ptr<sim_pod>> pods_;
  std::map<std::string, std::string> ips_;  ///< ip -> uid
  uint32_t next_ip_ = 0;
  std::vector<std::pair<uint64_t, wire::sandbox_status>> finished_;
};

/// The actor that serves run/stop/remove/list requests with a sim_node, on
/// a thread of its own (it writes the pods' small state files). Back-off
/// settings come from the `--backoff-*` flags in `opts.supervisor_args`,
/// exactly what real pod supervisors would be given.
caf::actor spawn_sim_service(caf::actor_system& sys, transport::bridge& bus,
                             const runtime_options& opts,
                             std::shared_ptr<image::image_store> images);

/// The `sim` back-end: one actor, spawn_sim_service(), serves every sandbox
/// and container request (exec and stats are refused: nothing runs) and
/// recovers its pods itself.
class sim_backend final : public sandbox_backend {
 public:
  std::string_view name() const override { return "sim"; }
  void configure(runtime_options&) const override {}
  bool runs_supervisors() const override { return false; }
  std::vector<recovered_pod> recover(const runtime_options&) const override { return {}; }
  backend_actors spawn(caf::actor_system& sys, transport::bridge& bus, const runtime_options& opts,
                       std::shared_ptr<image::image_store> images,
                       caf::actor supervisors) const override;
};

/// The back-off a pod supervisor started with `supervisor_args` would use;
/// invalid flags are `errc::invalid`.
result<supervisor::backoff_config> backoff_from_args(const std::vector<std::string>& args);

}  // namespace deckhand::runtime

#pragma once

/// The pod supervisor's decisions, with no processes and no clock of its own.
///
/// `pod_state` is fed events (a probe answered, a container started or
/// exited, time passed, a stop was requested), each with the current time,
/// and answers with actions for someone else to carry out (run, kill, probe a
/// container, persist status, reply to stop requests). The process wiring
/// (pod_actor) executes the actions on a worker thread and turns what happens
/// into the next events; tests drive it directly with virtual time.
///
/// Lifecycle of a container:
///
///   probing --(running)--> running --(exit)--> backoff --(due)--> launching
///      |                      ^                   |                  |
///      +--(not running)--> launching --(started)--+   policy says no: terminated
///
/// The first restart after a crash skips the back-off state (the Go kubelet
/// restarts at once and only then starts counting; see backoff.hpp); while
/// backing off the container waits with reason CrashLoopBackOff.
///
/// A stop request turns everything into terminated: running containers get
/// SIGTERM, then SIGKILL (all processes) at the deadline; nothing restarts.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "deckhand/messages/wire.hpp"
#include "deckhand/supervisor/backoff.hpp"
#include "deckhand/supervisor/status_file.hpp"
#include "deckhand/supervisor/termination.hpp"

namespace deckhand::supervisor {

namespace action {

/// Where a container instance's output goes: its FIFOs and its CRI log file
/// (`<restartCount>.log`).
struct log_target {
  std::filesystem::path stdout_fifo;
  std::filesystem::path stderr_fifo;
  std::filesystem::path log_file;
  int64_t instance = 0;  ///< the restart count the file is named after
};

/// Ask the OCI runtime whether the container is running (and watch it if so).
/// Either way the output still in its pipes belongs to `log`.
struct probe {
  std::string name;
  std::string runtime_id;
  log_target log;
};

/// Remove any stale container of that id, then `run -d` the bundle with
/// stdout and stderr on the FIFOs, copied into `log.log_file`.
struct launch {
  std::string name;
  std::string runtime_id;
  std::filesystem::path bundle;
  std::filesystem::path log_file;
  log_target log;
};

/// `kill [--all] ID SIGNAL`.
struct kill {
  std::string name;
  std::string runtime_id;
  int signal = 0;
  bool all = false;
};

/// Write status.json (document()) and notify the kubelet.
struct persist {};

/// Durably write the `stopping` marker; comes before any kill of a stop.
struct write_stop_marker {
  stop_marker marker;
};

/// Every container has exited after a stop: answer these stop requests with
/// snapshot().
struct stop_done {
  std::vector<uint64_t> tokens;
};

} // namespace action

using action_t = std::variant<action::probe, action::launch, action::kill, action::persist,
                              action::write_stop_marker, action::stop_done>;

/// Identity and locations of the pod.
struct pod_context {
  wire::pod pod;
  std::filesystem::path data_dir;
  std::filesystem::path pod_dir;
  uint64_t incarnation = 0;
  int64_t supervisor_pid = 0;
  backoff_config backoff;
};

class pod_state {
 public:
  enum class phase { probing, launching, running, backoff, terminated };

  explicit pod_state(pod_context ctx);

  /// First event. `previous` is the status.json of an earlier supervisor of
  /// this pod, `marker` its stopping marker. Probes every container.
  void begin(const std::optional<status_document>& previous,
             const std::optional<stop_marker>& marker, time_point now);

  /// The answer to a probe: whether the OCI runtime has it running.
  void on_probed(const std::string& name, bool running, time_point now);
  void on_started(const std::string& name, time_point now);
  void on_start_failed(const std::string& name, const std::string& message, time_point now);
  void on_exited(const std::string& name, const exit_info& e, time_point now);
  /// Time passed: restarts that are due, the stop deadline.
  void on_tick(time_point now);
  /// A stop request identified by `token`; answered with action::stop_done.
  void on_stop_request(uint64_t token, int64_t grace_period_seconds, time_point now);

  /// When on_tick next has something to do.
  std::optional<time_point> next_wakeup() const;

  /// The actions produced since the last call, in order.
  std::vector<action_t> take_actions();

  wire::sandbox_status snapshot() const;
  status_document document() const;

  bool stopping() const { return stopping_; }
  bool stopped() const;
  phase phase_of(const std::string& name) const;
  const wire::container_status* status_of(const std::string& name) const;

 private:
  struct entry {
    wire::container spec;
    std::string runtime_id;
    wire::container_status status;
    phase ph = phase::probing;
    restart_backoff backoff;
    time_point restart_at{};
    time_point started_at{};
    bool term_sent = false;
  };

  entry* find(const std::string& name);
  std::string container_id(const entry& e) const;
  std::string backoff_message(const entry& e, millis delay) const;
  std::filesystem::path log_file(const entry& e) const;
  action::log_target log_target(const entry& e) const;
  void launch(entry& e, time_point now, bool restart);
  void handle_exit(entry& e, const exit_info& info, time_point now);
  void stop_container(entry& e, time_point now);
  void finish_without_running(entry& e);
  void check_stop_done();
  void persist();

  pod_context ctx_;
  std::vector<entry> entries_;
  std::vector<action_t> actions_;
  bool stopping_ = false;
  time_point stop_deadline_{};
  bool kill_sent_ = false;
  std::vector<uint64_t> stop_tokens_;
};

} // namespace deckhand::supervisor

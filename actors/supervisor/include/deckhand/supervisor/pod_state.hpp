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
///
/// Init containers (spec.initContainers) come first in the same table and
/// gate everything after them: a not-yet-allowed container waits in phase
/// `pending` (reason PodInitializing). Each regular init container runs to
/// exit 0 before the next one starts (a failure is retried per the pod's
/// restartPolicy; under Never the pod winds down and the app containers never
/// start). A sidecar (init container with restartPolicy Always) lets the next
/// one start once it is `started`, and is restarted whatever the pod's policy.
/// Whoever changes a container's `status.started` (startup probes) calls
/// advance() afterwards so the gate moves on.
///
/// Terminating a container (terminate()): the preStop hook first (action::
/// run_hook, or `sleep` in virtual time), then the image's stop signal, then
/// SIGKILL at the deadline; a hook still running at the deadline gets one
/// 2-second extension after the stop signal. A pod stop (or the wind-down
/// once the app containers of a Never/OnFailure pod completed) terminates
/// app containers (and a running regular init container) in parallel, then
/// the sidecars one by one in reverse order, all against one deadline.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "deckhand/messages/wire.hpp"
#include "deckhand/supervisor/backoff.hpp"
#include "deckhand/supervisor/probe.hpp"
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

/// Run a lifecycle hook's exec/httpGet/tcpSocket action against the
/// container, giving up after `timeout`; answered with
/// pod_state::on_hook_done(name, gen, ...).
struct run_hook {
  std::string name;
  std::string runtime_id;
  wire::lifecycle_handler handler;
  millis timeout{0};
  uint64_t gen = 0;  ///< identifies this run; stale answers are ignored
};

/// Durably write the `stopping` marker; comes before any kill of a stop.
struct write_stop_marker {
  stop_marker marker;
};

/// Every container has exited after a stop: answer these stop requests with
/// snapshot().
struct stop_done {
  std::vector<uint64_t> tokens;
};

/// Run one probe of a running container (handlers.hpp) within `timeout`;
/// answered with pod_state::on_probe_result(name, kind, instance, ...).
struct run_probe {
  std::string name;
  std::string runtime_id;
  probe_kind kind = probe_kind::liveness;
  uint64_t instance = 0;  ///< the container instance it was asked for
  handler_action what;
  handler_target target;
  millis timeout{1000};
};

}  // namespace action

using action_t =
    std::variant<action::probe, action::launch, action::kill, action::persist,
                 action::write_stop_marker, action::stop_done, action::run_hook, action::run_probe>;

/// Identity and locations of the pod.
struct pod_context {
  wire::pod pod;
  std::filesystem::path data_dir;
  std::filesystem::path pod_dir;
  uint64_t incarnation = 0;
  int64_t supervisor_pid = 0;
  backoff_config backoff;
  /// The image's stop signal per container (from the bundle's
  /// org.opencontainers.image.stopSignal annotation); absent: SIGTERM.
  std::map<std::string, int> stop_signals;
  /// The pod IP (sandbox.json), the default host of httpGet/tcpSocket probes;
  /// empty: pod.status.podIP, else 127.0.0.1.
  std::string pod_ip;
};

class pod_state {
 public:
  enum class phase { probing, launching, running, backoff, terminated, pending };

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
  /// The answer to action::run_hook `gen`: whether the hook succeeded.
  void on_hook_done(const std::string& name, uint64_t gen, bool ok, const std::string& message,
                    time_point now);
  /// The answer to action::run_probe: counts towards the probe's thresholds
  /// (probe.hpp), updates started/ready, records Unhealthy notes, and kills a
  /// container whose liveness or startup probe gave up (a Killing note, then
  /// terminate() with the probe's or the pod's grace period).
  void on_probe_result(const std::string& name, probe_kind kind, uint64_t instance,
                       const handler_result& r, time_point now);

  /// Moves the pod on: starts what the init-container gate allows, winds the
  /// pod down when it is finished, walks a stop through its stages.
  /// Idempotent; every event handler calls it.
  void advance(time_point now);

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
  /// Where a container is in its termination (terminate()).
  enum class term_step { none, hook, signalled, killed };

  struct entry {
    wire::container spec;
    std::string runtime_id;
    wire::container_status status;
    phase ph = phase::probing;
    common::backoff backoff;
    time_point restart_at{};
    time_point started_at{};
    bool init = false;       ///< from spec.initContainers
    bool sidecar = false;    ///< init container with restartPolicy Always
    bool init_done = false;  ///< init: completed, or (sidecar) started once
    term_step term = term_step::none;
    time_point term_deadline{};  ///< hook: give up; signalled: SIGKILL
    time_point hook_until{};     ///< a `sleep` hook ends
    uint64_t hook_gen = 0;
    bool skip_hook = false;  ///< adopted mid-stop: the hook already ran
    std::vector<wire::supervisor_note> notes;
    container_probes probes;  ///< startup, liveness, readiness
  };

  entry* find(const std::string& name);
  std::string container_id(const entry& e) const;
  std::string backoff_message(const entry& e, millis delay) const;
  std::filesystem::path log_file(const entry& e) const;
  action::log_target log_target(const entry& e) const;
  void launch(entry& e, time_point now, bool restart);
  void handle_exit(entry& e, const exit_info& info, time_point now);
  void finish_without_running(entry& e);
  void check_stop_done();
  void persist();
  bool ending() const { return stopping_ || winding_down_; }
  bool should_wind_down() const;
  void advance_stop(time_point now);
  /// Starts terminating `e` (preStop, stop signal, SIGKILL at `deadline`);
  /// no-op when already under way. Its exit then follows the usual rules
  /// (restart unless the pod is ending), so a liveness kill can use it too.
  void terminate(entry& e, time_point now, time_point deadline);
  void send_stop_signal(entry& e, time_point now, time_point kill_at);
  void note(entry& e, const std::string& type, const std::string& reason,
            const std::string& message, time_point now);
  int stop_signal_of(const entry& e) const;
  /// A new instance of `e` runs (started or adopted): its probes start over
  /// and decide `started`/`ready`; `resumed`: the instance the previous
  /// supervisor recorded, whose started/ready carry over.
  void probes_running(entry& e, time_point now, bool resumed);
  /// Emits action::run_probe for the probes of `e` that are due.
  void run_due_probes(entry& e, time_point now);

  pod_context ctx_;
  std::vector<entry> entries_;
  std::vector<action_t> actions_;
  bool stopping_ = false;
  bool winding_down_ = false;  ///< pod finished (or init failed under Never)
  time_point stop_deadline_{};
  std::vector<uint64_t> stop_tokens_;
};

}  // namespace deckhand::supervisor

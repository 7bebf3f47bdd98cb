#pragma once

/// The probes of one container (startupProbe, livenessProbe, readinessProbe)
/// as a pure state machine with virtual time, with the kubelet prober's
/// semantics (pkg/kubelet/prober/worker.go):
///
///   - each probe runs every periodSeconds, the first time initialDelaySeconds
///     after the container started; at most one run of a probe is in flight;
///   - a result counts only after failureThreshold consecutive failures or
///     successThreshold consecutive successes ("unknown" results, an action
///     that could not be carried out, are thrown away);
///   - startup gates the others: while a startup probe exists and has not
///     succeeded, the container is not `started` and neither liveness nor
///     readiness runs; once it succeeds it is never run again for this
///     instance. Without a startup probe a running container is started;
///   - readiness starts as failure (needs successThreshold successes);
///     without a readiness probe a started container is ready;
///   - liveness starts as success; failureThreshold failures of liveness or
///     startup ask for a kill, after which the probes of this instance are on
///     hold until the next on_running().
///
/// Results carry the instance they were asked for: a result that comes back
/// after the container restarted is dropped.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/messages/model.hpp"
#include "deckhand/supervisor/backoff.hpp"
#include "deckhand/supervisor/handlers.hpp"

namespace deckhand::supervisor {

enum class probe_kind { startup = 0, liveness = 1, readiness = 2 };

/// "Startup", "Liveness", "Readiness" (the kubelet's event wording).
const char* probe_title(probe_kind k);
/// "startup", "liveness", "readiness".
const char* probe_word(probe_kind k);

/// A probe run to start now.
struct probe_request {
  probe_kind kind = probe_kind::liveness;
  uint64_t instance = 0;
  std::chrono::milliseconds timeout{1000};
};

/// What a result changed.
struct probe_verdict {
  bool counted = false;         ///< a current, known result
  bool failed_attempt = false;  ///< a failure (the kubelet's Unhealthy event)
  bool changed = false;         ///< started() or ready() changed
  bool kill = false;            ///< liveness or startup gave up: kill the container
};

class container_probes {
 public:
  container_probes() = default;
  explicit container_probes(const wire::container& spec);

  /// Whether the container has any probe.
  bool any() const;
  const wire::probe* spec(probe_kind k) const;

  /// A new instance runs since `started_at` (a start, or an adoption):
  /// counters reset, results of earlier instances are dropped. `resumed`
  /// carries `started`/`ready` over from a previous supervisor of the same
  /// instance instead of starting from "not started, not ready".
  void on_running(time_point started_at, time_point now, bool resumed = false,
                  bool was_started = false, bool was_ready = false);
  /// The instance is gone (exited, killed): nothing runs until on_running().
  void on_stopped();
  /// No more probes at all (the pod is stopping).
  void halt();

  /// The runs due at `now`, marked in flight.
  std::vector<probe_request> due(time_point now);
  /// A run's result.
  probe_verdict on_result(probe_kind k, uint64_t instance, handler_outcome outcome, time_point now);
  /// When due() next has something.
  std::optional<time_point> next_wakeup() const;

  bool running() const { return running_; }
  bool started() const { return started_; }
  bool ready() const { return ready_; }
  uint64_t instance() const { return instance_; }

 private:
  struct one {
    std::optional<wire::probe> spec;
    time_point next_at{};
    bool in_flight = false;
    int32_t successes = 0;  ///< consecutive
    int32_t failures = 0;   ///< consecutive
    bool passing = false;   ///< the current result after thresholds
  };

  one& at(probe_kind k) { return probes_[static_cast<std::size_t>(k)]; }
  const one& at(probe_kind k) const { return probes_[static_cast<std::size_t>(k)]; }
  bool active(probe_kind k) const;
  bool compute_ready() const;

  std::array<one, 3> probes_;
  uint64_t instance_ = 0;
  bool running_ = false;
  bool halted_ = false;
  bool on_hold_ = false;
  bool started_ = false;
  bool ready_ = false;
};

}  // namespace deckhand::supervisor

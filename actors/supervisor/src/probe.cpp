#include "deckhand/supervisor/probe.hpp"

#include <algorithm>

namespace deckhand::supervisor {

namespace {

constexpr std::array<probe_kind, 3> all_kinds{probe_kind::startup, probe_kind::liveness,
                                              probe_kind::readiness};

/// Kubernetes' validation rejects values below 1; a bad value from an
/// untrusted manifest gets the default instead of a busy loop.
int32_t at_least_one(int32_t v, int32_t fallback) { return v >= 1 ? v : fallback; }

millis period_of(const wire::probe& p) {
  return std::chrono::seconds(at_least_one(p.period_seconds, 10));
}

}  // namespace

const char* probe_title(probe_kind k) {
  switch (k) {
  case probe_kind::startup: return "Startup";
  case probe_kind::liveness: return "Liveness";
  case probe_kind::readiness: return "Readiness";
  }
  return "Unknown";
}

const char* probe_word(probe_kind k) {
  switch (k) {
  case probe_kind::startup: return "startup";
  case probe_kind::liveness: return "liveness";
  case probe_kind::readiness: return "readiness";
  }
  return "unknown";
}

container_probes::container_probes(const wire::container& spec) {
  if (spec.startup_probe)
    at(probe_kind::startup).spec = *spec.startup_probe;
  if (spec.liveness_probe)
    at(probe_kind::liveness).spec = *spec.liveness_probe;
  if (spec.readiness_probe)
    at(probe_kind::readiness).spec = *spec.readiness_probe;
}

bool container_probes::any() const {
  return std::any_of(probes_.begin(), probes_.end(),
                     [](const one& p) { return p.spec.has_value(); });
}

const wire::probe* container_probes::spec(probe_kind k) const {
  const auto& p = at(k);
  return p.spec ? &*p.spec : nullptr;
}

bool container_probes::compute_ready() const {
  if (!running_ || !started_)
    return false;
  const auto& r = at(probe_kind::readiness);
  return !r.spec || r.passing;
}

bool container_probes::active(probe_kind k) const {
  const auto& p = at(k);
  if (!p.spec || !running_ || halted_ || on_hold_)
    return false;
  return k == probe_kind::startup ? !started_ : started_;
}

void container_probes::on_running(time_point started_at, time_point now, bool resumed,
                                  bool was_started, bool was_ready) {
  ++instance_;
  running_ = true;
  on_hold_ = false;
  for (auto k : all_kinds) {
    auto& p = at(k);
    p.in_flight = false;
    p.successes = 0;
    p.failures = 0;
    p.passing = k == probe_kind::liveness;
    if (p.spec) {
      auto first =
          started_at + std::chrono::seconds(std::max<int32_t>(p.spec->initial_delay_seconds, 0));
      p.next_at = std::max(first, now);
    }
  }
  const bool has_startup = at(probe_kind::startup).spec.has_value();
  started_ = !has_startup || (resumed && was_started);
  at(probe_kind::startup).passing = started_;
  if (resumed)
    at(probe_kind::readiness).passing = was_ready && started_;
  ready_ = compute_ready();
}

void container_probes::on_stopped() {
  running_ = false;
  started_ = false;
  ready_ = false;
  for (auto& p : probes_)
    p.in_flight = false;
}

void container_probes::halt() { halted_ = true; }

std::vector<probe_request> container_probes::due(time_point now) {
  std::vector<probe_request> out;
  for (auto k : all_kinds) {
    auto& p = at(k);
    if (!active(k) || p.in_flight || p.next_at > now)
      continue;
    p.in_flight = true;
    // Fixed rate, like the kubelet's ticker; a run that overruns its period
    // delays the next one until its result is in.
    p.next_at = now + period_of(*p.spec);
    out.push_back({k, instance_, std::chrono::seconds(at_least_one(p.spec->timeout_seconds, 1))});
  }
  return out;
}

probe_verdict container_probes::on_result(probe_kind k, uint64_t instance, handler_outcome outcome,
                                          time_point now) {
  probe_verdict v;
  if (instance != instance_ || !running_)
    return v;
  auto& p = at(k);
  p.in_flight = false;
  if (p.next_at < now)
    p.next_at = now;
  if (outcome == handler_outcome::unknown || !active(k))
    return v;
  v.counted = true;
  const bool was_started = started_;
  const bool was_ready = ready_;
  if (outcome == handler_outcome::success) {
    p.failures = 0;
    ++p.successes;
    // successThreshold must be 1 for liveness and startup.
    int32_t need = k == probe_kind::readiness ? at_least_one(p.spec->success_threshold, 1) : 1;
    if (p.successes >= need) {
      p.passing = true;
      if (k == probe_kind::startup) {
        started_ = true;
        // Liveness and readiness have waited for this; their initial delays
        // still count from the container's start.
        for (auto other : {probe_kind::liveness, probe_kind::readiness})
          if (at(other).spec)
            at(other).next_at = std::max(at(other).next_at, now);
      }
    }
  } else {
    v.failed_attempt = true;
    p.successes = 0;
    ++p.failures;
    if (p.failures >= at_least_one(p.spec->failure_threshold, 3)) {
      p.passing = false;
      if (k != probe_kind::readiness) {
        // The kubelet kills the container and puts the worker on hold until
        // the container is replaced.
        p.failures = 0;
        on_hold_ = true;
        v.kill = true;
      }
    }
  }
  ready_ = compute_ready();
  v.changed = was_started != started_ || was_ready != ready_;
  return v;
}

std::optional<time_point> container_probes::next_wakeup() const {
  std::optional<time_point> next;
  for (auto k : all_kinds) {
    const auto& p = at(k);
    if (active(k) && !p.in_flight && (!next || p.next_at < *next))
      next = p.next_at;
  }
  return next;
}

}  // namespace deckhand::supervisor

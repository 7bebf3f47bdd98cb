#include "deckhand/kubelet/pod_lifecycle.hpp"

#include <algorithm>

#include "deckhand/api/time.hpp"

namespace deckhand::kubelet {

int64_t effective_grace_period(const wire::pod* desired, int64_t in_force,
                               int64_t override_seconds) {
  int64_t grace = in_force;
  auto shrink = [&](int64_t candidate) {
    if (candidate >= 0 && (grace < 0 || candidate < grace))
      grace = candidate;
  };
  if (desired && !desired->metadata.deletion_timestamp.empty())
    shrink(desired->metadata.deletion_grace_period_seconds);
  shrink(override_seconds);
  if (grace < 0)
    grace = desired ? desired->spec.termination_grace_period_seconds : 30;
  if (grace == 0 && override_seconds == 0)
    return 0;
  return std::max(grace, minimum_grace_period_seconds);
}

std::optional<std::chrono::milliseconds>
active_deadline_left(const wire::pod_spec& spec, std::chrono::milliseconds active_for) {
  if (spec.active_deadline_seconds <= 0)
    return std::nullopt;
  return std::chrono::milliseconds(spec.active_deadline_seconds * 1000) - active_for;
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339_time(const std::string& text) {
  auto t = api::parse_rfc3339(text);
  if (!t)
    return std::nullopt;
  // Deadlines count whole seconds.
  return std::chrono::floor<std::chrono::seconds>(*t);
}

std::chrono::milliseconds active_duration(const std::string& start_time,
                                          std::chrono::system_clock::time_point now) {
  auto start = parse_rfc3339_time(start_time);
  if (!start || *start >= now)
    return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - *start);
}

}  // namespace deckhand::kubelet

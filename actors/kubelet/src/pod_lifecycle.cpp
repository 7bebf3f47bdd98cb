#include "deckhand/kubelet/pod_lifecycle.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

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
  int y, mo, d, h, mi, s;
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &s, &consumed) !=
          6 ||
      consumed != 19)
    return std::nullopt;
  std::size_t i = 19;
  if (i < text.size() && text[i] == '.')
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    }
  long offset = 0;
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i + 6 == text.size() && (text[i] == '+' || text[i] == '-')) {
    int oh, om;
    if (std::sscanf(text.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2)
      return std::nullopt;
    offset = (text[i] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != text.size())
    return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  auto t = timegm(&tm);
  if (t == -1)
    return std::nullopt;
  return std::chrono::system_clock::from_time_t(t - offset);
}

std::chrono::milliseconds active_duration(const std::string& start_time,
                                          std::chrono::system_clock::time_point now) {
  auto start = parse_rfc3339_time(start_time);
  if (!start || *start >= now)
    return std::chrono::milliseconds(0);
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - *start);
}

}  // namespace deckhand::kubelet

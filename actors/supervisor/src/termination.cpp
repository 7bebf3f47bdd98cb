#include "deckhand/supervisor/termination.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <fstream>

#include <nlohmann/json.hpp>

#include "deckhand/common/signals.hpp"

namespace deckhand::supervisor {

exit_info exit_info::from_wait_status(int raw) {
  exit_info e;
  if (WIFEXITED(raw)) {
    e.code = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    e.signal = WTERMSIG(raw);
    e.code = 128 + e.signal;
  } else {
    e.known = false;
    e.code = unknown_exit_code;
  }
  return e;
}

exit_info exit_info::unknown() {
  exit_info e;
  e.known = false;
  e.code = unknown_exit_code;
  return e;
}

exit_info exit_info::start_error(std::string message) {
  exit_info e;
  // Kubernetes reports a container that could not be started as exit 128.
  e.code = 128;
  e.reason = "StartError";
  e.message = std::move(message);
  return e;
}

wire::container_state_terminated terminated_state(const exit_info& e, const std::string& started_at,
                                                  const std::string& finished_at,
                                                  const std::string& container_id) {
  wire::container_state_terminated t;
  t.exit_code = e.code;
  t.signal = e.signal;
  if (!e.known) {
    t.exit_code = unknown_exit_code;
    t.signal = 0;
    t.reason = unknown_exit_reason;
    t.message = unknown_exit_message;
  } else {
    t.reason = !e.reason.empty() ? e.reason : e.code == 0 ? "Completed" : "Error";
    t.message = e.message;
  }
  t.started_at = started_at;
  t.finished_at = finished_at;
  t.container_id = container_id;
  return t;
}

int bundle_stop_signal(const std::filesystem::path& bundle) {
  std::ifstream in(bundle / "config.json");
  if (!in)
    return SIGTERM;
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object())
    return SIGTERM;
  auto a = j.find("annotations");
  if (a == j.end() || !a->is_object())
    return SIGTERM;
  auto v = a->find(stop_signal_annotation);
  if (v == a->end() || !v->is_string())
    return SIGTERM;
  auto sig = common::parse_signal(v->get<std::string>());
  return sig ? *sig : SIGTERM;
}

std::string rfc3339(time_point t) {
  std::time_t secs = wall_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<time_point> parse_rfc3339(const std::string& s) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19)
    return std::nullopt;
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
      ++i;
  }
  long offset = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh = 0, om = 0;
    if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2)
      return std::nullopt;
    offset = (s[i] == '+' ? 1 : -1) * (oh * 3600L + om * 60L);
    i += 6;
  } else {
    return std::nullopt;
  }
  if (i != s.size())
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  std::time_t secs = timegm(&tm);
  if (secs == static_cast<std::time_t>(-1))
    return std::nullopt;
  return wall_clock::from_time_t(secs - offset);
}

}  // namespace deckhand::supervisor

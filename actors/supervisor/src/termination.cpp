#include "deckhand/supervisor/termination.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <csignal>
#include <fstream>

#include <nlohmann/json.hpp>

#include "deckhand/api/time.hpp"
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

std::string rfc3339(time_point t) { return api::format_rfc3339(t); }

std::optional<time_point> parse_rfc3339(const std::string& s) {
  auto t = api::parse_rfc3339(s);
  if (!t)
    return std::nullopt;
  // Container start times are kept to the second, as they are printed.
  return time_point{std::chrono::floor<std::chrono::seconds>(*t)};
}

}  // namespace deckhand::supervisor

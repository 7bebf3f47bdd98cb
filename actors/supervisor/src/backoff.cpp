#include "deckhand/supervisor/backoff.hpp"

#include <cstdio>

namespace deckhand::supervisor {

bool should_restart(const std::string& restart_policy, int exit_code) {
  if (restart_policy == "Never")
    return false;
  if (restart_policy == "OnFailure")
    return exit_code != 0;
  return true;
}

common::backoff_policy crash_loop_policy(const backoff_config& cfg) {
  return {cfg.initial, cfg.max, cfg.reset, true};
}

millis next_restart_delay(common::backoff& b, time_point started, time_point finished) {
  if (started == time_point{})
    return b.next();
  return b.next_after_run(std::chrono::duration_cast<millis>(finished - started));
}

std::string go_duration(millis d) {
  auto ms = d.count();
  if (ms == 0)
    return "0s";
  std::string sign = ms < 0 ? "-" : "";
  if (ms < 0)
    ms = -ms;
  if (ms < 1000)
    return sign + std::to_string(ms) + "ms";
  auto h = ms / 3'600'000;
  auto m = (ms / 60'000) % 60;
  auto s = (ms / 1000) % 60;
  auto frac = ms % 1000;
  std::string secs = std::to_string(s);
  if (frac) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%03d", static_cast<int>(frac));
    std::string f = buf;
    while (f.back() == '0')
      f.pop_back();
    secs += f;
  }
  std::string out = sign;
  if (h)
    out += std::to_string(h) + "h" + std::to_string(m) + "m";
  else if (m)
    out += std::to_string(m) + "m";
  return out + secs + "s";
}

}  // namespace deckhand::supervisor

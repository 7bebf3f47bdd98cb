#include "deckhand/supervisor/backoff.hpp"

#include "deckhand/api/duration.hpp"

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

std::string go_duration(millis d) { return api::format_duration(d); }

}  // namespace deckhand::supervisor

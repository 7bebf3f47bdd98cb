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

millis restart_backoff::peek() const {
  if (step_ == 0)
    return millis(0);
  auto d = cfg_.initial;
  for (int i = 1; i < step_ && d < cfg_.max; ++i)
    d *= 2;
  return d < cfg_.max ? d : cfg_.max;
}

millis restart_backoff::next(time_point started, time_point finished) {
  if (started != time_point{} && finished - started >= cfg_.reset)
    step_ = 0;
  auto d = peek();
  // Once capped the step no longer matters; stop counting so it cannot overflow.
  if (d < cfg_.max)
    ++step_;
  return d;
}

std::string go_duration(millis d) { return api::format_duration(d); }

}  // namespace deckhand::supervisor

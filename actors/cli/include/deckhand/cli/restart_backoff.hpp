#pragma once

/// The restart policy of `deckhand up` for one component process: restart
/// after every exit, waiting 200 ms after the first failure and doubling up to
/// 10 s; a process that stayed up for 30 s is considered healthy again and the
/// delay starts over. Pure: the caller passes the time in.

#include <chrono>
#include <optional>

namespace deckhand::cli {

struct backoff_config {
  std::chrono::milliseconds initial{200};
  std::chrono::milliseconds max{10000};
  std::chrono::milliseconds reset_after{30000};
};

class restart_backoff {
 public:
  using clock = std::chrono::steady_clock;

  explicit restart_backoff(backoff_config cfg = {}) : cfg_(cfg), next_(cfg.initial) {}

  /// The process was (re)started at `now`.
  void started(clock::time_point now) { started_at_ = now; }

  /// The process exited at `now`: the delay before starting it again.
  std::chrono::milliseconds exited(clock::time_point now) {
    if (started_at_ && now - *started_at_ >= cfg_.reset_after)
      next_ = cfg_.initial;
    started_at_.reset();
    auto delay = next_;
    next_ = std::min(next_ * 2, cfg_.max);
    return delay;
  }

  /// The delay the next exit would get if it came before the reset interval.
  std::chrono::milliseconds next_delay() const { return next_; }

  const backoff_config& config() const { return cfg_; }

 private:
  backoff_config cfg_;
  std::chrono::milliseconds next_;
  std::optional<clock::time_point> started_at_;
};

}  // namespace deckhand::cli

#pragma once

/// Exponential back-off, the one schedule every component uses: the kubelet's
/// crash-loop back-off and retry back-off (Kubernetes' flowcontrol.Backoff),
/// the runtime's supervisor restarts and `deckhand up`'s component restarts.
///
/// Pure: no clock is read. The caller says when a failure happened and how
/// long the failed thing ran, so tests drive it with virtual time.

#include <chrono>

namespace deckhand::common {

struct backoff_policy {
  /// The delay after the first failure (after the second one when
  /// `first_immediate`).
  std::chrono::milliseconds initial{200};
  /// The cap; once reached the delay stays there.
  std::chrono::milliseconds max{10'000};
  /// A run at least this long starts the schedule over; 0: never.
  std::chrono::milliseconds reset_after{0};
  /// The first failure is retried at once (the kubelet's crash loop: 0, 10s,
  /// 20s, ...); otherwise it waits `initial` (200ms, 400ms, ...).
  bool first_immediate = false;
};

/// One thing's back-off: a container, an image pull, a process.
class backoff {
 public:
  explicit backoff(backoff_policy policy = {}) : policy_(policy) {}

  /// A failure: the delay before the next attempt, and the schedule advances.
  std::chrono::milliseconds next();

  /// A failure of something that ran for `ran` first: a run of at least
  /// `reset_after` starts the schedule over before it advances.
  std::chrono::milliseconds next_after_run(std::chrono::milliseconds ran);

  /// The delay `next()` would return, without advancing.
  std::chrono::milliseconds peek() const;

  /// A success: the next failure starts the schedule over.
  void reset() { step_ = 0; }

  /// Consecutive failures counted so far (persisted by the supervisor across
  /// its own restarts). Counting stops at the cap.
  int step() const { return step_; }
  void set_step(int step) { step_ = step < 0 ? 0 : step; }

  const backoff_policy& policy() const { return policy_; }

 private:
  backoff_policy policy_;
  int step_ = 0;
};

}  // namespace deckhand::common

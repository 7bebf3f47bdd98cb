#include "deckhand/common/backoff.hpp"

namespace deckhand::common {

std::chrono::milliseconds backoff::peek() const {
  int doublings = policy_.first_immediate ? step_ - 1 : step_;
  if (doublings < 0)
    return std::chrono::milliseconds(0);
  auto d = policy_.initial;
  for (int i = 0; i < doublings && d < policy_.max; ++i)
    d *= 2;
  return d < policy_.max ? d : policy_.max;
}

std::chrono::milliseconds backoff::next() {
  auto d = peek();
  // Once capped the step no longer matters; stop counting so it cannot overflow.
  if (d < policy_.max)
    ++step_;
  return d;
}

std::chrono::milliseconds backoff::next_after_run(std::chrono::milliseconds ran) {
  if (policy_.reset_after.count() > 0 && ran >= policy_.reset_after)
    step_ = 0;
  return next();
}

}  // namespace deckhand::common

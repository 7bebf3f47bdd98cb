#include "deckhand/apiserver/watch_cache.hpp"

namespace deckhand::apiserver {

watch_cache::watch_cache(registry& r, std::size_t capacity)
    : registry_(r), capacity_(capacity == 0 ? 1 : capacity) {
  // Hold mu_ so that no event can be recorded before resumable_from_ is set.
  std::lock_guard lock(mu_);
  auto sub = registry_.subscribe([this](const watch_event& ev) {
    {
      std::lock_guard inner(mu_);
      events_.push_back(ev);
      latest_ = ev.revision;
      while (events_.size() > capacity_) {
        resumable_from_ = events_.front().revision;
        events_.pop_front();
      }
    }
    cv_.notify_all();
  });
  subscription_id_ = sub.id;
  resumable_from_ = sub.revision;
  latest_ = sub.revision;
}

watch_cache::~watch_cache() {
  shutdown();
  registry_.unsubscribe(subscription_id_);
}

void watch_cache::shutdown() {
  {
    std::lock_guard lock(mu_);
    shutdown_ = true;
  }
  cv_.notify_all();
}

std::uint64_t watch_cache::oldest_resumable() const {
  std::lock_guard lock(mu_);
  return resumable_from_;
}

result<std::vector<watch_event>> watch_cache::wait_after(std::uint64_t after,
                                                         std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (after < resumable_from_)
    return error{errc::not_found, "too old resource version: " + std::to_string(after) + " (" +
                                      std::to_string(resumable_from_) + ")"};
  cv_.wait_for(lock, timeout, [&] { return shutdown_ || latest_ > after; });
  std::vector<watch_event> out;
  if (shutdown_)
    return out;
  if (after < resumable_from_)
    return error{errc::not_found, "too old resource version: " + std::to_string(after) + " (" +
                                      std::to_string(resumable_from_) + ")"};
  // Revisions are increasing, so the first event above `after` is found by bisection.
  auto it =
      std::upper_bound(events_.begin(), events_.end(), after,
                       [](std::uint64_t rev, const watch_event& ev) { return rev < ev.revision; });
  out.assign(it, events_.end());
  return out;
}

}  // namespace deckhand::apiserver

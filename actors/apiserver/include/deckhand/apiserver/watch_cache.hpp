#pragma once

/// A bounded in-memory history of registry changes, from which watchers
/// (HTTP watch streams, node subscriptions) resume at a resourceVersion.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "deckhand/apiserver/registry.hpp"
#include "deckhand/common/result.hpp"

namespace deckhand::apiserver {

/// Subscribes to a registry and keeps its last `capacity` events.
class watch_cache {
 public:
  watch_cache(registry& r, std::size_t capacity);
  ~watch_cache();
  watch_cache(const watch_cache&) = delete;
  watch_cache& operator=(const watch_cache&) = delete;

  /// Events with a revision above `after`, waiting up to `timeout` for the
  /// first one; an empty vector on timeout or after shutdown(). If events
  /// after `after` were already dropped from the history, errc::not_found with
  /// Kubernetes' "too old resource version" message (HTTP 410 Gone): the
  /// watcher must list again.
  result<std::vector<watch_event>> wait_after(std::uint64_t after,
                                              std::chrono::milliseconds timeout);

  /// Wakes all waiters and makes further waits return at once.
  void shutdown();

  /// The oldest revision a watch can resume from.
  std::uint64_t oldest_resumable() const;

 private:
  registry& registry_;
  std::size_t capacity_;
  std::uint64_t subscription_id_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<watch_event> events_;
  /// Every event above this revision is still in events_.
  std::uint64_t resumable_from_ = 0;
  std::uint64_t latest_ = 0;
  bool shutdown_ = false;
};

}  // namespace deckhand::apiserver

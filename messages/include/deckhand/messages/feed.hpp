#pragma once

/// The subscriber side of the API server's state fan-out: snapshot plus
/// numbered updates. PUB/SUB may drop anything, so correctness rests here: an
/// update is applied only if it is the next one after what the subscriber has;
/// a gap, a new publisher incarnation, or silence past the timeout asks for a
/// fresh snapshot. Time is passed in, so tests drive it.

#include <chrono>
#include <cstdint>

namespace deckhand::wire {

class feed_follower {
 public:
  using time_point = std::chrono::steady_clock::time_point;

  enum class verdict {
    apply,   ///< the next update: apply it
    ignore,  ///< already covered by the snapshot (or a duplicate)
    buffer,  ///< no snapshot yet: keep it until `reset`, then offer it again
    resync,  ///< gap, restart or silence: take a new snapshot
  };

  explicit feed_follower(std::chrono::milliseconds silence_timeout = std::chrono::seconds(3))
      : timeout_(silence_timeout) {}

  /// A snapshot taken at feed position `seq` of publisher `incarnation`.
  void reset(uint64_t incarnation, uint64_t seq, time_point now) {
    incarnation_ = incarnation;
    seq_ = seq;
    synced_ = true;
    last_heard_ = now;
  }

  /// Forget the snapshot (e.g. after asking for a new one).
  void invalidate() { synced_ = false; }

  verdict on_update(uint64_t incarnation, uint64_t seq, time_point now) {
    if (!synced_)
      return verdict::buffer;
    if (incarnation != incarnation_)
      return lose();
    last_heard_ = now;
    if (seq <= seq_)
      return verdict::ignore;
    if (seq != seq_ + 1)
      return lose();
    seq_ = seq;
    return verdict::apply;
  }

  /// A heartbeat announcing the publisher's latest `seq`.
  verdict on_heartbeat(uint64_t incarnation, uint64_t seq, time_point now) {
    if (!synced_)
      return verdict::buffer;
    if (incarnation != incarnation_ || seq > seq_)
      return lose();
    last_heard_ = now;
    return verdict::ignore;
  }

  /// True when nothing was heard for longer than the silence timeout.
  bool silent(time_point now) const { return synced_ && now - last_heard_ > timeout_; }

  bool synced() const { return synced_; }
  uint64_t position() const { return seq_; }
  uint64_t incarnation() const { return incarnation_; }

 private:
  verdict lose() {
    synced_ = false;
    return verdict::resync;
  }

  std::chrono::milliseconds timeout_;
  uint64_t incarnation_ = 0;
  uint64_t seq_ = 0;
  bool synced_ = false;
  time_point last_heard_{};
};

}  // namespace deckhand::wire

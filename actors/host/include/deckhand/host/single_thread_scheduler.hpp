#pragma once

/// A CAF 0.17 scheduler that runs every actor and timer on ONE thread, and
/// has no `aout` printer (do not use `aout` with it). CAF's own schedulers need at least three
/// threads (a worker, the "caf.clock" timer thread and the detached `aout` printer); a pod
/// supervisor runs one actor that is idle nearly always, and there are
/// hundreds of supervisors per node, so each thread's stack and TLS counts.
///
/// Jobs run in FIFO order with CAF's max-throughput per resume; timeouts and
/// delayed messages are kept in CAF's simple_actor_clock, guarded by a
/// mutex, and fired by the same thread when due. Install it with
/// `install_single_thread_scheduler(cfg)` before constructing the
/// actor_system.

#include <memory>

#include <caf/actor_system_config.hpp>

namespace deckhand::host {

/// Runs the single-thread scheduler on an event loop the caller already has
/// (e.g. a poll loop), instead of on a thread of its own: one thread fewer.
/// The loop polls `wake_fd()` for POLLIN and calls `run()` when it is
/// readable, or when the timeout that the last `run()` returned has passed.
/// Only the loop's thread calls run(); any thread may send to the actors.
class scheduler_loop {
 public:
  scheduler_loop();
  ~scheduler_loop();
  scheduler_loop(const scheduler_loop&) = delete;
  scheduler_loop& operator=(const scheduler_loop&) = delete;

  /// An eventfd that is readable while jobs are queued or timers changed.
  int wake_fd() const;

  /// Runs the jobs queued now and fires the timers due now. Returns the
  /// milliseconds until the next timer (rounded up), or -1 if there is none:
  /// the longest the loop may sleep.
  int run();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
  friend void install_single_thread_scheduler(caf::actor_system_config&, scheduler_loop*);
};

/// Installs the scheduler in `cfg` (before the actor_system is made). With
/// `loop`, no thread is started: the jobs run in `loop->run()`, and on
/// shutdown (the actor_system's destructor, on the loop's thread) the jobs
/// still queued run to completion there.
void install_single_thread_scheduler(caf::actor_system_config& cfg, scheduler_loop* loop = nullptr);

}  // namespace deckhand::host

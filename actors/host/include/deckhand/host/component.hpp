#pragma once

/// The shell of every component process: logging, the ZeroMQ bridge, a CAF
/// actor system, and orderly shutdown on SIGINT/SIGTERM.

#include <atomic>
#include <memory>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

#include "deckhand/host/config.hpp"
#include "deckhand/messages/bridge.hpp"

namespace deckhand::host {

/// Blocks SIGINT, SIGTERM and SIGPIPE in the calling thread and every thread
/// it starts later; call first thing in main(), before any thread exists.
void block_signals();

class scheduler_loop;

class component {
 public:
  /// `loop` (pod supervisors only): run the CAF scheduler on the caller's
  /// event loop (single_thread_scheduler.hpp) instead of a thread; the
  /// caller must then call `loop->run()` as that header says, and destroy
  /// the component on the loop's thread.
  component(std::string name, const common_options& opts, scheduler_loop* loop = nullptr);
  ~component();

  transport::bridge& bus() { return *bus_; }
  caf::actor_system& system() { return *system_; }
  const common_options& options() const { return opts_; }
  const std::string& name() const { return name_; }

  /// Blocks until SIGINT/SIGTERM or `request_stop`; returns the signal number
  /// (0 for request_stop).
  int wait_for_stop();
  void request_stop();

  /// Stops the bridge and the actor system (actors must have been told to quit).
  void shutdown();

 private:
  std::string name_;
  common_options opts_;
  std::unique_ptr<transport::bridge> bus_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> system_;
  caf::actor scavenger_;
  scheduler_loop* loop_ = nullptr;
  std::atomic<bool> stop_{false};
};

}  // namespace deckhand::host

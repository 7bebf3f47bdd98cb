#include "deckhand/host/component.hpp"

#include <signal.h>
#include <unistd.h>

#include "deckhand/common/log.hpp"

namespace deckhand::host {

void block_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);  // request_stop()
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A peer closing a pipe or socket must not kill the process.
  signal(SIGPIPE, SIG_IGN);
}

component::component(std::string name, const common_options& opts)
  : name_(std::move(name)), opts_(opts) {
  transport::bridge_config bc;
  bc.component = name_;
  bus_ = std::make_unique<transport::bridge>(bc);
  cfg_.set("scheduler.max-threads", 2);
  if (name_ == "pod-supervisor") {
    // One per pod, hundreds per node, idle nearly always: one scheduler
    // thread that sleeps on a condition variable instead of work-stealing
    // workers that poll (each idle poller costs ~0.2% of a core).
    cfg_.set("scheduler.max-threads", 1);
    cfg_.set("scheduler.policy", caf::atom("sharing"));
  }
  system_ = std::make_unique<caf::actor_system>(cfg_);
}

component::~component() {
  shutdown();
}

int component::wait_for_stop() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR2);
  // No timeout: an idle process must not wake up for nothing.
  while (!stop_) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0)
      continue;
    if (sig == SIGUSR2)
      continue;  // request_stop() set stop_
    log::get()->info("msg=\"stopping\" signal={}", sig);
    return sig;
  }
  return 0;
}

void component::request_stop() {
  stop_ = true;
  ::kill(::getpid(), SIGUSR2);
}

void component::shutdown() {
  if (bus_)
    bus_->stop();
  if (system_) {
    system_->await_all_actors_done();
    system_.reset();
  }
}

} // namespace deckhand::host

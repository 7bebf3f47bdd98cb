#include "deckhand/host/component.hpp"

#include <signal.h>
#include <time.h>

#include "deckhand/common/log.hpp"

namespace deckhand::host {

void block_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
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
  timespec ts{0, 100 * 1000 * 1000};
  while (!stop_) {
    int sig = sigtimedwait(&set, nullptr, &ts);
    if (sig > 0) {
      log::get()->info("msg=\"stopping\" signal={}", sig);
      return sig;
    }
  }
  return 0;
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

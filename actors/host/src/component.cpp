#include "deckhand/host/component.hpp"

#include <poll.h>

#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/host/single_thread_scheduler.hpp"

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

namespace {

using scavenge_atom = caf::atom_constant<caf::atom("scavenge")>;

/// Gives free heap pages back to the kernel now and then, as Go's scavenger
/// does: a node agent's heap spikes while it starts many pods (JSON, bundles,
/// messages) and would otherwise keep the pages of that spike for good.
caf::behavior scavenger(caf::event_based_actor* self, std::chrono::milliseconds period) {
  self->delayed_send(self, period, scavenge_atom::value);
  return {
      [=](scavenge_atom) {
        ::malloc_trim(0);
        self->delayed_send(self, period, scavenge_atom::value);
      },
  };
}

}  // namespace

component::component(std::string name, const common_options& opts, scheduler_loop* loop)
    : name_(std::move(name)), opts_(opts) {
  if (name_ == "pod-supervisor")
    loop_ = loop;
  if (name_ != "apiserver" && name_ != "pod-supervisor") {  // supervisors: 1, in main()
    // Before any thread exists. glibc's default (8 arenas per core) lets
    // every thread that ever allocated keep a heap of its own, each with its
    // own free pages; node components are mostly idle and gain nothing from it.
    // One arena: the kubelet's ZeroMQ I/O thread allocates a burst of
    // connection buffers when hundreds of supervisors report at once; in an
    // arena of its own, what they leave behind is never reused by the
    // actors (measured at 300 pods: see tests/bench/README.md).
    ::mallopt(M_ARENA_MAX, 1);
  }
  transport::bridge_config bc;
  bc.component = name_;
  bus_ = std::make_unique<transport::bridge>(bc);
  cfg_.set("scheduler.max-threads", 2);
  if (name_ == "pod-supervisor") {
    // One per pod, hundreds per node, idle nearly always: one scheduler
    // thread that sleeps on a condition variable instead of work-stealing
    // workers that poll (each idle poller costs ~0.2% of a core), and that
    // also fires the timers (no "caf.clock" thread, no printer thread).
    cfg_.set("scheduler.max-threads", 1);
    install_single_thread_scheduler(cfg_, loop);
  }
  system_ = std::make_unique<caf::actor_system>(cfg_);
  // Not in pod supervisors: hundreds of them, tiny heaps, trimmed eagerly.
  if (name_ != "pod-supervisor")
    scavenger_ = system_->spawn<caf::hidden>(scavenger, std::chrono::milliseconds(10'000));
}

component::~component() { shutdown(); }

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
  if (scavenger_) {
    caf::anon_send_exit(scavenger_, caf::exit_reason::user_shutdown);
    scavenger_ = caf::actor{};
  }
  if (system_) {
    if (loop_) {
      // Nothing else runs the actors: drive the loop here until they are
      // done (they were told to quit), then let the system go without its
      // own wait, which would block this thread forever.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      int timeout = loop_->run();
      while (system_->registry().running() > 0 && std::chrono::steady_clock::now() < deadline) {
        struct pollfd p {
          loop_->wake_fd(), POLLIN, 0
        };
        ::poll(&p, 1, timeout < 0 || timeout > 100 ? 100 : timeout);
        timeout = loop_->run();
      }
      system_->await_actors_before_shutdown(false);
    } else {
      system_->await_all_actors_done();
    }
    system_.reset();
  }
}

}  // namespace deckhand::host

#include "deckhand/host/single_thread_scheduler.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/detail/set_thread_name.hpp>
#include <caf/detail/simple_actor_clock.hpp>
#include <caf/execution_unit.hpp>
#include <caf/resumable.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>

namespace deckhand::host {

namespace {
class single_thread_coordinator;
}

struct scheduler_loop::impl {
  int efd = -1;
  /// Set while the coordinator exists (it registers itself); run() is a
  /// no-op before and after.
  single_thread_coordinator* coord = nullptr;

  impl() : efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}
  ~impl() {
    if (efd >= 0)
      ::close(efd);
  }
  void wake() const {
    uint64_t one = 1;
    ssize_t n;
    do {
      n = ::write(efd, &one, sizeof one);
    } while (n < 0 && errno == EINTR);
  }
  void drain() const {
    uint64_t v;
    while (::read(efd, &v, sizeof v) > 0) {
    }
  }
};

namespace {

class single_thread_coordinator;

/// CAF's simple (single-threaded) clock, made safe to call from any thread.
/// Lock order: the clock's mutex is never held while taking the job queue's,
/// except on the scheduler thread itself (trigger), which also is the only
/// thread that holds the queue's mutex while reading the clock.
class locked_clock : public caf::detail::simple_actor_clock {
 public:
  explicit locked_clock(single_thread_coordinator* owner) : owner_(owner) {}

  void set_ordinary_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                            uint64_t id) override {
    locked([&] { simple_actor_clock::set_ordinary_timeout(t, self, type, id); });
  }
  void set_multi_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                         uint64_t id) override {
    locked([&] { simple_actor_clock::set_multi_timeout(t, self, type, id); });
  }
  void set_request_timeout(time_point t, caf::abstract_actor* self, caf::message_id id) override {
    locked([&] { simple_actor_clock::set_request_timeout(t, self, id); });
  }
  void cancel_ordinary_timeout(caf::abstract_actor* self, caf::atom_value type) override {
    locked([&] { simple_actor_clock::cancel_ordinary_timeout(self, type); }, false);
  }
  void cancel_request_timeout(caf::abstract_actor* self, caf::message_id id) override {
    locked([&] { simple_actor_clock::cancel_request_timeout(self, id); }, false);
  }
  void cancel_timeouts(caf::abstract_actor* self) override {
    locked([&] { simple_actor_clock::cancel_timeouts(self); }, false);
  }
  void schedule_message(time_point t, caf::strong_actor_ptr receiver,
                        caf::mailbox_element_ptr content) override {
    locked(
        [&] { simple_actor_clock::schedule_message(t, std::move(receiver), std::move(content)); });
  }
  void schedule_message(time_point t, caf::group target, caf::strong_actor_ptr sender,
                        caf::message content) override {
    locked([&] {
      simple_actor_clock::schedule_message(t, std::move(target), std::move(sender),
                                           std::move(content));
    });
  }
  void cancel_all() override {
    locked([&] { simple_actor_clock::cancel_all(); }, false);
  }

  /// The earliest due time, if any timer is pending.
  bool next_due(time_point& due) {
    std::lock_guard<std::mutex> lock(mu_);
    if (schedule().empty())
      return false;
    due = schedule().begin()->first;
    return true;
  }

  void fire_expired() {
    std::lock_guard<std::mutex> lock(mu_);
    trigger_expired_timeouts();
  }

 private:
  template <class F>
  void locked(F&& f, bool wake = true);

  std::mutex mu_;
  single_thread_coordinator* owner_;
};

class single_thread_coordinator : public caf::scheduler::abstract_coordinator,
                                  public caf::execution_unit {
 public:
  single_thread_coordinator(caf::actor_system& sys, std::shared_ptr<scheduler_loop::impl> loop)
      : abstract_coordinator(sys), execution_unit(&sys), clock_(this), loop_(std::move(loop)) {
    if (loop_)
      loop_->coord = this;
  }

  ~single_thread_coordinator() override {
    if (loop_)
      loop_->coord = nullptr;
  }

  // -- abstract_coordinator ----------------------------------------------------

  void enqueue(caf::resumable* job) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      jobs_.push_back(job);
    }
    notify();
  }

  caf::actor_clock& clock() noexcept override { return clock_; }

  bool detaches_utility_actors() const override { return false; }

  /// Unlike abstract_coordinator::start(), spawns no `aout` printer (CAF
  /// always detaches it onto a thread of its own). Processes using this
  /// scheduler must not print through `aout`.
  void start() override {
    if (loop_)
      return;  // the owner's loop calls run_loop_once()
    thread_ = std::thread([this] {
      caf::detail::set_thread_name("caf.worker");
      abstract_coordinator::system().thread_started();
      run();
      abstract_coordinator::system().thread_terminates();
    });
  }

  void stop() override {
    // No utility actors to stop (see start()); the thread finishes what is
    // queued, then the rest is released.
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable())
      thread_.join();
    if (loop_) {
      // What the loop's thread would still have run (stop() runs on it).
      for (;;) {
        caf::resumable* job = nullptr;
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (jobs_.empty())
            break;
          job = jobs_.front();
          jobs_.pop_front();
        }
        resume(job);
      }
    }
    std::deque<caf::resumable*> left;
    {
      std::lock_guard<std::mutex> lock(mu_);
      left.swap(jobs_);
    }
    for (auto* job : left)
      cleanup_and_release(job);
    clock_.cancel_all();
  }

  // -- execution_unit ------------------------------------------------------------

  void exec_later(caf::resumable* job) override { enqueue(job); }

  /// Called by the clock when a timer was added: the thread may have to wake
  /// up earlier than it planned.
  void timers_changed() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      timers_changed_ = true;
    }
    notify();
  }

  /// scheduler_loop::run(): the jobs queued now (at most a bounded number,
  /// so that the loop's other sources get their turn), then the due timers.
  int run_loop_once() {
    loop_->drain();
    clock_.fire_expired();
    constexpr int max_jobs = 64;
    for (int i = 0; i < max_jobs; ++i) {
      caf::resumable* job = nullptr;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (jobs_.empty())
          break;
        job = jobs_.front();
        jobs_.pop_front();
      }
      resume(job);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      timers_changed_ = false;
      if (!jobs_.empty())
        return 0;  // more to do: come back at once
    }
    locked_clock::time_point due;
    if (!clock_.next_due(due))
      return -1;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(due - clock_.now()).count();
    return left < 0 ? 0 : static_cast<int>(std::min<long long>(left, 1 << 30));
  }

 private:
  void notify() {
    if (loop_)
      loop_->wake();
    else
      cv_.notify_one();
  }

  void run() {
    for (;;) {
      caf::resumable* job = nullptr;
      {
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
          if (!jobs_.empty()) {
            job = jobs_.front();
            jobs_.pop_front();
            break;
          }
          if (stopping_)
            return;
          timers_changed_ = false;
          locked_clock::time_point due;
          if (!clock_.next_due(due)) {
            cv_.wait(lock, [&] { return !jobs_.empty() || stopping_ || timers_changed_; });
            continue;
          }
          if (due <= clock_.now())
            break;  // fire timers below, without the queue's lock
          // actor_clock's time is std::chrono::steady_clock.
          cv_.wait_until(lock, due, [&] { return !jobs_.empty() || stopping_ || timers_changed_; });
        }
      }
      clock_.fire_expired();
      if (job)
        resume(job);
    }
  }

  void resume(caf::resumable* job) {
    switch (job->resume(this, max_throughput())) {
    case caf::resumable::resume_later:
      enqueue(job);  // keeps its reference
      break;
    case caf::resumable::done:
    case caf::resumable::awaiting_message:
      // Enqueued again (with a new reference) when a message arrives.
      intrusive_ptr_release(job);
      break;
    case caf::resumable::shutdown_execution_unit: break;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<caf::resumable*> jobs_;
  bool stopping_ = false;
  bool timers_changed_ = false;
  locked_clock clock_;
  std::thread thread_;
  std::shared_ptr<scheduler_loop::impl> loop_;
};

template <class F>
void locked_clock::locked(F&& f, bool wake) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    f();
  }
  if (wake)
    owner_->timers_changed();
}

}  // namespace

scheduler_loop::scheduler_loop() : impl_(std::make_shared<impl>()) {}

scheduler_loop::~scheduler_loop() = default;

int scheduler_loop::wake_fd() const { return impl_->efd; }

int scheduler_loop::run() {
  if (!impl_->coord)
    return -1;
  return impl_->coord->run_loop_once();
}

void install_single_thread_scheduler(caf::actor_system_config& cfg, scheduler_loop* loop) {
  std::shared_ptr<scheduler_loop::impl> shared = loop ? loop->impl_ : nullptr;
  cfg.module_factories.push_back([shared](caf::actor_system& sys) -> caf::actor_system::module* {
    return new single_thread_coordinator(sys, shared);
  });
}

}  // namespace deckhand::host

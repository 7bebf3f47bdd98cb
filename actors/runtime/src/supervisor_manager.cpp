#include "deckhand/runtime/supervisor_manager.hpp"

#include <map>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/runtime/supervisor_process.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct tracked_supervisor {
  pid_t pid = 0;
  /// Stopped on purpose (stopping marker): not restarted.
  bool parked = false;
  common::backoff restarts{supervisor_restart_policy};
  std::chrono::steady_clock::time_point next_start{};
  std::chrono::steady_clock::time_point started{};
};

struct manager_state {
  std::map<std::string, tracked_supervisor> pods;
  uint64_t generation = 0;
  static inline const char* name = "supervisor_manager";
};

constexpr auto check_interval = 500ms;

caf::behavior supervisor_manager(caf::stateful_actor<manager_state>* self, runtime_options opts) {
  auto schedule = [self](std::chrono::milliseconds delay) {
    auto gen = ++self->state.generation;
    self->delayed_send(self, delay, host::tick_atom::value, gen);
  };
  auto check = [self, opts]() -> std::chrono::milliseconds {
    auto lg = log::get();
    auto now = std::chrono::steady_clock::now();
    auto next = std::chrono::milliseconds(check_interval);
    for (auto it = self->state.pods.begin(); it != self->state.pods.end();) {
      const auto& uid = it->first;
      auto& t = it->second;
      auto dir = pod_dir::root(opts.data_dir, uid);
      std::error_code ec;
      if (!fs::exists(pod_dir::pod_json(dir), ec)) {
        reap_if_exited(t.pid);
        it = self->state.pods.erase(it);
        continue;
      }
      bool stopping = fs::exists(pod_dir::stopping_marker(dir), ec);
      if (t.pid > 0) {
        if (!reap_if_exited(t.pid) && is_supervisor_of(t.pid, uid)) {
          ++it;
          continue;
        }
        lg->warn("msg=\"pod supervisor died\" uid={} pid={}", uid, t.pid);
        t.pid = 0;
        t.next_start =
            now + t.restarts.next_after_run(
                      std::chrono::duration_cast<std::chrono::milliseconds>(now - t.started));
      }
      t.parked = stopping;
      if (!t.parked) {
        if (now >= t.next_start) {
          auto pid = start_supervisor(opts, uid);
          if (pid) {
            lg->info("msg=\"pod supervisor started\" uid={} pid={}", uid, *pid);
            t.pid = *pid;
            t.started = now;
          } else {
            lg->error("msg=\"cannot start pod supervisor\" uid={} error=\"{}\"", uid,
                      pid.err().message);
            t.next_start = now + t.restarts.next();
          }
        }
        if (t.pid == 0)
          next = std::min(next, std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             t.next_start - now),
                                         std::chrono::milliseconds(20)));
      }
      ++it;
    }
    return next;
  };
  schedule(0ms);
  return {
      [=](supervisor_adopt_atom, const std::string& uid, int64_t pid) {
        auto& t = self->state.pods[uid];
        t = tracked_supervisor{};
        t.pid = static_cast<pid_t>(pid);
        t.started = std::chrono::steady_clock::now();
        if (pid == 0)
          schedule(0ms);
      },
      [=](supervisor_release_atom, const std::string& uid) -> int64_t {
        auto it = self->state.pods.find(uid);
        if (it == self->state.pods.end())
          return 0;
        int64_t pid = it->second.pid;
        self->state.pods.erase(it);
        return pid;
      },
      [=](host::tick_atom, uint64_t gen) {
        if (gen != self->state.generation)
          return;
        schedule(check());
      },
  };
}

}  // namespace

caf::actor spawn_supervisor_manager(caf::actor_system& sys, const runtime_options& opts) {
  return sys.spawn<caf::detached>(supervisor_manager, opts);
}

}  // namespace deckhand::runtime

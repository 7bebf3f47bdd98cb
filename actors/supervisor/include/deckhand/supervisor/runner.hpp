#pragma once

/// The worker thread that does everything that blocks: runc invocations,
/// file writes, and reaping. It is the only thread that calls waitpid(), and
/// it does so only between tasks, so it never steals the exit status of a
/// runc child that the OCI driver is waiting for.
///
/// Exits are observed two ways:
///   - containers this process started are its children (it is a subreaper):
///     SIGCHLD (through a signalfd) then waitpid() gives their exit status;
///     unknown orphans are reaped and ignored;
///   - containers adopted from a previous supervisor are not its children: a
///     pidfd tells when they exit, but not how (exit_info::unknown()).
///
/// SIGCHLD must be blocked in every thread (block_sigchld() first thing in
/// main) for the signalfd to see it; without that, exits are still noticed
/// by a periodic reap, only later.
///
/// Container output: launch() hands the container its FIFOs (see pod_dir.hpp)
/// and tells the log pump which file the instance writes; after an exit the
/// pump drains the pipes into that file before exited() is reported. Unless
/// the pump was given a thread of its own (log_pump::start), it runs on the
/// runner's thread, its pipes polled in the runner's loop (one thread less
/// per pod; see loop() in runner.cpp).
///
/// OOM kills: the container's cgroup OOM-kill counter is read before it
/// starts and again after it exits (before `runc delete` removes the
/// cgroup); an exit with code 137 while the counter went up is reported with
/// reason OOMKilled.

#include <poll.h>
#include <sys/types.h>

#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "deckhand/common/process.hpp"
#include "deckhand/oci/runc.hpp"
#include "deckhand/supervisor/log_pump.hpp"
#include "deckhand/supervisor/pod_state.hpp"
#include "deckhand/supervisor/termination.hpp"

namespace deckhand::supervisor {

/// Blocks SIGCHLD in the calling thread and the threads it starts later.
void block_sigchld();

/// What the runner reports, called on the runner thread (forward only).
struct runner_events {
  std::function<void(const std::string& name, bool running)> probed;
  std::function<void(const std::string& name)> started;
  std::function<void(const std::string& name, const std::string& message)> start_failed;
  std::function<void(const std::string& name, const exit_info& e)> exited;
};

class runner {
 public:
  /// `pid_dir` receives the init pid files of launched containers;
  /// `log_fields` ("pod=NS/NAME uid=UID") starts every log line; `pod_uid`
  /// names the containers' cgroups when their bundles do not; `logs` (not
  /// owned, may be null) copies container output into log files.
  runner(oci::runc rt, std::filesystem::path pid_dir, std::string log_fields,
         std::string pod_uid = {}, log_pump* logs = nullptr);
  ~runner();
  runner(const runner&) = delete;
  runner& operator=(const runner&) = delete;

  void start(runner_events events);
  /// Like start(), but runs the loop on the calling thread (the supervisor's
  /// main thread, which would otherwise only wait for signals: one thread
  /// less per pod). Returns when `stop_fd` becomes readable or stop() is
  /// called from another thread.
  void run_here(runner_events events, int stop_fd);
  /// Finishes the task at hand and stops; containers are left as they are.
  void stop();
  /// One more event source for the loop, set before it starts: `fd` is
  /// polled for POLLIN, and `run` is called on every turn of the loop (after
  /// the tasks) and returns the longest the loop may then sleep, in ms (-1:
  /// no limit). The pod supervisor runs its CAF scheduler this way
  /// (host::scheduler_loop), on this thread instead of one of its own.
  void add_source(int fd, std::function<int()> run);
  /// The same for a source whose fds change (the transport bridge's
  /// sockets): `fill` appends them on every turn.
  void add_source(std::function<void(std::vector<struct pollfd>&)> fill, std::function<int()> run);

  /// `runc state`: reports probed(); watches a running container's pid;
  /// removes a stopped one. Output still in the pipes goes to `target`.
  void probe(const std::string& name, const std::string& runtime_id,
             const action::log_target& target);
  /// Points the log pump at `target`, force-removes a stale container of that
  /// id, and `runc run -d`s the bundle with the FIFOs as stdout and stderr;
  /// reports started() or start_failed().
  void launch(const std::string& name, const std::string& runtime_id,
              const std::filesystem::path& bundle, const action::log_target& target);
  /// `runc kill`; failures (the container already gone) are only logged.
  void kill(const std::string& name, const std::string& runtime_id, int signal, bool all);
  /// Any other blocking work, in order with the rest.
  void post(std::function<void()> task);

 private:
  struct watched {
    std::string name;
    std::string runtime_id;
    common::unique_fd pidfd;  ///< adopted containers only
    std::string cgroup;       ///< linux.cgroupsPath; empty: unknown
    uint64_t oom_kills_before = 0;
  };

  void open_fds();
  void loop(int stop_fd = -1);
  void reap();
  void on_exit(pid_t pid, exit_info e);
  /// The container's cgroup path: its bundle's linux.cgroupsPath, else
  /// oci::container_cgroup_path(pod_uid, name).
  std::string cgroup_of(const std::filesystem::path& bundle, const std::string& name) const;
  /// Lets the pump drain an exited container's output into its file (inline
  /// when the pump shares this thread).
  void finish_log(const std::string& name);

  oci::runc rt_;
  std::filesystem::path pid_dir_;
  std::string log_fields_;
  std::string pod_uid_;
  log_pump* logs_ = nullptr;
  struct source {
    std::function<void(std::vector<struct pollfd>&)> fill;
    std::function<int()> run;
  };
  std::vector<source> sources_;
  runner_events events_;
  std::mutex mu_;
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  common::unique_fd wake_;
  common::unique_fd sigchld_;
  std::map<pid_t, watched> children_;  ///< our children: container inits
  std::map<pid_t, watched> adopted_;   ///< watched through pidfds
  std::thread thread_;
};

}  // namespace deckhand::supervisor

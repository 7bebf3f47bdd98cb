#pragma once

/// Shared pieces of the node benchmarks (bench_pod_start, bench_density): a
/// real deckhand node started with `deckhand up` on a temporary data
/// directory, a small HTTP client for its API server, a pod watch that
/// timestamps events as they arrive, a busybox image and a bare runc bundle,
/// and per-process memory (PSS) readings.
///
/// Everything a benchmark starts is stopped, and everything it creates is
/// removed, by `node::shutdown()` (also called from the destructor and after
/// SIGINT/SIGTERM): `deckhand up`'s own SIGTERM path first (it stops the
/// components and runs `deckhand-runtime --cleanup-all`), then, for anything
/// left, SIGKILL by pid to the processes whose command line names this data
/// directory and another `--cleanup-all`.

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/testing/run_program.hpp"

namespace deckhand::bench {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

using deckhand::testing::command_result;
using deckhand::testing::run_program;

/// The directory of the running executable (/proc/self/exe).
fs::path self_dir();

/// SIGINT/SIGTERM set a flag instead of killing the benchmark, so that the
/// node is still cleaned up; long waits check `interrupted()`.
void install_signal_handlers();
bool interrupted();

/// One line of the machine's identity for the header of a table.
std::string host_line();

/// Milliseconds between two time points, as a double.
inline double ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

/// min, p50, p99, max, mean of a sample (nearest-rank percentiles).
struct summary {
  std::size_t n = 0;
  double min = 0, p50 = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};
summary summarize(std::vector<double> v);

/// A busybox root filesystem (make_busybox_rootfs) under `dir`/rootfs and an
/// OCI layout of it named `ref` under `dir`/layout. Returns an error message
/// or empty.
std::string make_busybox_image(const fs::path& dir, const std::string& ref);

/// A bare runc bundle around `rootfs` running `args`: `runc spec`'s default
/// config (pid, ipc, uts, mount and network namespaces, no terminal) with the
/// process arguments replaced. Returns an error message or empty.
std::string make_runc_bundle(const fs::path& bundle, const fs::path& rootfs,
                             const std::vector<std::string>& args);

/// A minimal HTTP/1.1 client for the API server (keep-alive, one connection).
class api_client {
 public:
  explicit api_client(std::string base_url);
  ~api_client();
  api_client(const api_client&) = delete;
  api_client& operator=(const api_client&) = delete;

  struct response {
    int status = 0;  // 0: no response (connection error)
    std::string body;
    std::string error;
  };
  response get(const std::string& path);
  response post(const std::string& path, const nlohmann::json& body);
  response del(const std::string& path, const nlohmann::json& body = nullptr);

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A watch on pods (GET ...?watch=true) read by its own thread. Every event
/// is timestamped when its line arrives and handed to `on_event` on that
/// thread; the watch reconnects from the last resourceVersion it saw.
class pod_watch {
 public:
  using handler = std::function<void(const std::string& type, const nlohmann::json& pod,
                                     clock_type::time_point at)>;
  pod_watch(std::string base_url, std::string path_and_query, handler on_event);
  ~pod_watch();
  /// Blocks until the watch's first response has been received (the stream
  /// is open), or returns false after `deadline`.
  bool wait_open(std::chrono::milliseconds deadline);
  void stop();

 private:
  void run();
  std::string base_url_, path_;
  handler on_event_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::string resource_version_;
  void* client_ = nullptr;  // httplib::Client*, guarded by mu_
  std::thread thread_;
};

struct node_options {
  fs::path bin_dir;
  std::string node_name = "bench-node";
  /// Extra YAML appended to the launcher config.
  std::string extra_config;
  /// Extra kubelet flags (added to the kubelet's args list).
  std::vector<std::string> kubelet_args;
  bool keep_data = false;  // leave the data dir (and logs) for inspection
};

/// A node started with `deckhand up`.
class node {
 public:
  explicit node(node_options opts);
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Starts `deckhand up` and waits for the API server URL and for the node
  /// to register. Returns an error message or empty.
  std::string start(std::chrono::milliseconds deadline = std::chrono::seconds(60));

  /// Stops the node and removes every pod; returns what could not be
  /// removed (empty when clean). Idempotent.
  std::vector<std::string> shutdown();

  const fs::path& data() const { return data_; }
  const std::string& api_url() const { return api_url_; }
  pid_t up_pid() const { return up_pid_; }
  fs::path up_log() const { return fs::path(data_.string() + ".up.log"); }

  /// `deckhand ARGS... --data-dir DATA`.
  command_result cli(std::vector<std::string> args,
                     std::chrono::milliseconds deadline = std::chrono::seconds(60));

  /// Imports an OCI layout as `name`. Returns an error message or empty.
  std::string import_image(const fs::path& layout, const std::string& name);

  /// The live processes whose command line names this data dir, by pid,
  /// with their argv[0] basename (`deckhand`, `deckhand-kubelet`, ...).
  std::map<pid_t, std::string> processes() const;

  std::vector<std::string> leftovers() const;

 private:
  node_options opts_;
  fs::path data_;
  fs::path config_;
  std::string api_url_;
  pid_t up_pid_ = -1;
  bool shut_down_ = false;
};

/// Proportional set size of a process in KiB (/proc/PID/smaps_rollup), -1 if
/// it cannot be read.
long pss_kib(pid_t pid);
/// Resident set size of a process in KiB (VmRSS), -1 if unknown.
long rss_kib(pid_t pid);

/// User + system CPU time of a process so far, in seconds (-1 if gone).
double cpu_seconds(pid_t pid);

/// The basename of argv[0] of a process ("" if gone).
std::string proc_argv0(pid_t pid);
/// The full command line, arguments separated by spaces.
std::string proc_cmdline(pid_t pid);

}  // namespace deckhand::bench

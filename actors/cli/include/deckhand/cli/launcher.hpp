#pragma once

/// `deckhand up`: the node's init. Starts the component processes (each in its
/// own process group, so a terminal's Ctrl-C reaches only the launcher),
/// restarts any that exits with back-off, reaps every child re-parented to it
/// (it is a child subreaper, so orphaned pod supervisors and containers end up
/// here), keeps DATA/run/up.json current, and on SIGINT/SIGTERM stops the
/// components in order: kubelet, proxy, runtime, then (unless pods are kept)
/// `deckhand-runtime --cleanup-all`, then the API server.
///
/// Optional launcher configuration (`--config FILE`, YAML):
///
///   restartBackoff:
///     initialMilliseconds: 200
///     maxMilliseconds: 10000
///     resetAfterSeconds: 30
///   stopTimeoutSeconds: 5
///   cleanupTimeoutSeconds: 120
///   components:
///     apiserver:
///       args: ["--log-level", "debug"]   # appended after --data-dir DIR
///     proxy:
///       enabled: false
///   staticPodPath: /etc/deckhand/manifests   # kubelet --static-pod-path

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/common/backoff.hpp"
#include "deckhand/common/result.hpp"

namespace CLI {
class App;
}

namespace deckhand::cli {

/// How `--demo` is carried out once the components are started: make sure
/// the demo image is on the node and apply the demo pod, returning early once
/// `cancel` is set.
using demo_runner =
    std::function<void(const std::filesystem::path& data_dir, const std::atomic<bool>& cancel)>;

/// One component process as the launcher runs it.
struct component_spec {
  std::string name;  ///< apiserver, runtime, kubelet, proxy
  std::vector<std::string> extra_args;
  bool enabled = true;
};

struct up_options {
  std::filesystem::path data_dir;
  std::filesystem::path bin_dir;
  bool demo = false;
  /// Required when `demo` is set.
  demo_runner run_demo;
  bool keep_pods = false;
  /// A component's restart schedule: 200 ms after the first failure,
  /// doubling up to 10 s; 30 s of uptime makes a process healthy again.
  common::backoff_policy backoff{std::chrono::milliseconds(200), std::chrono::seconds(10),
                                 std::chrono::seconds(30)};
  std::chrono::milliseconds stop_timeout{5000};
  std::chrono::milliseconds cleanup_timeout{120000};
  /// In start order.
  std::vector<component_spec> components = {
      {"apiserver", {}, true}, {"runtime", {}, true}, {"kubelet", {}, true}, {"proxy", {}, true}};
};

/// The delay before restarting a component that exited at `now` (advancing
/// `b`): a run of the policy's `reset_after` since `started` starts the
/// schedule over; a component that never started (nullopt) keeps backing off.
std::chrono::milliseconds
restart_delay(common::backoff& b, std::optional<std::chrono::steady_clock::time_point> started,
              std::chrono::steady_clock::time_point now);

/// The kubelet's hard eviction thresholds under `deckhand up` unless its args
/// set --eviction-hard (Kubernetes' nodefs.available<10% is too eager for a
/// node sharing a workstation's disk).
inline constexpr const char* local_eviction_hard = "memory.available<100Mi,nodefs.available<1Gi";

/// The components stopped first on shutdown, in order; the API server goes
/// last, after the pods are cleaned up.
const std::vector<std::string>& stop_order();

/// `BIN/deckhand-NAME`.
std::filesystem::path component_binary(const std::filesystem::path& bin_dir,
                                       const std::string& name);

/// argv of a component: its binary, `--data-dir DATA`, then its extra args.
std::vector<std::string> component_argv(const up_options& opts, const component_spec& spec);

/// argv of the pod cleanup run on shutdown:
/// `deckhand-runtime --data-dir DATA --cleanup-all`.
std::vector<std::string> cleanup_argv(const up_options& opts);

/// The flags of `deckhand up` that are not fields of up_options.
struct up_flags {
  std::string bin_dir;
  std::string config_file;
};

/// Declares `deckhand up`'s flags on `app` (shared by `deckhand up` and the
/// `deckhand-launcher` executable it hands over to). `up.data_dir` holds the
/// default.
void add_up_options(CLI::App& app, up_options& up, up_flags& flags);

/// After parsing: absolute data and bin dirs (bin dir defaulting to
/// `default_bin_dir`), then the configuration file, if any.
result<up_options> finish_up_options(up_options up, const up_flags& flags,
                                     const std::filesystem::path& default_bin_dir);

/// A demo_runner that runs `deckhand demo --data-dir DATA` (the `deckhand`
/// executable at `deckhand_binary`) as a child process and waits for it; a
/// cancel sends it SIGTERM. The lean launcher uses it so that it does not
/// link the image and API client code that the demo needs.
demo_runner demo_by_subprocess(std::filesystem::path deckhand_binary);

/// Applies a launcher configuration file (format above) on top of `opts`.
result<up_options> load_up_config(const std::filesystem::path& file, up_options opts);

/// The directory holding the running executable (dirname of /proc/self/exe).
std::filesystem::path self_bin_dir();

/// "exit 1", "signal 9 (Killed)" for a waitpid status.
std::string describe_wait_status(int status);

/// Runs the node until SIGINT/SIGTERM. Returns the process exit code; fails
/// (non-zero, message on stderr) when another launcher holds DATA/run/up.lock.
int run_up(const up_options& opts);

}  // namespace deckhand::cli

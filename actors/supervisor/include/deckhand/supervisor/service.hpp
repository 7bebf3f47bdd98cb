#pragma once

/// The pod supervisor process: one per pod, the parent (subreaper) of the
/// pod's containers. Started by the runtime as
///
///   deckhand-pod-supervisor --data-dir D --pod-uid UID [--oci-runtime runc]
///       [--backoff-initial-ms 10000] [--backoff-max-ms 300000]
///       [--backoff-reset-ms 600000] [--container-log-max-size 10Mi]
///       [--container-log-max-files 5]
///
/// It reads pod.json (and, after a restart of its own, status.json and the
/// stopping marker) from the pod directory, runs or re-adopts the
/// containers, copies their output into CRI-format log files
/// (`DATA/logs/pods/NS_NAME_UID/CONTAINER/N.log`, rotated by size), applies
/// the restart policy with back-off, writes status.json
/// after every change and notifies the kubelet. On its ROUTER
/// (pod_dir::supervisor_endpoint) it answers supervisor_status_request and
/// supervisor_stop_request. SIGTERM/SIGINT make it exit without touching the
/// containers.

#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "deckhand/common/result.hpp"
#include "deckhand/host/config.hpp"
#include "deckhand/supervisor/backoff.hpp"
#include "deckhand/supervisor/cri_log.hpp"

namespace deckhand::supervisor {

struct service_options {
  std::string pod_uid;
  std::string oci_runtime = "runc";
  int64_t backoff_initial_ms = 10'000;
  int64_t backoff_max_ms = 300'000;
  int64_t backoff_reset_ms = 600'000;
  std::string container_log_max_size = "10Mi";
  int container_log_max_files = 5;

  backoff_config backoff() const {
    return {millis(backoff_initial_ms), millis(backoff_max_ms), millis(backoff_reset_ms)};
  }

  /// The log limits, or `errc::invalid` for a bad size or fewer than 2 files
  /// (the kubelet's own rule).
  result<supervisor::log_limits> container_log_limits() const;
};

/// Adds --pod-uid, --oci-runtime, the --backoff-* and --container-log-*
/// flags to `app`.
void add_service_options(CLI::App& app, service_options& opts);

/// Runs the supervisor until SIGTERM/SIGINT; returns the process exit code.
/// Call host::block_signals() and block_sigchld() first, before any thread
/// exists.
int run(const host::common_options& common, const service_options& opts);

}  // namespace deckhand::supervisor

#pragma once

/// What the runtime is told on its command line.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace deckhand::runtime {

struct runtime_options {
  std::filesystem::path data_dir;
  /// The OCI runtime binary (name in PATH or a path): runc or crun.
  std::string oci_runtime = "runc";
  /// deckhand-pod-supervisor; empty: next to /proc/self/exe.
  std::filesystem::path supervisor_bin;
  /// Appended to every supervisor's command line (e.g. back-off flags).
  std::vector<std::string> supervisor_args;
  /// The supervisor zygote's socket (host/zygote.hpp), set once it runs;
  /// empty: supervisors are fork/exec'd.
  std::filesystem::path supervisor_zygote;
  /// "oci" (containers through runc/crun), "process" (plain processes, no
  /// privileges) or "sim" (no processes at all; see sim_backend.hpp).
  std::string backend = "oci";
  /// The node's pod CIDR: pod IPs come from it (the bridge takes the first).
  std::string pod_cidr = "10.88.0.0/16";
  /// The node bridge pod veths attach to; it holds the CIDR's first address.
  std::string bridge_name = "deckhand0";
  /// Pods' /etc/resolv.conf: these nameservers and search domains when given,
  /// else a copy of `resolv_conf` (the node's) without loopback nameservers,
  /// which a pod cannot reach from its own network namespace.
  std::vector<std::string> dns_nameservers;
  std::vector<std::string> dns_searches;
  std::filesystem::path resolv_conf = "/etc/resolv.conf";
  /// Registry credentials for pulls (format: image::pull_options); empty: none.
  std::filesystem::path registry_credentials;
  /// Registries (host:port) pulled from over plain HTTP; loopback always is.
  std::vector<std::string> insecure_registries;
  /// Image GC (Kubernetes' --image-gc-high/low-threshold): above `high`
  /// percent of the image filesystem used, unused images are removed, least
  /// recently used first, until below `low`. Checked every `image_gc_period`
  /// (0: never).
  int image_gc_high_threshold = 85;
  int image_gc_low_threshold = 80;
  std::chrono::milliseconds image_gc_period{std::chrono::minutes(5)};
};

/// `supervisor_bin`, or deckhand-pod-supervisor in the directory of the
/// running executable.
std::filesystem::path supervisor_binary(const runtime_options& opts);

}  // namespace deckhand::runtime

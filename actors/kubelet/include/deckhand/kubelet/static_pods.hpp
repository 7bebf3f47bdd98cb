#pragma once

/// Static pods: pods the kubelet runs from manifest files in `staticPodPath`
/// (Kubernetes' file source), without the API server, and their mirror pods
/// (read-only copies in the API server that show users what runs).
///
/// This header holds the pure parts, testable without actors or files:
///   - parse_static_pod / desired_static_pods: directory contents -> the pods
///     to run, named `<name>-<node>`, uid = config hash of (content, node);
///   - mirror_reconciler: desired static pods + what the API server shows ->
///     the mirror_pod_update requests still to send.
/// The actor that polls the directory and sends those requests is in
/// static_pod_source.hpp.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/model.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet {

/// Kubernetes' annotations on static and mirror pods.
inline constexpr const char* config_source_annotation = "kubernetes.io/config.source";
inline constexpr const char* config_hash_annotation = "kubernetes.io/config.hash";
inline constexpr const char* config_seen_annotation = "kubernetes.io/config.seen";
inline constexpr const char* config_mirror_annotation = "kubernetes.io/config.mirror";

/// Manifests larger than this are refused (a pod manifest is a few KiB).
inline constexpr std::size_t max_manifest_bytes = 1 << 20;
/// At most this many files of the directory are read.
inline constexpr std::size_t max_manifest_files = 1000;

/// One file of the static pod directory as read.
struct manifest_file {
  std::string name;  ///< file name within the directory
  std::string content;
  std::string read_error;  ///< non-empty if the file could not be read
};

/// A static pod and the file it comes from.
struct static_pod {
  std::string file;
  wire::pod pod;
};

/// A manifest the kubelet cannot run, and why.
struct manifest_problem {
  std::string file;
  std::string message;
};

/// What a directory asks for: pods in file-name order, and the bad files.
struct static_pod_set {
  std::vector<static_pod> pods;
  std::vector<manifest_problem> problems;
};

/// The config hash of a manifest on a node: 32 hex digits (128 bits of
/// SHA-256 of node name and content). It is the static pod's uid, so the same
/// file on the same node is the same pod, also across kubelet restarts.
std::string static_pod_hash(std::string_view content, const std::string& node_name);

/// Parses one manifest (YAML or JSON, exactly one Pod) into the pod to run:
/// name `<metadata.name>-<node>`, namespace defaulted to "default",
/// spec.nodeName = node, uid and `kubernetes.io/config.hash` = the config
/// hash, `kubernetes.io/config.source: file`, Kubernetes' pod defaults, and
/// Kubernetes' validation (errors name the file and the field).
result<wire::pod> parse_static_pod(std::string_view content, const std::string& file,
                                   const std::string& node_name);

/// All pods of a directory's files. Files that do not parse, fail validation
/// or repeat another file's namespace/name (the later file in name order
/// loses, as in Kubernetes) are problems; they never affect the other pods.
static_pod_set desired_static_pods(const std::vector<manifest_file>& files,
                                   const std::string& node_name);

/// Reads the regular files of `dir` (following symlinks), skipping names
/// that start with '.', sorted by name. errc::not_found if `dir` does not
/// exist; other errors if it cannot be listed. A file that cannot be read (or
/// is larger than max_manifest_bytes) comes back with `read_error` set.
result<std::vector<manifest_file>> read_manifest_dir(const std::filesystem::path& dir);

/// Whether `p` is a mirror pod (has the `kubernetes.io/config.mirror` annotation).
bool is_mirror_pod(const wire::pod& p);

/// The mirror pod of a static pod: the same object with
/// `kubernetes.io/config.mirror: <hash>`, without uid or status (the API
/// server assigns its own uid; status follows through the status manager).
wire::pod mirror_pod_of(const wire::pod& static_pod);

/// Decides which mirror pods to create, replace or remove so that the API
/// server shows exactly one mirror pod per static pod. It remembers the
/// revision of each acknowledged write, so that a feed lagging behind its own
/// writes causes no repeated request, while a later deletion (a user's
/// `kubectl delete`) does.
class mirror_reconciler {
 public:
  /// One request to send.
  struct action {
    std::string key;   ///< namespace/name
    std::string hash;  ///< the mirror's config hash (the static pod's uid)
    wire::mirror_pod_update update;
  };

  /// The static pods that should have mirrors.
  void set_desired(const std::vector<wire::pod>& static_pods);

  /// A list of the node's mirror pods as of `revision` (mirrors missing from
  /// it are gone).
  void observe_snapshot(const std::vector<wire::pod>& mirrors, uint64_t revision);

  /// One watch event ("ADDED", "MODIFIED", "DELETED") on a mirror pod.
  void observe_event(const std::string& type, const wire::pod& mirror, uint64_t revision);

  /// The API server acknowledged the action for `key` at `revision`.
  void acknowledged(const action& a, uint64_t revision);

  /// The action for `key` failed; it is not retried before `retry_failed`.
  void failed(const std::string& key);

  /// Allows failed keys to be retried (the source calls it on its timer).
  void retry_failed() { failed_.clear(); }

  /// The requests to send now; each key is then in flight until
  /// acknowledged() or failed().
  std::vector<action> next();

  /// Keys with a request in flight (for tests).
  const std::set<std::string>& inflight() const { return inflight_; }

 private:
  struct observed {
    bool present = false;
    bool deleting = false;
    std::string hash;
    uint64_t revision = 0;
  };
  struct confirmed {
    std::string hash;  ///< empty: confirmed absent
    uint64_t revision = 0;
  };
  void observe(const std::string& key, const wire::pod* mirror, uint64_t revision);

  std::map<std::string, wire::pod> desired_;  // by key
  std::map<std::string, observed> observed_;
  std::map<std::string, confirmed> confirmed_;
  std::set<std::string> inflight_;
  std::set<std::string> failed_;
};

/// namespace/name of a pod.
std::string pod_key(const wire::pod& p);

}  // namespace deckhand::kubelet

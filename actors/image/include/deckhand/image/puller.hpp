#pragma once

/// Pulling images from OCI distribution registries (Docker Hub, registry:2,
/// Harbor, ...) into the node's image store, and Kubernetes-style image GC.
///
/// A pull resolves the reference's manifest (an index or manifest list picks
/// the node's platform), fetches the config and layers, verifies every blob's
/// sha256 digest and size while streaming it into the store's scratch space,
/// and only then renames it into place: an interrupted pull leaves no corrupt
/// blob behind, and the next pull starts over from what is verified.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/image/image_record.hpp"
#include "deckhand/image/image_store.hpp"

namespace deckhand::image {

/// Where a pull is; reported from the pulling thread.
struct pull_progress {
  std::string blob;  ///< digest being fetched; empty outside downloads
  int64_t blob_done = 0, blob_total = 0;
  int64_t done = 0, total = 0;  ///< bytes of the whole image (total 0 until the manifest is read)
  std::string phase;            ///< "resolving", "downloading", "unpacking", "done"
};
using progress_fn = std::function<void(const pull_progress&)>;

struct pull_options {
  /// Docker-config-like JSON file: `{"auths": {"host:port": {"auth": "<b64 user:pass>"}
  /// | {"username": ..., "password": ...}}, "secrets": {"<name>": {"auths": {...}}}}`.
  /// The top-level auths are node-wide; a secret's auths apply when its name is
  /// passed to `pull`. Empty: no credentials file.
  std::filesystem::path credentials_file;
  /// host[:port] spoken to over plain http; 127.0.0.1/localhost/[::1] always are.
  std::vector<std::string> insecure_registries;
  std::string os = "linux";
  std::string architecture;  ///< empty: this machine's, in OCI names (amd64, arm64...)
  std::string variant;
  uint64_t max_manifest_bytes = 4u << 20;
  uint64_t max_blob_bytes = 8ull << 30;
  /// Per layer, uncompressed (the unpacker's limit).
  uint64_t max_unpacked_layer_bytes = 16ull << 30;
  /// Per HTTP request: abort when no progress for this long (not a total deadline).
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};
};

/// Pulls images into one store. One instance is meant to be shared by all
/// pulls of a process: it de-duplicates concurrent downloads.
class puller {
 public:
  puller(image_store& store, pull_options opts);
  ~puller();
  puller(const puller&) = delete;
  puller& operator=(const puller&) = delete;

  /// Fetches `ref` (normalized like docker: busybox -> docker.io/library/busybox:latest)
  /// into the store and returns its record. Thread-safe: concurrent pulls of the same
  /// image, or of images sharing a layer, download each blob once. `secrets` names
  /// entries of the credentials file's "secrets" map to try (imagePullSecrets).
  /// Errors: errc::invalid (bad reference, bad manifest, digest/size mismatch,
  /// rejected layer, bad credentials file), errc::not_found (no such image or
  /// platform), errc::unavailable (network, registry down, authentication
  /// failed: the message then starts with "unauthorized"), errc::too_large.
  result<image_record> pull(const std::string& ref, const std::vector<std::string>& secrets = {},
                            const progress_fn& progress = {});

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

/// The OCI architecture name of this machine (amd64, arm64, arm, 386, ...).
std::string host_architecture();

struct gc_policy {
  int high_percent = 85;
  int low_percent = 80;
  /// Images used (or pulled) more recently than this are kept, like the
  /// kubelet's imageMinimumGCAge.
  std::chrono::seconds min_age{0};
};

struct gc_report {
  std::vector<std::string> removed;  ///< image ids, in removal order
  uint64_t freed_bytes = 0;
  uint64_t usage_percent_before = 0, usage_percent_after = 0;
};

/// Kubernetes' image GC: when the filesystem holding the store is above high_percent used,
/// remove images whose id is not in `in_use_ids`, least recently used first, until below
/// low_percent (or nothing removable is left). `usage_percent` (test hook): if set, used
/// instead of statvfs to read the current usage (called after each removal).
/// As in the kubelet, GC starts at usage >= high_percent and stops at usage <= low_percent.
/// `freed_bytes` counts the blobs deleted (not the unpacked root filesystems).
result<gc_report> collect_images(image_store& store, const gc_policy& policy,
                                 const std::set<std::string>& in_use_ids,
                                 std::function<int()> usage_percent = {});

}  // namespace deckhand::image

#pragma once

/// The node's image store: content-addressed blobs, an index of named images,
/// and one flattened, read-only root filesystem per image.
///
///   ROOT/blobs/sha256/<hex>     verified blobs (manifests, configs, layers)
///   ROOT/rootfs/<id hex>/       all layers of image <id> applied in order;
///                               the overlay lower dir of its containers
///   ROOT/index.json             names and records, replaced atomically
///   ROOT/index.lock             flock held by whoever mutates the store
///   ROOT/tmp/                   scratch space of the lock holder
///   ROOT/incoming/              the puller's downloads and unpacked rootfs
///                               awaiting commit (puller.hpp); wiped when a
///                               puller is created
///
/// ROOT is `deckhand::paths::image_dir(DATA)`.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/image/image_record.hpp"
#include "deckhand/image/layer.hpp"

namespace deckhand::image {

/// An image whose blobs were fetched and verified by the caller (the puller),
/// handed to `image_store::add_pulled`.
struct pulled_image {
  std::vector<std::string> names;  ///< normalized references
  std::string manifest_digest;
  std::string manifest;  ///< the manifest's bytes (digest verified)
  std::string config_digest;
  std::string config;  ///< the config's bytes (digest verified)
  /// Layer digests in order and their verified files, on the store's filesystem
  /// (they are hard-linked into ROOT/blobs).
  std::vector<std::pair<std::string, std::filesystem::path>> layers;
  /// The layers already applied, on the store's filesystem; renamed into
  /// place (or removed if the image's rootfs exists). Empty: unpacked here.
  std::filesystem::path rootfs;
};

/// Limits applied to everything an import reads.
struct store_options {
  /// Per layer, uncompressed.
  std::uint64_t max_layer_size = std::uint64_t{4} << 30;
  /// An archive (`docker save` or OCI tar) unpacked before import.
  std::uint64_t max_archive_size = std::uint64_t{32} << 30;
  /// index.json, manifests, configs.
  std::uint64_t max_json_size = std::uint64_t{4} << 20;
};

/// The image store rooted at one directory. All members are safe to call from
/// several threads; several processes may share a root (mutations take an
/// flock on ROOT/index.lock, readers see the index replaced atomically).
class image_store {
 public:
  /// Creates ROOT and its subdirectories if needed.
  static result<std::unique_ptr<image_store>> open(const std::filesystem::path& root,
                                                   store_options opts = {});

  /// Imports an image from an OCI image layout directory, an OCI layout tar
  /// archive, or a `docker save` archive. The image is named after its
  /// `org.opencontainers.image.ref.name` annotation (or containerd's
  /// `io.containerd.image.name`, or the archive's RepoTags); `name`, when
  /// given, replaces those. Verifies every blob's digest and size, and every
  /// layer's diff_id. Importing an image that is already stored only adds
  /// names. Nothing is visible until the image is complete.
  result<image_record> import(const std::filesystem::path& source,
                              const std::optional<std::string>& name = std::nullopt);

  /// Records an image pulled from a registry: links its verified layer files
  /// into the store, writes its manifest and config, moves its unpacked rootfs
  /// into place and names it. Verifies the layers' diff_ids when it unpacks
  /// them itself (the caller does so for a prepared `rootfs`).
  result<image_record> add_pulled(pulled_image img);

  /// Marks the image `ref` (any form `find` accepts) as used now: image
  /// garbage collection removes the least recently used images first. Durable.
  result<void> touch(const std::string& ref);

  /// By name (normalized), by `name@sha256:...`, or by a prefix of at least
  /// 12 hex characters of the id or manifest digest (with or without
  /// `sha256:`). An ambiguous prefix is `errc::conflict`.
  result<image_record> find(const std::string& ref) const;

  /// Every image, ordered by id; empty (and logged) if the index is unreadable.
  std::vector<image_record> list() const;

  /// Drops the name `ref` (or, for an id, every name of that image). An image
  /// left without names is deleted, and blobs and root filesystems no image
  /// references any longer are removed.
  result<image_record> remove(const std::string& ref);

  /// ROOT/rootfs/<id hex>: the image's flattened root filesystem.
  std::filesystem::path rootfs_path(const image_record& record) const;

  /// ROOT/blobs/sha256/<hex> for `digest`.
  std::filesystem::path blob_path(const std::string& digest) const;

  const std::filesystem::path& root() const { return root_; }

  image_store(const image_store&) = delete;
  image_store& operator=(const image_store&) = delete;

 private:
  /// Records by id.
  using index_map = std::map<std::string, image_record>;
  struct import_state;

  image_store(std::filesystem::path root, store_options opts);

  result<index_map> load_index() const;
  error save_index(const index_map& idx) const;
  /// Removes blobs and root filesystems that no record references.
  error collect_garbage(const index_map& idx) const;
  result<image_record> import_locked(import_state& st, const std::filesystem::path& source,
                                     const std::optional<std::string>& name);
  /// Unpacks (or adopts `prepared_rootfs`), fsyncs and records the image
  /// whose blobs `st` stored.
  result<image_record> commit_locked(import_state& st,
                                     const std::filesystem::path& prepared_rootfs);
  error import_oci(import_state& st, int srcfd);
  error import_docker(import_state& st, int srcfd);
  result<std::string> ingest(import_state& st, int srcfd, const std::string& rel,
                             const std::string* want_digest, const std::uint64_t* want_size,
                             std::uint64_t limit, std::uint64_t* size_out);
  error ingest_bytes(import_state& st, const std::string& digest, const std::string& bytes);

  std::filesystem::path root_;
  store_options opts_;
  /// Serializes this process's mutations; the flock covers other processes.
  std::mutex mutate_mu_;
  /// Parsed index.json, reused while the file's identity is unchanged.
  mutable std::mutex cache_mu_;
  mutable index_map cache_;
  mutable std::uint64_t cache_ino_ = 0;
  mutable std::int64_t cache_mtime_ns_ = -1;
  mutable std::int64_t cache_size_ = -1;
};

}  // namespace deckhand::image

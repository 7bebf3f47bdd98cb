#pragma once

/// What the store knows about one image.

#include <cstdint>
#include <string>
#include <vector>

namespace deckhand::image {

/// The parts of an OCI image config (`config` object) that the runtime needs
/// to build a container's process.
struct image_config {
  std::vector<std::string> entrypoint;
  std::vector<std::string> cmd;
  std::vector<std::string> env;  ///< `KEY=value`
  std::string working_dir;
  std::string user;                        ///< `uid[:gid]` or a name
  std::string stop_signal;                 ///< `SIGTERM`, empty for the default
  std::vector<std::string> exposed_ports;  ///< `80/tcp`, possibly empty

  bool operator==(const image_config&) const = default;
};

/// One image in the store.
struct image_record {
  std::string id;                  ///< the config digest, `sha256:<hex>`
  std::string manifest_digest;     ///< `sha256:<hex>` of the manifest imported last
  std::vector<std::string> names;  ///< normalized references, sorted
  std::uint64_t size = 0;          ///< bytes of the image's blobs (config + layers)
  std::string os = "linux";
  std::string architecture = "amd64";
  image_config config;
  /// Every blob the image keeps alive: manifests, config, layers.
  std::vector<std::string> blobs;
  /// Unix time in milliseconds when the image was last imported, pulled or used by a
  /// sandbox (`image_store::touch`): the order of image garbage collection.
  std::int64_t last_used = 0;

  /// The hex part of `id`: the name of the image's rootfs directory.
  std::string id_hex() const { return id.size() > 7 ? id.substr(7) : id; }
};

}  // namespace deckhand::image

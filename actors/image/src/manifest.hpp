#pragma once

/// JSON documents of the OCI image spec and Docker's save format, as far as
/// the store reads and writes them. Parsing never throws: malformed input
/// becomes `errc::invalid`.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/image/image_record.hpp"

namespace deckhand::image::detail {

namespace media {
inline constexpr const char* oci_index = "application/vnd.oci.image.index.v1+json";
inline constexpr const char* oci_manifest = "application/vnd.oci.image.manifest.v1+json";
inline constexpr const char* oci_config = "application/vnd.oci.image.config.v1+json";
inline constexpr const char* oci_layer = "application/vnd.oci.image.layer.v1.tar";
inline constexpr const char* oci_layer_gzip = "application/vnd.oci.image.layer.v1.tar+gzip";
inline constexpr const char* oci_layer_zstd = "application/vnd.oci.image.layer.v1.tar+zstd";
inline constexpr const char* docker_list =
    "application/vnd.docker.distribution.manifest.list.v2+json";
inline constexpr const char* docker_manifest =
    "application/vnd.docker.distribution.manifest.v2+json";
inline constexpr const char* docker_config = "application/vnd.docker.container.image.v1+json";
}  // namespace media

inline constexpr const char* ref_name_annotation = "org.opencontainers.image.ref.name";
inline constexpr const char* containerd_name_annotation = "io.containerd.image.name";

/// A content descriptor.
struct descriptor {
  std::string media_type;
  std::string digest;  ///< validated `sha256:<hex>`
  std::uint64_t size = 0;
  std::map<std::string, std::string> annotations;
  std::string os, architecture, variant;  ///< from `platform`, in indexes
};

/// An image index (OCI) or manifest list (Docker).
struct index_doc {
  std::vector<descriptor> manifests;
};

struct manifest_doc {
  std::string media_type;
  descriptor config;
  std::vector<descriptor> layers;
};

/// The parts of an image config the store keeps.
struct config_doc {
  std::string os, architecture;
  image_config config;
  std::vector<std::string> diff_ids;
};

/// One entry of a `docker save` manifest.json.
struct docker_save_entry {
  std::string config;  ///< path inside the archive
  std::vector<std::string> repo_tags;
  std::vector<std::string> layers;  ///< paths inside the archive
};

bool is_index_type(const std::string& mt);
bool is_manifest_type(const std::string& mt);
bool is_layer_type(const std::string& mt);

result<index_doc> parse_index(const std::string& text);
result<manifest_doc> parse_manifest(const std::string& text);
result<config_doc> parse_config(const std::string& text);
result<std::vector<docker_save_entry>> parse_docker_save(const std::string& text);
/// The mediaType a manifest-or-index document declares about itself, or a
/// guess from its shape when it declares none.
std::string sniff_media_type(const std::string& text);

std::string render_config(const config_doc& cfg);
std::string render_manifest(const manifest_doc& m);
std::string render_index(const index_doc& idx);

/// The store's own index file.
std::string render_store_index(const std::map<std::string, image_record>& images);
result<std::map<std::string, image_record>> parse_store_index(const std::string& text);

}  // namespace deckhand::image::detail

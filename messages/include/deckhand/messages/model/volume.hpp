#pragma once

/// Pod volumes and a container's mounts of them (emptyDir, hostPath, downwardAPI).

#include <cstdint>
#include <string>
#include <vector>

#include "deckhand/messages/fields.hpp"
#include "deckhand/messages/model/container_env.hpp"

namespace deckhand::wire {

struct volume_mount {
  static constexpr const char* type_name = "volume_mount";
  std::string name;
  std::string mount_path;
  bool read_only = false;
  std::string sub_path;
  static constexpr auto fields() {
    return std::make_tuple(
        field("name", &volume_mount::name), field("mountPath", &volume_mount::mount_path),
        field("readOnly", &volume_mount::read_only), field("subPath", &volume_mount::sub_path));
  }
};

struct empty_dir_volume_source {
  static constexpr const char* type_name = "empty_dir_volume_source";
  std::string medium;        ///< "" (node disk) or "Memory" (tmpfs)
  int_or_string size_limit;  ///< a quantity, e.g. "64Mi"
  static constexpr auto fields() {
    return std::make_tuple(field("medium", &empty_dir_volume_source::medium),
                           field("sizeLimit", &empty_dir_volume_source::size_limit));
  }
};

struct host_path_volume_source {
  static constexpr const char* type_name = "host_path_volume_source";
  std::string path;
  std::string type;  ///< "", DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice,
                     ///< BlockDevice
  static constexpr auto fields() {
    return std::make_tuple(field("path", &host_path_volume_source::path),
                           field("type", &host_path_volume_source::type));
  }
};

struct downward_api_volume_file {
  static constexpr const char* type_name = "downward_api_volume_file";
  std::string path;
  opt<object_field_selector> field_ref;
  opt<resource_field_selector> resource_field_ref;
  opt<int32_t> mode;
  static constexpr auto fields() {
    return std::make_tuple(field("path", &downward_api_volume_file::path),
                           field("fieldRef", &downward_api_volume_file::field_ref),
                           field("resourceFieldRef", &downward_api_volume_file::resource_field_ref),
                           field("mode", &downward_api_volume_file::mode));
  }
};

struct downward_api_volume_source {
  static constexpr const char* type_name = "downward_api_volume_source";
  std::vector<downward_api_volume_file> items;
  opt<int32_t> default_mode;
  static constexpr auto fields() {
    return std::make_tuple(field("items", &downward_api_volume_source::items),
                           field("defaultMode", &downward_api_volume_source::default_mode));
  }
};

/// A pod volume. deckhand supports emptyDir, hostPath and downwardAPI; a
/// volume with none of them set (another source, which decoding ignores) is
/// refused with a clear error when the pod is run.
struct volume {
  static constexpr const char* type_name = "volume";
  std::string name;
  opt<empty_dir_volume_source> empty_dir;
  opt<host_path_volume_source> host_path;
  opt<downward_api_volume_source> downward_api;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &volume::name), field("emptyDir", &volume::empty_dir),
                           field("hostPath", &volume::host_path),
                           field("downwardAPI", &volume::downward_api));
  }
};

}  // namespace deckhand::wire

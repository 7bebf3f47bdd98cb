#pragma once

/// Private to the runtime library: reading and writing the files of a pod's
/// sandbox, shared by the sandbox operations split over several sources.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/result.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/oci/runc.hpp"
#include "deckhand/runtime/options.hpp"
#include "deckhand/runtime/sandbox_record.hpp"

namespace deckhand::runtime {

/// A pod uid usable as a path component and in runc ids.
bool valid_uid(const std::string& uid);

/// The pod's namespace as reported: "default" when empty.
std::string pod_namespace(const std::string& ns);

/// A JSON file decoded as `T`.
template <class T>
result<T> read_json_file(const std::filesystem::path& file) {
  auto text = fsutil::read_file(file, 16u << 20);
  if (!text)
    return std::move(text).err();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded())
    return error{errc::invalid, file.string() + ": not valid JSON"};
  return wire::from_json<T>(j);
}

/// pod.json of the pod directory `dir`.
result<wire::pod> read_pod(const std::filesystem::path& dir);

/// sandbox.json of the pod directory `dir`, if present and valid.
std::optional<sandbox_record> read_record(const std::filesystem::path& dir);

error write_record(const std::filesystem::path& dir, const sandbox_record& rec);

/// The OCI runtime over the node's runc root.
oci::runc make_runc(const runtime_options& opts);

/// Names of the pod's containers from every source that may know them.
std::vector<std::string> container_names(const std::filesystem::path& dir);

/// The node's hostname ("localhost" when it cannot be read).
std::string node_hostname();

/// Deletes the pod's veth and releases its address; a failure is logged and
/// left to the next start-up sweep.
void release_pod_network(const runtime_options& opts, const std::string& uid);

}  // namespace deckhand::runtime

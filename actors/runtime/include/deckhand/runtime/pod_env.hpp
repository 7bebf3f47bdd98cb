#pragma once

/// What a container learns about its pod: `env` with `valueFrom`
/// (`fieldRef`, `resourceFieldRef`, `configMapKeyRef`, `secretKeyRef`),
/// Kubernetes' `$(VAR)` expansion, and the values the downward API exposes.
/// The kubelet's makeEnvironmentVariables and podFieldSelectorRuntimeValue,
/// and k8s.io/kubernetes/third_party/forked/golang/expansion, rule by rule.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/model.hpp"

namespace deckhand::runtime {

/// The prefix of every error that Kubernetes reports as the container
/// waiting reason CreateContainerConfigError (a missing Secret or ConfigMap,
/// a bad fieldPath). It is the start of the run_pod error message, so the
/// kubelet can show the reason and the rest as the message.
inline constexpr const char* create_container_config_error = "CreateContainerConfigError: ";

/// What the node has for pods (its allocatable), the default of a
/// `resourceFieldRef` to a limit the container does not set.
struct node_allocatable {
  int64_t cpu_milli = 0;                ///< number of CPUs * 1000
  int64_t memory_bytes = 0;             ///< total memory
  int64_t ephemeral_storage_bytes = 0;  ///< size of the filesystem of the data dir
};

/// Reads the node's CPUs, memory and the size of `data_dir`'s filesystem.
node_allocatable read_node_allocatable(const std::filesystem::path& data_dir);

/// The pod facts that are not in its spec.
struct pod_env_context {
  std::string pod_ip;   ///< the sandbox's address
  std::string host_ip;  ///< the node's address (pod.status.hostIP when set)
  node_allocatable node;
};

/// A resolved environment: (name, value) in the container's order, values
/// expanded.
using env_list = std::vector<std::pair<std::string, std::string>>;

/// Kubernetes' `$(VAR)` expansion (expansion.Expand with MappingFuncFor):
/// `$(NAME)` becomes NAME's value when `vars` has it and stays as written
/// otherwise, `$$` is an escaped `$`, `$` before anything else stays, an
/// unterminated `$(` stays.
std::string expand_references(const std::string& in,
                              const std::map<std::string, std::string>& vars);

/// The value of a `fieldRef` for an env var: metadata.name, .namespace, .uid,
/// metadata.labels['k'], metadata.annotations['k'] (a missing key is ""),
/// metadata.labels / metadata.annotations (sorted `k="v"` lines),
/// spec.nodeName, spec.serviceAccountName (deckhand has none: ""),
/// status.podIP, status.podIPs, status.hostIP, status.hostIPs. Anything else
/// is `errc::invalid` ("unsupported fieldPath: X").
result<std::string> pod_field_value(const wire::pod& p, const std::string& field_path,
                                    const pod_env_context& ctx);

/// The same for a downwardAPI volume file, which Kubernetes limits to the
/// pod's metadata (name, namespace, uid, labels, annotations).
result<std::string> pod_metadata_field_value(const wire::pod& p, const std::string& field_path);

/// Kubernetes' fieldpath.FormatMap: `key="value"` lines sorted by key, no
/// newline after the last, values quoted like Go's %q.
std::string format_map(const std::map<std::string, std::string>& m);

/// The value of a `resourceFieldRef` against container `c`: limits.cpu,
/// limits.memory, limits.ephemeral-storage, requests.cpu, requests.memory,
/// requests.ephemeral-storage, divided by `divisor` (default 1) and rounded
/// up, as ExtractContainerResourceValue does (cpu in millicores over the
/// divisor's millicores, the others in units). A limit the container does not
/// set is the node's allocatable; a request it does not set is its limit
/// (API defaulting), else 0.
result<std::string> container_resource_value(const wire::resource_field_selector& sel,
                                             const wire::container& c,
                                             const node_allocatable& node);

/// A container of the pod (containers, then initContainers) by name.
const wire::container* find_container(const wire::pod& p, const std::string& name);

/// The container's `env` as the kubelet makes it: in order, a `value` is
/// expanded against the variables defined before it; a `valueFrom` is
/// resolved and not expanded. `configMapKeyRef` and `secretKeyRef` name
/// objects deckhand does not have: with `optional: true` the variable is left
/// out, else the error is `CreateContainerConfigError: secret "NAME" not
/// found` (`configmap "NAME" not found`). Every error starts with
/// create_container_config_error.
result<env_list> resolve_env(const wire::pod& p, const wire::container& c,
                             const pod_env_context& ctx);

/// resolve_env() for a container whose env has only plain values (valueFrom
/// entries resolve to nothing): what needs no pod context.
env_list plain_env(const wire::container& c);

}  // namespace deckhand::runtime

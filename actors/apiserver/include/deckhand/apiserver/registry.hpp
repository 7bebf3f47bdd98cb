#pragma once

/// The object registry: Kubernetes CRUD semantics for Pods, Services, Nodes,
/// Endpoints and EndpointSlices (more kinds through register_kind) on top of
/// the durable store.
///
/// Objects are nlohmann::json exactly as Kubernetes writes them. The registry
/// sets server-owned metadata (uid, creationTimestamp, resourceVersion,
/// generation, deletionTimestamp), applies defaults, validates with
/// Kubernetes' field paths, enforces optimistic concurrency on
/// resourceVersion, and implements graceful pod deletion and binding.
///
/// Thread safety: every method may be called from any thread. Writes are
/// serialised by one lock; reads only take the store's lock. Watch listeners
/// run under the write lock, after the write is durable, strictly in revision
/// order: a listener must be quick and must not call back into the registry's
/// writing methods or subscribe/unsubscribe (it may call get/list).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/api/time.hpp"
#include "deckhand/api/validation.hpp"
#include "deckhand/apiserver/selectors.hpp"
#include "deckhand/apiserver/service_allocator.hpp"
#include "deckhand/apiserver/store.hpp"
#include "deckhand/common/result.hpp"

namespace deckhand::apiserver {

/// Validation failures are Kubernetes' field errors, from the API library.
using api::field_error;
using api::field_errors;

/// What happened to an object.
enum class watch_event_type { added, modified, deleted };

/// "ADDED", "MODIFIED", "DELETED".
const char* to_string(watch_event_type t);

/// One change, as a Kubernetes watch event. For DELETED, `object` is the last
/// state with metadata.resourceVersion set to the deletion's revision.
struct watch_event {
  watch_event_type type = watch_event_type::added;
  std::string kind;  ///< "Pod", "Service", "Node", ...
  nlohmann::json object;
  /// The state before this change (null for ADDED), so that a filtered watch
  /// can tell an object entering or leaving its selection.
  nlohmann::json previous;
  std::uint64_t revision = 0;
};

using watch_listener = std::function<void(const watch_event&)>;

/// What the registry knows about one kind: its REST names (for discovery and
/// URLs) and its strategy (defaulting/validation on create and update).
struct kind_info {
  std::string kind;   ///< "Pod"
  std::string group;  ///< "" for the core group, "discovery.k8s.io", ...
  std::string version = "v1";
  std::string resource;  ///< "pods" (URL path segment, store key prefix)
  std::string singular;  ///< "pod"
  std::vector<std::string> short_names;
  bool namespaced = true;
  /// Whether .status is owned by a separate /status subresource: a normal
  /// update keeps the stored status.
  bool status_subresource = true;
  /// Field paths usable in field selectors besides metadata.name/namespace.
  std::set<std::string> field_selectors;
  /// Defaults and validates a new object (metadata.name/namespace already set).
  std::function<field_errors(nlohmann::json&)> prepare_create;
  /// Defaults and validates `updated` against the stored `old` object.
  std::function<field_errors(const nlohmann::json& old, nlohmann::json& updated)> prepare_update;

  /// "v1" for the core group, "GROUP/VERSION" otherwise (an object's apiVersion).
  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
};

/// Options of a delete, as Kubernetes' DeleteOptions.
struct delete_options {
  /// Grace period; unset means the pod's terminationGracePeriodSeconds.
  /// 0 deletes immediately (force). Negative counts as 1.
  std::optional<std::int64_t> grace_period_seconds;
  std::string uid_precondition;               ///< empty: none
  std::string resource_version_precondition;  ///< empty: none
};

/// The result of a delete: the object, and whether it is gone (false while a
/// graceful pod deletion waits for the node).
struct delete_result {
  nlohmann::json object;
  bool removed = false;
};

/// Items of a list and the store revision they were read at.
struct object_list {
  std::vector<nlohmann::json> items;
  std::uint64_t revision = 0;
};

/// Handle of a listener, and the revision at which it started receiving events.
struct subscription {
  std::uint64_t id = 0;
  std::uint64_t revision = 0;
};

/// Hooks and injectable time.
struct registry_options {
  /// Wall clock for creationTimestamp/deletionTimestamp; system_clock if unset.
  std::function<std::chrono::system_clock::time_point()> clock;
  /// Cluster IPs and node ports of Services. The registry rebuilds it from
  /// the stored Services when constructed, and claims and frees values under
  /// its write lock as Services are created, updated and deleted. Unset:
  /// Services are stored with whatever clusterIP/nodePorts they came with.
  std::shared_ptr<service_allocator> allocator;
};

/// Thread-safe CRUD over the store with Kubernetes semantics.
class registry {
 public:
  /// `s` must outlive the registry.
  explicit registry(store& s, registry_options opts = {});

  /// Adds a kind (Endpoints, Events, ...). Call before serving requests.
  void register_kind(kind_info k);

  /// The kind whose kind name ("Pod") or resource name ("pods") is `name`.
  const kind_info* find_kind(std::string_view name) const;

  /// All registered kinds, in registration order.
  const std::vector<kind_info>& kinds() const { return kinds_; }

  /// Creates an object. `ns` is the namespace from the request ("" means the
  /// object's own or "default"); ignored for cluster-scoped kinds.
  /// On an errc::invalid result, `causes` (if given) receives the field errors.
  result<nlohmann::json> create(std::string_view kind, const std::string& ns, nlohmann::json obj,
                                field_errors* causes = nullptr);

  result<nlohmann::json> get(std::string_view kind, const std::string& ns,
                             const std::string& name) const;

  /// Lists objects of `kind` in `ns` ("" for all namespaces) that match the
  /// selectors (strings in Kubernetes' syntax; errc::invalid if malformed).
  result<object_list> list(std::string_view kind, const std::string& ns,
                           const std::string& label_selector_text = {},
                           const std::string& field_selector_text = {}) const;
  result<object_list> list(std::string_view kind, const std::string& ns,
                           const label_selector& labels, const field_selector& fields) const;

  /// Replaces an object (PUT). If obj's metadata.resourceVersion is set it must
  /// match (errc::conflict). Status is kept for kinds with a status subresource.
  result<nlohmann::json> update(std::string_view kind, const std::string& ns,
                                const std::string& name, nlohmann::json obj,
                                field_errors* causes = nullptr);

  /// Replaces only .status. Empty preconditions are not checked.
  result<nlohmann::json> update_status(std::string_view kind, const std::string& ns,
                                       const std::string& name, nlohmann::json status,
                                       const std::string& uid_precondition,
                                       const std::string& resource_version_precondition = {});

  /// Deletes an object. A pod bound to a node is deleted gracefully (marked
  /// with deletionTimestamp, kept until finalize_pod_deletion) unless the grace
  /// period is 0 or the pod is terminal.
  result<delete_result> remove(std::string_view kind, const std::string& ns,
                               const std::string& name, const delete_options& opts = {});

  /// Removes a pod for good once its node has stopped it; `uid` must match.
  result<nlohmann::json> finalize_pod_deletion(const std::string& ns, const std::string& name,
                                               const std::string& uid);

  /// Assigns an unbound pod to a node (errc::conflict if already bound).
  result<nlohmann::json> bind(const std::string& ns, const std::string& name,
                              const std::string& node_name);

  /// Registers a listener for every change from now on. Events with a
  /// revision above the returned one are delivered; to combine with a list,
  /// subscribe first, then list, and skip events at or below the list's
  /// revision.
  subscription subscribe(watch_listener listener);
  void unsubscribe(std::uint64_t id);

  /// Namespaces in use (those of stored objects) plus the built-in ones.
  std::set<std::string> namespaces() const;

  std::uint64_t revision() const { return store_.revision(); }

 private:
  std::string key(const kind_info& k, const std::string& ns, const std::string& name) const;
  /// Marks what the stored Services hold as allocated (at construction).
  void rebuild_allocations();
  std::string now_rfc3339(std::chrono::seconds offset = std::chrono::seconds{0}) const;
  std::string new_uid();
  void emit(watch_event_type type, const kind_info& k, const nlohmann::json& obj,
            const nlohmann::json& previous, std::uint64_t rev);
  /// Writes `obj` if the key is still at `prev`'s revision (0/null: absent)
  /// and emits the event.
  result<nlohmann::json> write_locked(const kind_info& k, const std::string& key,
                                      nlohmann::json obj, const stored_value* prev,
                                      watch_event_type type);
  result<delete_result> remove_locked(const kind_info& k, const std::string& key,
                                      const stored_value& cur);

  store& store_;
  registry_options opts_;
  std::vector<kind_info> kinds_;
  mutable std::mutex mu_;
  std::mt19937_64 rng_;
  std::map<std::uint64_t, watch_listener> listeners_;
  std::uint64_t next_listener_id_ = 1;
};

/// The RFC 3339 UTC form ("2024-05-01T12:00:00Z") of `t`, to the second.
using api::format_rfc3339;

}  // namespace deckhand::apiserver

#pragma once

/// Mirror pods: the API server's copies of a node's static pods (Kubernetes:
/// annotation `kubernetes.io/config.mirror: <config hash>`, owned by the
/// Node). Only the kubelet writes them, through `wire::mirror_pod_update`.
/// The scheduler never sees them unbound, a user's delete removes them at
/// once (registry::remove), and the kubelet then creates them again.

#include <cstdint>

#include <nlohmann/json.hpp>

#include "deckhand/apiserver/registry.hpp"
#include "deckhand/common/result.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::apiserver {

inline constexpr const char* mirror_annotation = "kubernetes.io/config.mirror";

/// Whether a stored pod is a mirror pod.
bool is_mirror_pod(const nlohmann::json& pod);

/// Applies a kubelet's mirror_pod_update and returns the revision to
/// acknowledge. Without `remove`: creates the mirror pod, or replaces a
/// mirror of another hash (delete + create), or does nothing if the mirror
/// with this hash is already there (idempotent). A non-mirror pod of the same
/// name is never touched (errc::already_exists). With `remove`: deletes the
/// mirror pod of that name if its hash is the one given (any hash if none
/// is given); absent is success.
result<std::uint64_t> apply_mirror_pod_update(registry& reg, const wire::mirror_pod_update& u);

/// A kubelet's pod_status_update. The kubelet names a static pod by its own
/// uid (the config hash); its mirror pod has a uid of the API server's, so a
/// uid mismatch is accepted where the pod is the mirror of that hash.
result<nlohmann::json> update_pod_status(registry& reg, const wire::pod_status_update& u);

}  // namespace deckhand::apiserver

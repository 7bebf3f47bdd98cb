#pragma once

/// imagePullPolicy as the kubelet applies it before it asks the runtime to run
/// a pod, and the waiting reasons and messages Kubernetes reports for image
/// pulls. Pure functions; the pod worker owns the state.

#include <string>

#include "deckhand/messages/model.hpp"

namespace deckhand::kubelet {

/// Kubernetes' default imagePullPolicy for `image`: Always when it names no
/// tag or the tag `latest` (and no digest), else IfNotPresent. The API server
/// applies the same default; the kubelet needs it for pods that did not pass
/// through it (tests, static manifests).
std::string default_pull_policy(const std::string& image);

/// The container's own imagePullPolicy, or the default for its image.
std::string pull_policy(const wire::container& c);

/// Waiting reasons, exactly as the Go kubelet spells them.
inline constexpr const char* reason_err_image_pull = "ErrImagePull";
inline constexpr const char* reason_image_pull_backoff = "ImagePullBackOff";
inline constexpr const char* reason_err_image_never_pull = "ErrImageNeverPull";

/// `Container image "X" is not present with pull policy of Never`.
std::string never_pull_message(const std::string& image);

/// `Back-off pulling image "X"`.
std::string pull_backoff_message(const std::string& image);

}  // namespace deckhand::kubelet

#include "deckhand/kubelet/image_pull.hpp"

namespace deckhand::kubelet {

std::string default_pull_policy(const std::string& image) {
  if (image.find('@') != std::string::npos)
    return "IfNotPresent";
  auto slash = image.rfind('/');
  auto colon = image.rfind(':');
  // A colon before the last slash belongs to a registry port, not a tag.
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash))
    return "Always";
  return image.substr(colon + 1) == "latest" ? "Always" : "IfNotPresent";
}

std::string pull_policy(const wire::container& c) {
  return c.image_pull_policy.empty() ? default_pull_policy(c.image) : c.image_pull_policy;
}

std::string never_pull_message(const std::string& image) {
  return "Container image \"" + image + "\" is not present with pull policy of Never";
}

std::string pull_backoff_message(const std::string& image) {
  return "Back-off pulling image \"" + image + "\"";
}

}  // namespace deckhand::kubelet

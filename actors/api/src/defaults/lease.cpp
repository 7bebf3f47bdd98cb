#include "deckhand/api/defaults.hpp"

namespace deckhand::api {

using nlohmann::json;

void default_lease(json& lease) {
  if (!lease.contains("spec"))
    lease["spec"] = json::object();
}

}  // namespace deckhand::api

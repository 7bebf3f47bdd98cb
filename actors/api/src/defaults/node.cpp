#include "deckhand/api/defaults.hpp"

#include "validation/checks.hpp"

namespace deckhand::api {

using namespace detail;

void default_node(json& node) { set_default(node, "spec", json::object()); }

}  // namespace deckhand::api

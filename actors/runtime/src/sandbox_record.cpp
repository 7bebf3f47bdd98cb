#include "deckhand/runtime/sandbox_record.hpp"

#include "deckhand/messages/json.hpp"

namespace deckhand::runtime {

std::string encode_sandbox_record(const sandbox_record& rec) {
  return wire::to_json(rec).dump(2) + "\n";
}

result<sandbox_record> decode_sandbox_record(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded())
    return error{errc::invalid, "sandbox.json is not valid JSON"};
  return wire::from_json<sandbox_record>(j);
}

}  // namespace deckhand::runtime

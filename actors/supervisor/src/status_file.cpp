#include "deckhand/supervisor/status_file.hpp"

#include <nlohmann/json.hpp>

#include "deckhand/messages/json.hpp"

namespace deckhand::supervisor {

namespace {

constexpr const char* extra_key = "deckhandSupervisor";

struct supervisor_extra {
  static constexpr const char* type_name = "supervisor_extra";
  std::vector<backoff_record> backoff;
  static constexpr auto fields() {
    return std::make_tuple(wire::field("backoff", &supervisor_extra::backoff));
  }
};

}  // namespace

const backoff_record* status_document::find_backoff(const std::string& name) const {
  for (const auto& b : backoff)
    if (b.name == name)
      return &b;
  return nullptr;
}

std::string encode_status(const status_document& doc) {
  auto j = wire::to_json(doc.sandbox);
  supervisor_extra extra{doc.backoff};
  j[extra_key] = wire::to_json(extra);
  return j.dump(2) + "\n";
}

result<status_document> decode_status(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return error{errc::invalid, "status.json: not a JSON object"};
  auto sandbox = wire::from_json<wire::sandbox_status>(j);
  if (!sandbox)
    return error{errc::invalid, "status.json: " + sandbox.err().message};
  status_document doc;
  doc.sandbox = std::move(*sandbox);
  if (auto it = j.find(extra_key); it != j.end()) {
    auto extra = wire::from_json<supervisor_extra>(*it);
    if (!extra)
      return error{errc::invalid, "status.json: " + extra.err().message};
    doc.backoff = std::move(extra->backoff);
  }
  return doc;
}

std::string encode_stop_marker(const stop_marker& m) { return wire::to_json(m).dump() + "\n"; }

stop_marker decode_stop_marker(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_discarded()) {
    if (auto m = wire::from_json<stop_marker>(j))
      return *m;
  }
  return stop_marker{};
}

int64_t to_epoch_ms(time_point t) {
  return std::chrono::duration_cast<millis>(t.time_since_epoch()).count();
}

time_point from_epoch_ms(int64_t ms) {
  return time_point{std::chrono::duration_cast<time_point::duration>(millis(ms))};
}

}  // namespace deckhand::supervisor

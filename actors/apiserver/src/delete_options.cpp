#include "deckhand/apiserver/delete_options.hpp"

#include <charconv>

#include <nlohmann/json.hpp>

namespace deckhand::apiserver {

namespace {

using json = nlohmann::json;

error bad(const std::string& message) { return error{errc::invalid, message}; }

}  // namespace

result<delete_request> parse_delete_options(std::string_view body, const std::string& grace_query,
                                            const std::string& dry_run_query) {
  delete_request out;
  if (!grace_query.empty()) {
    std::int64_t v = 0;
    auto [end, ec] =
        std::from_chars(grace_query.data(), grace_query.data() + grace_query.size(), v);
    if (ec != std::errc{} || end != grace_query.data() + grace_query.size())
      return bad("invalid gracePeriodSeconds: " + grace_query);
    out.options.grace_period_seconds = v;
  }
  if (!dry_run_query.empty()) {
    if (dry_run_query != "All")
      return bad("Invalid dryRun value: " + dry_run_query + ": supported values: \"All\"");
    out.dry_run = true;
  }
  if (body.empty())
    return out;
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    return bad(std::string("the request body could not be decoded: ") + e.what());
  }
  if (!j.is_object())
    return bad("the request body must be a JSON object");
  if (auto it = j.find("gracePeriodSeconds"); it != j.end() && !it->is_null()) {
    if (!it->is_number_integer())
      return bad("gracePeriodSeconds: must be an integer");
    out.options.grace_period_seconds = it->get<std::int64_t>();
  }
  if (auto it = j.find("preconditions"); it != j.end() && it->is_object()) {
    if (auto u = it->find("uid"); u != it->end() && u->is_string())
      out.options.uid_precondition = u->get<std::string>();
    if (auto rv = it->find("resourceVersion"); rv != it->end() && rv->is_string())
      out.options.resource_version_precondition = rv->get<std::string>();
  }
  if (auto it = j.find("dryRun"); it != j.end() && it->is_array()) {
    for (const auto& v : *it) {
      if (!v.is_string() || v.get<std::string>() != "All")
        return bad("Invalid dryRun value: " + v.dump() + ": supported values: \"All\"");
      out.dry_run = true;
    }
  }
  return out;
}

}  // namespace deckhand::apiserver

/// Kubernetes Status responses: the error bodies kubectl reads its messages from.

#include <map>

#include "http_api_impl.hpp"

namespace deckhand::apiserver::http_detail {

json status_object(int code, const std::string& reason, const std::string& message,
                   const std::string& name, const std::string& kind) {
  json st = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
             {"status", "Failure"}, {"message", message}, {"reason", reason},
             {"code", code}};
  if (!name.empty() || !kind.empty()) {
    json d = json::object();
    if (!name.empty())
      d["name"] = name;
    if (!kind.empty())
      d["kind"] = kind;
    st["details"] = d;
  }
  return st;
}

void send_json(httplib::Response& res, int code, const json& body) {
  res.status = code;
  res.set_content(body.dump(), json_type);
}

void send_status(httplib::Response& res, int code, const std::string& reason,
                 const std::string& message, const std::string& name, const std::string& kind) {
  send_json(res, code, status_object(code, reason, message, name, kind));
}

/// Maps a registry error onto Kubernetes' HTTP code and Status reason.
void send_error(httplib::Response& res, const error& err, const std::string& name,
                const std::string& kind) {
  switch (err.code) {
  case errc::not_found: return send_status(res, 404, "NotFound", err.message, name, kind);
  case errc::already_exists: return send_status(res, 409, "AlreadyExists", err.message, name, kind);
  case errc::conflict: return send_status(res, 409, "Conflict", err.message, name, kind);
  case errc::invalid: return send_status(res, 422, "Invalid", err.message, name, kind);
  case errc::too_large:
    return send_status(res, 413, "RequestEntityTooLarge", err.message, name, kind);
  case errc::unsupported: return send_status(res, 405, "MethodNotAllowed", err.message, name, kind);
  case errc::unavailable:
    return send_status(res, 503, "ServiceUnavailable", err.message, name, kind);
  default: return send_status(res, 500, "InternalError", err.message, name, kind);
  }
}

/// A 422 Invalid with details.causes, from which kubectl prints
/// `The Pod "x" is invalid: spec.containers[0].image: Required value`.
void send_invalid(httplib::Response& res, const error& err, const std::string& name,
                  const kind_info& k, const field_errors& causes) {
  json st = status_object(422, "Invalid", err.message, name, k.kind);
  if (!causes.empty()) {
    static const std::map<std::string, std::string> reasons = {
        {"Required value", "FieldValueRequired"},
        {"Invalid value", "FieldValueInvalid"},
        {"Unsupported value", "FieldValueNotSupported"},
        {"Duplicate value", "FieldValueDuplicate"},
        {"Forbidden", "FieldValueForbidden"},
        {"Not found", "FieldValueNotFound"},
        {"Too long", "FieldValueTooLong"}};
    json list = json::array();
    for (const auto& c : causes) {
      auto it = reasons.find(c.type);
      list.push_back({{"reason", it == reasons.end() ? "FieldValueInvalid" : it->second},
                      {"message", c.detail.empty() ? c.type : c.type + ": " + c.detail},
                      {"field", c.field}});
    }
    st["details"]["causes"] = list;
  }
  send_json(res, 422, st);
}

void send_not_found_path(httplib::Response& res) {
  send_status(res, 404, "NotFound", "the server could not find the requested resource");
}

}  // namespace deckhand::apiserver::http_detail

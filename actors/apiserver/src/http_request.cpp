/// Reading a request: its path, query parameters and JSON body, and the
/// checks Kubernetes makes on a body before any validation.

#include "http_api_impl.hpp"

#include "deckhand/apiserver/tables.hpp"

namespace deckhand::apiserver::http_detail {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start < path.size()) {
    auto slash = path.find('/', start);
    if (slash == std::string::npos)
      slash = path.size();
    if (slash > start)
      out.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

std::string param(const httplib::Request& req, const char* name) {
  return req.has_param(name) ? req.get_param_value(name) : std::string{};
}

bool is_true(const std::string& v) { return v == "true" || v == "1"; }

/// Whether the client (kubectl get) asks for a meta.k8s.io Table and one can
/// be made for `k`.
bool wants_table(const httplib::Request& req, const kind_info& k) {
  return req.get_header_value("Accept").find("as=Table") != std::string::npos && has_table(k.kind);
}

/// A parsed JSON body, or the 400 it deserves.
std::optional<json> parse_body(const httplib::Request& req, httplib::Response& res) {
  if (req.body.empty()) {
    send_status(res, 400, "BadRequest", "the request body is empty");
    return std::nullopt;
  }
  try {
    json j = json::parse(req.body);
    if (!j.is_object()) {
      send_status(res, 400, "BadRequest", "the request body must be a JSON object");
      return std::nullopt;
    }
    return j;
  } catch (const json::exception& e) {
    send_status(res, 400, "BadRequest",
                std::string("the request body could not be decoded: ") + e.what());
    return std::nullopt;
  }
}

std::string body_meta(const json& body, const char* key) {
  if (body.contains("metadata") && body["metadata"].is_object() && body["metadata"].contains(key) &&
      body["metadata"][key].is_string())
    return body["metadata"][key].get<std::string>();
  return {};
}

/// Kubernetes answers these mismatches with 400 BadRequest before any
/// validation; returns false after sending it.
bool check_identity(const kind_info& k, const json& body, const std::string& ns,
                    const std::string& name, httplib::Response& res) {
  if (body.contains("apiVersion") && body["apiVersion"] != k.api_version()) {
    send_status(res, 400, "BadRequest",
                "the API version in the data (" +
                    (body["apiVersion"].is_string() ? body["apiVersion"].get<std::string>()
                                                    : body["apiVersion"].dump()) +
                    ") does not match the expected API version (" + k.api_version() + ")");
    return false;
  }
  if (body.contains("kind") && body["kind"] != k.kind) {
    send_status(
        res, 400, "BadRequest",
        "the kind in the data (" +
            (body["kind"].is_string() ? body["kind"].get<std::string>() : body["kind"].dump()) +
            ") does not match the expected kind (" + k.kind + ")");
    return false;
  }
  std::string body_ns = body_meta(body, "namespace");
  if (k.namespaced && !ns.empty() && !body_ns.empty() && body_ns != ns) {
    send_status(res, 400, "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the "
                "request");
    return false;
  }
  std::string body_name = body_meta(body, "name");
  if (!name.empty() && !body_name.empty() && body_name != name) {
    send_status(res, 400, "BadRequest",
                "the name of the object (" + body_name + ") does not match the name on the URL (" +
                    name + ")");
    return false;
  }
  return true;
}

/// Whether a strategic merge patch means the same as a JSON merge patch: no
/// "$" directives and no lists of objects (which strategic patches merge by key).
bool plain_merge_patch(const json& j) {
  if (j.is_object()) {
    for (const auto& [key, v] : j.items())
      if (key.rfind("$", 0) == 0 || !plain_merge_patch(v))
        return false;
  } else if (j.is_array()) {
    for (const auto& v : j)
      if (v.is_object() || v.is_array())
        return false;
  }
  return true;
}

}  // namespace deckhand::apiserver::http_detail

#include "deckhand/apiserver/http_api.hpp"

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include "deckhand/apiserver/delete_options.hpp"
#include "deckhand/apiserver/tables.hpp"
#include "deckhand/apiserver/watch_cache.hpp"
#include "deckhand/common/log.hpp"

namespace deckhand::apiserver {

using nlohmann::json;

namespace {

constexpr const char* json_type = "application/json";

json status_object(int code, const std::string& reason, const std::string& message,
                   const std::string& name = {}, const std::string& kind = {}) {
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
                 const std::string& message, const std::string& name = {},
                 const std::string& kind = {}) {
  send_json(res, code, status_object(code, reason, message, name, kind));
}

/// Maps a registry error onto Kubernetes' HTTP code and Status reason.
void send_error(httplib::Response& res, const error& err, const std::string& name = {},
                const std::string& kind = {}) {
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

json namespace_object(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Namespace"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/metadata.name", name}}}}},
          {"spec", {{"finalizers", json::array({"kubernetes"})}}},
          {"status", {{"phase", "Active"}}}};
}

/// The state of one watch stream between calls of its content provider.
struct watch_stream {
  const kind_info* kind = nullptr;
  std::string ns;
  label_selector labels;
  field_selector fields;
  std::uint64_t after = 0;
  std::vector<json> initial;
  bool initial_sent = false;
  std::chrono::steady_clock::time_point deadline;
  /// kubectl get -w: each event's object is a one-row Table.
  bool table = false;
  std::string include_object;

  /// What an event carries for `obj`.
  json event_object(const json& obj) const {
    if (!table)
      return obj;
    return make_table(kind->kind, {obj}, body_meta(obj, "resourceVersion"), include_object,
                      std::chrono::system_clock::now());
  }

  bool matches(const json& obj) const {
    if (!obj.is_object())
      return false;
    if (kind->namespaced && !ns.empty() && body_meta(obj, "namespace") != ns)
      return false;
    const json& md = obj["metadata"];
    return labels.matches(md.contains("labels") ? md["labels"] : json()) && fields.matches(obj);
  }
};

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

std::string watch_line(const char* type, const json& obj) {
  return json{{"type", type}, {"object", obj}}.dump() + "\n";
}

}  // namespace

struct http_api::impl {
  registry& reg;
  http_options opts;
  httplib::Server server;
  watch_cache watches;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::atomic<int> bound_port{0};

  impl(registry& r, http_options o) : reg(r), opts(std::move(o)), watches(r, opts.watch_history) {}

  void routes();
  void discovery_v1(httplib::Response& res);
  /// The kind served as `resource` under `group` (null if none).
  const kind_info* find_resource(const std::string& group, const std::string& resource) const;
  /// The API groups other than the core one, each with its kinds' version.
  std::map<std::string, std::string> groups() const;
  void discovery_group(const std::string& group, const std::string& version,
                       httplib::Response& res);
  void handle(const httplib::Request& req, httplib::Response& res);
  void list_or_watch(const kind_info& k, const std::string& ns, const httplib::Request& req,
                     httplib::Response& res);
  void watch(const kind_info& k, const std::string& ns, const label_selector& ls,
             const field_selector& fs, const httplib::Request& req, httplib::Response& res);
  void item(const kind_info& k, const std::string& ns, const std::string& name,
            const httplib::Request& req, httplib::Response& res);
  void patch(const kind_info& k, const std::string& ns, const std::string& name,
             const httplib::Request& req, httplib::Response& res);
  void status_subresource(const kind_info& k, const std::string& ns, const std::string& name,
                          const httplib::Request& req, httplib::Response& res);
  void binding(const std::string& ns, const std::string& name, const httplib::Request& req,
               httplib::Response& res);
  void namespaces(const std::vector<std::string>& seg, const httplib::Request& req,
                  httplib::Response& res);
};

void http_api::impl::routes() {
  server.set_payload_max_length(opts.max_body_bytes);
  int threads = std::max(4, opts.threads);
  server.new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  // httplib answers some errors itself (oversized body, unknown method) with
  // an empty body; give those a Status like every other error.
  server.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty())
          return httplib::Server::HandlerResponse::Unhandled;
        switch (res.status) {
        case 413:
          send_status(res, 413, "RequestEntityTooLarge", "the request body is too large");
          break;
        case 404: send_not_found_path(res); break;
        case 405: send_status(res, 405, "MethodNotAllowed", "the method is not allowed"); break;
        default:
          send_status(res, res.status, res.status >= 500 ? "InternalError" : "BadRequest",
                      "HTTP " + std::to_string(res.status));
        }
        return httplib::Server::HandlerResponse::Handled;
      }));
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        log::get()->error("apiserver http: handler failed error={}", what);
        send_status(res, 500, "InternalError", what);
      });

  for (const char* p : {"/healthz", "/readyz", "/livez"})
    server.Get(p, [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok", "text/plain");
    });
  server.Get("/version", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200,
              {{"major", "1"},
               {"minor", "32"},
               {"gitVersion", opts.git_version},
               {"gitCommit", ""},
               {"gitTreeState", "clean"},
               {"buildDate", "1970-01-01T00:00:00Z"},
               {"goVersion", "none (C++)"},
               {"compiler", "gc"},
               {"platform", "linux/amd64"}});
  });
  server.Get("/api", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200,
              {{"kind", "APIVersions"},
               {"versions", json::array({"v1"})},
               {"serverAddressByClientCIDRs",
                json::array(
                    {{{"clientCIDR", "0.0.0.0/0"},
                      {"serverAddress", opts.host + ":" + std::to_string(bound_port.load())}}})}});
  });
  server.Get("/api/v1",
             [this](const httplib::Request&, httplib::Response& res) { discovery_v1(res); });
  server.Get("/apis", [this](const httplib::Request&, httplib::Response& res) {
    json list = json::array();
    for (const auto& [group, version] : groups()) {
      json gv = {{"groupVersion", group + "/" + version}, {"version", version}};
      list.push_back({{"name", group}, {"versions", json::array({gv})}, {"preferredVersion", gv}});
    }
    send_json(res, 200, {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", list}});
  });
  server.Get(R"(/apis/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    auto all = groups();
    auto it = all.find(req.matches[1].str());
    if (it == all.end())
      return send_not_found_path(res);
    json gv = {{"groupVersion", it->first + "/" + it->second}, {"version", it->second}};
    send_json(res, 200,
              {{"kind", "APIGroup"},
               {"apiVersion", "v1"},
               {"name", it->first},
               {"versions", json::array({gv})},
               {"preferredVersion", gv}});
  });
  server.Get(R"(/apis/([^/]+)/([^/]+))",
             [this](const httplib::Request& req, httplib::Response& res) {
               discovery_group(req.matches[1].str(), req.matches[2].str(), res);
             });
  // kubectl create/apply validate manifests either against the OpenAPI schema
  // (client side) or by asking the server (fieldValidation), and decide which
  // from this document: announcing the parameter on PATCH keeps kubectl from
  // needing the full schema, which this server does not serve.
  server.Get("/openapi/v3", [this](const httplib::Request&, httplib::Response& res) {
    json paths = {{"api/v1", {{"serverRelativeURL", "/openapi/v3/api/v1?hash=deckhand-1"}}}};
    for (const auto& [group, version] : groups())
      paths["apis/" + group + "/" + version] = {
          {"serverRelativeURL", "/openapi/v3/apis/" + group + "/" + version + "?hash=deckhand-1"}};
    send_json(res, 200, {{"paths", paths}});
  });
  auto openapi = [this](const std::string& group, const std::string& version,
                        httplib::Response& res) {
    json paths = json::object();
    std::string prefix = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
    for (const auto& k : reg.kinds()) {
      if (k.group != group || k.version != version)
        continue;
      std::string path = k.namespaced ? prefix + "/namespaces/{namespace}/" + k.resource + "/{name}"
                                      : prefix + "/" + k.resource + "/{name}";
      paths[path] = {{"patch",
                      {{"x-kubernetes-group-version-kind",
                        {{"group", k.group}, {"version", k.version}, {"kind", k.kind}}},
                       {"parameters", json::array({{{"name", "fieldValidation"},
                                                    {"in", "query"},
                                                    {"schema", {{"type", "string"}}}}})},
                       {"responses", {{"200", {{"description", "OK"}}}}}}}};
    }
    if (paths.empty())
      return send_not_found_path(res);
    send_json(res, 200,
              {{"openapi", "3.0.0"},
               {"info", {{"title", "Kubernetes (deckhand)"}, {"version", opts.git_version}}},
               {"paths", paths}});
  };
  server.Get("/openapi/v3/api/v1", [openapi](const httplib::Request&, httplib::Response& res) {
    openapi("", "v1", res);
  });
  server.Get(R"(/openapi/v3/apis/([^/]+)/([^/]+))",
             [openapi](const httplib::Request& req, httplib::Response& res) {
               openapi(req.matches[1].str(), req.matches[2].str(), res);
             });
  auto h = [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); };
  for (const char* prefix : {R"(/api/v1/.+)", R"(/apis/[^/]+/[^/]+/.+)"}) {
    server.Get(prefix, h);
    server.Post(prefix, h);
    server.Put(prefix, h);
    server.Delete(prefix, h);
    server.Patch(prefix, h);
  }
}

const kind_info* http_api::impl::find_resource(const std::string& group,
                                               const std::string& resource) const {
  for (const auto& k : reg.kinds())
    if (k.group == group && k.resource == resource)
      return &k;
  return nullptr;
}

std::map<std::string, std::string> http_api::impl::groups() const {
  std::map<std::string, std::string> out;
  for (const auto& k : reg.kinds())
    if (!k.group.empty())
      out.emplace(k.group, k.version);
  return out;
}

void http_api::impl::discovery_group(const std::string& group, const std::string& version,
                                     httplib::Response& res) {
  json resources = json::array();
  for (const auto& k : reg.kinds()) {
    if (k.group != group || k.version != version)
      continue;
    json r = {
        {"name", k.resource},
        {"singularName", k.singular},
        {"namespaced", k.namespaced},
        {"kind", k.kind},
        {"verbs", json::array({"create", "delete", "get", "list", "patch", "update", "watch"})}};
    if (!k.short_names.empty())
      r["shortNames"] = k.short_names;
    resources.push_back(std::move(r));
  }
  if (resources.empty())
    return send_not_found_path(res);
  send_json(res, 200,
            {{"kind", "APIResourceList"},
             {"apiVersion", "v1"},
             {"groupVersion", group + "/" + version},
             {"resources", resources}});
}

void http_api::impl::discovery_v1(httplib::Response& res) {
  json resources = json::array();
  for (const auto& k : reg.kinds()) {
    if (!k.group.empty())
      continue;
    resources.push_back(
        {{"name", k.resource},
         {"singularName", k.singular},
         {"namespaced", k.namespaced},
         {"kind", k.kind},
         {"verbs", json::array({"create", "delete", "get", "list", "patch", "update", "watch"})},
         {"shortNames", k.short_names}});
    if (k.status_subresource)
      resources.push_back({{"name", k.resource + "/status"},
                           {"singularName", ""},
                           {"namespaced", k.namespaced},
                           {"kind", k.kind},
                           {"verbs", json::array({"get", "update"})}});
    if (k.kind == "Pod")
      resources.push_back({{"name", "pods/binding"},
                           {"singularName", ""},
                           {"namespaced", true},
                           {"kind", "Binding"},
                           {"verbs", json::array({"create"})}});
  }
  resources.push_back({{"name", "namespaces"},
                       {"singularName", "namespace"},
                       {"namespaced", false},
                       {"kind", "Namespace"},
                       {"verbs", json::array({"get", "list"})},
                       {"shortNames", json::array({"ns"})}});
  send_json(res, 200,
            {{"kind", "APIResourceList"}, {"groupVersion", "v1"}, {"resources", resources}});
}

void http_api::impl::handle(const httplib::Request& req, httplib::Response& res) {
  auto seg = split_path(req.path);
  // "api", "v1" or "apis", GROUP, VERSION (guaranteed by the routes).
  std::string group;
  if (seg[0] == "apis") {
    group = seg[1];
    const kind_info* any = nullptr;
    for (const auto& k : reg.kinds())
      if (k.group == group && k.version == seg[2])
        any = &k;
    if (!any)
      return send_not_found_path(res);
    seg.erase(seg.begin(), seg.begin() + 3);
  } else {
    seg.erase(seg.begin(), seg.begin() + 2);
  }
  if (is_true(param(req, "dryRun")) || param(req, "dryRun") == "All")
    return send_status(res, 400, "BadRequest", "dryRun is not supported by this server");
  if (seg.empty())
    return send_not_found_path(res);
  if (seg[0] == "namespaces" && seg.size() >= 3) {
    const std::string& ns = seg[1];
    const kind_info* k = find_resource(group, seg[2]);
    if (group.empty() && seg[2] == "bindings" && seg.size() == 3 && req.method == "POST")
      return binding(ns, {}, req, res);
    if (!k || k->resource != seg[2] || !k->namespaced)
      return send_not_found_path(res);
    if (seg.size() == 3)
      return list_or_watch(*k, ns, req, res);
    if (seg.size() == 4)
      return item(*k, ns, seg[3], req, res);
    if (seg.size() == 5 && seg[4] == "status" && k->status_subresource)
      return status_subresource(*k, ns, seg[3], req, res);
    if (seg.size() == 5 && seg[4] == "binding" && k->kind == "Pod" && req.method == "POST")
      return binding(ns, seg[3], req, res);
    return send_not_found_path(res);
  }
  if (seg[0] == "namespaces" && group.empty())
    return namespaces(seg, req, res);
  const kind_info* k = find_resource(group, seg[0]);
  if (!k || k->resource != seg[0])
    return send_not_found_path(res);
  if (seg.size() == 1) {
    if (req.method == "GET")
      return list_or_watch(*k, "", req, res);
    if (req.method == "POST" && !k->namespaced)
      return list_or_watch(*k, "", req, res);
    return send_status(res, 405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource");
  }
  if (k->namespaced)
    return send_not_found_path(res);
  if (seg.size() == 2)
    return item(*k, "", seg[1], req, res);
  if (seg.size() == 3 && seg[2] == "status" && k->status_subresource)
    return status_subresource(*k, "", seg[1], req, res);
  send_not_found_path(res);
}

void http_api::impl::list_or_watch(const kind_info& k, const std::string& ns,
                                   const httplib::Request& req, httplib::Response& res) {
  if (req.method == "POST") {
    auto body = parse_body(req, res);
    if (!body || !check_identity(k, *body, ns, {}, res))
      return;
    std::string name = body_meta(*body, "name");
    field_errors causes;
    auto out = reg.create(k.kind, ns, std::move(*body), &causes);
    if (!out && out.err().code == errc::invalid)
      return send_invalid(res, out.err(), name, k, causes);
    if (!out)
      return send_error(res, out.err(), name, k.resource);
    return send_json(res, 201, *out);
  }
  if (req.method != "GET")
    return send_status(res, 405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource");
  auto ls = parse_label_selector(param(req, "labelSelector"));
  if (!ls)
    return send_status(res, 400, "BadRequest", ls.err().message);
  std::set<std::string> allowed = k.field_selectors;
  allowed.insert("metadata.name");
  if (k.namespaced)
    allowed.insert("metadata.namespace");
  auto fs = parse_field_selector(param(req, "fieldSelector"), allowed);
  if (!fs)
    return send_status(res, 400, "BadRequest", fs.err().message);
  if (is_true(param(req, "watch")))
    return watch(k, ns, *ls, *fs, req, res);
  auto list = reg.list(k.kind, ns, *ls, *fs);
  if (!list)
    return send_error(res, list.err());
  if (wants_table(req, k))
    return send_json(res, 200,
                     make_table(k.kind, list->items, std::to_string(list->revision),
                                param(req, "includeObject"), std::chrono::system_clock::now()));
  send_json(res, 200,
            {{"kind", k.kind + "List"},
             {"apiVersion", k.api_version()},
             {"metadata", {{"resourceVersion", std::to_string(list->revision)}}},
             {"items", std::move(list->items)}});
}

void http_api::impl::watch(const kind_info& k, const std::string& ns, const label_selector& ls,
                           const field_selector& fs, const httplib::Request& req,
                           httplib::Response& res) {
  auto st = std::make_shared<watch_stream>();
  st->kind = &k;
  st->ns = ns;
  st->labels = ls;
  st->fields = fs;
  st->table = wants_table(req, k);
  st->include_object = param(req, "includeObject");
  std::string rv = param(req, "resourceVersion");
  if (rv.empty() || rv == "0") {
    // "Start at most recent": the current objects as ADDED, then changes.
    auto list = reg.list(k.kind, ns, ls, fs);
    if (!list)
      return send_error(res, list.err());
    st->initial = std::move(list->items);
    st->after = list->revision;
  } else {
    try {
      std::size_t used = 0;
      st->after = std::stoull(rv, &used);
      if (used != rv.size())
        throw std::invalid_argument(rv);
    } catch (const std::exception&) {
      return send_status(res, 400, "BadRequest", "invalid resource version: " + rv);
    }
  }
  int seconds = opts.max_watch_seconds;
  if (std::string t = param(req, "timeoutSeconds"); !t.empty()) {
    try {
      seconds = std::clamp(std::stoi(t), 1, opts.max_watch_seconds);
    } catch (const std::exception&) {
      return send_status(res, 400, "BadRequest", "invalid timeoutSeconds: " + t);
    }
  }
  st->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  res.status = 200;
  res.set_chunked_content_provider(json_type, [this, st](std::size_t, httplib::DataSink& sink) {
    auto write = [&sink](const std::string& s) { return sink.write(s.data(), s.size()); };
    if (!st->initial_sent) {
      st->initial_sent = true;
      for (const auto& obj : st->initial)
        if (!write(watch_line("ADDED", st->event_object(obj))))
          return false;
      st->initial.clear();
    }
    auto now = std::chrono::steady_clock::now();
    if (stopping || now >= st->deadline) {
      sink.done();
      return true;
    }
    // Short waits so a stopping server or a vanished client is noticed.
    auto wait = std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(500),
                                                              st->deadline - now);
    auto events =
        watches.wait_after(st->after, std::chrono::duration_cast<std::chrono::milliseconds>(wait));
    if (!events) {
      write(watch_line("ERROR", status_object(410, "Expired", events.err().message)));
      sink.done();
      return true;
    }
    for (const auto& ev : *events) {
      st->after = ev.revision;
      if (ev.kind != st->kind->kind)
        continue;
      bool now_in = st->matches(ev.object);
      bool was_in = st->matches(ev.previous);
      const char* type = nullptr;
      if (ev.type == watch_event_type::deleted)
        type = was_in ? "DELETED" : nullptr;
      else if (now_in)
        type = was_in ? "MODIFIED" : "ADDED";
      else if (was_in)
        type = "DELETED";  // left the selection
      if (type && !write(watch_line(type, st->event_object(ev.object))))
        return false;
    }
    return true;
  });
}

void http_api::impl::item(const kind_info& k, const std::string& ns, const std::string& name,
                          const httplib::Request& req, httplib::Response& res) {
  if (req.method == "GET") {
    auto out = reg.get(k.kind, ns, name);
    if (!out)
      return send_error(res, out.err(), name, k.resource);
    if (wants_table(req, k))
      return send_json(res, 200,
                       make_table(k.kind, {*out}, (*out)["metadata"].value("resourceVersion", ""),
                                  param(req, "includeObject"), std::chrono::system_clock::now()));
    return send_json(res, 200, *out);
  }
  if (req.method == "PUT") {
    auto body = parse_body(req, res);
    if (!body || !check_identity(k, *body, ns, name, res))
      return;
    field_errors causes;
    auto out = reg.update(k.kind, ns, name, std::move(*body), &causes);
    if (!out && out.err().code == errc::invalid)
      return send_invalid(res, out.err(), name, k, causes);
    if (!out)
      return send_error(res, out.err(), name, k.resource);
    return send_json(res, 200, *out);
  }
  if (req.method == "DELETE") {
    auto dopts =
        parse_delete_options(req.body, param(req, "gracePeriodSeconds"), param(req, "dryRun"));
    if (!dopts)
      return send_status(res, 400, "BadRequest", dopts.err().message);
    if (dopts->dry_run) {
      // Changes nothing; answers with the object as it stands.
      auto cur = reg.get(k.kind, ns, name);
      if (!cur)
        return send_error(res, cur.err(), name, k.resource);
      return send_json(res, 200, *cur);
    }
    auto out = reg.remove(k.kind, ns, name, dopts->options);
    if (!out)
      return send_error(res, out.err(), name, k.resource);
    // Kubernetes answers 200 with the object, also while a graceful pod
    // deletion waits for the node (202 only for orphanDependents=false).
    return send_json(res, 200, out->object);
  }
  if (req.method == "PATCH")
    return patch(k, ns, name, req, res);
  send_status(res, 405, "MethodNotAllowed",
              "the server does not allow this method on the requested resource");
}

void http_api::impl::patch(const kind_info& k, const std::string& ns, const std::string& name,
                           const httplib::Request& req, httplib::Response& res) {
  std::string type = req.get_header_value("Content-Type");
  type = type.substr(0, type.find(';'));
  bool strategic = type == "application/strategic-merge-patch+json";
  if (type != "application/merge-patch+json" && !strategic)
    return send_status(res, 415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types "
                       "include: application/merge-patch+json, "
                       "application/strategic-merge-patch+json (without list directives)");
  auto body = parse_body(req, res);
  if (!body)
    return;
  // A strategic merge patch without directives or lists of objects means the
  // same as a JSON merge patch (kubectl label/annotate/scale send such
  // patches); list merging by key is not implemented, so refuse rather than
  // replace whole lists.
  if (strategic && !plain_merge_patch(*body))
    return send_status(res, 415, "UnsupportedMediaType",
                       "strategic merge patches that merge lists or use $ directives are not "
                       "supported yet; use --type=merge or replace the object");
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto cur = reg.get(k.kind, ns, name);
    if (!cur)
      return send_error(res, cur.err(), name, k.resource);
    json patched = *cur;
    patched.merge_patch(*body);
    // Optimistic concurrency against the version the patch was applied to,
    // unless the patch names a version itself; retry if someone got in between.
    bool pinned = body->contains("metadata") && (*body)["metadata"].is_object() &&
                  (*body)["metadata"].contains("resourceVersion");
    if (!pinned)
      patched["metadata"]["resourceVersion"] = (*cur)["metadata"]["resourceVersion"];
    if (!check_identity(k, patched, ns, name, res))
      return;
    field_errors causes;
    auto out = reg.update(k.kind, ns, name, std::move(patched), &causes);
    if (!out && out.err().code == errc::conflict && !pinned)
      continue;
    if (!out && out.err().code == errc::invalid)
      return send_invalid(res, out.err(), name, k, causes);
    if (!out)
      return send_error(res, out.err(), name, k.resource);
    return send_json(res, 200, *out);
  }
  send_status(res, 409, "Conflict", "the object kept changing while the patch was applied", name,
              k.resource);
}

void http_api::impl::status_subresource(const kind_info& k, const std::string& ns,
                                        const std::string& name, const httplib::Request& req,
                                        httplib::Response& res) {
  if (req.method == "GET") {
    auto out = reg.get(k.kind, ns, name);
    if (!out)
      return send_error(res, out.err(), name, k.resource);
    return send_json(res, 200, *out);
  }
  if (req.method != "PUT")
    return send_status(res, 405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource");
  auto body = parse_body(req, res);
  if (!body || !check_identity(k, *body, ns, name, res))
    return;
  json status = body->contains("status") ? (*body)["status"] : json::object();
  auto out = reg.update_status(k.kind, ns, name, std::move(status), body_meta(*body, "uid"),
                               body_meta(*body, "resourceVersion"));
  if (!out)
    return send_error(res, out.err(), name, k.resource);
  send_json(res, 200, *out);
}

void http_api::impl::binding(const std::string& ns, const std::string& name,
                             const httplib::Request& req, httplib::Response& res) {
  auto body = parse_body(req, res);
  if (!body)
    return;
  std::string pod = name.empty() ? body_meta(*body, "name") : name;
  std::string node;
  if (body->contains("target") && (*body)["target"].is_object())
    node = (*body)["target"].value("name", std::string{});
  if (pod.empty() || node.empty())
    return send_status(res, 422, "Invalid",
                       "Binding \"" + pod + "\" is invalid: target.name: Required value");
  auto out = reg.bind(ns, pod, node);
  if (!out)
    return send_error(res, out.err(), pod, "pods");
  json st = {{"kind", "Status"},
             {"apiVersion", "v1"},
             {"metadata", json::object()},
             {"status", "Success"},
             {"code", 201}};
  send_json(res, 201, st);
}

void http_api::impl::namespaces(const std::vector<std::string>& seg, const httplib::Request& req,
                                httplib::Response& res) {
  if (req.method != "GET")
    return send_status(res, 405, "MethodNotAllowed",
                       "namespaces are implicit in this server: they exist while used and "
                       "cannot be created or deleted");
  auto all = reg.namespaces();
  if (seg.size() == 1) {
    if (is_true(param(req, "watch")))
      return send_status(res, 405, "MethodNotAllowed", "watching namespaces is not supported");
    json items = json::array();
    for (const auto& n : all)
      items.push_back(namespace_object(n));
    return send_json(res, 200,
                     {{"kind", "NamespaceList"},
                      {"apiVersion", "v1"},
                      {"metadata", {{"resourceVersion", std::to_string(reg.revision())}}},
                      {"items", items}});
  }
  if (seg.size() == 2) {
    if (!all.count(seg[1]))
      return send_status(res, 404, "NotFound", "namespaces \"" + seg[1] + "\" not found", seg[1],
                         "namespaces");
    return send_json(res, 200, namespace_object(seg[1]));
  }
  send_not_found_path(res);
}

http_api::http_api(registry& r, http_options opts)
    : impl_(std::make_unique<impl>(r, std::move(opts))) {
  impl_->routes();
}

http_api::~http_api() { stop(); }

result<int> http_api::start() {
  if (impl_->thread.joinable())
    return error{errc::invalid, "http_api already started"};
  int port = 0;
  if (impl_->opts.port == 0) {
    port = impl_->server.bind_to_any_port(impl_->opts.host);
    if (port <= 0)
      return error{errc::io, "bind " + impl_->opts.host + ": failed"};
  } else {
    if (!impl_->server.bind_to_port(impl_->opts.host, impl_->opts.port))
      return error{errc::io, "bind " + impl_->opts.host + ":" + std::to_string(impl_->opts.port) +
                                 ": failed"};
    port = impl_->opts.port;
  }
  impl_->bound_port = port;
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  log::get()->info("apiserver http: listening url={}", url());
  return port;
}

void http_api::stop() {
  if (!impl_ || !impl_->thread.joinable())
    return;
  impl_->stopping = true;
  impl_->watches.shutdown();
  impl_->server.stop();
  impl_->thread.join();
}

int http_api::port() const { return impl_->bound_port; }

std::string http_api::url() const {
  return "http://" + impl_->opts.host + ":" + std::to_string(impl_->bound_port.load());
}

}  // namespace deckhand::apiserver

/// Routing: the URL layout of the Kubernetes REST API onto the handlers, and
/// the server's start and stop.

#include "http_api_impl.hpp"

#include <algorithm>

#include "deckhand/common/log.hpp"

namespace deckhand::apiserver {

using namespace http_detail;

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

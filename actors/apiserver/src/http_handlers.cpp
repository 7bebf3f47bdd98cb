/// The object handlers: get, create, update, delete and patch of one object,
/// its status subresource, pod binding, and the namespaces every object is in.

#include "http_api_impl.hpp"

#include "deckhand/apiserver/delete_options.hpp"
#include "deckhand/apiserver/tables.hpp"

namespace deckhand::apiserver {

using namespace http_detail;

namespace {

json namespace_object(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Namespace"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/metadata.name", name}}}}},
          {"spec", {{"finalizers", json::array({"kubernetes"})}}},
          {"status", {{"phase", "Active"}}}};
}

}  // namespace

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

}  // namespace deckhand::apiserver

#pragma once

/// The HTTP front of the registry, private to the API server: the state its
/// handlers share (`http_api::impl`) and the request/response helpers every
/// handler file uses. Routing is in http_api.cpp, discovery, watch streaming
/// and the object handlers each in their own file.

#include <httplib.h>

#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/apiserver/http_api.hpp"
#include "deckhand/apiserver/watch_cache.hpp"

namespace deckhand::apiserver {

namespace http_detail {

using nlohmann::json;

inline constexpr const char* json_type = "application/json";

/// A Kubernetes Status object (kind Status, status Failure).
json status_object(int code, const std::string& reason, const std::string& message,
                   const std::string& name = {}, const std::string& kind = {});
void send_json(httplib::Response& res, int code, const json& body);
void send_status(httplib::Response& res, int code, const std::string& reason,
                 const std::string& message, const std::string& name = {},
                 const std::string& kind = {});
/// Maps a registry error onto Kubernetes' HTTP code and Status reason.
void send_error(httplib::Response& res, const error& err, const std::string& name = {},
                const std::string& kind = {});
/// A 422 Invalid with details.causes, from which kubectl prints
/// `The Pod "x" is invalid: spec.containers[0].image: Required value`.
void send_invalid(httplib::Response& res, const error& err, const std::string& name,
                  const kind_info& k, const field_errors& causes);
void send_not_found_path(httplib::Response& res);

std::vector<std::string> split_path(const std::string& path);
/// A query parameter's value, empty when absent.
std::string param(const httplib::Request& req, const char* name);
bool is_true(const std::string& v);
/// Whether the client (kubectl get) asks for a meta.k8s.io Table and one can
/// be made for `k`.
bool wants_table(const httplib::Request& req, const kind_info& k);
/// A parsed JSON body, or the 400 it deserves.
std::optional<json> parse_body(const httplib::Request& req, httplib::Response& res);
/// `metadata.<key>` of `body` when it is a string, else empty.
std::string body_meta(const json& body, const char* key);
/// Kubernetes answers these mismatches with 400 BadRequest before any
/// validation; returns false after sending it.
bool check_identity(const kind_info& k, const json& body, const std::string& ns,
                    const std::string& name, httplib::Response& res);
/// Whether a strategic merge patch means the same as a JSON merge patch: no
/// "$" directives and no lists of objects (which strategic patches merge by key).
bool plain_merge_patch(const json& j);

}  // namespace http_detail

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

}  // namespace deckhand::apiserver

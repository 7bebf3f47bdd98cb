#include "deckhand/cli/api_client.hpp"

#include <cctype>
#include <fstream>
#include <memory>
#include <mutex>

#include <curl/curl.h>

#include "deckhand/common/paths.hpp"

namespace deckhand::cli {

namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct curl_deleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct slist_deleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

size_t on_body(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
    s.pop_back();
  return s;
}

}  // namespace

nlohmann::json http_response::json() const {
  auto j = nlohmann::json::parse(body, nullptr, false);
  return j.is_discarded() ? nlohmann::json() : j;
}

result<api_client> api_client::for_node(const std::filesystem::path& data_dir) {
  std::ifstream in(paths::apiserver_url_file(data_dir));
  std::string url;
  if (in)
    std::getline(in, url);
  url = trim(url);
  if (url.empty())
    return error{errc::unavailable,
                 "no deckhand node at " + data_dir.string() + " (is 'deckhand up' running?)"};
  return api_client(url);
}

api_client::api_client(std::string base_url, std::chrono::milliseconds timeout)
    : base_url_(std::move(base_url)), timeout_(timeout) {
  while (!base_url_.empty() && base_url_.back() == '/')
    base_url_.pop_back();
}

result<http_response> api_client::get(const std::string& path) const {
  return send("GET", path, nullptr);
}

result<http_response> api_client::post(const std::string& path, const nlohmann::json& body) const {
  auto text = body.dump();
  return send("POST", path, &text);
}

result<http_response> api_client::put(const std::string& path, const nlohmann::json& body) const {
  auto text = body.dump();
  return send("PUT", path, &text);
}

result<http_response> api_client::del(const std::string& path, const nlohmann::json& body) const {
  auto text = body.dump();
  return send("DELETE", path, &text);
}

result<http_response> api_client::send(const char* method, const std::string& path,
                                       const std::string* body) const {
  global_init();
  std::unique_ptr<CURL, curl_deleter> curl{curl_easy_init()};
  if (!curl)
    return error{errc::internal, "curl_easy_init failed"};
  std::unique_ptr<curl_slist, slist_deleter> headers;
  auto add_header = [&](const char* h) { headers.reset(curl_slist_append(headers.release(), h)); };
  add_header("Accept: application/json");
  if (body)
    add_header("Content-Type: application/json");
  http_response resp;
  auto url = base_url_ + path;
  auto* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp.body);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_.count()));
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  auto rc = curl_easy_perform(c);
  if (rc != CURLE_OK)
    return error{errc::unavailable,
                 "cannot reach the API server at " + base_url_ + ": " + curl_easy_strerror(rc)};
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp.status);
  return resp;
}

std::string status_reason(const http_response& resp) {
  auto j = resp.json();
  if (j.is_object() && j.contains("reason") && j["reason"].is_string() &&
      !j["reason"].get<std::string>().empty())
    return j["reason"].get<std::string>();
  switch (resp.status) {
  case 400: return "BadRequest";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "NotFound";
  case 405: return "MethodNotAllowed";
  case 409: return "Conflict";
  case 410: return "Expired";
  case 415: return "UnsupportedMediaType";
  case 422: return "Invalid";
  case 429: return "TooManyRequests";
  case 500: return "InternalError";
  case 503: return "ServiceUnavailable";
  case 504: return "Timeout";
  default: return "Unknown";
  }
}

std::string server_error(const http_response& resp, const std::string& action) {
  auto j = resp.json();
  std::string message;
  if (j.is_object() && j.contains("message") && j["message"].is_string())
    message = j["message"].get<std::string>();
  if (message.empty())
    message = resp.body.empty() ? "the server responded with HTTP " + std::to_string(resp.status)
                                : trim(resp.body);
  std::string out = "Error from server (" + status_reason(resp) + "): ";
  if (!action.empty())
    out += action + ": ";
  return out + message;
}

/// Names come from the command line: escape anything that would change the
/// meaning of the URL path.
std::string path_segment(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string collection_path(const std::string& ns, const std::string& collection,
                            const std::string& name) {
  std::string path = ns.empty() ? "/api/v1/" + collection
                                : "/api/v1/namespaces/" + path_segment(ns) + "/" + collection;
  if (!name.empty())
    path += "/" + path_segment(name);
  return path;
}

}  // namespace deckhand::cli

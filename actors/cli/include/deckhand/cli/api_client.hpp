#pragma once

/// A small Kubernetes REST client over libcurl: the CLI's only way to the API
/// server. Requests return the status and body; turning an error response
/// into kubectl's message is `server_error`.

#include <chrono>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "deckhand/common/result.hpp"

namespace deckhand::cli {

struct http_response {
  long status = 0;
  std::string body;

  bool ok() const { return status >= 200 && status < 300; }
  /// The body as JSON, or null when it is not JSON.
  nlohmann::json json() const;
};

class api_client {
 public:
  /// A client for the node whose API server URL is in
  /// `paths::apiserver_url_file(data_dir)`. Fails with
  /// `no deckhand node at DATA (is 'deckhand up' running?)` when it is missing.
  static result<api_client> for_node(const std::filesystem::path& data_dir);

  explicit api_client(std::string base_url,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

  result<http_response> get(const std::string& path) const;
  result<http_response> post(const std::string& path, const nlohmann::json& body) const;
  result<http_response> put(const std::string& path, const nlohmann::json& body) const;
  result<http_response> del(const std::string& path, const nlohmann::json& body) const;

  const std::string& base_url() const { return base_url_; }

 private:
  result<http_response> send(const char* method, const std::string& path,
                             const std::string* body) const;

  std::string base_url_;
  std::chrono::milliseconds timeout_;
};

/// kubectl's rendering of an error response: `Error from server (Reason):
/// message`, from the API server's Status object when there is one.
/// `action`, when given, is inserted as kubectl does for writes:
/// `Error from server (Reason): error when creating "FILE": message`.
std::string server_error(const http_response& resp, const std::string& action = {});

/// The Status object's `reason` (NotFound, AlreadyExists, Invalid, ...), or
/// one derived from the HTTP status.
std::string status_reason(const http_response& resp);

/// `/api/v1/namespaces/NS/COLLECTION[/NAME]`, or `/api/v1/COLLECTION` for all
/// namespaces (empty `ns`).
std::string collection_path(const std::string& ns, const std::string& collection,
                            const std::string& name = {});

}  // namespace deckhand::cli

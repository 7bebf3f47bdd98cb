#pragma once

/// Registry authentication for the puller: the node's credentials file
/// (docker's config.json format, per pull secret and node-wide), and a
/// session that answers a registry's 401 challenge with Basic credentials or
/// a bearer token from its token server.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/image/reference.hpp"
#include "http.hpp"

namespace deckhand::image::detail {

/// Token server and error bodies are small; anything bigger is not one.
constexpr std::uint64_t max_small_body = 1 << 20;

/// `host` of `host[:port]` (brackets kept for IPv6 literals).
std::string host_of(const std::string& domain);

/// Credentials for one registry, and where they came from (for messages:
/// never the secret itself).
struct credential {
  std::string username, password;
  std::string source;
};

/// The credentials to try for `domain`, in order: those of the named
/// secrets, then the node-wide ones.
result<std::vector<credential>> load_credentials(const std::filesystem::path& file,
                                                 const std::string& domain,
                                                 const std::vector<std::string>& secrets);

/// The error for a registry's unexpected HTTP status, with the message of
/// its JSON error body if any.
error status_error(const http_response& r, const std::string& what);

/// One conversation with one registry for one repository, with one set of
/// credentials (or none). Keeps the Authorization it earned across requests.
class registry_session {
 public:
  /// Talks plain HTTP to an `insecure` registry, HTTPS otherwise.
  registry_session(const reference& ref, std::optional<credential> cred, bool insecure,
                   std::chrono::milliseconds timeout);

  bool unauthorized() const { return unauthorized_; }
  /// Whose access was tried, for messages (never the secret itself).
  std::string who() const;

  /// GET base/<rel>, authenticating on a 401 challenge.
  result<http_response> get(const std::string& rel, std::vector<std::string> headers,
                            const body_sink& sink, std::uint64_t max_body);

 private:
  error authenticate(const auth_challenge& ch);
  error fail(const std::string& why);

  reference ref_;
  std::optional<credential> cred_;
  http_client http_;
  std::string base_;
  std::string authorization_;
  bool unauthorized_ = false;
};

}  // namespace deckhand::image::detail

#pragma once

/// A small libcurl GET client for the registry protocol: one easy handle
/// reused across requests (so connections are kept alive), redirects
/// followed, bodies of successful responses streamed to a sink, everything
/// else buffered up to a bound.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"

namespace deckhand::image::detail {

struct http_response {
  long status = 0;
  /// Headers of the final response, names lower-cased. A repeated header
  /// keeps its first value (WWW-Authenticate: the registry's preferred scheme).
  std::map<std::string, std::string> headers;
  /// The body when it was not streamed to a sink (non-2xx, or no sink).
  std::string body;
};

/// Receives the body of a 2xx response; a returned error aborts the transfer.
using body_sink = std::function<error(const char* data, std::size_t n)>;

class http_client {
 public:
  explicit http_client(std::chrono::milliseconds timeout);
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// GET `url` with extra `headers` ("Name: value"). A body not streamed to
  /// `sink` beyond `max_body` bytes is `errc::too_large`. Transport failures
  /// are `errc::unavailable`; any HTTP status is a response.
  result<http_response> get(const std::string& url, const std::vector<std::string>& headers,
                            const body_sink& sink, std::uint64_t max_body);

 private:
  void* curl_;  ///< CURL*
  std::chrono::milliseconds timeout_;
};

/// `%XX`-escapes everything but unreserved characters.
std::string url_escape(const std::string& s);

std::string base64_encode(const std::string& in);
/// False on malformed input.
bool base64_decode(const std::string& in, std::string& out);

/// One challenge of a `WWW-Authenticate` header: the scheme (lower-cased)
/// and its auth-params (names lower-cased, quoted values unescaped).
struct auth_challenge {
  std::string scheme;
  std::map<std::string, std::string> params;
};
auth_challenge parse_challenge(const std::string& header);

}  // namespace deckhand::image::detail

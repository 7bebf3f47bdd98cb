#pragma once

/// The Kubernetes REST front of the registry, over cpp-httplib: health and
/// version endpoints, discovery (/api, /api/v1, /apis), CRUD with label/field
/// selectors, the pod status and binding subresources, and chunked watch
/// streams. A thin transport adapter: all semantics live in the registry.

#include <cstdint>
#include <memory>
#include <string>

#include "deckhand/apiserver/registry.hpp"
#include "deckhand/common/result.hpp"

namespace deckhand::apiserver {

/// Listener and limits of the HTTP server.
struct http_options {
  std::string host = "127.0.0.1";
  /// 0: the OS picks a free port (see http_api::port()).
  int port = 0;
  /// Request bodies above this size get 413 RequestEntityTooLarge.
  std::size_t max_body_bytes = 3u << 20;
  /// Worker threads; every open watch stream holds one.
  int threads = 32;
  /// Events kept for watches resuming at an older resourceVersion.
  std::size_t watch_history = 10000;
  /// Watch streams end after this long unless the client asks for less
  /// (timeoutSeconds), as Kubernetes' --min-request-timeout does.
  int max_watch_seconds = 1800;
  /// Reported by /version.
  std::string git_version = "v1.32.0-deckhand";
};

/// The HTTP server. start() runs it on its own threads until stop().
class http_api {
 public:
  /// `r` must outlive this object.
  explicit http_api(registry& r, http_options opts = {});
  ~http_api();
  http_api(const http_api&) = delete;
  http_api& operator=(const http_api&) = delete;

  /// Binds the listener and starts serving; returns the bound port.
  result<int> start();

  /// Stops accepting, ends open watch streams and joins the server thread.
  void stop();

  /// The bound port (0 before start()).
  int port() const;

  /// "http://HOST:PORT", e.g. for DATA/run/apiserver.url.
  std::string url() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace deckhand::apiserver

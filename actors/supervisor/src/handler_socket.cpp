// The socket actions, httpGet (over TLS for HTTPS) and tcpSocket: a
// non-blocking connect, request and response driven by the executor's poll.

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "handler_executor_impl.hpp"

namespace deckhand::supervisor {

namespace handler_detail {

tls_lib& tls_lib::get() {
  static tls_lib lib = load();
  return lib;
}

tls_lib tls_lib::load() {
  tls_lib l;
  void* h = ::dlopen("libssl.so.3", RTLD_NOW | RTLD_LOCAL);
  if (!h)
    h = ::dlopen("libssl.so", RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    l.error = "HTTPS unavailable: cannot load libssl";
    return l;
  }
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
    return fn != nullptr;
  };
  bool ok = sym(l.client_method, "TLS_client_method") && sym(l.ctx_new, "SSL_CTX_new") &&
            sym(l.ssl_new, "SSL_new") && sym(l.ssl_free, "SSL_free") &&
            sym(l.set_fd, "SSL_set_fd") && sym(l.ctrl, "SSL_ctrl") &&
            sym(l.connect, "SSL_connect") && sym(l.write, "SSL_write") && sym(l.read, "SSL_read") &&
            sym(l.get_error, "SSL_get_error");
  if (ok)
    l.ctx = l.ctx_new(l.client_method());
  if (!ok || !l.ctx)
    l.error = "HTTPS unavailable: libssl lacks what it needs";
  return l;
}

namespace {

struct endpoint {
  sockaddr_storage sa{};
  socklen_t len = 0;
  std::string text;  ///< host:port as Go prints it
};

result<endpoint> resolve_endpoint(const std::string& host, int port) {
  endpoint ep;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.sa);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.sa);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    ep.len = sizeof *v4;
    ep.text = host + ":" + std::to_string(port);
    return ep;
  }
  if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    ep.len = sizeof *v6;
    ep.text = "[" + host + "]:" + std::to_string(port);
    return ep;
  }
  // A host name: resolved synchronously, which only a manifest that names
  // one pays for (Kubernetes advises against it anyway).
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0 || !res)
    return error{errc::not_found, "lookup " + host + ": " + ::gai_strerror(rc)};
  std::memcpy(&ep.sa, res->ai_addr, res->ai_addrlen);
  ep.len = res->ai_addrlen;
  ::freeaddrinfo(res);
  if (ep.sa.ss_family == AF_INET)
    v4->sin_port = htons(static_cast<uint16_t>(port));
  else
    v6->sin6_port = htons(static_cast<uint16_t>(port));
  ep.text = host + ":" + std::to_string(port);
  return ep;
}

}  // namespace

}  // namespace handler_detail

using namespace handler_detail;

void handler_executor::impl::begin_socket(op& o, const wire::int_or_string& port,
                                          const std::string& host_spec) {
  auto p = resolve_port(port, o.target.ports);
  if (!p)
    return;  // reported by loop() as unknown (no socket, no pid)
  std::string host = !host_spec.empty()         ? host_spec
                     : !o.target.pod_ip.empty() ? o.target.pod_ip
                                                : std::string("127.0.0.1");
  auto ep = resolve_endpoint(host, *p);
  if (!ep) {
    o.addr_text = host + ":" + std::to_string(*p);
    o.output = ep.err().message;
    return;
  }
  o.addr_text = ep->text;
  if (o.what.http_get) {
    const auto& h = *o.what.http_get;
    std::string path = h.path.empty() ? "/" : h.path;
    if (path[0] != '/')
      path = "/" + path;
    o.url = std::string(o.https ? "https" : "http") + "://" + ep->text + path;
    bool has_host = false, has_agent = false, has_accept = false;
    std::string headers;
    for (const auto& hd : h.http_headers) {
      if (hd.name.empty() || hd.name.find_first_of("\r\n:") != std::string::npos ||
          hd.value.find_first_of("\r\n") != std::string::npos)
        continue;
      std::string lower = hd.name;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      has_host = has_host || lower == "host";
      has_agent = has_agent || lower == "user-agent";
      has_accept = has_accept || lower == "accept";
      headers += hd.name + ": " + hd.value + "\r\n";
    }
    o.request = "GET " + path + " HTTP/1.1\r\n";
    if (!has_host)
      o.request += "Host: " + ep->text + "\r\n";
    if (!has_agent)
      o.request += "User-Agent: " + o.target.user_agent + "\r\n";
    if (!has_accept)
      o.request += "Accept: */*\r\n";
    o.request += headers + "Connection: close\r\n\r\n";
  }
  int fd = ::socket(ep->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    o.output = "socket: " + go_errno(errno);
    return;
  }
  o.sock.reset(fd);
  o.at = step::connecting;
  o.want = POLLOUT;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ep->sa), ep->len) < 0 && errno != EINPROGRESS) {
    o.output = "dial tcp " + o.addr_text + ": connect: " + go_errno(errno);
    o.sock.reset();
  }
}

bool handler_executor::impl::advance(op& o, short revents, handler_result& r) {
  // libssl is loaded only for HTTPS.
  tls_lib* tls = o.https ? &tls_lib::get() : nullptr;
  auto conn_error = [&](const std::string& what) {
    std::string msg = "dial tcp " + o.addr_text + ": " + what;
    r = failure(o.what.http_get ? "Get " + go_quote(o.url) + ": " + msg : msg);
    return true;
  };
  auto io_error = [&](const std::string& what) {
    r = failure("Get " + go_quote(o.url) + ": " + what);
    return true;
  };
  if (o.at == step::connecting) {
    if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
      return false;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(o.sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0)
      return conn_error("connect: " + go_errno(err));
    if (!o.what.http_get) {
      r.outcome = handler_outcome::success;
      return true;
    }
    if (o.https) {
      if (!tls->ctx) {
        r = unknown(tls->error);
        return true;
      }
      o.ssl = tls->ssl_new(tls->ctx);
      if (!o.ssl) {
        r = unknown("SSL_new failed");
        return true;
      }
      tls->set_fd(o.ssl, o.sock.get());
      const auto& host = o.what.http_get->host;
      in6_addr dummy;
      if (!host.empty() && ::inet_pton(AF_INET, host.c_str(), &dummy) != 1 &&
          ::inet_pton(AF_INET6, host.c_str(), &dummy) != 1)
        tls->ctrl(o.ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                  const_cast<char*>(host.c_str()));
      o.at = step::handshaking;
    } else {
      o.at = step::writing;
    }
    o.want = POLLOUT;
  }
  // TLS calls say which way they want the socket to become ready.
  auto tls_wait = [&](int rc) {
    int e = tls->get_error(o.ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
      o.want = POLLIN;
      return 0;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
      o.want = POLLOUT;
      return 0;
    }
    return e == SSL_ERROR_ZERO_RETURN ? 1 : -1;
  };
  if (o.at == step::handshaking) {
    int rc = tls->connect(o.ssl);
    if (rc != 1) {
      if (tls_wait(rc) == 0)
        return false;
      return io_error("remote error: tls: handshake failure");
    }
    o.at = step::writing;
  }
  if (o.at == step::writing) {
    while (o.sent < o.request.size()) {
      ssize_t n;
      if (o.ssl) {
        int rc = tls->write(o.ssl, o.request.data() + o.sent,
                            static_cast<int>(o.request.size() - o.sent));
        if (rc <= 0) {
          if (tls_wait(rc) == 0)
            return false;
          return io_error("write: broken pipe");
        }
        n = rc;
      } else {
        n = ::send(o.sock.get(), o.request.data() + o.sent, o.request.size() - o.sent,
                   MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EAGAIN || errno == EINTR) {
            o.want = POLLOUT;
            return false;
          }
          return io_error("write tcp " + o.addr_text + ": " + go_errno(errno));
        }
      }
      o.sent += static_cast<std::size_t>(n);
    }
    o.at = step::reading;
    o.want = POLLIN;
  }
  // reading: the status line and headers, then up to max_output of body
  for (;;) {
    char buf[4096];
    ssize_t n;
    if (o.ssl) {
      int rc = tls->read(o.ssl, buf, sizeof buf);
      if (rc <= 0) {
        int w = tls_wait(rc);
        if (w == 0)
          return false;
        n = 0;  // closed (cleanly or not): judge what arrived
      } else {
        n = rc;
      }
    } else {
      n = ::recv(o.sock.get(), buf, sizeof buf, 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          o.want = POLLIN;
          return false;
        }
        if (o.response.empty())
          return io_error("read tcp " + o.addr_text + ": " + go_errno(errno));
        n = 0;
      }
    }
    if (n > 0)
      o.response.append(buf, static_cast<std::size_t>(n));
    // The verdict needs only the status line: decide once the head is in
    // (a server that ignores "Connection: close" cannot hold it back).
    auto head_end = o.response.find("\r\n\r\n");
    if (n > 0 && head_end == std::string::npos && o.response.size() < 64 * 1024)
      continue;
    int code = 0;
    if (o.response.compare(0, 5, "HTTP/") == 0) {
      auto sp = o.response.find(' ');
      if (sp != std::string::npos && sp + 4 <= o.response.size())
        code = std::atoi(o.response.substr(sp + 1, 3).c_str());
    }
    if (code < 100 || code > 999)
      return io_error(o.response.empty() ? "EOF" : "malformed HTTP response");
    if (head_end != std::string::npos)
      r.output = o.response.substr(head_end + 4, max_output);
    if (code >= 200 && code < 400) {
      r.outcome = handler_outcome::success;
    } else {
      r.outcome = handler_outcome::failure;
      r.message = "HTTP probe failed with statuscode: " + std::to_string(code);
    }
    return true;
  }
}

}  // namespace deckhand::supervisor

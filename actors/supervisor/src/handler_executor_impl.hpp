#pragma once

/// The handler executor's private parts, shared by its sources: the action
/// in flight (`op`), the executor's state, and the helpers that both the
/// socket (httpGet, tcpSocket) and the exec actions use.

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/common/unique_fd.hpp"
#include "deckhand/supervisor/handlers.hpp"

namespace deckhand::supervisor::handler_detail {

using steady = std::chrono::steady_clock;

/// The kubelet reads at most this much of a probe's output or body.
constexpr std::size_t max_output = 10 * 1024;
constexpr int default_http_port = 80;

/// Go's wording of an errno ("connection refused"): strerror, lower case.
std::string go_errno(int err);

/// Go's %q for the simple strings commands are made of.
std::string go_quote(const std::string& s);

void set_nonblocking(int fd);

handler_result failure(std::string message);
handler_result unknown(std::string message);

/// A port number from `port` (a number or the name of one of `ports`).
result<int> resolve_port(const wire::int_or_string& port,
                         const std::vector<wire::container_port>& ports);

// -- TLS, loaded on first use --------------------------------------------------------
//
// libssl is dlopen()ed by the first HTTPS action: pods without HTTPS probes
// (nearly all) do not pay for mapping it in every supervisor.

struct tls_lib {
  decltype(&::TLS_client_method) client_method = nullptr;
  decltype(&::SSL_CTX_new) ctx_new = nullptr;
  decltype(&::SSL_new) ssl_new = nullptr;
  decltype(&::SSL_free) ssl_free = nullptr;
  decltype(&::SSL_set_fd) set_fd = nullptr;
  decltype(&::SSL_ctrl) ctrl = nullptr;
  decltype(&::SSL_connect) connect = nullptr;
  decltype(&::SSL_write) write = nullptr;
  decltype(&::SSL_read) read = nullptr;
  decltype(&::SSL_get_error) get_error = nullptr;
  SSL_CTX* ctx = nullptr;  ///< client context; verifies nothing (SSL_VERIFY_NONE)
  std::string error;

  /// The library, loaded by the first call.
  static tls_lib& get();

 private:
  static tls_lib load();
};

/// An action in flight.
enum class step { connecting, handshaking, writing, reading, exec_running, sleeping };

struct op {
  handler_id id = 0;
  handler_action what;
  handler_target target;
  handler_executor::completion done;
  steady::time_point deadline{};
  bool started = false;
  bool cancelled = false;
  step at = step::connecting;

  // sockets (httpGet, tcpSocket)
  common::unique_fd sock;
  std::string addr_text;  ///< "10.88.0.5:8080" / "[::1]:8080"
  std::string url;
  bool https = false;
  SSL* ssl = nullptr;
  short want = POLLOUT;
  std::string request;
  std::size_t sent = 0;
  std::string response;

  // exec
  pid_t pid = -1;
  common::unique_fd pidfd;
  common::unique_fd out;
  std::string output;

  op() = default;
  op(const op&) = delete;
  op& operator=(const op&) = delete;
  /// Frees the TLS session and kills and reaps an exec action's keeper.
  ~op();
};

/// Starts argv with stdout and stderr on `out_w` under a keeper process (see
/// handler_exec.cpp); returns the keeper's pid and pidfd.
result<std::pair<pid_t, common::unique_fd>> spawn_clone_child(const std::vector<std::string>& argv,
                                                              int out_w);

}  // namespace deckhand::supervisor::handler_detail

namespace deckhand::supervisor {

struct handler_executor::impl {
  using op = handler_detail::op;

  options opts;
  std::mutex mu;
  std::condition_variable cv;
  std::map<handler_id, std::unique_ptr<op>> incoming;  ///< guarded by mu
  std::vector<handler_id> cancels;                     ///< guarded by mu
  handler_id next_id = 1;                              ///< guarded by mu
  handler_id calling = 0;                              ///< whose completion runs now; guarded by mu
  std::atomic<std::size_t> count{0};
  bool stop = false;
  common::unique_fd wake;
  std::thread thread;
  std::thread::id thread_id;
  std::map<handler_id, std::unique_ptr<op>> ops;  ///< executor thread only

  void notify() {
    uint64_t one = 1;
    (void)!::write(wake.get(), &one, sizeof one);
  }

  void loop();
  void begin(op& o);
  void begin_socket(op& o, const wire::int_or_string& port, const std::string& host);
  void begin_exec(op& o);
  /// Advances a socket action after poll said it can; true when finished.
  bool advance(op& o, short revents, handler_result& r);
  bool advance_exec(op& o, handler_result& r);
  void drain_output(op& o);
  handler_result timed_out(op& o);
  void finish(std::unique_ptr<op> o, handler_result r);
};

}  // namespace deckhand::supervisor

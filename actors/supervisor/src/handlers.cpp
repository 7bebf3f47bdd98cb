#include "deckhand/supervisor/handlers.hpp"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>

#include "deckhand/common/log.hpp"
#include "deckhand/common/process.hpp"

extern char** environ;

namespace deckhand::supervisor {

namespace {

using steady = std::chrono::steady_clock;

/// The kubelet reads at most this much of a probe's output or body.
constexpr std::size_t max_output = 10 * 1024;
constexpr int default_http_port = 80;

/// Go's wording of an errno ("connection refused"): strerror, lower case.
std::string go_errno(int err) {
  std::string s = std::strerror(err);
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z')
    s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

/// Go's %q for the simple strings commands are made of.
std::string go_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// -- TLS, loaded on first use
// --------------------------------------------------------
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

  static tls_lib& get() {
    static tls_lib lib = load();
    return lib;
  }

  static tls_lib load() {
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
              sym(l.connect, "SSL_connect") && sym(l.write, "SSL_write") &&
              sym(l.read, "SSL_read") && sym(l.get_error, "SSL_get_error");
    if (ok)
      l.ctx = l.ctx_new(l.client_method());
    if (!ok || !l.ctx)
      l.error = "HTTPS unavailable: libssl lacks what it needs";
    return l;
  }
};

// -- an action in flight
// -------------------------------------------------------------

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

  ~op() {
    if (ssl)
      tls_lib::get().ssl_free(ssl);
    if (pid > 0) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      int st = 0;
      while (::waitpid(pid, &st, __WALL) < 0 && errno == EINTR) {
      }
    }
  }
};

handler_result failure(std::string message) {
  handler_result r;
  r.outcome = handler_outcome::failure;
  r.message = std::move(message);
  return r;
}

handler_result unknown(std::string message) {
  handler_result r;
  r.outcome = handler_outcome::unknown;
  r.message = std::move(message);
  return r;
}

/// A port number from `port` (a number or the name of one of `ports`).
result<int> resolve_port(const wire::int_or_string& port,
                         const std::vector<wire::container_port>& ports) {
  if (port.is_int()) {
    long v = std::stol(port.value);
    if (v < 1 || v > 65535)
      return error{errc::invalid, "invalid port number: " + port.value};
    return static_cast<int>(v);
  }
  for (const auto& p : ports)
    if (!port.value.empty() && p.name == port.value)
      return static_cast<int>(p.container_port);
  return error{errc::invalid, "couldn't find port: " + port.value};
}

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

struct clone_args_v0 {
  uint64_t flags;
  uint64_t pidfd;
  uint64_t child_tid;
  uint64_t parent_tid;
  uint64_t exit_signal;
  uint64_t stack;
  uint64_t stack_size;
  uint64_t tls;
};

/// Starts argv with stdout and stderr on `out_w`, under a "keeper": a clone
/// child (exit signal 0) that never execs, starts argv as its own child,
/// waits for it and exits with its code (128 + signal when killed). The
/// keeper's pid and pidfd are returned; its exit status is argv's.
///
/// Why not argv as the clone child itself: execve() resets a child's exit
/// signal to SIGCHLD (de_thread: "we have changed execution domain"), which
/// makes the runtime an ordinary child that the runner's waitpid(-1) (the
/// pod's subreaper, reaping whatever exits) reaps before this executor can:
/// its status was lost and every exec action "timed out". The keeper never
/// execs, so waitpid(-1) without __WALL never sees it; the runtime is the
/// keeper's child, so only the keeper reaps it.
///
/// The keeper puts itself in a new process group that the runtime (and the
/// command it execs) inherits: killing -pid ends them all.
result<std::pair<pid_t, common::unique_fd>> spawn_clone_child(const std::vector<std::string>& argv,
                                                              int out_w) {
  auto path = common::find_program(argv.at(0));
  if (!path)
    return path.err();
  std::vector<char*> args;
  for (const auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0)
    return error::from_errno("open /dev/null");
  common::unique_fd devnull_fd(devnull);
  int pidfd = -1;
  clone_args_v0 ca{};
  ca.flags = CLONE_PIDFD;
  ca.pidfd = reinterpret_cast<uint64_t>(&pidfd);
  ca.exit_signal = 0;
  long pid = ::syscall(SYS_clone3, &ca, sizeof ca);
  if (pid < 0)
    return error::from_errno("clone3");
  if (pid == 0) {
    // The keeper: a copy of a multi-threaded process, so system calls only
    // (vfork and execve included; no fork(), whose atfork handlers may
    // wait for locks held by threads that do not exist here).
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s)
      ::sigaction(s, &dfl, nullptr);
    ::setpgid(0, 0);
    if (::dup2(devnull, 0) < 0 || ::dup2(out_w, 1) < 0 || ::dup2(out_w, 2) < 0)
      ::_exit(127);
    ::syscall(SYS_close_range, 3u, ~0u, 0u);
    pid_t runtime = ::vfork();
    if (runtime < 0)
      ::_exit(127);
    if (runtime == 0) {
      ::execve(path->c_str(), args.data(), environ);
      ::_exit(127);
    }
    int st = 0;
    while (::waitpid(runtime, &st, 0) < 0) {
      if (errno != EINTR)
        ::_exit(127);
    }
    ::_exit(WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? (128 + WTERMSIG(st)) & 0xff : 127);
  }
  return std::make_pair(static_cast<pid_t>(pid), common::unique_fd(pidfd));
}

}  // namespace

handler_action handler_action::of(const wire::probe& p) {
  handler_action a;
  a.exec = p.exec;
  a.http_get = p.http_get;
  a.tcp_socket = p.tcp_socket;
  return a;
}

handler_action handler_action::of(const wire::lifecycle_handler& h) {
  handler_action a;
  a.exec = h.exec;
  a.http_get = h.http_get;
  a.tcp_socket = h.tcp_socket;
  a.sleep = h.sleep;
  return a;
}

std::string handler_action::kind() const {
  if (exec)
    return "exec";
  if (http_get)
    return "httpGet";
  if (tcp_socket)
    return "tcpSocket";
  if (sleep)
    return "sleep";
  return {};
}

// -- the executor
// --------------------------------------------------------------------

struct handler_executor::impl {
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

handler_executor::handler_executor(options opts) : impl_(std::make_unique<impl>()) {
  impl_->opts = std::move(opts);
  impl_->wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
}

handler_executor::~handler_executor() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->notify();
  if (impl_->thread.joinable())
    impl_->thread.join();
  // ops and incoming die here: exec children are killed and reaped (~op).
}

handler_id handler_executor::run(handler_action what, handler_target target,
                                 std::chrono::milliseconds timeout, completion done) {
  auto o = std::make_unique<op>();
  o->what = std::move(what);
  o->target = std::move(target);
  o->done = std::move(done);
  if (timeout <= std::chrono::milliseconds(0))
    timeout = std::chrono::seconds(1);
  o->deadline = steady::now() + timeout;
  handler_id id;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    id = impl_->next_id++;
    o->id = id;
    impl_->incoming.emplace(id, std::move(o));
    ++impl_->count;
    if (!impl_->thread.joinable()) {
      impl_->thread = std::thread([this] { impl_->loop(); });
      impl_->thread_id = impl_->thread.get_id();
    }
  }
  impl_->notify();
  return id;
}

void handler_executor::cancel(handler_id id) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (auto it = impl_->incoming.find(id); it != impl_->incoming.end()) {
    impl_->incoming.erase(it);
    --impl_->count;
    return;
  }
  impl_->cancels.push_back(id);
  if (std::this_thread::get_id() != impl_->thread_id)
    impl_->cv.wait(lock, [&] { return impl_->calling != id; });
  lock.unlock();
  impl_->notify();
}

std::size_t handler_executor::in_flight() const { return impl_->count.load(); }

void handler_executor::impl::finish(std::unique_ptr<op> o, handler_result r) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (std::find(cancels.begin(), cancels.end(), o->id) != cancels.end())
      return;
    calling = o->id;
  }
  if (o->done)
    o->done(std::move(r));
  {
    std::lock_guard<std::mutex> lock(mu);
    calling = 0;
  }
  cv.notify_all();
}

void handler_executor::impl::begin(op& o) {
  o.started = true;
  if (o.what.exec) {
    begin_exec(o);
  } else if (o.what.http_get) {
    const auto& h = *o.what.http_get;
    o.https = h.scheme == "HTTPS" || h.scheme == "https";
    begin_socket(o, h.port, h.host);
  } else if (o.what.tcp_socket) {
    begin_socket(o, o.what.tcp_socket->port, o.what.tcp_socket->host);
  } else if (o.what.sleep) {
    o.at = step::sleeping;
    o.deadline = steady::now() + std::chrono::seconds(std::max<int64_t>(o.what.sleep->seconds, 0));
  }
}

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

void handler_executor::impl::begin_exec(op& o) {
  const auto& cmd = o.what.exec->command;
  if (cmd.empty())
    return;
  std::vector<std::string> argv{opts.runtime_binary, "--root", opts.runtime_root.string(), "exec",
                                o.target.runtime_id};
  argv.insert(argv.end(), cmd.begin(), cmd.end());
  auto pipe = common::make_pipe();
  if (!pipe) {
    o.output = pipe.err().message;
    return;
  }
  auto child = spawn_clone_child(argv, pipe->second.get());
  if (!child) {
    o.output = child.err().message;
    return;
  }
  o.pid = child->first;
  o.pidfd = std::move(child->second);
  o.out = std::move(pipe->first);
  set_nonblocking(o.out.get());
  o.at = step::exec_running;
}

void handler_executor::impl::drain_output(op& o) {
  char buf[4096];
  while (o.out) {
    ssize_t n = ::read(o.out.get(), buf, sizeof buf);
    if (n > 0) {
      o.output.append(buf,
                      std::min<std::size_t>(static_cast<std::size_t>(n),
                                            max_output - std::min(max_output, o.output.size())));
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n == 0)
      o.out.reset();
    return;
  }
}

bool handler_executor::impl::advance_exec(op& o, handler_result& r) {
  drain_output(o);
  int st = 0;
  pid_t got = ::waitpid(o.pid, &st, __WALL | WNOHANG);
  if (got < 0 && errno != EINTR) {
    // Reaped by someone else (cannot happen to a keeper; see
    // spawn_clone_child): no verdict, and no spinning on a pidfd that stays
    // readable until the deadline.
    o.pid = -1;
    drain_output(o);
    r = unknown("exec: exit status lost: " + go_errno(errno));
    r.output = o.output;
    return true;
  }
  if (got != o.pid)
    return false;
  o.pid = -1;
  // What the command wrote before it ended; a background process that keeps
  // the pipe open does not hold the result back.
  drain_output(o);
  common::exit_status es{st};
  r.exit_code = es.code();
  r.output = o.output;
  r.message = o.output;
  r.outcome = r.exit_code == 0 ? handler_outcome::success : handler_outcome::failure;
  return true;
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

handler_result handler_executor::impl::timed_out(op& o) {
  handler_result r;
  r.outcome = handler_outcome::failure;
  r.timed_out = true;
  if (o.at == step::exec_running) {
    std::string joined;
    for (const auto& c : o.what.exec->command)
      joined += (joined.empty() ? "" : " ") + c;
    r.message = "command " + go_quote(joined) + " timed out";
    r.output = o.output;
    r.exit_code = 137;
  } else if (o.what.http_get) {
    r.message = "Get " + go_quote(o.url) +
                ": context deadline exceeded (Client.Timeout exceeded while "
                "awaiting headers)";
  } else {
    r.message = "dial tcp " + o.addr_text + ": i/o timeout";
  }
  return r;
}

void handler_executor::impl::loop() {
  for (;;) {
    std::vector<std::unique_ptr<op>> fresh;
    std::vector<handler_id> cancelled;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stop)
        return;
      for (auto& [id, o] : incoming)
        fresh.push_back(std::move(o));
      incoming.clear();
      cancelled.swap(cancels);
    }
    for (auto id : cancelled) {
      if (ops.erase(id))
        --count;
    }
    cv.notify_all();
    for (auto& o : fresh) {
      begin(*o);
      ops.emplace(o->id, std::move(o));
    }

    // Finished before any waiting: actions that could not start.
    std::vector<std::pair<handler_id, handler_result>> done;
    auto now = steady::now();
    std::vector<pollfd> fds;
    std::vector<handler_id> owners;
    fds.push_back({wake.get(), POLLIN, 0});
    owners.push_back(0);
    auto next = now + std::chrono::seconds(60);
    for (auto& [id, o] : ops) {
      const bool sockety = o->what.http_get || o->what.tcp_socket;
      if (o->what.exec && o->at != step::exec_running) {
        done.emplace_back(id, o->what.exec->command.empty()
                                  ? unknown("exec probe without a command")
                                  : unknown("cannot run the exec action: " + o->output));
        continue;
      }
      if (sockety && !o->sock) {
        if (!o->output.empty()) {
          // dial failed at once (connection refused on loopback, no route)
          std::string msg = o->output.rfind("dial tcp", 0) == 0 || o->output.rfind("socket", 0) == 0
                                ? o->output
                                : "dial tcp " + o->addr_text + ": " + o->output;
          done.emplace_back(
              id, failure(o->what.http_get ? "Get " + go_quote(o->url) + ": " + msg : msg));
        } else {
          auto port = o->what.http_get ? o->what.http_get->port : o->what.tcp_socket->port;
          done.emplace_back(id, unknown(resolve_port(port, o->target.ports).err().message));
        }
        continue;
      }
      if (!o->what.exec && !sockety && !o->what.sleep) {
        done.emplace_back(id, unknown("no action"));
        continue;
      }
      if (now >= o->deadline) {
        if (o->at == step::sleeping) {
          handler_result r;
          r.outcome = handler_outcome::success;
          done.emplace_back(id, r);
        } else {
          done.emplace_back(id, timed_out(*o));
        }
        continue;
      }
      next = std::min(next, o->deadline);
      if (o->at == step::exec_running) {
        fds.push_back({o->pidfd.get(), POLLIN, 0});
        owners.push_back(id);
        if (o->out) {
          fds.push_back({o->out.get(), POLLIN, 0});
          owners.push_back(id);
        }
      } else if (sockety) {
        fds.push_back({o->sock.get(), o->want, 0});
        owners.push_back(id);
      }
    }
    for (auto& [id, r] : done) {
      auto it = ops.find(id);
      auto o = std::move(it->second);
      ops.erase(it);
      --count;
      finish(std::move(o), std::move(r));
    }
    if (!done.empty())
      continue;

    auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    int n =
        ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<int64_t>(wait_ms, 0, 60000)));
    if (n < 0 && errno != EINTR)
      n = 0;
    uint64_t drained;
    while (::read(wake.get(), &drained, sizeof drained) > 0) {
    }
    for (std::size_t i = 1; i < fds.size(); ++i) {
      if (!fds[i].revents)
        continue;
      auto it = ops.find(owners[i]);
      if (it == ops.end())
        continue;  // finished through an earlier descriptor of the same action
      auto& o = *it->second;
      handler_result r;
      bool finished =
          o.at == step::exec_running ? advance_exec(o, r) : advance(o, fds[i].revents, r);
      if (!finished)
        continue;
      auto owned = std::move(it->second);
      ops.erase(it);
      --count;
      finish(std::move(owned), std::move(r));
    }
  }
}

}  // namespace deckhand::supervisor

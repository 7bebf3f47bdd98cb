#include "deckhand/proxy/userspace.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "deckhand/common/log.hpp"

namespace deckhand::proxy {

namespace {

using clock_type = std::chrono::steady_clock;

/// An owned file descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  ~unique_fd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

std::string to_string(const sockaddr_in& a) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &a.sin_addr, buf, sizeof buf);
  return std::string(buf) + ":" + std::to_string(ntohs(a.sin_port));
}

bool same_endpoint(const sockaddr_in& a, const sockaddr_in& b) {
  return a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port;
}

std::optional<sockaddr_in> parse_ipv4(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1)
    return std::nullopt;
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

/// Closes `fd` so that the peer sees a reset rather than an orderly close.
void abort_socket(unique_fd& fd) {
  if (!fd)
    return;
  linger l{1, 0};
  ::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
  fd.reset();
}

int read_unprivileged_port_start() {
  std::ifstream in("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  int v = 1024;
  if (!(in >> v))
    v = 1024;
  return v;
}

bool has_net_bind_service() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      unsigned long long caps = 0;
      std::istringstream(line.substr(7)) >> std::hex >> caps;
      return (caps >> 10) & 1;  // CAP_NET_BIND_SERVICE
    }
  }
  return false;
}

/// "TCP/127.96.0.10:80": the identity of a listening socket.
std::string listen_key(bool udp, const sockaddr_in& a) {
  return std::string(udp ? "UDP/" : "TCP/") + to_string(a);
}

enum class target_kind { listener, tcp, udp_session };

/// Something registered with epoll under an id; events for ids no longer in
/// the table (closed in the same batch) are dropped.
struct target {
  explicit target(target_kind k) : kind(k) {}
  virtual ~target() = default;
  target_kind kind;
};

struct affinity_record {
  sockaddr_in backend{};
  clock_type::time_point last_used;
};

/// One service_port_entry as the forwarding thread sees it: the backends new
/// connections may go to, the round-robin position and the affinity table.
/// Shared by the entry's ClusterIP and NodePort listeners (affinity is per
/// Service port, whichever way the client came in) and by connections still
/// choosing a backend.
struct service_state {
  service_port_entry entry;
  bool udp = false;
  std::vector<sockaddr_in> backends;
  std::size_t rr_next = 0;
  std::unordered_map<uint32_t, affinity_record> affinity;
  uint64_t cluster_listener = 0;  ///< target id, 0: none
  uint64_t node_listener = 0;
  std::optional<sockaddr_in> cluster_addr;
  std::optional<sockaddr_in> node_addr;

  bool has_backend(const sockaddr_in& b) const {
    return std::any_of(backends.begin(), backends.end(),
                       [&](const sockaddr_in& x) { return same_endpoint(x, b); });
  }
};

struct listener : target {
  listener() : target(target_kind::listener) {}
  unique_fd fd;
  bool udp = false;
  bool wildcard = false;  ///< bound to 0.0.0.0: UDP replies name their source
  sockaddr_in addr{};
  std::string key;
  std::shared_ptr<service_state> svc;
  bool paused = false;  ///< accept hit EMFILE; resumed by housekeeping
  /// UDP: sessions by client address.
  std::unordered_map<uint64_t, uint64_t> sessions;
};

uint64_t client_key(const sockaddr_in& a) {
  return (uint64_t(a.sin_addr.s_addr) << 16) | a.sin_port;
}

/// One direction of a TCP connection.
struct direction {
  int from = -1;
  int to = -1;
  unique_fd pipe_r, pipe_w;  ///< splice mode
  std::vector<char> buf;     ///< read/write mode
  std::size_t buf_off = 0;
  std::size_t pending = 0;  ///< bytes read but not yet written
  std::size_t capacity = 0;
  bool eof = false;
  bool shut = false;
  bool done() const { return eof && pending == 0 && shut; }
};

struct tcp_conn : target {
  tcp_conn() : target(target_kind::tcp) {}
  unique_fd client, backend;
  sockaddr_in client_addr{};
  sockaddr_in backend_addr{};
  std::shared_ptr<service_state> svc;
  bool connected = false;
  int attempts = 0;
  std::vector<sockaddr_in> tried;
  direction up, down;  ///< client→backend, backend→client
};

struct udp_session : target {
  udp_session() : target(target_kind::udp_session) {}
  unique_fd fd;
  uint64_t listener_id = 0;
  sockaddr_in client{};
  sockaddr_in backend{};
  in_addr local{};  ///< the address the client sent to (wildcard listeners)
  clock_type::time_point last_active;
};

enum class pump_status { open, closed, failed };

}  // namespace

class userspace_data_plane::impl {
 public:
  explicit impl(userspace_options opts) : opts_(std::move(opts)) {
    unprivileged_port_start_ = read_unprivileged_port_start();
    privileged_ = opts_.privileged ? *opts_.privileged : has_net_bind_service();
    if (opts_.connect_attempts < 1)
      opts_.connect_attempts = 1;
    if (opts_.buffer_bytes < 4096)
      opts_.buffer_bytes = 4096;
    epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
    wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!epoll_ || !wake_) {
      init_error_ = error::from_errno("userspace proxy: epoll/eventfd");
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev);
    thread_ = std::thread([this] { run(); });
  }

  ~impl() {
    if (thread_.joinable()) {
      {
        std::lock_guard lock(mu_);
        stopping_ = true;
      }
      wake();
      thread_.join();
    }
    // Connections and sessions before listeners: sessions refer to them.
    targets_.clear();
    services_.clear();
  }

  /// Runs `f` on the I/O thread and waits for it.
  void call(const std::function<void()>& f) {
    if (!thread_.joinable()) {
      f();
      return;
    }
    bool done = false;
    std::unique_lock lock(mu_);
    commands_.push_back([&] {
      f();
      std::lock_guard l(mu_);
      done = true;
      done_cv_.notify_all();
    });
    lock.unlock();
    wake();
    lock.lock();
    done_cv_.wait(lock, [&] { return done; });
  }

  result<void> apply(const service_map& desired) {
    if (init_error_)
      return init_error_;
    result<void> out;
    call([&] { out = apply_on_thread(desired); });
    return out;
  }

  result<void> cleanup() {
    if (init_error_)
      return init_error_;
    call([&] {
      std::vector<uint64_t> ids;
      for (auto& [id, t] : targets_)
        ids.push_back(id);
      for (auto id : ids)
        if (targets_.count(id) && targets_[id]->kind != target_kind::listener)
          close_target(id);
      for (auto id : ids)
        if (targets_.count(id))
          close_target(id);
      services_.clear();
      listen_index_.clear();
      errors_.clear();
      logged_errors_.clear();
      connect_deadlines_.clear();
    });
    return {};
  }

  userspace_stats stats() {
    userspace_stats s;
    call([&] {
      s = stats_;
      s.listeners = listen_index_.size();
    });
    return s;
  }

  std::vector<userspace_entry_error> entry_errors() {
    std::vector<userspace_entry_error> out;
    call([&] { out = errors_; });
    return out;
  }

 private:
  // ---- thread plumbing -------------------------------------------------

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
  }

  void run() {
    // splice(2) into a socket whose peer has gone raises SIGPIPE in the
    // writing thread; this thread reports EPIPE instead.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    std::array<epoll_event, 128> events{};
    for (;;) {
      int timeout = next_timeout_ms();
      int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout);
      if (n < 0 && errno != EINTR) {
        log::get()->error("msg=\"userspace proxy: epoll_wait failed\" error=\"{}\"",
                          std::strerror(errno));
        return;
      }
      for (int i = 0; i < n; ++i) {
        uint64_t id = events[i].data.u64 >> 1;
        unsigned side = events[i].data.u64 & 1;
        if (id == 0)
          continue;
        auto it = targets_.find(id);
        if (it == targets_.end())
          continue;
        switch (it->second->kind) {
        case target_kind::listener: {
          auto& l = static_cast<listener&>(*it->second);
          if (l.udp)
            on_udp_listener(l, id);
          else
            on_tcp_listener(l);
          break;
        }
        case target_kind::tcp: on_tcp(id, events[i].events, side); break;
        case target_kind::udp_session: on_udp_session(id); break;
        }
      }
      run_timers();
      // Drain the wake-up before taking the commands: a command queued in
      // between then still finds the eventfd set.
      uint64_t drain = 0;
      [[maybe_unused]] auto r = ::read(wake_.get(), &drain, sizeof drain);
      std::deque<std::function<void()>> cmds;
      bool stop = false;
      {
        std::lock_guard lock(mu_);
        cmds.swap(commands_);
        stop = stopping_;
      }
      for (auto& c : cmds)
        c();
      if (stop)
        return;
    }
  }

  int next_timeout_ms() {
    std::optional<clock_type::time_point> next;
    if (!connect_deadlines_.empty())
      next = connect_deadlines_.begin()->first;
    if (housekeeping_due_ && (!next || *housekeeping_due_ < *next))
      next = housekeeping_due_;
    if (!next)
      return -1;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next - clock_type::now()).count();
    return ms < 0 ? 0 : static_cast<int>(std::min<long long>(ms, 60'000));
  }

  uint64_t add_target(std::unique_ptr<target> t) {
    uint64_t id = next_id_++;
    targets_.emplace(id, std::move(t));
    return id;
  }

  /// Registers `fd` for target `id`; `side` tells a TCP connection's two
  /// sockets apart (0: client, 1: backend).
  bool watch(int fd, uint64_t id, uint32_t events, unsigned side = 0) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = id << 1 | side;
    return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
  }

  void close_target(uint64_t id) {
    auto it = targets_.find(id);
    if (it == targets_.end())
      return;
    switch (it->second->kind) {
    case target_kind::listener: {
      auto& l = static_cast<listener&>(*it->second);
      auto sessions = l.sessions;
      for (auto& [_, sid] : sessions)
        close_target(sid);
      listen_index_.erase(l.key);
      break;
    }
    case target_kind::tcp: --stats_.tcp_active; break;
    case target_kind::udp_session: {
      auto& s = static_cast<udp_session&>(*it->second);
      if (auto lit = targets_.find(s.listener_id); lit != targets_.end())
        static_cast<listener&>(*lit->second).sessions.erase(client_key(s.client));
      --stats_.udp_sessions;
      break;
    }
    }
    targets_.erase(id);
  }

  // ---- apply -----------------------------------------------------------

  struct plan {
    const service_port_entry* entry = nullptr;
    std::string key;
    bool udp = false;
    std::optional<sockaddr_in> cluster, node;
    std::string error;
  };

  std::string validate(const service_port_entry& e, plan& p) {
    if (e.protocol == "UDP")
      p.udp = true;
    else if (e.protocol != "TCP")
      return "protocol " + (e.protocol.empty() ? std::string("\"\"") : e.protocol) +
             " is not supported by the userspace proxy (TCP and UDP only)";
    bool has_cluster = !e.cluster_ip.empty() && e.cluster_ip != "None";
    if (has_cluster) {
      if (e.port <= 0 || e.port > 65535)
        return "port " + std::to_string(e.port) + " is out of range 1-65535";
      auto a = parse_ipv4(e.cluster_ip, e.port);
      if (!a)
        return "clusterIP \"" + e.cluster_ip + "\" is not an IPv4 address";
      uint32_t host = ntohl(a->sin_addr.s_addr);
      if (host == INADDR_ANY || host == INADDR_BROADCAST || IN_MULTICAST(host))
        return "clusterIP " + e.cluster_ip + " cannot be a Service address";
      if (auto err = check_port(e.port, "port"); !err.empty())
        return err;
      p.cluster = a;
    }
    if (e.node_port < 0 || e.node_port > 65535)
      return "nodePort " + std::to_string(e.node_port) + " is out of range 1-65535";
    if (e.node_port > 0) {
      auto a = parse_ipv4(opts_.node_address, e.node_port);
      if (!a)
        return "node address \"" + opts_.node_address + "\" is not an IPv4 address";
      if (auto err = check_port(e.node_port, "nodePort"); !err.empty())
        return err;
      p.node = a;
    }
    if (!p.cluster && !p.node)
      return "nothing to listen on: no clusterIP and no nodePort";
    return {};
  }

  std::string check_port(int port, const char* what) const {
    if (port < unprivileged_port_start_ && !privileged_)
      return std::string(what) + " " + std::to_string(port) +
             " is below net.ipv4.ip_unprivileged_port_start=" +
             std::to_string(unprivileged_port_start_) +
             " and this process lacks CAP_NET_BIND_SERVICE (grant it, lower the sysctl, "
             "or use a higher port)";
    return {};
  }

  result<void> apply_on_thread(const service_map& desired) {
    std::vector<plan> plans;
    std::set<std::string> keys;
    for (const auto& e : desired.entries) {
      plan p;
      p.entry = &e;
      p.key = e.key();
      if (!keys.insert(p.key).second)
        p.error = "duplicate entry " + p.key;
      else
        p.error = validate(e, p);
      plans.push_back(std::move(p));
    }

    // Listen addresses: an entry that already holds one keeps it; otherwise
    // the first entry in map order gets it and later ones fail.
    std::map<std::string, std::string> owner;  // listen key -> entry key
    auto current_owner = [&](const std::string& lk) -> std::string {
      auto it = listen_index_.find(lk);
      if (it == listen_index_.end())
        return {};
      auto t = targets_.find(it->second);
      return t == targets_.end() ? std::string{}
                                 : static_cast<listener&>(*t->second).svc->entry.key();
    };
    for (auto& p : plans) {
      if (!p.error.empty())
        continue;
      for (auto& a : {p.cluster, p.node})
        if (a) {
          auto lk = listen_key(p.udp, *a);
          if (current_owner(lk) == p.key)
            owner[lk] = p.key;
        }
    }
    for (auto& p : plans) {
      if (!p.error.empty())
        continue;
      std::vector<std::string> mine;
      for (auto& a : {p.cluster, p.node}) {
        if (!a)
          continue;
        auto lk = listen_key(p.udp, *a);
        auto [it, inserted] = owner.emplace(lk, p.key);
        if (!inserted && it->second != p.key) {
          p.error = "listen address " + lk + " is already used by " + it->second;
          break;
        }
        if (std::find(mine.begin(), mine.end(), lk) != mine.end()) {
          p.error = "clusterIP and nodePort both want " + lk;
          break;
        }
        mine.push_back(lk);
      }
      if (!p.error.empty())
        for (auto& lk : mine)
          if (owner[lk] == p.key)
            owner.erase(lk);
    }

    // Close first, so that an address given up by one entry can be taken by
    // another in the same apply.
    std::map<std::string, const plan*> wanted;
    for (auto& p : plans)
      if (p.error.empty())
        wanted[p.key] = &p;
    for (auto it = services_.begin(); it != services_.end();) {
      auto w = wanted.find(it->first);
      auto& s = *it->second;
      if (w == wanted.end() || w->second->udp != s.udp) {
        close_listener(s.cluster_listener);
        close_listener(s.node_listener);
        it = services_.erase(it);
        continue;
      }
      auto differs = [](const std::optional<sockaddr_in>& a, const std::optional<sockaddr_in>& b) {
        return a.has_value() != b.has_value() || (a && !same_endpoint(*a, *b));
      };
      if (differs(s.cluster_addr, w->second->cluster)) {
        close_listener(s.cluster_listener);
        s.cluster_addr.reset();
      }
      if (differs(s.node_addr, w->second->node)) {
        close_listener(s.node_listener);
        s.node_addr.reset();
      }
      ++it;
    }

    for (auto& p : plans) {
      if (!p.error.empty())
        continue;
      auto& sp = services_[p.key];
      if (!sp) {
        sp = std::make_shared<service_state>();
        sp->udp = p.udp;
      }
      update_backends(*sp, *p.entry);
      std::string err;
      if (p.cluster && !sp->cluster_listener) {
        auto r = open_listener(sp, *p.cluster);
        if (r.ok()) {
          sp->cluster_listener = *r;
          sp->cluster_addr = p.cluster;
        } else {
          err = r.err().message;
        }
      }
      if (p.node && !sp->node_listener) {
        auto r = open_listener(sp, *p.node);
        if (r.ok()) {
          sp->node_listener = *r;
          sp->node_addr = p.node;
        } else {
          err += (err.empty() ? "" : "; ") + r.err().message;
        }
      }
      p.error = err;
      if (!sp->cluster_listener && !sp->node_listener)
        services_.erase(p.key);
    }

    errors_.clear();
    std::map<std::string, std::string> still_failing;
    for (auto& p : plans) {
      if (p.error.empty())
        continue;
      errors_.push_back({p.key, p.error});
      ++stats_.entry_errors;
      auto lit = logged_errors_.find(p.key);
      if (lit == logged_errors_.end() || lit->second != p.error)
        log::get()->warn("msg=\"userspace proxy cannot serve entry\" service={} error=\"{}\"",
                         p.key, p.error);
      still_failing[p.key] = p.error;
    }
    logged_errors_ = std::move(still_failing);
    housekeeping_due_ =
        housekeeping_due_ ? housekeeping_due_ : clock_type::now() + std::chrono::seconds(1);

    if (errors_.empty())
      return {};
    std::string msg = std::to_string(errors_.size()) + " of " +
                      std::to_string(desired.entries.size()) +
                      " entries not served by the userspace proxy: ";
    for (std::size_t i = 0; i < errors_.size(); ++i)
      msg += (i ? "; " : "") + errors_[i].key + ": " + errors_[i].message;
    return error{errc::invalid, msg};
  }

  void close_listener(uint64_t& id) {
    if (id)
      close_target(id);
    id = 0;
  }

  void update_backends(service_state& s, const service_port_entry& e) {
    std::vector<sockaddr_in> fresh;
    for (const auto& b : e.usable_backends()) {
      if (b.port <= 0 || b.port > 65535)
        continue;
      if (auto a = parse_ipv4(b.ip, b.port))
        fresh.push_back(*a);
    }
    bool changed = fresh.size() != s.backends.size() ||
                   !std::equal(fresh.begin(), fresh.end(), s.backends.begin(), same_endpoint);
    bool affinity_changed = e.affinity_client_ip != s.entry.affinity_client_ip ||
                            e.affinity_timeout_seconds != s.entry.affinity_timeout_seconds;
    s.entry = e;
    if (changed) {
      s.backends = std::move(fresh);
      s.rr_next = 0;
    }
    if (affinity_changed || !e.affinity_client_ip)
      s.affinity.clear();
    if (!changed)
      return;
    for (auto it = s.affinity.begin(); it != s.affinity.end();)
      it = s.has_backend(it->second.backend) ? std::next(it) : s.affinity.erase(it);
    // UDP has no connection to finish: sessions to backends that can no
    // longer take traffic are dropped, as kube-proxy flushes their conntrack.
    if (s.udp) {
      for (uint64_t lid : {s.cluster_listener, s.node_listener}) {
        auto lit = targets_.find(lid);
        if (!lid || lit == targets_.end())
          continue;
        std::vector<uint64_t> stale;
        for (auto& [_, sid] : static_cast<listener&>(*lit->second).sessions) {
          auto sit = targets_.find(sid);
          if (sit != targets_.end() &&
              !s.has_backend(static_cast<udp_session&>(*sit->second).backend))
            stale.push_back(sid);
        }
        for (auto sid : stale)
          close_target(sid);
      }
    }
  }

  result<uint64_t> open_listener(const std::shared_ptr<service_state>& svc, const sockaddr_in& a) {
    auto l = std::make_unique<listener>();
    l->udp = svc->udp;
    l->addr = a;
    l->wildcard = a.sin_addr.s_addr == htonl(INADDR_ANY);
    l->key = listen_key(l->udp, a);
    l->svc = svc;
    l->fd.reset(
        ::socket(AF_INET, (l->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!l->fd)
      return error::from_errno("socket for " + l->key);
    int one = 1;
    if (!l->udp)
      ::setsockopt(l->fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (l->udp && l->wildcard)
      ::setsockopt(l->fd.get(), IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
    if (::bind(l->fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
      int e = errno;
      if (e == EADDRNOTAVAIL)
        return error{errc::unavailable,
                     "cannot listen on " + l->key +
                         ": the address is not local to this host; "
                         "the userspace proxy only serves cluster IPs it can bind (put the service "
                         "CIDR in 127.0.0.0/8, e.g. 127.96.0.0/16, or add the address to an "
                         "interface)"};
      if (e == EACCES)
        return error{errc::unavailable, "cannot listen on " + l->key +
                                            ": permission denied (ports below "
                                            "net.ipv4.ip_unprivileged_port_start need "
                                            "CAP_NET_BIND_SERVICE)"};
      return error::from_errno("cannot listen on " + l->key, e);
    }
    if (!l->udp && ::listen(l->fd.get(), SOMAXCONN) != 0)
      return error::from_errno("listen on " + l->key);
    int fd = l->fd.get();
    std::string key = l->key;
    uint64_t id = add_target(std::move(l));
    if (!watch(fd, id, EPOLLIN)) {
      auto err = error::from_errno("epoll_ctl for " + key);
      targets_.erase(id);
      return err;
    }
    listen_index_[key] = id;
    return id;
  }

  // ---- backend choice ----------------------------------------------------

  /// Round robin over the usable backends not yet tried by this client; under
  /// ClientIP affinity the client's recent backend first.
  std::optional<sockaddr_in> pick(service_state& s, uint32_t client_ip,
                                  const std::vector<sockaddr_in>& tried) {
    auto was_tried = [&](const sockaddr_in& b) {
      return std::any_of(tried.begin(), tried.end(),
                         [&](const sockaddr_in& t) { return same_endpoint(t, b); });
    };
    auto now = clock_type::now();
    if (s.entry.affinity_client_ip) {
      auto it = s.affinity.find(client_ip);
      if (it != s.affinity.end()) {
        bool fresh =
            now - it->second.last_used <= std::chrono::seconds(s.entry.affinity_timeout_seconds);
        if (fresh && s.has_backend(it->second.backend) && !was_tried(it->second.backend)) {
          it->second.last_used = now;
          return it->second.backend;
        }
      }
    }
    std::size_t n = s.backends.size();
    for (std::size_t i = 0; i < n; ++i) {
      const auto& b = s.backends[(s.rr_next + i) % n];
      if (was_tried(b))
        continue;
      s.rr_next = (s.rr_next + i + 1) % n;
      if (s.entry.affinity_client_ip && s.affinity.size() < max_affinity_records)
        s.affinity[client_ip] = {b, now};
      else if (s.entry.affinity_client_ip)
        s.affinity.erase(client_ip);
      return b;
    }
    return std::nullopt;
  }

  // ---- TCP ---------------------------------------------------------------

  void on_tcp_listener(listener& l) {
    for (int i = 0; i < 64; ++i) {
      sockaddr_in peer{};
      socklen_t len = sizeof peer;
      int fd = ::accept4(l.fd.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Level-triggered: without a pause this would spin until an fd frees.
          epoll_event ev{};
          ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, l.fd.get(), &ev);
          l.paused = true;
          schedule_housekeeping(std::chrono::milliseconds(100));
          log::get()->warn("msg=\"userspace proxy: accept paused\" listener={} error=\"{}\"", l.key,
                           std::strerror(errno));
        }
        return;
      }
      ++stats_.tcp_accepted;
      auto c = std::make_unique<tcp_conn>();
      c->client.reset(fd);
      c->client_addr = peer;
      c->svc = l.svc;
      if (stats_.tcp_active >= opts_.max_tcp_connections || l.svc->backends.empty()) {
        ++stats_.tcp_rejected;
        abort_socket(c->client);
        continue;
      }
      ++stats_.tcp_active;
      uint64_t id = add_target(std::move(c));
      start_connect(id);
    }
  }

  /// Tries the next backend for connection `id`; resets the client when there
  /// is none left to try.
  void start_connect(uint64_t id) {
    auto& c = static_cast<tcp_conn&>(*targets_.at(id));
    for (;;) {
      c.backend.reset();
      std::optional<sockaddr_in> b;
      if (c.attempts < opts_.connect_attempts)
        b = pick(*c.svc, c.client_addr.sin_addr.s_addr, c.tried);
      if (!b) {
        if (c.attempts == 0)
          ++stats_.tcp_rejected;
        abort_socket(c.client);
        close_target(id);
        return;
      }
      ++c.attempts;
      c.tried.push_back(*b);
      c.backend_addr = *b;
      c.backend.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!c.backend) {
        abort_socket(c.client);
        close_target(id);
        return;
      }
      int one = 1;
      ::setsockopt(c.backend.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      int r = ::connect(c.backend.get(), reinterpret_cast<const sockaddr*>(&*b), sizeof *b);
      if (r != 0 && errno != EINPROGRESS) {
        ++stats_.tcp_connect_failures;
        continue;
      }
      if (!watch(c.backend.get(), id, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, 1)) {
        abort_socket(c.client);
        close_target(id);
        return;
      }
      if (r == 0) {
        on_connected(id);
        return;
      }
      connect_deadlines_.emplace(clock_type::now() + opts_.connect_timeout,
                                 std::make_pair(id, c.attempts));
      return;
    }
  }

  void on_tcp(uint64_t id, uint32_t events, unsigned side) {
    auto& c = static_cast<tcp_conn&>(*targets_.at(id));
    if (!c.connected) {
      if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
        return;
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c.backend.get(), SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        ++stats_.tcp_connect_failures;
        if (c.svc->entry.affinity_client_ip)
          c.svc->affinity.erase(c.client_addr.sin_addr.s_addr);
        start_connect(id);
        return;
      }
      on_connected(id);
      return;
    }
    // Only the directions this event can move: the one reading from the
    // socket, and the one writing to it if that write was blocked.
    bool from_client = side == 0;
    bool readable = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    bool writable = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
    auto& writing = from_client ? c.down : c.up;
    pump(id, readable, writable && writing.pending > 0, from_client);
  }

  void on_connected(uint64_t id) {
    auto& c = static_cast<tcp_conn&>(*targets_.at(id));
    c.connected = true;
    ++stats_.tcp_forwarded;
    int one = 1;
    ::setsockopt(c.client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!setup(c.up, c.client.get(), c.backend.get()) ||
        !setup(c.down, c.backend.get(), c.client.get()) ||
        !watch(c.client.get(), id, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)) {
      abort_socket(c.client);
      abort_socket(c.backend);
      close_target(id);
      return;
    }
    pump(id, true, true, true);
  }

  bool setup(direction& d, int from, int to) {
    d.from = from;
    d.to = to;
    if (opts_.use_splice) {
      int p[2];
      if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
        d.pipe_r.reset(p[0]);
        d.pipe_w.reset(p[1]);
        int got = ::fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(opts_.buffer_bytes));
        if (got < 0)
          got = ::fcntl(p[1], F_GETPIPE_SZ);
        d.capacity = got > 0 ? static_cast<std::size_t>(got) : 65536;
        return true;
      }
      // Out of pipes (per-user pipe buffer limits): this connection copies.
    }
    d.buf.resize(opts_.buffer_bytes);
    d.capacity = d.buf.size();
    return true;
  }

  /// Moves what can be moved now in one direction; stops at EAGAIN on both
  /// ends, as the sockets are edge-triggered.
  pump_status pump_direction(direction& d) {
    for (;;) {
      bool progress = false;
      if (!d.eof && d.pending < d.capacity) {
        ssize_t n;
        if (d.pipe_w)
          n = ::splice(d.from, nullptr, d.pipe_w.get(), nullptr, d.capacity - d.pending,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        else {
          if (d.pending == 0)
            d.buf_off = 0;
          std::size_t end = d.buf_off + d.pending;
          n = end < d.buf.size() ? ::recv(d.from, d.buf.data() + end, d.buf.size() - end, 0) : -2;
          if (n == -2) {
            n = -1;
            errno = EAGAIN;
          }
        }
        if (n > 0) {
          d.pending += static_cast<std::size_t>(n);
          progress = true;
        } else if (n == 0) {
          d.eof = true;
        } else if (errno != EAGAIN && errno != EINTR) {
          return pump_status::failed;
        }
      }
      if (d.pending > 0) {
        ssize_t n;
        if (d.pipe_r)
          n = ::splice(d.pipe_r.get(), nullptr, d.to, nullptr, d.pending,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        else
          n = ::send(d.to, d.buf.data() + d.buf_off, d.pending, MSG_NOSIGNAL);
        if (n > 0) {
          d.pending -= static_cast<std::size_t>(n);
          d.buf_off += static_cast<std::size_t>(n);
          progress = true;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          return pump_status::failed;
        }
      }
      if (d.eof && d.pending == 0 && !d.shut) {
        // Pass the half-close on: the peer may still answer.
        ::shutdown(d.to, SHUT_WR);
        d.shut = true;
      }
      if (!progress)
        return d.done() ? pump_status::closed : pump_status::open;
    }
  }

  /// Pumps the direction reading from the event's socket if `reading`, the
  /// one writing to it if `writing`; closes the connection when it is over.
  void pump(uint64_t id, bool reading, bool writing, bool from_client) {
    auto& c = static_cast<tcp_conn&>(*targets_.at(id));
    auto& first = from_client ? c.up : c.down;
    auto& second = from_client ? c.down : c.up;
    auto status = [](direction& d) { return d.done() ? pump_status::closed : pump_status::open; };
    auto a = reading ? pump_direction(first) : status(first);
    auto b = a == pump_status::failed ? a : writing ? pump_direction(second) : status(second);
    auto up = from_client ? a : b;
    auto down = from_client ? b : a;
    if (up == pump_status::failed || down == pump_status::failed) {
      // One side died: the other learns it by a reset, not a hang.
      abort_socket(c.client);
      abort_socket(c.backend);
      close_target(id);
      return;
    }
    if (up == pump_status::closed && down == pump_status::closed)
      close_target(id);
  }

  // ---- UDP ---------------------------------------------------------------

  void on_udp_listener(listener& l, uint64_t lid) {
    auto now = clock_type::now();
    for (int i = 0; i < 64; ++i) {
      sockaddr_in peer{};
      iovec iov{udp_buf_.data(), udp_buf_.size()};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))];
      msghdr msg{};
      msg.msg_name = &peer;
      msg.msg_namelen = sizeof peer;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      ssize_t n = ::recvmsg(l.fd.get(), &msg, MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR)
          return;
        continue;  // a stray ICMP error on the listener; keep serving
      }
      ++stats_.udp_datagrams_in;
      in_addr local = l.addr.sin_addr;
      for (auto* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
        if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
          local = reinterpret_cast<in_pktinfo*>(CMSG_DATA(cm))->ipi_addr;

      uint64_t sid = 0;
      if (auto it = l.sessions.find(client_key(peer)); it != l.sessions.end())
        sid = it->second;
      else
        sid = open_session(l, lid, peer, local);
      if (!sid) {
        ++stats_.udp_dropped;
        continue;
      }
      auto& s = static_cast<udp_session&>(*targets_.at(sid));
      s.last_active = now;
      if (::send(s.fd.get(), udp_buf_.data(), static_cast<std::size_t>(n), MSG_DONTWAIT) < 0) {
        ++stats_.udp_dropped;
        if (errno == ECONNREFUSED)
          drop_session(sid);
      }
    }
  }

  uint64_t open_session(listener& l, uint64_t lid, const sockaddr_in& peer, in_addr local) {
    if (stats_.udp_sessions >= opts_.max_udp_sessions)
      return 0;
    auto b = pick(*l.svc, peer.sin_addr.s_addr, {});
    if (!b)
      return 0;
    auto s = std::make_unique<udp_session>();
    s->fd.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!s->fd || ::connect(s->fd.get(), reinterpret_cast<const sockaddr*>(&*b), sizeof *b) != 0)
      return 0;
    s->listener_id = lid;
    s->client = peer;
    s->backend = *b;
    s->local = local;
    s->last_active = clock_type::now();
    int fd = s->fd.get();
    uint64_t sid = add_target(std::move(s));
    if (!watch(fd, sid, EPOLLIN)) {
      targets_.erase(sid);
      return 0;
    }
    ++stats_.udp_sessions;
    l.sessions[client_key(peer)] = sid;
    schedule_housekeeping(udp_sweep_interval());
    return sid;
  }

  /// A backend that answers with ICMP port unreachable: the next datagram
  /// from this client starts a session to another backend.
  void drop_session(uint64_t sid) {
    auto& s = static_cast<udp_session&>(*targets_.at(sid));
    if (auto lit = targets_.find(s.listener_id); lit != targets_.end()) {
      auto& svc = *static_cast<listener&>(*lit->second).svc;
      auto a = svc.affinity.find(s.client.sin_addr.s_addr);
      if (a != svc.affinity.end() && same_endpoint(a->second.backend, s.backend))
        svc.affinity.erase(a);
    }
    close_target(sid);
  }

  void on_udp_session(uint64_t sid) {
    auto& s = static_cast<udp_session&>(*targets_.at(sid));
    auto lit = targets_.find(s.listener_id);
    if (lit == targets_.end()) {
      close_target(sid);
      return;
    }
    auto& l = static_cast<listener&>(*lit->second);
    for (int i = 0; i < 64; ++i) {
      ssize_t n = ::recv(s.fd.get(), udp_buf_.data(), udp_buf_.size(), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == ECONNREFUSED) {
          drop_session(sid);
          return;
        }
        return;
      }
      s.last_active = clock_type::now();
      iovec iov{udp_buf_.data(), static_cast<std::size_t>(n)};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
      msghdr msg{};
      msg.msg_name = &s.client;
      msg.msg_namelen = sizeof s.client;
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      if (l.wildcard) {
        // Answer from the address the client wrote to, or it drops the reply.
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        auto* cm = CMSG_FIRSTHDR(&msg);
        cm->cmsg_level = IPPROTO_IP;
        cm->cmsg_type = IP_PKTINFO;
        cm->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
        in_pktinfo pi{};
        pi.ipi_spec_dst = s.local;
        std::memcpy(CMSG_DATA(cm), &pi, sizeof pi);
      }
      if (::sendmsg(l.fd.get(), &msg, MSG_DONTWAIT) >= 0)
        ++stats_.udp_datagrams_out;
      else
        ++stats_.udp_dropped;
    }
  }

  // ---- timers ------------------------------------------------------------

  std::chrono::milliseconds udp_sweep_interval() const {
    return std::max(std::chrono::milliseconds(5), opts_.udp_idle_timeout / 4);
  }

  void schedule_housekeeping(std::chrono::milliseconds in) {
    auto when = clock_type::now() + in;
    if (!housekeeping_due_ || when < *housekeeping_due_)
      housekeeping_due_ = when;
  }

  void run_timers() {
    auto now = clock_type::now();
    while (!connect_deadlines_.empty() && connect_deadlines_.begin()->first <= now) {
      auto [id, attempt] = connect_deadlines_.begin()->second;
      connect_deadlines_.erase(connect_deadlines_.begin());
      auto it = targets_.find(id);
      if (it == targets_.end() || it->second->kind != target_kind::tcp)
        continue;
      auto& c = static_cast<tcp_conn&>(*it->second);
      if (c.connected || c.attempts != attempt)
        continue;
      ++stats_.tcp_connect_failures;
      if (c.svc->entry.affinity_client_ip)
        c.svc->affinity.erase(c.client_addr.sin_addr.s_addr);
      start_connect(id);
    }
    if (!housekeeping_due_ || *housekeeping_due_ > now)
      return;
    housekeeping_due_.reset();
    bool again = false;
    std::vector<uint64_t> idle;
    for (auto& [id, t] : targets_) {
      if (t->kind == target_kind::udp_session) {
        if (now - static_cast<udp_session&>(*t).last_active >= opts_.udp_idle_timeout)
          idle.push_back(id);
        else
          again = true;
      } else if (t->kind == target_kind::listener) {
        auto& l = static_cast<listener&>(*t);
        if (l.paused) {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.u64 = id << 1;
          ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, l.fd.get(), &ev);
          l.paused = false;
        }
      }
    }
    for (auto id : idle)
      close_target(id);
    if (again)
      schedule_housekeeping(udp_sweep_interval());
    // Affinity records outlive nothing: expired ones go at most once a second.
    if (now >= next_affinity_sweep_) {
      next_affinity_sweep_ = now + std::chrono::seconds(1);
      bool any = false;
      for (auto& [_, s] : services_) {
        auto ttl = std::chrono::seconds(s->entry.affinity_timeout_seconds);
        for (auto it = s->affinity.begin(); it != s->affinity.end();)
          it = now - it->second.last_used > ttl ? s->affinity.erase(it) : std::next(it);
        any = any || !s->affinity.empty();
      }
      if (any)
        schedule_housekeeping(std::chrono::seconds(1));
    }
  }

  static constexpr std::size_t max_affinity_records = 65536;

  userspace_options opts_;
  int unprivileged_port_start_ = 1024;
  bool privileged_ = false;
  error init_error_;

  unique_fd epoll_, wake_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable done_cv_;
  std::deque<std::function<void()>> commands_;
  bool stopping_ = false;

  // Everything below belongs to the I/O thread.
  uint64_t next_id_ = 1;  // 0 is the wake-up eventfd
  std::unordered_map<uint64_t, std::unique_ptr<target>> targets_;
  std::map<std::string, std::shared_ptr<service_state>> services_;
  std::map<std::string, uint64_t> listen_index_;
  std::multimap<clock_type::time_point, std::pair<uint64_t, int>> connect_deadlines_;
  std::optional<clock_type::time_point> housekeeping_due_;
  clock_type::time_point next_affinity_sweep_{};
  std::vector<userspace_entry_error> errors_;
  std::map<std::string, std::string> logged_errors_;
  std::array<char, 65536> udp_buf_{};
  userspace_stats stats_;
};

userspace_data_plane::userspace_data_plane(userspace_options opts)
    : impl_(std::make_unique<impl>(std::move(opts))) {}

userspace_data_plane::~userspace_data_plane() = default;

result<void> userspace_data_plane::apply(const service_map& desired, const service_map&) {
  return impl_->apply(desired);
}

result<void> userspace_data_plane::cleanup() { return impl_->cleanup(); }

userspace_stats userspace_data_plane::stats() const { return impl_->stats(); }

std::vector<userspace_entry_error> userspace_data_plane::entry_errors() const {
  return impl_->entry_errors();
}

std::unique_ptr<data_plane> make_userspace_data_plane(userspace_options opts) {
  return std::make_unique<userspace_data_plane>(std::move(opts));
}

}  // namespace deckhand::proxy

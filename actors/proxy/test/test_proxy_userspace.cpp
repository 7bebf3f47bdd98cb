#define BOOST_TEST_MODULE deckhand_proxy_userspace
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "deckhand/common/log.hpp"
#include "deckhand/proxy/userspace.hpp"

using namespace deckhand;
using namespace deckhand::proxy;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

constexpr auto io_deadline = 5s;

int count_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (auto* e = ::readdir(d))
    if (e->d_name[0] != '.')
      ++n;
  ::closedir(d);
  return n - 1;  // the directory itself
}

sockaddr_in make_addr(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

/// A loopback address of this test process alone: a different pid or a
/// different call gives a different address, so the ports on it are ours.
std::string unique_ip() {
  static int counter = 0;
  int n = counter++;
  int pid = ::getpid();
  return "127." + std::to_string(100 + pid % 100) + "." + std::to_string((pid / 100) % 250) + "." +
         std::to_string(2 + n % 250);
}

/// A port that nothing listens on at `ip` (chosen by the OS).
int free_port(const std::string& ip, bool udp = false) {
  int fd = ::socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
  auto a = make_addr(ip, 0);
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool wait_fd(int fd, short events, steady::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    if (left.count() <= 0)
      return false;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r > 0)
      return true;
    if (r < 0 && errno != EINTR)
      return false;
  }
}

uint64_t fnv(uint64_t h, const char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 1099511628211ull;
  }
  return h;
}
constexpr uint64_t fnv_init = 14695981039346656037ull;

/// The byte at `offset` of the test stream (not a multiple of any buffer).
char pattern(uint64_t offset) { return static_cast<char>((offset * 131 + offset / 4099) & 0xff); }

/// A TCP server on 127.0.0.1 (OS-chosen port) that greets with "<id>\n" and
/// then obeys one line: "echo" (echo until EOF), "sink" (read until EOF,
/// answer "<bytes> <fnv>"), "source N" (send N pattern bytes, close),
/// "reset" (close with RST).
class tcp_backend {
 public:
  explicit tcp_backend(std::string id) : id_(std::move(id)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = make_addr("127.0.0.1", 0);
    BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::listen(fd_, 128) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~tcp_backend() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_, &one, sizeof one);
    thread_.join();
    {
      std::lock_guard l(mu_);
      for (auto& c : conns_)
        if (c.fd >= 0)
          ::shutdown(c.fd, SHUT_RDWR);
    }
    for (auto& c : conns_) {
      c.thread.join();
      if (c.fd >= 0)
        ::close(c.fd);
    }
    ::close(fd_);
    ::close(stop_);
  }
  int port() const { return port_; }
  const std::string& id() const { return id_; }
  int accepted() const { return accepted_; }

 private:
  struct conn {
    int fd = -1;
    std::thread thread;
  };

  void accept_loop() {
    for (;;) {
      pollfd p[2] = {{fd_, POLLIN, 0}, {stop_, POLLIN, 0}};
      if (::poll(p, 2, -1) < 0 && errno != EINTR)
        return;
      if (p[1].revents)
        return;
      if (!p[0].revents)
        continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0)
        continue;
      ++accepted_;
      std::lock_guard l(mu_);
      auto& rec = conns_.emplace_back();
      rec.fd = c;
      std::size_t index = conns_.size() - 1;
      rec.thread = std::thread([this, c, index] { serve(c, index); });
    }
  }

  void close_conn(std::size_t index, bool reset) {
    std::lock_guard l(mu_);
    int fd = conns_[index].fd;
    if (reset) {
      linger lg{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    }
    ::close(fd);
    conns_[index].fd = -1;
  }

  void serve(int fd, std::size_t index) {
    std::string greeting = id_ + "\n";
    ::send(fd, greeting.data(), greeting.size(), MSG_NOSIGNAL);
    std::string line;
    char ch;
    while (::recv(fd, &ch, 1, 0) == 1 && ch != '\n')
      line += ch;
    std::vector<char> buf(1 << 16);
    if (line == "echo") {
      for (;;) {
        ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n <= 0)
          break;
        if (::send(fd, buf.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL) != n)
          break;
      }
    } else if (line == "sink") {
      uint64_t total = 0, h = fnv_init;
      for (;;) {
        ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n <= 0)
          break;
        h = fnv(h, buf.data(), static_cast<std::size_t>(n));
        total += static_cast<uint64_t>(n);
      }
      auto reply = std::to_string(total) + " " + std::to_string(h) + "\n";
      ::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    } else if (line.rfind("source ", 0) == 0) {
      uint64_t total = std::stoull(line.substr(7)), sent = 0;
      while (sent < total) {
        std::size_t chunk = static_cast<std::size_t>(std::min<uint64_t>(buf.size(), total - sent));
        for (std::size_t i = 0; i < chunk; ++i)
          buf[i] = pattern(sent + i);
        ssize_t n = ::send(fd, buf.data(), chunk, MSG_NOSIGNAL);
        if (n <= 0)
          break;
        sent += static_cast<uint64_t>(n);
      }
    } else if (line == "reset") {
      close_conn(index, true);
      return;
    }
    close_conn(index, false);
  }

  std::string id_;
  int fd_ = -1, stop_ = -1, port_ = 0;
  std::atomic<int> accepted_{0};
  std::mutex mu_;
  std::deque<conn> conns_;
  std::thread thread_;
};

/// A UDP server on 127.0.0.1 that answers "<id>:<payload>".
class udp_backend {
 public:
  explicit udp_backend(std::string id) : id_(std::move(id)) {
    fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto a = make_addr("127.0.0.1", 0);
    BOOST_REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] {
      char buf[2048];
      for (;;) {
        pollfd p[2] = {{fd_, POLLIN, 0}, {stop_, POLLIN, 0}};
        if (::poll(p, 2, -1) < 0 && errno != EINTR)
          return;
        if (p[1].revents)
          return;
        sockaddr_in peer{};
        socklen_t plen = sizeof peer;
        ssize_t n = ::recvfrom(fd_, buf, sizeof buf, MSG_DONTWAIT,
                               reinterpret_cast<sockaddr*>(&peer), &plen);
        if (n < 0)
          continue;
        auto reply = id_ + ":" + std::string(buf, static_cast<std::size_t>(n));
        ::sendto(fd_, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&peer), plen);
      }
    });
  }
  ~udp_backend() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_, &one, sizeof one);
    thread_.join();
    ::close(fd_);
    ::close(stop_);
  }
  int port() const { return port_; }

 private:
  std::string id_;
  int fd_ = -1, stop_ = -1, port_ = 0;
  std::thread thread_;
};

struct udp_client {
  int fd = -1;
  explicit udp_client(const std::string& source_ip = "127.0.0.1") {
    fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    auto a = make_addr(source_ip, 0);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  ~udp_client() { ::close(fd); }
  /// Sends `payload` to ip:port; returns the reply and checks that it came
  /// from ip:port.
  std::string ask(const std::string& ip, int port, const std::string& payload) {
    auto to = make_addr(ip, port);
    ::sendto(fd, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    if (!wait_fd(fd, POLLIN, steady::now() + io_deadline))
      return "<timeout>";
    char buf[2048];
    sockaddr_in from{};
    socklen_t len = sizeof from;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0)
      return "<error>";
    if (from.sin_addr.s_addr != to.sin_addr.s_addr || from.sin_port != to.sin_port)
      return "<reply from elsewhere>";
    return std::string(buf, static_cast<std::size_t>(n));
  }
};

backend to_backend(int port, bool ready = true) {
  backend b;
  b.ip = "127.0.0.1";
  b.port = port;
  b.ready = ready;
  return b;
}

service_port_entry make_entry(const std::string& name, const std::string& ip, int port,
                              std::vector<backend> backends, const std::string& proto = "TCP") {
  service_port_entry e;
  e.namespace_ = "default";
  e.service = name;
  e.protocol = proto;
  e.cluster_ip = ip;
  e.port = port;
  std::sort(backends.begin(), backends.end());
  e.backends = std::move(backends);
  return e;
}

service_map make_map(std::vector<service_port_entry> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const auto& a, const auto& b) { return a.key() < b.key(); });
  return {std::move(entries)};
}

/// An RAII client socket.
struct client {
  int fd = -1;
  client() = default;
  client(client&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  ~client() {
    if (fd >= 0)
      ::close(fd);
  }
};

/// Connects (optionally from `source_ip`); no greeting is read.
client dial(const std::string& ip, int port, const std::string& source_ip = {}) {
  client c;
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (!source_ip.empty()) {
    auto s = make_addr(source_ip, 0);
    BOOST_REQUIRE(::bind(c.fd, reinterpret_cast<sockaddr*>(&s), sizeof s) == 0);
  }
  timeval tv{5, 0};
  ::setsockopt(c.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  auto a = make_addr(ip, port);
  if (::connect(c.fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(c.fd);
    c.fd = -1;
  }
  return c;
}

/// Reads up to '\n'; "" on EOF, error or deadline. `err` gets the errno of a
/// failed read (ECONNRESET for a reset), 0 for EOF.
std::string read_line(int fd, int* err = nullptr) {
  auto deadline = steady::now() + io_deadline;
  std::string out;
  if (err)
    *err = -1;
  for (;;) {
    if (!wait_fd(fd, POLLIN, deadline))
      return {};
    char ch;
    ssize_t n = ::recv(fd, &ch, 1, MSG_DONTWAIT);
    if (n == 1) {
      if (ch == '\n') {
        if (err)
          *err = -2;
        return out;
      }
      out += ch;
      continue;
    }
    if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      if (err)
        *err = n == 0 ? 0 : errno;
      return {};
    }
  }
}

/// The id of the backend that a new connection to the service reaches.
std::string greeting_of(const std::string& ip, int port, const std::string& source_ip = {}) {
  auto c = dial(ip, port, source_ip);
  if (c.fd < 0)
    return "<connect failed>";
  auto id = read_line(c.fd);
  return id.empty() ? "<no greeting>" : id;
}

void send_all(int fd, const std::string& s) {
  BOOST_REQUIRE(::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()));
}

/// A fresh client's experience of a Service without backends: a reset, fast.
void expect_refused_fast(const std::string& ip, int port) {
  auto start = steady::now();
  auto c = dial(ip, port);
  if (c.fd >= 0) {
    int err = -1;
    auto line = read_line(c.fd, &err);
    BOOST_TEST(line.empty());
    BOOST_TEST((err == ECONNRESET || err == 0), "err=" << err);
  }
  BOOST_TEST((steady::now() - start < 1s));
}

std::unique_ptr<userspace_data_plane> make_plane(userspace_options o = {}) {
  return std::make_unique<userspace_data_plane>(std::move(o));
}

template <class F>
bool eventually(F f, std::chrono::milliseconds within = 5000ms) {
  auto deadline = steady::now() + within;
  while (steady::now() < deadline) {
    if (f())
      return true;
    std::this_thread::sleep_for(2ms);
  }
  return f();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(userspace_tcp)

BOOST_AUTO_TEST_CASE(factory_gives_userspace_mode) {
  auto p = make_userspace_data_plane();
  BOOST_TEST(p->mode() == "userspace");
  BOOST_TEST(p->apply({}, {}).ok());
  BOOST_TEST(p->cleanup().ok());
}

BOOST_AUTO_TEST_CASE(round_robin_spreads_connections_evenly) {
  tcp_backend b0("b0"), b1("b1"), b2("b2");
  auto ip = unique_ip();
  int port = free_port(ip);
  auto plane = make_plane();
  auto r = plane->apply(
      make_map({make_entry("web", ip, port,
                           {to_backend(b0.port()), to_backend(b1.port()), to_backend(b2.port())})}),
      {});
  BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.err().message));
  std::map<std::string, int> seen;
  std::vector<std::string> order;
  for (int i = 0; i < 9; ++i) {
    auto id = greeting_of(ip, port);
    ++seen[id];
    order.push_back(id);
  }
  BOOST_TEST(seen.size() == 3u);
  for (auto& [id, n] : seen)
    BOOST_TEST(n == 3, id << " got " << n);
  // Round robin, not random: three different backends in every window of 3.
  for (int i = 0; i + 2 < 9; ++i)
    BOOST_TEST(
        (order[i] != order[i + 1] && order[i] != order[i + 2] && order[i + 1] != order[i + 2]));
  auto s = plane->stats();
  BOOST_TEST(s.tcp_accepted == 9u);
  BOOST_TEST(s.tcp_forwarded == 9u);
  BOOST_TEST(s.listeners == 1u);
}

BOOST_AUTO_TEST_CASE(client_ip_affinity_holds_until_timeout) {
  tcp_backend b0("b0"), b1("b1"), b2("b2");
  auto ip = unique_ip();
  int port = free_port(ip);
  auto e = make_entry("sticky", ip, port,
                      {to_backend(b0.port()), to_backend(b1.port()), to_backend(b2.port())});
  e.affinity_client_ip = true;
  e.affinity_timeout_seconds = 1;
  auto plane = make_plane();
  BOOST_REQUIRE(plane->apply(make_map({e}), {}).ok());
  const std::string client_a = "127.0.0.2", client_b = "127.0.0.3";
  auto first = greeting_of(ip, port, client_a);
  for (int i = 0; i < 5; ++i)
    BOOST_TEST(greeting_of(ip, port, client_a) == first);
  auto other = greeting_of(ip, port, client_b);
  BOOST_TEST(other != first);
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(greeting_of(ip, port, client_b) == other);
  // Past timeoutSeconds since its last use, client A's record is gone and
  // round robin resumes with the third backend.
  std::this_thread::sleep_for(1100ms);
  auto after = greeting_of(ip, port, client_a);
  BOOST_TEST(after != first);
  BOOST_TEST(after != other);
}

BOOST_AUTO_TEST_CASE(refused_backend_fails_over_to_the_next) {
  tcp_backend live("live");
  int dead_port = free_port("127.0.0.1");  // nothing listens: connect is refused
  auto ip = unique_ip();
  int port = free_port(ip);
  auto plane = make_plane();
  BOOST_REQUIRE(
      plane
          ->apply(make_map({make_entry("web", ip, port,
                                       {to_backend(dead_port), to_backend(live.port())})}),
                  {})
          .ok());
  for (int i = 0; i < 4; ++i)
    BOOST_TEST(greeting_of(ip, port) == "live");
  BOOST_TEST(plane->stats().tcp_connect_failures >= 1u);
}

BOOST_AUTO_TEST_CASE(all_backends_refusing_resets_the_client) {
  int dead1 = free_port("127.0.0.1"), dead2 = free_port("127.0.0.1");
  auto ip = unique_ip();
  int port = free_port(ip);
  auto plane = make_plane();
  BOOST_REQUIRE(
      plane
          ->apply(make_map({make_entry("web", ip, port, {to_backend(dead1), to_backend(dead2)})}),
                  {})
          .ok());
  expect_refused_fast(ip, port);
}

BOOST_AUTO_TEST_CASE(no_usable_backend_refuses_at_once) {
  tcp_backend unready("unready");
  auto ip = unique_ip();
  int empty_port = free_port(ip), unready_port = free_port(ip);
  auto plane = make_plane();
  BOOST_REQUIRE(plane
                    ->apply(make_map({make_entry("empty", ip, empty_port, {}),
                                      make_entry("unready", ip, unready_port,
                                                 {to_backend(unready.port(), false)})}),
                            {})
                    .ok());
  expect_refused_fast(ip, empty_port);
  expect_refused_fast(ip, unready_port);
  BOOST_TEST(unready.accepted() == 0);
  BOOST_TEST(plane->stats().tcp_rejected == 2u);
}

BOOST_AUTO_TEST_CASE(unready_backend_gets_no_new_connections) {
  tcp_backend ready("ready"), unready("unready");
  auto ip = unique_ip();
  int port = free_port(ip);
  auto plane = make_plane();
  auto entry =
      make_entry("web", ip, port, {to_backend(ready.port()), to_backend(unready.port(), false)});
  BOOST_REQUIRE(plane->apply(make_map({entry}), {}).ok());
  for (int i = 0; i < 6; ++i)
    BOOST_TEST(greeting_of(ip, port) == "ready");
  BOOST_TEST(unready.accepted() == 0);

  // It turns ready: both share the traffic.
  for (auto& b : entry.backends)
    b.ready = true;
  BOOST_REQUIRE(plane->apply(make_map({entry}), {}).ok());
  std::map<std::string, int> seen;
  for (int i = 0; i < 4; ++i)
    ++seen[greeting_of(ip, port)];
  BOOST_TEST(seen["ready"] == 2);
  BOOST_TEST(seen["unready"] == 2);

  // None ready but one serving and terminating: kube-proxy's fallback.
  for (auto& b : entry.backends) {
    b.ready = false;
    b.serving = b.port == ready.port();
    b.terminating = true;
  }
  BOOST_REQUIRE(plane->apply(make_map({entry}), {}).ok());
  for (int i = 0; i < 3; ++i)
    BOOST_TEST(greeting_of(ip, port) == "ready");
}

BOOST_AUTO_TEST_CASE(apply_keeps_established_connections) {
  tcp_backend a("a"), b("b"), a2("a2");
  auto ip = unique_ip();
  int port_a = free_port(ip), port_b = free_port(ip);
  auto entry_a = make_entry("svc-a", ip, port_a, {to_backend(a.port())});
  auto entry_b = make_entry("svc-b", ip, port_b, {to_backend(b.port())});
  auto plane = make_plane();
  BOOST_REQUIRE(plane->apply(make_map({entry_a}), {}).ok());

  auto c = dial(ip, port_a);
  BOOST_REQUIRE(c.fd >= 0);
  BOOST_REQUIRE(read_line(c.fd) == "a");
  send_all(c.fd, "echo\nhello-1\n");
  BOOST_TEST(read_line(c.fd) == "hello-1");

  // Another entry appears: A's connection and listener are untouched.
  BOOST_REQUIRE(plane->apply(make_map({entry_a, entry_b}), {}).ok());
  send_all(c.fd, "hello-2\n");
  BOOST_TEST(read_line(c.fd) == "hello-2");
  BOOST_TEST(greeting_of(ip, port_b) == "b");

  // It goes away: its port stops answering, A keeps working.
  BOOST_REQUIRE(plane->apply(make_map({entry_a}), {}).ok());
  send_all(c.fd, "hello-3\n");
  BOOST_TEST(read_line(c.fd) == "hello-3");
  BOOST_TEST(dial(ip, port_b).fd < 0);

  // A's own backend is replaced: the established connection may finish,
  // new connections go to the new backend.
  entry_a.backends = {to_backend(a2.port())};
  BOOST_REQUIRE(plane->apply(make_map({entry_a}), {}).ok());
  send_all(c.fd, "hello-4\n");
  BOOST_TEST(read_line(c.fd) == "hello-4");
  BOOST_TEST(greeting_of(ip, port_a) == "a2");
}

BOOST_AUTO_TEST_CASE(half_close_reaches_the_backend) {
  tcp_backend sink("sink");
  auto ip = unique_ip();
  int port = free_port(ip);
  auto plane = make_plane();
  BOOST_REQUIRE(
      plane->apply(make_map({make_entry("web", ip, port, {to_backend(sink.port())})}), {}).ok());
  auto c = dial(ip, port);
  BOOST_REQUIRE(read_line(c.fd) == "sink");
  send_all(c.fd, "sink\nabc");
  ::shutdown(c.fd, SHUT_WR);
  // The backend answers only after it has seen EOF.
  BOOST_TEST(read_line(c.fd) == "3 " + std::to_string(fnv(fnv_init, "abc", 3)));
  int err = -1;
  read_line(c.fd, &err);
  BOOST_TEST(err == 0);  // then an orderly close
  BOOST_TEST(eventually([&] { return plane->stats().tcp_active == 0; }));
}

BOOST_AUTO_TEST_CASE(backend_reset_closes_the_client) {
  tcp_backend b("b");
  auto ip = unique_ip();
  int port = free_port(ip);
  auto plane = make_plane();
  BOOST_REQUIRE(
      plane->apply(make_map({make_entry("web", ip, port, {to_backend(b.port())})}), {}).ok());
  auto c = dial(ip, port);
  BOOST_REQUIRE(read_line(c.fd) == "b");
  send_all(c.fd, "reset\n");
  int err = -1;
  read_line(c.fd, &err);
  BOOST_TEST((err == ECONNRESET || err == 0), "err=" << err);
  BOOST_TEST(eventually([&] { return plane->stats().tcp_active == 0; }));
}

namespace {

/// Sends `total` pattern bytes to a "sink" backend through the service and
/// checks the count and checksum it reports, then reads `total` bytes from a
/// "source" backend and checks them.
void transfer_both_ways(const std::string& ip, int port, uint64_t total) {
  {
    auto c = dial(ip, port);
    BOOST_REQUIRE(c.fd >= 0);
    BOOST_REQUIRE(!read_line(c.fd).empty());
    send_all(c.fd, "sink\n");
    std::vector<char> buf(1 << 17);
    uint64_t sent = 0, h = fnv_init;
    auto deadline = steady::now() + 60s;
    while (sent < total) {
      std::size_t chunk = static_cast<std::size_t>(std::min<uint64_t>(buf.size(), total - sent));
      for (std::size_t i = 0; i < chunk; ++i)
        buf[i] = pattern(sent + i);
      BOOST_REQUIRE(wait_fd(c.fd, POLLOUT, deadline));
      ssize_t n = ::send(c.fd, buf.data(), chunk, MSG_NOSIGNAL);
      BOOST_REQUIRE(n > 0);
      h = fnv(h, buf.data(), static_cast<std::size_t>(n));
      sent += static_cast<uint64_t>(n);
    }
    ::shutdown(c.fd, SHUT_WR);
    BOOST_TEST(read_line(c.fd) == std::to_string(total) + " " + std::to_string(h));
  }
  {
    auto c = dial(ip, port);
    BOOST_REQUIRE(c.fd >= 0);
    BOOST_REQUIRE(!read_line(c.fd).empty());
    send_all(c.fd, "source " + std::to_string(total) + "\n");
    std::vector<char> buf(1 << 17);
    uint64_t got = 0;
    bool intact = true;
    auto deadline = steady::now() + 60s;
    for (;;) {
      BOOST_REQUIRE(wait_fd(c.fd, POLLIN, deadline));
      ssize_t n = ::recv(c.fd, buf.data(), buf.size(), 0);
      BOOST_REQUIRE(n >= 0);
      if (n == 0)
        break;
      for (ssize_t i = 0; i < n && intact; ++i)
        intact = buf[static_cast<std::size_t>(i)] == pattern(got + static_cast<uint64_t>(i));
      got += static_cast<uint64_t>(n);
    }
    BOOST_TEST(got == total);
    BOOST_TEST(intact);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(large_transfer_is_intact_with_splice) {
  tcp_backend b("b");
  auto ip = unique_ip();
  int port = free_port(ip);
  auto plane = make_plane();
  BOOST_REQUIRE(
      plane->apply(make_map({make_entry("bulk", ip, port, {to_backend(b.port())})}), {}).ok());
  transfer_both_ways(ip, port, 64ull << 20);
}

BOOST_AUTO_TEST_CASE(large_transfer_is_intact_with_read_write) {
  tcp_backend b("b");
  auto ip = unique_ip();
  int port = free_port(ip);
  userspace_options o;
  o.use_splice = false;
  o.buffer_bytes = 100'000;  // not a power of two, to exercise partial buffers
  auto plane = make_plane(o);
  BOOST_REQUIRE(
      plane->apply(make_map({make_entry("bulk", ip, port, {to_backend(b.port())})}), {}).ok());
  transfer_both_ways(ip, port, 16ull << 20);
}

BOOST_AUTO_TEST_CASE(node_port_listens_on_the_node_address) {
  tcp_backend b("b");
  auto cluster_ip = unique_ip(), node_ip = unique_ip();
  int port = free_port(cluster_ip), node_port = free_port(node_ip);
  userspace_options o;
  o.node_address = node_ip;
  auto plane = make_plane(o);
  auto e = make_entry("np", cluster_ip, port, {to_backend(b.port())});
  e.node_port = node_port;
  BOOST_REQUIRE(plane->apply(make_map({e}), {}).ok());
  BOOST_TEST(greeting_of(node_ip, node_port) == "b");
  BOOST_TEST(greeting_of(cluster_ip, port) == "b");
  BOOST_TEST(plane->stats().listeners == 2u);
  // The nodePort goes away, the ClusterIP stays.
  e.node_port = 0;
  BOOST_REQUIRE(plane->apply(make_map({e}), {}).ok());
  BOOST_TEST(dial(node_ip, node_port).fd < 0);
  BOOST_TEST(greeting_of(cluster_ip, port) == "b");
}

BOOST_AUTO_TEST_CASE(bad_entries_fail_alone) {
  tcp_backend b("b");
  auto ip = unique_ip();
  int good_port = free_port(ip), dup_port = free_port(ip);
  userspace_options o;
  o.privileged = false;
  auto plane = make_plane(o);
  std::vector<service_port_entry> entries = {
      make_entry("good", ip, good_port, {to_backend(b.port())}),
      make_entry("port-zero", ip, 0, {to_backend(b.port())}),
      make_entry("no-address", "", 80, {to_backend(b.port())}),
      make_entry("not-an-ip", "ten.zero.zero.one", 8080, {to_backend(b.port())}),
      make_entry("sctp", ip, free_port(ip), {to_backend(b.port())}, "SCTP"),
      make_entry("not-local", "192.0.2.10", 8080, {to_backend(b.port())}),
      make_entry("privileged", ip, 80, {to_backend(b.port())}),
      make_entry("dup-1", ip, dup_port, {to_backend(b.port())}),
      make_entry("dup-2", ip, dup_port, {to_backend(b.port())}),
  };
  auto map = make_map(entries);
  auto r = plane->apply(map, {});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().message.find("7 of 9") != std::string::npos, r.err().message);
  std::map<std::string, std::string> errs;
  for (auto& e : plane->entry_errors())
    errs[e.key] = e.message;
  BOOST_TEST(errs.size() == 7u);
  BOOST_TEST(errs.count("default/good:") == 0u);
  BOOST_TEST(errs.count("default/dup-1:") == 0u);  // first in map order wins
  BOOST_TEST(errs["default/dup-2:"].find("already used by default/dup-1:") != std::string::npos);
  BOOST_TEST(errs["default/port-zero:"].find("out of range") != std::string::npos);
  BOOST_TEST(errs["default/no-address:"].find("nothing to listen on") != std::string::npos);
  BOOST_TEST(errs["default/not-an-ip:"].find("not an IPv4 address") != std::string::npos);
  BOOST_TEST(errs["default/sctp:"].find("not supported") != std::string::npos);
  BOOST_TEST(errs["default/not-local:"].find("not local to this host") != std::string::npos);
  BOOST_TEST(errs["default/privileged:"].find("ip_unprivileged_port_start") != std::string::npos);
  BOOST_TEST(greeting_of(ip, good_port) == "b");
  BOOST_TEST(greeting_of(ip, dup_port) == "b");
  BOOST_TEST(plane->stats().entry_errors == 7u);

  // The same map again: the same errors, the good entries undisturbed.
  auto c = dial(ip, good_port);
  BOOST_REQUIRE(read_line(c.fd) == "b");
  send_all(c.fd, "echo\nstill\n");
  BOOST_TEST(read_line(c.fd) == "still");
  BOOST_TEST(!plane->apply(map, {}).ok());
  BOOST_TEST(plane->entry_errors().size() == 7u);
  send_all(c.fd, "here\n");
  BOOST_TEST(read_line(c.fd) == "here");

  // Fixed: everything applies.
  BOOST_TEST(plane->apply(make_map({entries[0], entries[7]}), {}).ok());
  BOOST_TEST(plane->entry_errors().empty());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(userspace_udp)

BOOST_AUTO_TEST_CASE(udp_round_trips_per_client_session) {
  udp_backend u0("u0"), u1("u1");
  auto ip = unique_ip();
  int port = free_port(ip, true);
  userspace_options o;
  o.udp_idle_timeout = 100ms;
  auto plane = make_plane(o);
  BOOST_REQUIRE(
      plane
          ->apply(make_map({make_entry("dns", ip, port,
                                       {to_backend(u0.port()), to_backend(u1.port())}, "UDP")}),
                  {})
          .ok());
  udp_client a, b;
  auto ra = a.ask(ip, port, "ping");
  auto rb = b.ask(ip, port, "ping");
  BOOST_TEST((ra == "u0:ping" || ra == "u1:ping"), ra);
  BOOST_TEST((rb == "u0:ping" || rb == "u1:ping"), rb);
  BOOST_TEST(ra != rb);  // round robin across sessions
  // Same client, same session, same backend.
  for (int i = 0; i < 5; ++i)
    BOOST_TEST(a.ask(ip, port, "again") == ra.substr(0, 3) + "again");
  BOOST_TEST(plane->stats().udp_sessions == 2u);
  // Idle sessions expire.
  BOOST_TEST(eventually([&] { return plane->stats().udp_sessions == 0; }));
  auto s = plane->stats();
  BOOST_TEST(s.udp_datagrams_in == 7u);
  BOOST_TEST(s.udp_datagrams_out == 7u);
}

BOOST_AUTO_TEST_CASE(udp_node_port_answers_from_the_address_asked) {
  udp_backend u0("u0");
  auto ip = unique_ip();
  int port = free_port(ip, true);
  int node_port = free_port("0.0.0.0", true);
  auto plane = make_plane();  // NodePorts on 0.0.0.0
  auto e = make_entry("dns", ip, port, {to_backend(u0.port())}, "UDP");
  e.node_port = node_port;
  BOOST_REQUIRE(plane->apply(make_map({e}), {}).ok());
  udp_client a;
  // The client writes to one of many local addresses; the reply must come
  // from that one, not from whatever the routing table prefers.
  auto other_local = unique_ip();
  BOOST_TEST(a.ask(other_local, node_port, "np") == "u0:np");
  BOOST_TEST(a.ask(ip, port, "ci") == "u0:ci");
}

BOOST_AUTO_TEST_CASE(udp_without_backends_is_dropped_and_counted) {
  auto ip = unique_ip();
  int port = free_port(ip, true);
  auto plane = make_plane();
  BOOST_REQUIRE(plane->apply(make_map({make_entry("dns", ip, port, {}, "UDP")}), {}).ok());
  udp_client a;
  auto to = make_addr(ip, port);
  ::sendto(a.fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  BOOST_TEST(eventually([&] { return plane->stats().udp_dropped == 1u; }));
  BOOST_TEST(plane->stats().udp_sessions == 0u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(userspace_lifecycle)

BOOST_AUTO_TEST_CASE(shutdown_leaves_no_fds_and_closes_connections) {
  log::get();  // the logger's own resources are not ours to count
  int before = count_fds();
  {
    tcp_backend b("b");
    udp_backend u("u");
    auto ip = unique_ip();
    int tport = free_port(ip), uport = free_port(ip, true);
    auto plane = make_plane();
    BOOST_REQUIRE(plane
                      ->apply(make_map({make_entry("t", ip, tport, {to_backend(b.port())}),
                                        make_entry("u", ip, uport, {to_backend(u.port())}, "UDP")}),
                              {})
                      .ok());
    std::vector<client> open;
    for (int i = 0; i < 5; ++i) {
      open.push_back(dial(ip, tport));
      BOOST_REQUIRE(read_line(open.back().fd) == "b");
      send_all(open.back().fd, "echo\n");
    }
    udp_client uc;
    BOOST_TEST(uc.ask(ip, uport, "hi") == "u:hi");
    BOOST_TEST(plane->stats().tcp_active == 5u);

    // cleanup() closes listeners, connections and sessions alike.
    BOOST_REQUIRE(plane->cleanup().ok());
    auto s = plane->stats();
    BOOST_TEST(s.listeners == 0u);
    BOOST_TEST(s.tcp_active == 0u);
    BOOST_TEST(s.udp_sessions == 0u);
    for (auto& c : open) {
      int err = -1;
      read_line(c.fd, &err);
      BOOST_TEST((err == 0 || err == ECONNRESET), "err=" << err);
    }
    BOOST_TEST(dial(ip, tport).fd < 0);

    // Applied again and destroyed with connections open.
    BOOST_REQUIRE(
        plane->apply(make_map({make_entry("t", ip, tport, {to_backend(b.port())})}), {}).ok());
    auto c = dial(ip, tport);
    BOOST_REQUIRE(read_line(c.fd) == "b");
    plane.reset();
    int err = -1;
    read_line(c.fd, &err);
    BOOST_TEST((err == 0 || err == ECONNRESET), "err=" << err);
  }
  BOOST_TEST(count_fds() == before);
}

BOOST_AUTO_TEST_SUITE_END()

// bench_proxy_userspace: TCP through the userspace proxy against a direct
// connection to the backend, on loopback, in the same run.
//
// - throughput: one connection sends N bytes to a sink backend, half-closes,
//   and waits for the byte count; median of the repetitions.
// - request/response: 64-byte ping-pong on one connection (p50/p99), and a
//   new connection per request (connect, ping-pong, close).
//
// The ratio is proxied/direct for throughput and direct/proxied for latency,
// printed next to issue 5's target for the userspace mode (0.5x).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "deckhand/proxy/userspace.hpp"

using namespace deckhand;
using steady = std::chrono::steady_clock;

namespace {

constexpr double target_ratio = 0.5;

sockaddr_in make_addr(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

bool send_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool recv_all(int fd, char* p, std::size_t n) {
  while (n > 0) {
    ssize_t r = ::recv(fd, p, n, 0);
    if (r <= 0)
      return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

/// The backend: first byte 'S' (sink: read to EOF, answer the 8-byte count)
/// or 'E' (echo 64-byte messages until EOF).
class backend_server {
 public:
  backend_server() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    auto a = make_addr("127.0.0.1", 0);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 512) != 0) {
      std::perror("backend bind/listen");
      std::exit(1);
    }
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    thread_ = std::thread([this] { loop(); });
  }
  ~backend_server() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_, &one, sizeof one);
    thread_.join();
    std::lock_guard l(mu_);
    for (auto& t : workers_)
      t.join();
    ::close(fd_);
    ::close(stop_);
  }
  int port() const { return port_; }

 private:
  void loop() {
    for (;;) {
      pollfd p[2] = {{fd_, POLLIN, 0}, {stop_, POLLIN, 0}};
      if (::poll(p, 2, -1) < 0 && errno != EINTR)
        return;
      if (p[1].revents)
        return;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0)
        continue;
      std::lock_guard l(mu_);
      workers_.emplace_back([c] { serve(c); });
    }
  }

  static void serve(int fd) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char mode = 0;
    if (::recv(fd, &mode, 1, 0) == 1) {
      if (mode == 'S') {
        std::vector<char> buf(1 << 20);
        uint64_t total = 0;
        for (;;) {
          ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
          if (n <= 0)
            break;
          total += static_cast<uint64_t>(n);
        }
        send_all(fd, reinterpret_cast<const char*>(&total), sizeof total);
      } else if (mode == 'E') {
        char msg[64];
        while (recv_all(fd, msg, sizeof msg) && send_all(fd, msg, sizeof msg)) {
        }
      }
    }
    ::close(fd);
  }

  int fd_ = -1, stop_ = -1, port_ = 0;
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::thread thread_;
};

int dial(const std::string& ip, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto a = make_addr(ip, port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// Bytes per second for one bulk transfer, or 0 on failure.
double throughput(const std::string& ip, int port, uint64_t bytes) {
  std::vector<char> buf(1 << 20, 'x');
  auto start = steady::now();
  int fd = dial(ip, port);
  if (fd < 0)
    return 0;
  bool ok = send_all(fd, "S", 1);
  for (uint64_t sent = 0; ok && sent < bytes;) {
    auto chunk = static_cast<std::size_t>(std::min<uint64_t>(buf.size(), bytes - sent));
    ok = send_all(fd, buf.data(), chunk);
    sent += chunk;
  }
  ::shutdown(fd, SHUT_WR);
  uint64_t got = 0;
  ok = ok && recv_all(fd, reinterpret_cast<char*>(&got), sizeof got) && got == bytes;
  ::close(fd);
  double secs = std::chrono::duration<double>(steady::now() - start).count();
  return ok ? static_cast<double>(bytes) / secs : 0;
}

struct latency {
  double p50_us = 0, p99_us = 0;
  bool ok = false;
};

latency summarize(std::vector<double> us) {
  latency l;
  if (us.empty())
    return l;
  std::sort(us.begin(), us.end());
  l.p50_us = us[us.size() / 2];
  l.p99_us = us[std::min(us.size() - 1, us.size() * 99 / 100)];
  l.ok = true;
  return l;
}

/// Round trips of 64 bytes on one connection.
latency ping_pong(const std::string& ip, int port, int n) {
  int fd = dial(ip, port);
  if (fd < 0 || !send_all(fd, "E", 1))
    return {};
  char msg[64] = {};
  std::vector<double> us;
  us.reserve(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto t0 = steady::now();
    if (!send_all(fd, msg, sizeof msg) || !recv_all(fd, msg, sizeof msg)) {
      ::close(fd);
      return {};
    }
    us.push_back(std::chrono::duration<double, std::micro>(steady::now() - t0).count());
  }
  ::close(fd);
  return summarize(std::move(us));
}

/// Connect, one 64-byte round trip, close: n times.
latency connect_request(const std::string& ip, int port, int n) {
  char msg[64] = {};
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    auto t0 = steady::now();
    int fd = dial(ip, port);
    if (fd < 0)
      return {};
    // Linger 0: no TIME_WAIT pile-up over thousands of short connections.
    linger lg{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    bool ok =
        send_all(fd, "E", 1) && send_all(fd, msg, sizeof msg) && recv_all(fd, msg, sizeof msg);
    ::close(fd);
    if (!ok)
      return {};
    us.push_back(std::chrono::duration<double, std::micro>(steady::now() - t0).count());
  }
  return summarize(std::move(us));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

const char* verdict(double ratio) { return ratio >= target_ratio ? "MET" : "MISSED"; }

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  bool splice = true;
  std::size_t buffer = proxy::userspace_options{}.buffer_bytes;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      quick = true;
    else if (a == "--no-splice")
      splice = false;
    else if (a == "--buffer" && i + 1 < argc)
      buffer = std::stoul(argv[++i]);
    else {
      std::fprintf(stderr, "usage: %s [--quick] [--no-splice] [--buffer BYTES]\n", argv[0]);
      return 2;
    }
  }
  const uint64_t bytes = quick ? (64ull << 20) : (1ull << 30);
  const int reps = quick ? 1 : 5;
  const int pings = quick ? 2000 : 20000;
  const int connects = quick ? 200 : 2000;

  backend_server backend;
  // A loopback address of its own for the Service (127/8 is bindable by
  // anyone), and a port the OS picks.
  std::string service_ip = "127.98." + std::to_string((::getpid() >> 8) & 0xff) + "." +
                           std::to_string(1 + (::getpid() & 0x7f));
  int service_port = 0;
  {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    auto a = make_addr(service_ip, 0);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    service_port = ntohs(a.sin_port);
    ::close(fd);
  }

  proxy::userspace_options opts;
  opts.use_splice = splice;
  opts.buffer_bytes = buffer;
  proxy::userspace_data_plane plane(opts);
  proxy::service_port_entry e;
  e.namespace_ = "bench";
  e.service = "sink";
  e.protocol = "TCP";
  e.cluster_ip = service_ip;
  e.port = service_port;
  proxy::backend b;
  b.ip = "127.0.0.1";
  b.port = backend.port();
  e.backends = {b};
  if (auto r = plane.apply({{e}}, {}); !r.ok()) {
    std::fprintf(stderr, "apply failed: %s\n", r.err().message.c_str());
    return 1;
  }

  std::printf("bench_proxy_userspace: %s, %s (%zu KiB per direction), %d repetition(s) of "
              "%llu MiB, %d ping-pongs, %d connects\n",
              quick ? "quick" : "full", splice ? "splice" : "read/write", buffer >> 10, reps,
              static_cast<unsigned long long>(bytes >> 20), pings, connects);

  // Warm-up on both paths (page cache of code, socket buffers).
  throughput("127.0.0.1", backend.port(), 16 << 20);
  throughput(service_ip, service_port, 16 << 20);

  std::vector<double> direct_bps, proxy_bps;
  for (int i = 0; i < reps; ++i) {
    direct_bps.push_back(throughput("127.0.0.1", backend.port(), bytes));
    proxy_bps.push_back(throughput(service_ip, service_port, bytes));
  }
  double d_bps = median(direct_bps), p_bps = median(proxy_bps);
  auto d_pp = ping_pong("127.0.0.1", backend.port(), pings);
  auto p_pp = ping_pong(service_ip, service_port, pings);
  auto d_cr = connect_request("127.0.0.1", backend.port(), connects);
  auto p_cr = connect_request(service_ip, service_port, connects);
  bool ok = d_bps > 0 && p_bps > 0 && d_pp.ok && p_pp.ok && d_cr.ok && p_cr.ok;

  double tput_ratio = d_bps > 0 ? p_bps / d_bps : 0;
  double pp_ratio = p_pp.p50_us > 0 ? d_pp.p50_us / p_pp.p50_us : 0;
  double cr_ratio = p_cr.p50_us > 0 ? d_cr.p50_us / p_cr.p50_us : 0;

  std::printf("\n%-28s %14s %14s %8s %8s %s\n", "metric", "direct", "userspace", "ratio", "target",
              "verdict");
  std::printf("%-28s %10.0f MB/s %10.0f MB/s %7.2fx %7.1fx %s\n", "TCP throughput", d_bps / 1e6,
              p_bps / 1e6, tput_ratio, target_ratio, verdict(tput_ratio));
  std::printf("%-28s %11.1f us %11.1f us %7.2fx %7.1fx %s\n", "request/response p50", d_pp.p50_us,
              p_pp.p50_us, pp_ratio, target_ratio, verdict(pp_ratio));
  std::printf("%-28s %11.1f us %11.1f us\n", "request/response p99", d_pp.p99_us, p_pp.p99_us);
  std::printf("%-28s %11.1f us %11.1f us %7.2fx %7.1fx %s\n", "connect+request p50", d_cr.p50_us,
              p_cr.p50_us, cr_ratio, target_ratio, verdict(cr_ratio));
  std::printf("%-28s %11.1f us %11.1f us\n", "connect+request p99", d_cr.p99_us, p_cr.p99_us);
  std::printf("(ratio: userspace/direct for throughput, direct/userspace for latency)\n");
  auto s = plane.stats();
  std::printf("proxy: %llu connections forwarded, %llu failed backend attempts\n",
              static_cast<unsigned long long>(s.tcp_forwarded),
              static_cast<unsigned long long>(s.tcp_connect_failures));
  if (!ok) {
    std::fprintf(stderr, "some transfers failed: the figures are incomplete\n");
    return 1;
  }
  return 0;
}

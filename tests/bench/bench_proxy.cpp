// bench_proxy: Service data plane figures, each next to a baseline measured in
// the same run (see README.md, "bench_proxy").
//
// (a) TCP through a ClusterIP against the same TCP straight to the pod IP:
//     bulk throughput and 1-byte request/response latency, per data plane.
// (b) Rule programming at scale: apply() of 1,000 Services x 10 endpoints,
//     then a one-Service change on top of it, until the rules are in the
//     kernel; and the connect (first packet) latency through a Service at
//     that size against a Service-less connection.
//
// Needs root: it makes a bridge and network namespaces of its own (removed
// at exit, also on SIGINT/SIGTERM) and its own nft table / iptables chains.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "deckhand/proxy/command.hpp"
#include "deckhand/proxy/iptables.hpp"
#include "deckhand/proxy/nftables.hpp"
#ifdef DECKHAND_PROXY_HAVE_USERSPACE
#include "deckhand/proxy/userspace.hpp"
#endif
#include "netns_sockets.hpp"

using namespace deckhand;
using namespace deckhand::proxy;
using deckhand::proxy::testing::addr;
using deckhand::proxy::testing::socket_in;
using clk = std::chrono::steady_clock;

namespace {

std::string sfx = std::to_string(::getpid() % 100000);
int net_x = static_cast<int>(::getpid() % 200) + 20;
std::string net = "10.244." + std::to_string(net_x) + ".";
std::string bridge_name = "dhpb" + sfx;
std::string ns_client = "dhb" + sfx + "-client";
std::string ns_pod = "dhb" + sfx + "-pod";
std::string veth_client = "dhb" + sfx + "c";
std::string veth_pod = "dhb" + sfx + "p";
/// ClusterIPs are outside the bridge's subnet, as in a cluster: the pod
/// sends them to its gateway, the node.
std::string svc_ip = "10.245." + std::to_string(net_x) + ".10";
std::string old_forward;
pid_t server_pid = -1;
kernel_options kopts;

void quiet(const std::vector<std::string>& argv) { (void)run_command(argv); }

bool sh(const std::vector<std::string>& argv) {
  auto r = run_checked(argv);
  if (!r)
    std::fprintf(stderr, "bench_proxy: %s\n", r.err().message.c_str());
  return r.ok();
}

void teardown() {
  if (server_pid > 0) {
    ::kill(server_pid, SIGKILL);
    ::waitpid(server_pid, nullptr, 0);
    server_pid = -1;
  }
  quiet({"ip", "netns", "del", ns_client});
  quiet({"ip", "netns", "del", ns_pod});
  quiet({"ip", "link", "del", veth_client});
  quiet({"ip", "link", "del", veth_pod});
  quiet({"ip", "link", "del", bridge_name});
  (void)nftables_data_plane(kopts).cleanup();
  (void)iptables_data_plane(kopts).cleanup();
  if (!old_forward.empty())
    std::ofstream("/proc/sys/net/ipv4/ip_forward") << old_forward << "\n";
  old_forward.clear();
}

void on_signal(int) {
  teardown();
  ::_exit(130);
}

bool connect_fd(int fd, const std::string& ip, int port) {
  auto a = addr(ip, port);
  return ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n) {
    auto w = ::write(fd, p, n);
    if (w <= 0)
      return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

/// The pod: 'S' connections are sinks (the byte count is sent back at EOF),
/// 'E' connections echo.
void serve(int port) {
  int l = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  auto a = addr("0.0.0.0", port);
  if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 512) != 0)
    ::_exit(2);
  while (true) {
    int c = ::accept(l, nullptr, nullptr);
    if (c < 0)
      continue;
    std::thread([c] {
      int nodelay = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
      char mode = 0;
      if (::read(c, &mode, 1) != 1) {
        ::close(c);
        return;
      }
      std::vector<char> buf(1 << 18);
      uint64_t total = 0;
      while (true) {
        auto n = ::read(c, buf.data(), buf.size());
        if (n <= 0)
          break;
        total += static_cast<uint64_t>(n);
        if (mode == 'E' && !write_all(c, buf.data(), static_cast<size_t>(n)))
          break;
      }
      if (mode == 'S')
        write_all(c, reinterpret_cast<char*>(&total), sizeof total);
      ::close(c);
    }).detach();
  }
}

bool setup() {
  std::ifstream("/proc/sys/net/ipv4/ip_forward") >> old_forward;
  std::ofstream("/proc/sys/net/ipv4/ip_forward") << "1\n";
  if (!sh({"ip", "link", "add", bridge_name, "type", "bridge"}) ||
      !sh({"ip", "addr", "add", net + "1/24", "dev", bridge_name}) ||
      !sh({"ip", "link", "set", bridge_name, "up"}))
    return false;
  auto add = [&](const std::string& ns, const std::string& veth, const std::string& ip) {
    return sh({"ip", "netns", "add", ns}) &&
           sh({"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns}) &&
           sh({"ip", "link", "set", veth, "master", bridge_name}) &&
           sh({"ip", "link", "set", veth, "up"}) &&
           sh({"ip", "-n", ns, "addr", "add", ip + "/24", "dev", "eth0"}) &&
           sh({"ip", "-n", ns, "link", "set", "eth0", "up"}) &&
           sh({"ip", "-n", ns, "link", "set", "lo", "up"}) &&
           sh({"ip", "-n", ns, "route", "add", "default", "via", net + "1"});
  };
  if (!add(ns_client, veth_client, net + "20") || !add(ns_pod, veth_pod, net + "10"))
    return false;
  int ready[2];
  if (::pipe(ready) != 0)
    return false;
  server_pid = ::fork();
  if (server_pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int nfd = ::open(("/run/netns/" + ns_pod).c_str(), O_RDONLY);
    if (nfd < 0 || ::setns(nfd, CLONE_NEWNET) != 0)
      ::_exit(1);
    (void)!::write(ready[1], "r", 1);
    serve(5001);
  }
  ::close(ready[1]);
  char c;
  bool ok = ::read(ready[0], &c, 1) == 1;
  ::close(ready[0]);
  // The listener is up once a connection succeeds.
  auto end = clk::now() + std::chrono::seconds(5);
  while (ok && clk::now() < end) {
    int fd = socket_in(ns_client);
    bool up = connect_fd(fd, net + "10", 5001);
    ::close(fd);
    if (up)
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

/// Bulk send of `bytes`; Gbit/s, or 0 on failure.
double throughput(const std::string& ns, const std::string& ip, int port, uint64_t bytes) {
  int fd = socket_in(ns);
  if (!connect_fd(fd, ip, port)) {
    ::close(fd);
    return 0;
  }
  std::vector<char> buf(1 << 18, 'x');
  auto t0 = clk::now();
  write_all(fd, "S", 1);
  uint64_t sent = 0;
  while (sent < bytes) {
    auto n = std::min<uint64_t>(buf.size(), bytes - sent);
    if (!write_all(fd, buf.data(), n))
      break;
    sent += n;
  }
  ::shutdown(fd, SHUT_WR);
  uint64_t got = 0;
  size_t have = 0;
  while (have < sizeof got) {
    auto n = ::read(fd, reinterpret_cast<char*>(&got) + have, sizeof got - have);
    if (n <= 0)
      break;
    have += static_cast<size_t>(n);
  }
  double s = std::chrono::duration<double>(clk::now() - t0).count();
  ::close(fd);
  if (got != bytes)
    return 0;
  return static_cast<double>(bytes) * 8 / s / 1e9;
}

struct lat {
  double p50 = 0, p99 = 0, mean = 0;
  bool ok = false;
};

lat summarize(std::vector<double> v) {
  lat l;
  if (v.empty())
    return l;
  std::sort(v.begin(), v.end());
  l.p50 = v[v.size() / 2];
  l.p99 = v[std::min(v.size() - 1, v.size() * 99 / 100)];
  double sum = 0;
  for (double x : v)
    sum += x;
  l.mean = sum / static_cast<double>(v.size());
  l.ok = true;
  return l;
}

/// 1-byte request/response on one connection, `n` times; microseconds.
lat request_response(const std::string& ns, const std::string& ip, int port, int n) {
  int fd = socket_in(ns);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!connect_fd(fd, ip, port)) {
    ::close(fd);
    return {};
  }
  write_all(fd, "E", 1);
  std::vector<double> us;
  us.reserve(static_cast<size_t>(n));
  char c = 'x';
  for (int i = 0; i < n + n / 10; ++i) {
    auto t0 = clk::now();
    if (::write(fd, &c, 1) != 1 || ::read(fd, &c, 1) != 1) {
      ::close(fd);
      return {};
    }
    if (i >= n / 10)
      us.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
  }
  ::close(fd);
  return summarize(std::move(us));
}

/// connect() completion time of `n` fresh connections; microseconds.
lat connect_latency(const std::string& ns, const std::string& ip, int port, int n) {
  std::vector<int> fds;
  for (int i = 0; i < n; ++i)
    fds.push_back(socket_in(ns));
  std::vector<double> us;
  for (int fd : fds) {
    auto t0 = clk::now();
    bool ok = connect_fd(fd, ip, port);
    auto t = std::chrono::duration<double, std::micro>(clk::now() - t0).count();
    ::close(fd);
    if (!ok)
      return {};
    us.push_back(t);
  }
  return summarize(std::move(us));
}

service_port_entry svc(const std::string& name, const std::string& cip, int port,
                       std::vector<std::pair<std::string, int>> bs) {
  service_port_entry e;
  e.namespace_ = "bench";
  e.service = name;
  e.protocol = "TCP";
  e.cluster_ip = cip;
  e.port = port;
  for (auto& [ip, p] : bs) {
    backend b;
    b.ip = ip;
    b.port = p;
    e.backends.push_back(b);
  }
  std::sort(e.backends.begin(), e.backends.end());
  return e;
}

service_map big_map(int services, int endpoints, int generation) {
  service_map m;
  for (int i = 0; i < services; ++i) {
    std::vector<std::pair<std::string, int>> bs;
    for (int j = 0; j < endpoints; ++j)
      bs.push_back({"10.250." + std::to_string(i / 250) + "." + std::to_string((i % 250) + 1),
                    8000 + j + (i == 0 ? generation : 0)});
    m.entries.push_back(svc("s" + std::to_string(10000 + i),
                            "10.251." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1),
                            80, bs));
  }
  // The real Service, reachable.
  m.entries.push_back(svc("zz-real", svc_ip, 80, {{net + "10", 5001}}));
  std::sort(m.entries.begin(), m.entries.end(),
            [](const auto& a, const auto& b) { return a.key() < b.key(); });
  return m;
}

const char* verdict(bool met) { return met ? "MET" : "MISSED"; }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_proxy: Service data plane throughput, latency and rule programming"};
  bool quick = false;
  int services = 1000, endpoints = 10;
  std::vector<std::string> modes{"nftables", "iptables", "userspace"};
  app.add_flag("--quick", quick, "smoke run: small transfers, fewer samples");
  app.add_option("--services", services, "Services in the rule-programming run");
  app.add_option("--endpoints", endpoints, "endpoints per Service");
  app.add_option("--modes", modes, "data planes to measure");
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    std::fprintf(stderr, "bench_proxy: needs root (network namespaces, nft, iptables)\n");
    return 1;
  }
  kopts.pod_cidr = net + "0/24";
  kopts.nft_table = "dhbench-" + sfx;
  kopts.chain_prefix = "DHB" + sfx.substr(0, 5);
  kopts.flush_conntrack = false;
  ::signal(SIGINT, on_signal);
  ::signal(SIGTERM, on_signal);
  uint64_t bytes = quick ? (64ull << 20) : (2ull << 30);
  int rr = quick ? 2000 : 20000;
  int connects = quick ? 100 : 1000;

  utsname u{};
  ::uname(&u);
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  std::printf("bench_proxy  kernel %s  cpus %u  load average %.2f %.2f %.2f\n", u.release,
              std::thread::hardware_concurrency(), load[0], load[1], load[2]);
  std::printf("TCP from a pod namespace over a bridge; bulk %llu MiB, %d request/responses, "
              "%d connects\n\n",
              static_cast<unsigned long long>(bytes >> 20), rr, connects);
  if (!setup()) {
    teardown();
    return 1;
  }
  int rc = 0;
  std::string pod = net + "10", cip = svc_ip;
  std::printf("%-10s %-28s %12s %12s %7s %s\n", "mode", "metric", "service", "direct", "ratio",
              "target");
  std::printf("-----------------------------------------------------------------------------------"
              "-----\n");
  struct prog {
    std::string mode;
    double full_ms = 0, change_ms = 0, readopt_ms = 0, resync_ms = 0;
    lat svc_connect, direct_connect;
  };
  std::vector<prog> progs;
  for (const auto& mode : modes) {
    std::unique_ptr<data_plane> plane;
    std::string client = ns_client, target_ip = cip;
    double target = 0.9;
    if (mode == "nftables" && nftables_available())
      plane = std::make_unique<nftables_data_plane>(kopts);
    else if (mode == "iptables" && iptables_available())
      plane = std::make_unique<iptables_data_plane>(kopts);
#ifdef DECKHAND_PROXY_HAVE_USERSPACE
    else if (mode == "userspace") {
      // The userspace proxy listens where it runs (this, the root,
      // namespace) on a loopback cluster IP; the client is on the node too.
      plane = make_userspace_data_plane({});
      client = "";
      target_ip = "127.96." + std::to_string(net_x) + ".10";
      target = 0.5;
    }
#endif
    if (!plane) {
      std::printf("%-10s not available here\n", mode.c_str());
      continue;
    }
    service_map one;
    one.entries.push_back(svc("zz-real", target_ip, 80, {{pod, 5001}}));
    if (auto r = plane->apply(one, {}); !r) {
      std::printf("%-10s apply failed: %s\n", mode.c_str(), r.err().message.c_str());
      rc = 1;
      continue;
    }
    // Throughput: best of 3 for each path, interleaved.
    double ts = 0, td = 0;
    for (int i = 0; i < 3; ++i) {
      ts = std::max(ts, throughput(client, target_ip, 80, bytes));
      td = std::max(td, throughput(client, pod, 5001, bytes));
    }
    double ratio = td > 0 ? ts / td : 0;
    if (ts == 0 || td == 0)
      rc = 1;
    std::printf("%-10s %-28s %9.2f Gb %9.2f Gb %7.2f >= %.1fx %s\n", mode.c_str(),
                "bulk throughput (Gbit/s)", ts, td, ratio, target, verdict(ratio >= target));
    auto ls = request_response(client, target_ip, 80, rr);
    auto ld = request_response(client, pod, 5001, rr);
    if (!ls.ok || !ld.ok)
      rc = 1;
    // For latency the ratio is direct/service, so that >= target means as good.
    double lr = ls.p50 > 0 ? ld.p50 / ls.p50 : 0;
    std::printf("%-10s %-28s %9.1f us %9.1f us %7.2f >= %.1fx %s\n", mode.c_str(),
                "request/response p50", ls.p50, ld.p50, lr, target, verdict(lr >= target));
    std::printf("%-10s %-28s %9.1f us %9.1f us\n", mode.c_str(), "request/response p99", ls.p99,
                ld.p99);
    // Rule programming at scale (kernel modes).
    if (mode != "userspace") {
      prog p;
      p.mode = mode;
      auto big = big_map(services, endpoints, 0);
      auto t0 = clk::now();
      auto r = plane->apply(big, one);
      p.full_ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
      auto big2 = big_map(services, endpoints, 1);
      t0 = clk::now();
      auto r2 = plane->apply(big2, big);
      p.change_ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
      // A restarted proxy: a fresh object's first (full) apply over the table.
      std::unique_ptr<data_plane> fresh =
          mode == "nftables" ? std::unique_ptr<data_plane>(new nftables_data_plane(kopts))
                             : std::unique_ptr<data_plane>(new iptables_data_plane(kopts));
      t0 = clk::now();
      auto r3 = fresh->apply(big2, {});
      p.readopt_ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
      // The periodic resync with nothing changed (nftables: verified by a
      // listing, maps refilled; iptables: a full rewrite).
      fresh->request_full_sync();
      t0 = clk::now();
      auto r4 = fresh->apply(big2, big2);
      p.resync_ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count();
      if (!r4)
        r3 = r4;
      if (!r || !r2 || !r3) {
        std::printf("%-10s programming failed: %s\n", mode.c_str(),
                    (!r    ? r.err()
                     : !r2 ? r2.err()
                           : r3.err())
                        .message.c_str());
        rc = 1;
      }
      p.svc_connect = connect_latency(ns_client, cip, 80, connects);
      p.direct_connect = connect_latency(ns_client, pod, 5001, connects);
      progs.push_back(p);
    }
    (void)plane->cleanup();
  }
  std::printf("\nrule programming: %d Services x %d endpoints (+1 real Service)\n", services,
              endpoints);
  std::printf("%-10s %14s %14s %12s %12s %26s %s\n", "mode", "first sync ms", "1-svc change ms",
              "re-adopt ms", "resync ms", "connect p50 svc/direct us", "target < 1000 ms per sync");
  for (const auto& p : progs) {
    bool met = p.full_ms < 1000 && p.change_ms < 1000 && p.readopt_ms < 1000 && p.resync_ms < 1000;
    std::printf("%-10s %14.0f %14.0f %12.0f %12.0f %12.1f / %-12.1f %s\n", p.mode.c_str(),
                p.full_ms, p.change_ms, p.readopt_ms, p.resync_ms, p.svc_connect.p50,
                p.direct_connect.p50, verdict(met));
    if (!p.svc_connect.ok || !p.direct_connect.ok)
      rc = 1;
  }
  teardown();
  return rc;
}

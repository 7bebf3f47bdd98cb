#pragma once

// Network-namespace fixture shared by the proxy's kernel tests: a test bridge
// with three "pods" (TCP and UDP servers that answer with their name), a
// client pod and an outside client, each in its own network namespace, plus
// the helpers that connect from inside a namespace. Everything is removed in
// the fixture's destructor. Include from exactly one Boost.Test source.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "deckhand/proxy/command.hpp"
#include "deckhand/proxy/iptables.hpp"
#include "deckhand/proxy/kernel.hpp"
#include "deckhand/proxy/nftables.hpp"
#include "deckhand/testing/skip.hpp"
#include "netns_sockets.hpp"

namespace deckhand::proxy::testing {

using namespace std::chrono_literals;

/// What the nftables data plane needs of the host: root and a working nft.
inline deckhand::testing::requirement nftables_host() {
  return [] {
    if (auto why = deckhand::testing::root()(); !why.empty())
      return why;
    return nftables_available() ? std::string() : std::string("needs nft (nftables)");
  };
}

/// What the iptables data plane needs of the host: root and iptables-restore.
inline deckhand::testing::requirement iptables_host() {
  return [] {
    if (auto why = deckhand::testing::root()(); !why.empty())
      return why;
    return iptables_available() ? std::string() : std::string("needs iptables-restore");
  };
}

std::string sh(const std::vector<std::string>& argv) {
  auto r = run_checked(argv);
  BOOST_REQUIRE_MESSAGE(r, (r ? "" : r.err().message));
  return r->out;
}

void quiet(const std::vector<std::string>& argv) { (void)run_command(argv); }

/// Connects from namespace `ns` (empty: the node); returns the fd, or -1 with
/// `why` = "refused" / "timeout sport=N" / other.
int dial(const std::string& ns, const std::string& ip, int port, std::string& why,
         std::chrono::milliseconds deadline = 3000ms) {
  int fd = socket_in(ns, SOCK_STREAM);
  if (fd < 0) {
    why = "socket";
    return -1;
  }
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  auto a = addr(ip, port);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  if (rc != 0 && errno != EINPROGRESS) {
    why = errno == ECONNREFUSED ? "refused" : std::strerror(errno);
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(deadline.count())) <= 0) {
    sockaddr_in local{};
    socklen_t ll = sizeof local;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll);
    // The source port finds the flow in `conntrack -L` / `conntrack -E`.
    why = "timeout sport=" + std::to_string(ntohs(local.sin_port));
    ::close(fd);
    return -1;
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err) {
    why = err == ECONNREFUSED ? "refused" : std::strerror(err);
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, 0);
  return fd;
}

std::string read_line(int fd, std::chrono::milliseconds deadline = 3000ms) {
  std::string line;
  auto end = std::chrono::steady_clock::now() + deadline;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    end - std::chrono::steady_clock::now())
                    .count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0)
      return "timeout";
    char c;
    if (::read(fd, &c, 1) != 1)
      return line.empty() ? "eof" : line;
    if (c == '\n')
      return line;
    line.push_back(c);
  }
}

/// One TCP connection: the name the server answers with, or an error word.
std::string ask(const std::string& ns, const std::string& ip, int port) {
  std::string why;
  int fd = dial(ns, ip, port, why);
  if (fd < 0)
    return why;
  auto name = read_line(fd);
  ::close(fd);
  return name;
}

std::string ask_udp(const std::string& ns, const std::string& ip, int port) {
  int fd = socket_in(ns, SOCK_DGRAM);
  auto a = addr(ip, port);
  ::sendto(fd, "?", 1, 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  pollfd p{fd, POLLIN, 0};
  std::string out = "timeout";
  if (::poll(&p, 1, 3000) > 0) {
    char buf[256];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    out = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "error";
  }
  ::close(fd);
  return out;
}

/// A "pod": a forked process in namespace `ns` that answers every TCP
/// connection on `tcp_port` with its name and then echoes, and every UDP
/// datagram on `udp_port` with its name.
pid_t start_server(const std::string& ns, const std::string& name, int tcp_port, int udp_port) {
  int ready[2];
  BOOST_REQUIRE(::pipe(ready) == 0);
  pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int nfd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY);
    if (nfd < 0 || ::setns(nfd, CLONE_NEWNET) != 0)
      ::_exit(1);
    int l = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    auto a = addr("0.0.0.0", tcp_port);
    if (::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 128) != 0)
      ::_exit(2);
    int u = ::socket(AF_INET, SOCK_DGRAM, 0);
    auto ua = addr("0.0.0.0", udp_port);
    if (::bind(u, reinterpret_cast<sockaddr*>(&ua), sizeof ua) != 0)
      ::_exit(3);
    (void)!::write(ready[1], "r", 1);
    std::vector<pollfd> fds{{l, POLLIN, 0}, {u, POLLIN, 0}};
    auto reply = name + "\n";
    while (true) {
      if (::poll(fds.data(), fds.size(), -1) < 0)
        continue;
      if (fds[0].revents & POLLIN) {
        int c = ::accept(l, nullptr, nullptr);
        if (c >= 0) {
          (void)!::write(c, reply.data(), reply.size());
          fds.push_back({c, POLLIN, 0});
        }
      }
      if (fds[1].revents & POLLIN) {
        char buf[512];
        sockaddr_in from{};
        socklen_t fl = sizeof from;
        if (::recvfrom(u, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &fl) >= 0)
          ::sendto(u, name.data(), name.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
      }
      for (size_t i = 2; i < fds.size();) {
        if (fds[i].revents) {
          char buf[4096];
          auto n = ::read(fds[i].fd, buf, sizeof buf);
          if (n <= 0) {
            ::close(fds[i].fd);
            fds.erase(fds.begin() + static_cast<long>(i));
            continue;
          }
          (void)!::write(fds[i].fd, buf, static_cast<size_t>(n));
        }
        ++i;
      }
    }
  }
  ::close(ready[1]);
  char c;
  pollfd p{ready[0], POLLIN, 0};
  bool ok = ::poll(&p, 1, 5000) > 0 && ::read(ready[0], &c, 1) == 1;
  ::close(ready[0]);
  BOOST_REQUIRE_MESSAGE(ok, "server " << name << " did not start");
  return pid;
}

/// A test bridge with three "pods", a client pod and an outside client, each
/// in its own network namespace; everything removed in the destructor.
struct netfix {
  std::string sfx = std::to_string(::getpid() % 100000);
  int x = static_cast<int>(::getpid() % 200) + 20;
  std::string net = "10.244." + std::to_string(x) + ".";
  std::string svcnet = "10.245." + std::to_string(x) + ".";
  std::string extnet = "10.246." + std::to_string(x) + ".";
  std::string bridge = "dhpt" + sfx;
  std::vector<std::string> namespaces;
  std::vector<std::string> links;
  std::vector<pid_t> servers;
  std::string old_forward;
  int node_port = 31000 + static_cast<int>(::getpid() % 700);
  kernel_options opts;

  std::string ns(const std::string& n) { return "dhp" + sfx + "-" + n; }
  std::string pod_ip(int i) { return net + std::to_string(10 + i); }

  netfix() {
    opts.pod_cidr = net + "0/24";
    opts.nft_table = "dhtest-" + sfx;
    opts.chain_prefix = "DHT" + sfx.substr(0, 5);
    std::ifstream("/proc/sys/net/ipv4/ip_forward") >> old_forward;
    std::ofstream("/proc/sys/net/ipv4/ip_forward") << "1\n";
    sh({"ip", "link", "add", bridge, "type", "bridge"});
    links.push_back(bridge);
    sh({"ip", "addr", "add", net + "1/24", "dev", bridge});
    sh({"ip", "link", "set", bridge, "up"});
    for (int i = 0; i < 4; ++i) {
      std::string name = i < 3 ? "pod" + std::to_string(i) : "client";
      add_ns(name, "dhv" + sfx + "p" + std::to_string(i), pod_ip(i), net + "1", 24, true);
    }
    add_ns("ext", "dhv" + sfx + "e", extnet + "2", extnet + "1", 24, false);
    for (int i = 0; i < 3; ++i)
      servers.push_back(
          start_server(ns("pod" + std::to_string(i)), "pod" + std::to_string(i), 8080, 5353));
  }

  void add_ns(const std::string& name, const std::string& veth, const std::string& ip,
              const std::string& gw, int prefix, bool on_bridge) {
    auto n = ns(name);
    sh({"ip", "netns", "add", n});
    namespaces.push_back(n);
    sh({"ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", n});
    links.push_back(veth);
    if (on_bridge) {
      sh({"ip", "link", "set", veth, "master", bridge});
      // As on a node's pod bridge (kubenet's hairpin-veth): with
      // br_netfilter, a pod's connection DNATed back to itself leaves
      // through the port it came in on.
      sh({"ip", "link", "set", veth, "type", "bridge_slave", "hairpin", "on"});
    } else
      sh({"ip", "addr", "add", gw + "/" + std::to_string(prefix), "dev", veth});
    sh({"ip", "link", "set", veth, "up"});
    sh({"ip", "-n", n, "addr", "add", ip + "/" + std::to_string(prefix), "dev", "eth0"});
    sh({"ip", "-n", n, "link", "set", "eth0", "up"});
    sh({"ip", "-n", n, "link", "set", "lo", "up"});
    sh({"ip", "-n", n, "route", "add", "default", "via", gw});
  }

  ~netfix() {
    for (auto pid : servers) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
    for (auto& n : namespaces)
      quiet({"ip", "netns", "del", n});
    for (auto& l : links)
      quiet({"ip", "link", "del", l});
    nftables_data_plane(opts).cleanup();
    iptables_data_plane(opts).cleanup();
    if (!old_forward.empty())
      std::ofstream("/proc/sys/net/ipv4/ip_forward") << old_forward << "\n";
  }
};

std::set<std::string> spread(const std::string& ns, const std::string& ip, int port, int n) {
  std::set<std::string> seen;
  for (int i = 0; i < n; ++i)
    seen.insert(ask(ns, ip, port));
  return seen;
}

}  // namespace deckhand::proxy::testing

#pragma once

// Sockets inside network namespaces (`ip netns add NAME`): shared by the
// proxy's kernel tests (netns_fixture.hpp) and bench_proxy. No Boost.Test.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <thread>

namespace deckhand::proxy::testing {

/// A socket of `type` created in network namespace `ns` (empty: the
/// caller's), or -1. A thread joins the namespace to create it; the socket
/// stays there.
inline int socket_in(const std::string& ns, int type = SOCK_STREAM) {
  int fd = -1;
  std::thread t([&] {
    if (!ns.empty()) {
      int nfd = ::open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
      if (nfd < 0 || ::setns(nfd, CLONE_NEWNET) != 0)
        return;
      ::close(nfd);
    }
    fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  });
  t.join();
  return fd;
}

/// The IPv4 socket address of `ip`:`port`.
inline sockaddr_in addr(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
  return a;
}

}  // namespace deckhand::proxy::testing

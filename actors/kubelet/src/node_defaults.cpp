#include "deckhand/kubelet/node_defaults.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <sstream>

namespace deckhand::kubelet {

std::string default_route_interface(std::istream& routes) {
  std::string line;
  std::getline(routes, line);  // header
  while (std::getline(routes, line)) {
    std::istringstream in(line);
    std::string iface, dest;
    if (in >> iface >> dest && dest == "00000000")
      return iface;
  }
  return {};
}

std::string choose_node_ip(const std::vector<interface_address>& addresses,
                           const std::string& default_interface) {
  std::string first;
  for (const auto& a : addresses) {
    if (a.loopback || !a.up || a.ipv4.empty())
      continue;
    if (!default_interface.empty() && a.interface == default_interface)
      return a.ipv4;
    if (first.empty())
      first = a.ipv4;
  }
  return first;
}

std::string detect_node_ip() {
  std::string default_if;
  if (std::ifstream routes("/proc/net/route"); routes)
    default_if = default_route_interface(routes);
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0)
    return {};
  std::vector<interface_address> addresses;
  for (auto* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET)
      continue;
    char buf[INET_ADDRSTRLEN] = {};
    const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
    if (!::inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof buf))
      continue;
    addresses.push_back({a->ifa_name ? a->ifa_name : "", buf, (a->ifa_flags & IFF_UP) != 0,
                         (a->ifa_flags & IFF_LOOPBACK) != 0});
  }
  ::freeifaddrs(list);
  return choose_node_ip(addresses, default_if);
}

std::string node_name_from_hostname(std::string hostname) {
  if (hostname.empty())
    return "deckhand-node";
  for (auto& c : hostname)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return hostname;
}

std::string default_node_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0)
    return node_name_from_hostname({});
  return node_name_from_hostname(buf);
}

}  // namespace deckhand::kubelet

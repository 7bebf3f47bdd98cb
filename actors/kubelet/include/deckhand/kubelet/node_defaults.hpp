#pragma once

/// What the kubelet assumes about its node when no flag says otherwise: its
/// name (the hostname) and its IP (the Go kubelet's choice). The pure parts
/// take their inputs as values so they can be tested without this machine.

#include <istream>
#include <string>
#include <vector>

namespace deckhand::kubelet {

/// One IPv4 address of a network interface.
struct interface_address {
  std::string interface;
  std::string ipv4;  ///< dotted quad
  bool up = false;
  bool loopback = false;
};

/// The interface holding the default route in a /proc/net/route table
/// (destination 00000000); empty if there is none.
std::string default_route_interface(std::istream& routes);

/// The node's IP as the Go kubelet picks it: the address of the interface
/// that holds the default route, else the first non-loopback address that
/// is up. Empty if there is none.
std::string choose_node_ip(const std::vector<interface_address>& addresses,
                           const std::string& default_interface);

/// `choose_node_ip` over this machine's interfaces and routes.
std::string detect_node_ip();

/// A hostname as a node name: lower case; "deckhand-node" when empty.
std::string node_name_from_hostname(std::string hostname);

/// `node_name_from_hostname` of this machine's hostname.
std::string default_node_name();

}  // namespace deckhand::kubelet

#pragma once

/// A small rtnetlink (NETLINK_ROUTE) client: just the link, address and route
/// operations that pod networking needs (bridge, veth pair into a pod's
/// network namespace, addresses, default route). One request is one
/// sendmsg() plus one recvmsg() of its acknowledgement, with no fork or exec,
/// which is what keeps a pod's network setup well under a millisecond.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/common/unique_fd.hpp"
#include "deckhand/net/ipv4.hpp"

namespace deckhand::net {

/// What the kernel reports about one network interface.
struct link_info {
  int index = 0;
  std::string name;
  unsigned flags = 0;  ///< IFF_*
  int master = 0;      ///< index of the bridge it is attached to, or 0
  std::string kind;    ///< "bridge", "veth", ...; empty for plain devices
  std::string alias;   ///< IFLA_IFALIAS (`ip link set X alias ...`)
};

/// An rtnetlink socket. Bound to the network namespace it was opened in for
/// its whole life, whichever thread uses it later. Not thread-safe: one user
/// at a time.
class rtnl {
 public:
  /// A socket in the caller's network namespace.
  static result<rtnl> open();

  /// A socket in the network namespace bind-mounted at `netns` (see
  /// netns.hpp). Opened by a short-lived thread that joins that namespace,
  /// so the calling thread never changes namespace.
  static result<rtnl> open_in(const std::filesystem::path& netns);

  /// The interface called `name`, or nullopt if there is none.
  result<std::optional<link_info>> find_link(const std::string& name);

  /// Every interface of the namespace.
  result<std::vector<link_info>> links();

  /// Creates a bridge `name`, up. `errc::already_exists` if the name is taken.
  result<void> add_bridge(const std::string& name);

  /// Creates a veth pair in one request: `name` here, attached to bridge
  /// `master` (an ifindex; 0 for none) and up; its peer `peer_name` created
  /// directly in the namespace open at `peer_netns_fd`, down (the kernel
  /// cannot bring it up in the same request; use set_up() there).
  /// `errc::already_exists` if `name` is taken.
  result<void> add_veth(const std::string& name, int master, const std::string& peer_name,
                        int peer_netns_fd);

  /// Sets the alias of interface `name` (at most 255 bytes). The kernel
  /// ignores an alias in a creating request, hence a call of its own.
  result<void> set_alias(const std::string& name, const std::string& alias);

  /// Sets IFF_UP on interface `index`.
  result<void> set_up(int index);

  /// Deletes interface `name` (for a veth, both ends). Succeeds if there is no
  /// such interface.
  result<void> delete_link(const std::string& name);

  /// Adds `addr`/`prefix` (with its broadcast address) to interface `index`.
  /// Succeeds if the interface already has that address.
  result<void> add_address(int index, ipv4 addr, int prefix);

  /// Adds a default route via `gateway` out of interface `index` to the main
  /// table. Succeeds if a default route already exists.
  result<void> add_default_route(int index, ipv4 gateway);

 private:
  explicit rtnl(common::unique_fd fd) : fd_(std::move(fd)) {}
  /// Sends one request and reads replies until its ack (or, for a GET, its
  /// answer or dump). Each reply message is passed to `on_reply`.
  template <class F>
  result<void> transact(std::vector<char>& msg, const std::string& what, F&& on_reply);
  result<void> transact(std::vector<char>& msg, const std::string& what);

  common::unique_fd fd_;
  std::uint32_t seq_ = 0;
};

}  // namespace deckhand::net

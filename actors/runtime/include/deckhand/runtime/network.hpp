#pragma once

/// Pod networking on one node: a bridge holding the gateway address of the
/// node's pod CIDR, and per pod a veth pair whose inner end is the pod's
/// `eth0` with an address from the durable allocator (ipam.hpp) and a default
/// route via the gateway. Everything is done over rtnetlink (netlink.hpp):
/// no `ip` processes.

#include <filesystem>
#include <optional>
#include <set>
#include <string>

#include "deckhand/common/result.hpp"
#include "deckhand/net/ipv4.hpp"
#include "deckhand/runtime/ipam.hpp"
#include "deckhand/runtime/options.hpp"

namespace deckhand::runtime {

/// What a pod got on the node network.
struct pod_attachment {
  net::ipv4 ip;
  int prefix = 0;
  net::ipv4 gateway;
  std::string host_veth;  ///< the host end, attached to the bridge
};

/// What an orphan sweep removed.
struct network_sweep_report {
  int released_ips = 0;
  int deleted_veths = 0;
};

/// The node's pod network: bridge `opts.bridge_name`, CIDR `opts.pod_cidr`,
/// allocations under ipam_dir(opts.data_dir, cidr). Cheap to open (parses
/// the CIDR, creates the allocator directory); holds no socket between calls.
class pod_network {
 public:
  static result<pod_network> open(const runtime_options& opts);

  /// Creates the bridge if missing, brings it up, gives it the gateway
  /// address (gateway/prefix) and turns on IPv4 forwarding for it
  /// (/proc/sys/net/ipv4/conf/BRIDGE/forwarding). Returns its ifindex.
  /// Idempotent; safe against a concurrent creator.
  result<int> ensure_bridge();

  /// Gives pod `uid` its address and wires the (fresh) network namespace
  /// bind-mounted at `netns` to the bridge: veth host end up on the bridge,
  /// inner end `eth0` with ip/prefix, default route via the gateway. On
  /// failure the veth and the address are released again.
  result<pod_attachment> attach(const std::string& uid, const std::filesystem::path& netns);

  /// Deletes the pod's veth (both ends) and releases its address.
  /// Idempotent.
  error detach(const std::string& uid);

  /// Removes what no live pod owns: allocations whose uid is not in `live`,
  /// and host veths of this runtime (veth_alias) named after an address of
  /// this CIDR (host_veth_name) that is not allocated to a live pod. Veths
  /// of other runtimes on the same host (other data dirs) are never touched.
  network_sweep_report sweep(const std::set<std::string>& live);

  /// The alias given to the host end of pod `uid`'s veth:
  /// "deckhand:<hash of the data dir>:<uid>". It tells this runtime's
  /// interfaces from those of another runtime (or a test) on the same host.
  std::string veth_alias(const std::string& uid) const { return owner_ + uid; }

  const ip_allocator& allocator() const { return alloc_; }
  const std::string& bridge() const { return bridge_; }

 private:
  pod_network(std::string bridge, ip_allocator alloc, std::string owner)
      : bridge_(std::move(bridge)), alloc_(std::move(alloc)), owner_(std::move(owner)) {}
  /// True for an alias this runtime gave, or none (a veth whose creation was
  /// cut short before its alias was set).
  bool ours_or_unmarked(const std::string& alias) const;

  std::string bridge_;
  ip_allocator alloc_;
  std::string owner_;
};

/// The host-side veth name of the pod with address `ip`: "dh" and the
/// address in hex (dh0a580005 for 10.88.0.5). Unique among live pods because
/// their addresses are, and within IFNAMSIZ.
std::string host_veth_name(net::ipv4 ip);

/// The address encoded in a host_veth_name(), if `name` is one.
std::optional<net::ipv4> parse_host_veth_name(const std::string& name);

/// The node's own address, as a hostNetwork pod reports it: the first IPv4
/// address of an interface that is up and not loopback, skipping
/// `except_bridge` (the pod bridge).
std::optional<net::ipv4> node_address(const std::string& except_bridge);

}  // namespace deckhand::runtime

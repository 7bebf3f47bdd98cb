#pragma once

/// What the two kernel data planes (nftables, iptables) share: their options,
/// stable rule-object names, and the UDP conntrack flush after a sync.

#include <cstdint>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/proxy/service_map.hpp"

namespace deckhand::proxy {

struct kernel_options {
  /// Traffic to a ClusterIP from outside this CIDR (the node itself, other
  /// hosts) is masqueraded, as kube-proxy's --cluster-cidr does; NodePort
  /// traffic always is (externalTrafficPolicy Cluster). Empty: masquerade
  /// all ClusterIP traffic.
  std::string pod_cidr = "10.88.0.0/16";
  /// This node's name, for externalTrafficPolicy: Local (local endpoints only
  /// for NodePort traffic). Empty: Local is treated like Cluster.
  std::string node_name;
  /// nftables: the table (family ip) that holds everything.
  std::string nft_table = "deckhand-proxy";
  /// iptables: prefix of every chain (at most 8 characters, so that
  /// PREFIX-SEP-<14 chars> fits iptables' 28-character chain names).
  std::string chain_prefix = "DECKHAND";
  /// Packet mark bit meaning "masquerade this connection".
  uint32_t masquerade_mark = 0x4000;
  /// Delete UDP conntrack entries that point at removed backends.
  bool flush_conntrack = true;
};

/// A stable, name-safe hash of `text`: the first `n` characters of the
/// base32 encoding of its SHA-256 (kube-proxy's scheme), upper case.
std::string stable_hash(const std::string& text, size_t n = 14);

/// The identity of a Service port's rules: key() plus protocol.
std::string entry_id(const service_port_entry& e);
/// The identity of one endpoint's rules under a Service port.
std::string endpoint_id(const service_port_entry& e, const backend& b);

/// conntrack invocations (argv) that a sync from `previous` to `desired`
/// calls for: UDP entries to backends that stopped being usable, and UDP
/// entries to a ClusterIP/NodePort that had no usable backend before (they
/// were created while the Service rejected, so they hold no DNAT); and, for
/// a TCP ClusterIP port not programmed before, the entries that passed the
/// node un-DNATed (reply source = the ClusterIP), which would otherwise hold
/// that client port's SYNs away from every pod for 120 s.
std::vector<std::vector<std::string>> conntrack_flushes(const service_map& desired,
                                                        const service_map& previous);

/// Runs conntrack_flushes() (UDP and the TCP null bindings above; the name
/// is historical); "nothing to delete" is not an error.
result<void> flush_udp_conntrack(const service_map& desired, const service_map& previous);

/// Sets net.ipv4.ip_forward=1 (Service traffic from pods is forwarded after
/// DNAT). Returns whether it was already on.
result<bool> enable_ip_forward();

}  // namespace deckhand::proxy

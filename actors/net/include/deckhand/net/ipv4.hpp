#pragma once

/// IPv4 addresses and CIDR blocks, as pod networking needs them: parse,
/// print, and the network / gateway / broadcast of a block.

#include <cstdint>
#include <optional>
#include <string>

#include "deckhand/common/result.hpp"

namespace deckhand::net {

/// An IPv4 address, host byte order.
struct ipv4 {
  std::uint32_t value = 0;

  /// Dotted quad ("10.88.0.1"); nothing else (no leading zeros, no shorthand).
  static std::optional<ipv4> parse(const std::string& text);
  std::string to_string() const;

  friend bool operator==(ipv4 a, ipv4 b) { return a.value == b.value; }
  friend bool operator<(ipv4 a, ipv4 b) { return a.value < b.value; }
};

/// An IPv4 block such as 10.88.0.0/16. The network address has no host bits.
struct ipv4_cidr {
  ipv4 network;
  int prefix = 0;

  /// "A.B.C.D/N" with N in 0..32; host bits set (10.88.0.1/16) are
  /// `errc::invalid`, as Kubernetes rejects such a podCIDR.
  static result<ipv4_cidr> parse(const std::string& text);
  std::string to_string() const;

  std::uint32_t mask() const { return prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - prefix); }
  ipv4 broadcast() const { return {network.value | ~mask()}; }
  /// The first usable address, which the node's bridge takes.
  ipv4 gateway() const { return {network.value + 1}; }
  bool contains(ipv4 a) const { return (a.value & mask()) == network.value; }
  /// Two blocks share an address.
  bool overlaps(const ipv4_cidr& o) const {
    int p = prefix < o.prefix ? prefix : o.prefix;
    std::uint32_t m = p == 0 ? 0 : ~std::uint32_t{0} << (32 - p);
    return (network.value & m) == (o.network.value & m);
  }
};

}  // namespace deckhand::net

#pragma once

/// Durable IPv4 address management for pods: addresses out of the node's pod
/// CIDR, one per pod uid, surviving restarts of the runtime.

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/net/ipv4.hpp"

namespace deckhand::runtime {

/// Allocates pod addresses from a CIDR. State is one symlink per allocated
/// address, `DIR/<address> -> <pod uid>`: symlink() creates the name and its
/// content in one atomic step and fails if the name exists, so no two
/// allocators (threads or processes) can hand out one address, and a crash
/// never leaves a half-written entry. An flock on `DIR/.lock` serializes
/// allocators, which makes allocate() idempotent per uid even under
/// concurrency. Every change is fsynced (the directory) before it returns.
/// The network address, the gateway (first address) and the broadcast
/// address are never handed out.
class ip_allocator {
 public:
  /// Opens (creating if needed) the state directory `dir` for `cidr`, whose
  /// prefix must be at most /30.
  static result<ip_allocator> open(const std::filesystem::path& dir, const net::ipv4_cidr& cidr);

  /// The address of pod `uid`: the one it already has, else a free one (the
  /// search starts after the last address handed out, so that a released
  /// address is not immediately reused). `errc::unavailable` when the CIDR
  /// is full.
  result<net::ipv4> allocate(const std::string& uid);

  /// The address allocated to `uid`, if any.
  std::optional<net::ipv4> lookup(const std::string& uid) const;

  /// Releases every address of `uid`. Succeeds if it has none.
  error release(const std::string& uid);

  /// Every allocation as (address, uid), ordered by address.
  std::vector<std::pair<net::ipv4, std::string>> allocations() const;

  const net::ipv4_cidr& cidr() const { return cidr_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  ip_allocator(std::filesystem::path dir, net::ipv4_cidr cidr)
      : dir_(std::move(dir)), cidr_(cidr) {}

  std::filesystem::path dir_;
  net::ipv4_cidr cidr_;
};

/// The allocator state directory of `cidr` under a runtime data dir:
/// DATA/runtime/ipam/<network>_<prefix>.
std::filesystem::path ipam_dir(const std::filesystem::path& data_dir, const net::ipv4_cidr& cidr);

}  // namespace deckhand::runtime

#pragma once

/// Cluster IPs and node ports for Services, handed out from cluster-wide
/// ranges the way Kubernetes' allocators do: never twice, a requested value
/// honoured if free, everything a Service holds freed when it is deleted or no
/// longer needs it.
///
/// The allocator keeps no state of its own on disk: the stored Services are
/// the record of what is allocated, and rebuild() reconstructs the maps from
/// them when the API server starts. The registry calls it under its write
/// lock in two phases so that a failed store write gives everything back:
/// prepare() takes what the new object needs, then commit() (write durable:
/// free what the old object held and the new one dropped) or abort() (write
/// failed: free what prepare took).
///
/// Dynamic allocation prefers the upper part of each range and leaves the
/// lower part (Kubernetes' static band) to values users ask for.
///
/// Thread safety: all methods may be called from any thread.

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/api/validation.hpp"
#include "deckhand/common/result.hpp"

namespace deckhand::apiserver {

/// The ranges, as the API server's --service-cluster-ip-range and
/// --service-node-port-range flags.
struct service_allocator_options {
  std::string service_cidr = "10.96.0.0/12";
  int node_port_min = 30000;
  int node_port_max = 32767;
  /// Seeds the choice of dynamic values; 0 picks a random seed.
  std::uint64_t seed = 0;
};

/// What one prepare() took, and what the object before it held that the new
/// one no longer does.
struct service_allocation {
  std::vector<std::uint32_t> taken_ips;
  std::vector<int> taken_ports;
  std::vector<std::uint32_t> dropped_ips;
  std::vector<int> dropped_ports;
};

/// Parses "30000-32767" into its bounds (errc::invalid if malformed, reversed
/// or outside 1-65535).
result<std::pair<int, int>> parse_port_range(const std::string& text);

class service_allocator {
 public:
  /// Checks the options (an IPv4 CIDR of at least 4 addresses, a port range
  /// inside 1-65535).
  static result<std::unique_ptr<service_allocator>> create(service_allocator_options opts);

  /// Forgets everything, then marks what `services` hold as allocated.
  void rebuild(const std::vector<nlohmann::json>& services);

  /// Fills in and claims spec.clusterIP(s) and spec.ports[*].nodePort of
  /// `svc` (a defaulted, validated Service). `old` is the stored object on
  /// update, null on create; values `old` holds stay with the Service, and an
  /// update that leaves a nodePort out keeps the old one of the same port.
  /// On errc::invalid, `causes` gets Kubernetes' field errors; nothing stays
  /// taken on any error.
  result<service_allocation> prepare(const nlohmann::json* old, nlohmann::json& svc,
                                     api::field_errors& causes);

  /// The write of the prepared object is durable: frees what it dropped.
  void commit(const service_allocation& a);

  /// The write failed: frees what prepare() took.
  void abort(const service_allocation& a);

  /// Frees everything a deleted Service held.
  void release(const nlohmann::json& svc);

  bool ip_in_use(const std::string& ip) const;
  bool node_port_in_use(int port) const;
  std::size_t ips_in_use() const;
  std::size_t node_ports_in_use() const;

  const service_allocator_options& options() const { return opts_; }

 private:
  explicit service_allocator(service_allocator_options opts, std::uint32_t base,
                             std::uint32_t size);
  /// Offset of `ip` in the usable part of the range, or -1.
  std::int64_t ip_offset(std::uint32_t ip) const;
  std::optional<std::uint32_t> next_ip();
  std::optional<int> next_port();

  service_allocator_options opts_;
  /// First usable address (the network address + 1) and number of usable ones.
  std::uint32_t base_ = 0;
  std::uint32_t size_ = 0;
  mutable std::mutex mu_;
  std::set<std::uint32_t> ips_;
  std::set<int> ports_;
  std::mt19937_64 rng_;
};

}  // namespace deckhand::apiserver

#pragma once

/// What the proxy's control loop drives: one data plane (nftables, iptables or
/// userspace) that turns a service_map into traffic handling. The control loop
/// owns batching (minSyncPeriod) and change detection; a data plane applies a
/// whole map at once and is told nothing incremental, so a restarted proxy
/// (which starts from an empty map) converges by applying its first full map.

#include <memory>
#include <string>

#include "deckhand/common/result.hpp"
#include "deckhand/proxy/service_map.hpp"

namespace deckhand::proxy {

class data_plane {
 public:
  virtual ~data_plane() = default;
  /// "nftables", "iptables" or "userspace".
  virtual std::string mode() const = 0;
  /// Makes the data plane match `desired`, atomically where the mode allows
  /// (one kernel transaction). `previous` is the map last applied successfully
  /// by this process (empty after a start), for work that depends on what
  /// went away, such as flushing UDP conntrack entries of removed backends.
  /// Must not disturb traffic to entries that did not change.
  virtual result<void> apply(const service_map& desired, const service_map& previous) = 0;
  /// Makes the next apply() a full one: everything rewritten from scratch and
  /// anything of ours that is not desired removed, even if `previous` equals
  /// what was applied last (the periodic resync, which repairs rules deleted
  /// by hand). Kernel data planes sync incrementally otherwise.
  virtual void request_full_sync() {}
  /// Removes everything this data plane ever created (`deckhand-proxy --cleanup`).
  virtual result<void> cleanup() = 0;
};

}  // namespace deckhand::proxy

#pragma once

/// The `userspace` data plane: the proxy itself forwards TCP and UDP, with no
/// privileges and nothing programmed in the kernel (kube-proxy's historical
/// userspace mode, for unprivileged containers and laptops).
///
/// Interception model. Without privileges the proxy cannot redirect packets, so
/// it *listens* where clients connect:
/// - ClusterIP: a socket bound to `clusterIP:port`. That works only when the
///   address is local to this host, so the service CIDR must be configured as a
///   loopback range (for example 127.96.0.0/16: every address in 127.0.0.0/8 is
///   bindable by anyone) or the addresses must already be on an interface.
///   IP_FREEBIND is never used: a cluster IP that is not local is reported as
///   an error for its entry (counted, logged once) instead of silently
///   swallowing nothing. This is what the `process` backend's pods use, as they
///   share the host's network namespace.
/// - NodePort: a socket bound to `node_address:nodePort` (0.0.0.0 by default).
/// - Ports below `net.ipv4.ip_unprivileged_port_start` need
///   CAP_NET_BIND_SERVICE; without it (see `userspace_options::privileged`)
///   the entry fails with an error that says so.
///
/// Forwarding. TCP: accept, pick a backend (round robin over
/// `usable_backends()`, or the client's previous backend under ClientIP
/// affinity), connect without blocking under a timeout, trying the next
/// backend when one refuses or times out; then both directions are moved by
/// splice(2) through a pipe (read/write as a fallback), a half-close is passed
/// on, and when either side fails both are closed. A Service with no usable
/// backend resets the client at once. UDP: one session per client address,
/// each with its own socket connected to a backend; replies go back from the
/// service address; idle sessions expire. Backends see the proxy's address as
/// the source, never the client's (as with kube-proxy's userspace mode).
///
/// Threads. One I/O thread owns every socket; apply() and cleanup() hand it
/// their work and wait for it, so once apply() returns the new map is in
/// effect. The destructor stops the thread and closes everything.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "deckhand/proxy/data_plane.hpp"

namespace deckhand::proxy {

struct userspace_options {
  /// Where NodePorts listen: "0.0.0.0" (every address of the node) or one of
  /// the node's addresses.
  std::string node_address = "0.0.0.0";
  /// Whether ports below net.ipv4.ip_unprivileged_port_start may be bound.
  /// Unset: whether this process has CAP_NET_BIND_SERVICE.
  std::optional<bool> privileged;
  /// Per attempt: how long a backend may take to accept a connection.
  std::chrono::milliseconds connect_timeout{1000};
  /// How many backends a new TCP connection tries before the client is
  /// reset (kube-proxy's userspace mode tried 4).
  int connect_attempts = 4;
  /// How long an idle UDP session is kept (kube-proxy's `--udp-timeout`,
  /// 250ms by default in its userspace mode).
  std::chrono::milliseconds udp_idle_timeout{250};
  /// Sessions across all UDP Services; datagrams that would open one more are
  /// dropped and counted.
  std::size_t max_udp_sessions = 4096;
  /// TCP connections across all Services; clients beyond are reset.
  std::size_t max_tcp_connections = 4096;
  /// Forward TCP with splice(2) through a pipe; false: read/write.
  bool use_splice = true;
  /// Pipe (or buffer) size per direction of a TCP connection.
  std::size_t buffer_bytes = 256 * 1024;
};

/// Counters since start; a snapshot taken on the I/O thread.
struct userspace_stats {
  std::size_t listeners = 0;       ///< open listening sockets
  std::uint64_t entry_errors = 0;  ///< entries that could not be applied
  std::uint64_t tcp_accepted = 0;
  std::uint64_t tcp_forwarded = 0;         ///< connected to a backend
  std::uint64_t tcp_rejected = 0;          ///< reset: no usable backend, or over the limit
  std::uint64_t tcp_connect_failures = 0;  ///< backend attempts that failed
  std::size_t tcp_active = 0;
  std::uint64_t udp_datagrams_in = 0;
  std::uint64_t udp_datagrams_out = 0;
  std::uint64_t udp_dropped = 0;  ///< no backend, session limit, send error
  std::size_t udp_sessions = 0;
};

/// An entry that apply() could not put in place, and why.
struct userspace_entry_error {
  std::string key;  ///< service_port_entry::key()
  std::string message;
};

class userspace_data_plane final : public data_plane {
 public:
  explicit userspace_data_plane(userspace_options opts);
  ~userspace_data_plane() override;
  userspace_data_plane(const userspace_data_plane&) = delete;
  userspace_data_plane& operator=(const userspace_data_plane&) = delete;

  std::string mode() const override { return "userspace"; }
  /// Opens listeners of new entries, closes those of removed ones, and swaps
  /// backend lists of changed ones; listeners and connections of unchanged
  /// entries are untouched. Entries with bad values or addresses that cannot
  /// be bound fail one by one (each logged once while it keeps failing); the
  /// others are applied regardless, and the result is then an error naming the
  /// failed entries. Established TCP connections of removed entries or to
  /// removed backends are left to finish; UDP sessions to backends that are no
  /// longer usable are dropped.
  result<void> apply(const service_map& desired, const service_map& previous) override;
  /// Closes every listener, connection and session (nothing is left in the
  /// kernel by this mode).
  result<void> cleanup() override;

  userspace_stats stats() const;
  /// The entries that failed in the last apply().
  std::vector<userspace_entry_error> entry_errors() const;

  class impl;

 private:
  std::unique_ptr<impl> impl_;
};

/// The userspace data plane, for the proxy's control loop.
std::unique_ptr<data_plane> make_userspace_data_plane(userspace_options opts = {});

}  // namespace deckhand::proxy

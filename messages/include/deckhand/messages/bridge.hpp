#pragma once

/// The ZeroMQ bridge: one thread per process owns every socket. Actors and
/// other threads hand it work through a locked command queue that wakes the
/// thread through an eventfd; inbound frames are decoded (header checked, size
/// limited) and handed to callbacks on the bridge thread, which must only
/// forward them (e.g. `caf::anon_send`) and never block.
///
/// Sockets:
///   ROUTER (bind)   serves requests; `ping` is answered by the bridge itself.
///   DEALER (connect) sends requests with a correlation id and a deadline; the
///                   callback runs exactly once, with the reply or an error.
///   PUB (bind)      state fan-out, [topic][header][body].
///   SUB (connect)   receives fan-out; PUB/SUB may drop, so subscribers must
///                   detect gaps (see feed.hpp).

#include <poll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/header.hpp"

namespace deckhand::transport {

using wire::inspect;

using wire::envelope;

/// A request received on a ROUTER socket.
struct inbound_request {
  static constexpr const char* type_name = "inbound_request";
  int32_t socket = 0;
  std::string peer;  ///< ROUTER routing id of the requester
  envelope env;
  static constexpr auto fields() {
    return std::make_tuple(wire::field("socket", &inbound_request::socket),
                           wire::field("peer", &inbound_request::peer),
                           wire::field("env", &inbound_request::env));
  }
};

using request_handler = std::function<void(inbound_request)>;
using reply_handler = std::function<void(result<envelope>)>;
using sub_handler = std::function<void(const std::string& topic, envelope)>;

struct bridge_config {
  std::string component = "deckhand";
  uint64_t incarnation = 0;  ///< 0: choose a new one
  wire::decode_limits limits;
  int heartbeat_interval_ms = 1000;
  int heartbeat_timeout_ms = 3000;
};

/// Counters of what crossed the bridge.
struct bridge_stats {
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t dropped = 0;  ///< malformed, unroutable or late frames
  uint64_t deadline_expired = 0;
};

class bridge {
 public:
  explicit bridge(bridge_config cfg);
  ~bridge();
  bridge(const bridge&) = delete;
  bridge& operator=(const bridge&) = delete;

  /// Socket setup. Safe from any thread, before or after `start`.
  result<int> bind_router(const std::string& endpoint, request_handler handler);
  result<int> connect_dealer(const std::string& endpoint);
  result<int> bind_pub(const std::string& endpoint);
  result<int> connect_sub(const std::string& endpoint, std::vector<std::string> topics,
                          sub_handler handler);
  /// Closes a socket; pending requests on it fail with `unavailable`.
  void close(int socket);

  /// The endpoint a socket is actually bound to (resolves tcp port 0).
  std::string last_endpoint(int socket);

  void start();
  /// Instead of start(): no thread; the calling thread's own event loop runs
  /// the bridge (pod supervisors, hundreds per node, save a thread each).
  /// The loop polls the fds from `fill_pollfds` for POLLIN (they change as
  /// sockets open and close: ask every turn) and calls `run_once` when any
  /// is readable or the timeout it last returned has passed. stop() must
  /// then be called on that thread too.
  void start_on_caller();
  void fill_pollfds(std::vector<struct pollfd>& fds);
  /// Handles what is ready; returns the longest the loop may sleep, in ms
  /// (-1: until an fd is readable).
  int run_once();
  void stop();

  /// Sends a request and calls `on_reply` exactly once (reply, error reply or
  /// deadline exceeded). The bridge assigns the correlation id.
  void request(int dealer, envelope env, std::chrono::milliseconds deadline,
               reply_handler on_reply);
  /// Fire-and-forget message on a DEALER (correlation id 0).
  void notify(int dealer, envelope env);
  /// Answers `req` (sets reply flag and correlation id).
  void reply(const inbound_request& req, envelope env);
  void reply_error(const inbound_request& req, const error& err);
  void publish(int pub, const std::string& topic, envelope env);

  uint64_t incarnation() const { return incarnation_; }
  const std::string& component() const { return cfg_.component; }
  bridge_stats stats() const;

 private:
  struct impl;
  bridge_config cfg_;
  uint64_t incarnation_;
  std::unique_ptr<impl> impl_;
};

}  // namespace deckhand::transport

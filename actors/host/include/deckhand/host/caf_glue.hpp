#pragma once

/// Bridges between the transport (callbacks on the bridge thread) and CAF
/// actors (messages). Actors never touch ZeroMQ: requests arrive as
/// `transport::inbound_request` messages, replies to their own requests as
/// `rpc_reply` messages tagged with what they asked for.

#include <chrono>
#include <cstdint>
#include <string>

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/send.hpp>

#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/codec.hpp"

namespace deckhand::host {

// Field-list structs of this namespace get CAF inspect through ADL.
using wire::inspect;

/// Periodic timer tick; carries a generation so stale ticks can be dropped
/// (CAF 0.17 cannot cancel a delayed_send).
using tick_atom = caf::atom_constant<caf::atom("dh_tick")>;
using resync_atom = caf::atom_constant<caf::atom("dh_resync")>;
using sync_atom = caf::atom_constant<caf::atom("dh_sync")>;
using stop_atom = caf::atom_constant<caf::atom("dh_stop")>;
using status_atom = caf::atom_constant<caf::atom("dh_status")>;
using feed_atom = caf::atom_constant<caf::atom("dh_feed")>;

/// The outcome of a request an actor made through the bridge.
struct rpc_reply {
  static constexpr const char* type_name = "rpc_reply";
  uint64_t tag = 0;  ///< chosen by the requester
  std::string what;  ///< chosen by the requester (e.g. "run_pod")
  int32_t code = 0;  ///< errc; 0 when `env` holds a reply
  std::string message;
  wire::envelope env;
  static constexpr auto fields() {
    return std::make_tuple(
        wire::field("tag", &rpc_reply::tag), wire::field("what", &rpc_reply::what),
        wire::field("code", &rpc_reply::code), wire::field("message", &rpc_reply::message),
        wire::field("env", &rpc_reply::env));
  }

  bool ok() const { return code == 0; }
  error err() const { return {static_cast<errc>(code), message}; }

  /// Decodes the reply as `T` (error replies and transport errors included).
  template <class T>
  result<T> as() const {
    if (!ok())
      return err();
    return wire::decode_as<T>(env);
  }
};

/// Forwards every request on a ROUTER to `dest` as an `inbound_request`.
inline transport::request_handler forward_to(caf::actor dest) {
  return [dest](transport::inbound_request req) { caf::anon_send(dest, std::move(req)); };
}

/// A reply handler that delivers the outcome to `dest` as an `rpc_reply`.
inline transport::reply_handler reply_to(caf::actor dest, uint64_t tag, std::string what) {
  return [dest, tag, what = std::move(what)](result<wire::envelope> r) {
    rpc_reply rep;
    rep.tag = tag;
    rep.what = what;
    if (r) {
      rep.env = std::move(*r);
    } else {
      rep.code = static_cast<int32_t>(r.err().code);
      rep.message = r.err().message;
    }
    caf::anon_send(dest, std::move(rep));
  };
}

/// Sends `req` on `dealer`; `dest` receives an `rpc_reply` with `tag`/`what`.
template <class Req>
void call(transport::bridge& bus, int dealer, const Req& req, std::chrono::milliseconds deadline,
          caf::actor dest, uint64_t tag, std::string what) {
  bus.request(dealer, wire::make_envelope(req), deadline,
              reply_to(std::move(dest), tag, std::move(what)));
}

}  // namespace deckhand::host

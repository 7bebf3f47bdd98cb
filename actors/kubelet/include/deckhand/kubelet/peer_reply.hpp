#pragma once

/// How the kubelet's actors receive what a peer (the runtime, the API server)
/// answered: each client call (runtime_client.hpp, api_client.hpp) takes a
/// `reply_fn<T>` that is called exactly once, on any thread, with the typed
/// reply or the error. An actor hands the call `deliver<Atom>(self)`, which
/// turns the answer into the message `(Atom, peer_reply<T>)`; the atom names
/// the operation, so replies are told apart by type, never by a string.

#include <chrono>
#include <functional>
#include <type_traits>
#include <utility>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/send.hpp>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/bridge.hpp"

namespace deckhand::kubelet {

/// Called once with a peer's reply, or the error (transport errors included).
template <class T>
using reply_fn = std::function<void(result<T>)>;

/// A peer's answer to one request, as an actor receives it.
template <class T>
struct peer_reply {
  result<T> value;
};

/// A `reply_fn` for any reply type that sends `(Atom, peer_reply<T>)` to `dest`.
template <class Atom>
struct deliver_to {
  caf::actor dest;

  template <class T>
  void operator()(result<T> r) const {
    caf::anon_send(dest, Atom::value, peer_reply<T>{std::move(r)});
  }
};

template <class Atom, class Self>
deliver_to<Atom> deliver(Self* self) {
  return {caf::actor_cast<caf::actor>(self)};
}

/// Sends a request on a DEALER and calls the handler exactly once, like
/// `transport::bridge::request`.
using request_fn =
    std::function<void(int dealer, wire::envelope req, std::chrono::milliseconds deadline,
                       transport::reply_handler on_reply)>;

}  // namespace deckhand::kubelet

namespace caf {

/// Replies only travel between actors of one process: never serialized.
template <class T>
struct allowed_unsafe_message_type<deckhand::kubelet::peer_reply<T>> : std::true_type {};

}  // namespace caf

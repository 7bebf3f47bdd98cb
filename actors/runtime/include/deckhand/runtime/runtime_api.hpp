#pragma once

/// What the deckhand-runtime process serves, as types: each request it
/// answers, the one reply type that answers it, and `responder<Request>`,
/// the only way the runtime's actors answer. Replying with the wrong type, or
/// serving a request that is not listed here, fails to compile.
///
/// The wire stays as it is (messages/wire.hpp): a client sends `Request` and
/// gets `reply_to<Request>::type` or an `error_reply`.
///
///   request                    reply                  served by
///   image_import_request       image_import_reply     image service
///   image_list_request         image_list_reply       image service
///   image_pull_request         image_pull_reply       image service
///   image_remove_request       image_remove_reply     image service
///   run_pod_request            run_pod_reply          sandbox service
///   stop_pod_request           sandbox_status_reply   sandbox service
///   remove_pod_request         ack                    sandbox service
///   list_sandboxes_request     list_sandboxes_reply   sandbox service
///   exec_request               exec_reply             container service
///   container_stats_request    container_stats_reply  container service

#include <utility>

#include "deckhand/common/result.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::runtime {

/// The reply type of each request the runtime serves; undefined for others.
template <class Request>
struct reply_to;

#define DECKHAND_RUNTIME_REPLY(request, reply)                                                     \
  template <>                                                                                      \
  struct reply_to<wire::request> {                                                                 \
    using type = wire::reply;                                                                      \
  }

DECKHAND_RUNTIME_REPLY(image_import_request, image_import_reply);
DECKHAND_RUNTIME_REPLY(image_list_request, image_list_reply);
DECKHAND_RUNTIME_REPLY(image_pull_request, image_pull_reply);
DECKHAND_RUNTIME_REPLY(image_remove_request, image_remove_reply);
DECKHAND_RUNTIME_REPLY(run_pod_request, run_pod_reply);
DECKHAND_RUNTIME_REPLY(stop_pod_request, sandbox_status_reply);
DECKHAND_RUNTIME_REPLY(remove_pod_request, ack);
DECKHAND_RUNTIME_REPLY(list_sandboxes_request, list_sandboxes_reply);
DECKHAND_RUNTIME_REPLY(exec_request, exec_reply);
DECKHAND_RUNTIME_REPLY(container_stats_request, container_stats_reply);

#undef DECKHAND_RUNTIME_REPLY

template <class Request>
using reply_to_t = typename reply_to<Request>::type;

/// True when `req` carries a `Request`.
template <class Request>
bool carries(const transport::inbound_request& req) {
  return req.env.hdr.type == Request::type_id;
}

/// A decoded request and the way back to its sender. Copyable, so that a
/// worker thread can take it along; answer exactly once.
template <class Request>
class responder {
 public:
  using reply_type = reply_to_t<Request>;

  /// Decodes `req` as a `Request`; a body that does not decode is answered
  /// with its error here, and the result is that error.
  static result<responder> decode(transport::bridge& bus, transport::inbound_request req) {
    auto msg = wire::decode_body<Request>(req.env.body);
    if (!msg) {
      bus.reply_error(req, msg.err());
      return std::move(msg).err();
    }
    return responder(bus, std::move(req), std::move(*msg));
  }

  const Request& request() const { return msg_; }

  void reply(const reply_type& rep) const { bus_->reply(req_, wire::make_envelope(rep)); }
  void fail(const error& err) const { bus_->reply_error(req_, err); }

  /// `rep`'s value, or its error.
  void answer(const result<reply_type>& rep) const {
    if (rep)
      reply(*rep);
    else
      fail(rep.err());
  }

 private:
  responder(transport::bridge& bus, transport::inbound_request req, Request msg)
      : bus_(&bus), req_(std::move(req)), msg_(std::move(msg)) {}

  transport::bridge* bus_;
  transport::inbound_request req_;
  Request msg_;
};

}  // namespace deckhand::runtime

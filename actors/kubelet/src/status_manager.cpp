/// The status manager: the single writer of pod status to the API server.
/// It keeps the status each pod should have, sends it when it differs from
/// what the API server last acknowledged, one request per pod in flight, and
/// retries failures.

#include <map>
#include <set>
#include <string>

#include <caf/all.hpp>

#include "context.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/messages/codec.hpp"

namespace deckhand::kubelet::detail {

namespace {

struct status_state {
  ctx_ptr ctx;
  std::map<std::string, wire::pod_status_update> wanted;  // by uid
  std::map<std::string, std::string> sent;                // uid -> body sent
  std::set<std::string> inflight;
  /// In-flight requests sent before a stop: their reply must not count as
  /// sent (a recreated mirror pod needs the status again).
  std::set<std::string> discard;
  static inline const char* name = "status_manager";
};

caf::behavior status_manager(caf::stateful_actor<status_state>* self, ctx_ptr ctx) {
  self->state.ctx = ctx;
  auto flush = [self](const std::string& uid) {
    auto& st = self->state;
    auto it = st.wanted.find(uid);
    if (it == st.wanted.end() || st.inflight.count(uid))
      return;
    auto body = wire::encode_body(it->second.status);
    if (st.sent[uid] == body)
      return;
    st.inflight.insert(uid);
    st.ctx->api->update_pod_status(
        it->second, st.ctx->cfg.request_deadline,
        [me = caf::actor_cast<caf::actor>(self), uid, body](result<wire::ack> r) {
          caf::anon_send(me, status_sent_atom::value, uid, body,
                         peer_reply<wire::ack>{std::move(r)});
        });
  };
  return {
      [=](status_atom, wire::pod_status_update u) {
        auto uid = u.uid;
        self->state.wanted[uid] = std::move(u);
        flush(uid);
      },
      [=](stop_atom, const std::string& uid) {
        self->state.wanted.erase(uid);
        self->state.sent.erase(uid);
        if (self->state.inflight.count(uid))
          self->state.discard.insert(uid);
      },
      [=](status_sent_atom, const std::string& uid, const std::string& body,
          const peer_reply<wire::ack>& r) {
        self->state.inflight.erase(uid);
        if (self->state.discard.erase(uid)) {
          flush(uid);
          return;
        }
        const auto& ack = r.value;
        if (ack) {
          self->state.sent[uid] = body;
          flush(uid);
        } else if (ack.err().code == errc::not_found) {
          // The pod is gone from the API server: nothing left to report to.
          self->state.sent[uid] = body;
        } else {
          log::get()->warn("msg=\"status update failed, will retry\" uid={} error=\"{}\"", uid,
                           ack.err().message);
          self->delayed_send(self, std::chrono::seconds(1), sync_atom::value, uid);
        }
      },
      [=](sync_atom, const std::string& uid) { flush(uid); },
  };
}

}  // namespace

caf::actor spawn_status_manager(caf::actor_system& sys, ctx_ptr ctx) {
  return sys.spawn(status_manager, std::move(ctx));
}

}  // namespace deckhand::kubelet::detail

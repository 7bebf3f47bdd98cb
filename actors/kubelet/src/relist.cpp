/// The runtime relist (the Go kubelet's PLEG, pleg/generic.go): every
/// relist period the sync loop asks the runtime for its sandboxes and hands
/// each pod worker what the runtime says about its pod.

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "sync_loop.hpp"

namespace deckhand::kubelet::detail {

void request_relist(sync_actor* self) {
  auto& st = self->state;
  if (st.relist_inflight)
    return;
  st.relist_inflight = true;
  st.ctx->runtime->list_sandboxes(st.ctx->cfg.request_deadline, deliver<relisted_atom>(self));
}

void on_relist(sync_actor* self, const result<wire::list_sandboxes_reply>& reply) {
  auto& st = self->state;
  st.relist_inflight = false;
  if (!reply) {
    log::get()->warn("msg=\"runtime relist failed\" error=\"{}\"", reply.err().message);
    return;
  }
  const auto& rep = *reply;
  st.runtime_listed = true;
  st.sandboxes.clear();
  for (const auto& sb : rep.sandboxes)
    st.sandboxes[sb.uid] = sb;
  std::set<std::string> seen;
  for (const auto& sb : rep.sandboxes) {
    seen.insert(sb.uid);
    auto it = st.workers.find(sb.uid);
    if (it != st.workers.end()) {
      self->send(it->second, status_atom::value, sb);
    } else if (st.api_synced && st.static_synced && !st.desired.count(sb.uid) &&
               !st.static_pods.count(sb.uid)) {
      // A sandbox no pod asks for: a leftover of a pod deleted while we were down.
      log::get()->info("msg=\"removing orphaned pod sandbox\" uid={} pod={}/{}", sb.uid,
                       sb.namespace_, sb.name);
      auto w = worker_for(self, sb.uid);
      self->send(w, stop_atom::value, int64_t{2});
      self->send(w, status_atom::value, sb);
    }
  }
  for (auto& [uid, w] : st.workers)
    if (!seen.count(uid))
      self->send(w, status_atom::value);
}

}  // namespace deckhand::kubelet::detail

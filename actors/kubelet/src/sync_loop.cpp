/// The sync loop: owns the node's pod set. It follows the API server's pods
/// (snapshot + feed, feed_follower), admits new ones, runs static pods from
/// their directory, keeps one pod worker per pod and spawns the node's other
/// actors (status manager, node status, event recorder, eviction manager).

#include <algorithm>
#include <memory>
#include <utility>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/kubelet/admission.hpp"
#include "deckhand/kubelet/event_recorder.hpp"
#include "deckhand/kubelet/eviction.hpp"
#include "deckhand/kubelet/node_status.hpp"
#include "deckhand/kubelet/pod_status.hpp"
#include "deckhand/kubelet/static_pod_source.hpp"
#include "deckhand/kubelet/static_pods.hpp"
#include "deckhand/messages/codec.hpp"
#include "sync_loop.hpp"

namespace deckhand::kubelet::detail {

caf::actor worker_for(sync_actor* self, const std::string& uid) {
  auto& st = self->state;
  auto it = st.workers.find(uid);
  if (it != st.workers.end())
    return it->second;
  // Linked: a kubelet shutdown ends the workers at once. Unlinked, a worker
  // waiting out a back-off timer outlives the sync loop; its retry then parks
  // a request (holding the worker) on the already stopped bridge, and
  // await_all_actors_done never returns. A worker's normal exit is ignored.
  auto w = spawn_pod_worker(self, st.ctx, st.status_mgr, st.recorder, uid);
  st.workers.emplace(uid, w);
  // Tell the new worker what the runtime last said, so it need not wait for
  // the next relist (and does not start a pod that already runs).
  if (st.runtime_listed) {
    auto sb = st.sandboxes.find(uid);
    if (sb != st.sandboxes.end())
      self->send(w, status_atom::value, sb->second);
    else
      self->send(w, status_atom::value);
  }
  return w;
}

namespace {

bool mine(const sync_state& st, const wire::pod& p) {
  return p.spec.node_name == st.ctx->cfg.node_name;
}

void request_list(sync_actor* self) {
  auto& st = self->state;
  if (st.list_inflight)
    return;
  st.list_inflight = true;
  st.follower.invalidate();
  wire::list_request req;
  req.kind = "pods";
  req.node_name = st.ctx->cfg.node_name;
  st.ctx->api->list_pods(req, st.ctx->cfg.request_deadline, deliver<listed_atom>(self));
}

/// Kubernetes' active pods: admitted (a worker runs them) and not terminal.
/// Static pods count for admission; the eviction manager does not get them
/// (they are critical in Kubernetes).
std::vector<const wire::pod*> active_pods(const sync_state& st, bool with_static) {
  std::vector<const wire::pod*> out;
  auto terminal = [](const wire::pod& p) {
    return p.status.phase == "Succeeded" || p.status.phase == "Failed";
  };
  for (const auto& [uid, p] : st.desired)
    if (st.workers.count(uid) && !terminal(p))
      out.push_back(&p);
  if (with_static)
    for (const auto& [uid, p] : st.static_pods)
      if (st.workers.count(uid) && !terminal(p))
        out.push_back(&p);
  return out;
}

/// Admission of a pod without a worker (admission.hpp). A rejected pod is
/// Failed with the reason, gets a Warning event and never runs; one the
/// kubelet rejected or evicted before (a restart) is not run again.
bool admitted(sync_actor* self, const wire::pod& p) {
  auto& st = self->state;
  auto uid = p.metadata.uid;
  if (p.status.phase == "Succeeded" || p.status.phase == "Failed") {
    if (!rejected_by_kubelet(p.status))
      return true;
    st.finished.insert(uid);
    st.desired.erase(uid);
    return false;
  }
  auto r = admit_pod(p, active_pods(st, true), st.allocatable, st.pressure);
  if (r.admit)
    return true;
  log::get()->warn("msg=\"pod rejected\" {} reason={} message=\"{}\"", pod_ref(p), r.reason,
                   r.message);
  wire::pod_status_update u;
  u.namespace_ = p.metadata.namespace_;
  u.name = p.metadata.name;
  u.uid = uid;
  u.status = rejected_status(r);
  self->send(st.status_mgr, status_atom::value, std::move(u));
  if (st.recorder)
    self->send(st.recorder, record_atom::value, pod_event(p, "", "Warning", r.reason, r.message));
  st.finished.insert(uid);
  st.desired.erase(uid);
  return false;
}

/// Pods in the order Kubernetes admits them: oldest first.
std::vector<wire::pod> admission_order(const std::map<std::string, wire::pod>& pods) {
  std::vector<wire::pod> out;
  for (const auto& [uid, p] : pods)
    out.push_back(p);
  std::stable_sort(out.begin(), out.end(), [](const wire::pod& a, const wire::pod& b) {
    return a.metadata.creation_timestamp < b.metadata.creation_timestamp;
  });
  return out;
}

void apply_event(sync_actor* self, const wire::watch_event& ev) {
  auto& st = self->state;
  if (ev.kind != "pods")
    return;
  const auto& p = ev.pod_;
  const auto& uid = p.metadata.uid;
  // A mirror pod only shows a static pod: never run from this source.
  if (is_mirror_pod(p)) {
    if (mine(st, p) && st.static_source)
      self->send(st.static_source, mirror_atom::value, ev.type, std::vector<wire::pod>{p},
                 ev.revision);
    return;
  }
  if (ev.type == "DELETED") {
    st.desired.erase(uid);
    auto it = st.workers.find(uid);
    if (it != st.workers.end())
      self->send(it->second, stop_atom::value, int64_t{0});
    return;
  }
  if (!mine(st, p) || st.finished.count(uid))
    return;
  if (!st.workers.count(uid) && !admitted(self, p))
    return;
  st.desired[uid] = p;
  self->send(worker_for(self, uid), sync_atom::value, p);
}

void on_feed(sync_actor* self, const wire::envelope& env) {
  auto& st = self->state;
  auto now = self->clock().now();
  if (env.hdr.type == wire::feed_heartbeat::type_id) {
    auto hb = wire::decode_body<wire::feed_heartbeat>(env.body);
    if (!hb)
      return;
    if (st.follower.on_heartbeat(env.hdr.incarnation, hb->topic_seq("pods"), now) ==
        wire::feed_follower::verdict::resync)
      request_list(self);
    return;
  }
  auto ev = wire::decode_as<wire::watch_event>(env);
  if (!ev) {
    log::get()->warn("msg=\"dropping malformed feed event\" error=\"{}\"", ev.err().message);
    return;
  }
  switch (st.follower.on_update(env.hdr.incarnation, ev->seq, now)) {
  case wire::feed_follower::verdict::apply: apply_event(self, *ev); break;
  case wire::feed_follower::verdict::ignore: break;
  case wire::feed_follower::verdict::buffer:
    if (st.buffered.size() < 10000)
      st.buffered.push_back(env);
    break;
  case wire::feed_follower::verdict::resync:
    log::get()->info("msg=\"feed gap or restart, relisting\" seq={}", ev->seq);
    request_list(self);
    break;
  }
}

void on_snapshot(sync_actor* self, const wire::list_reply& rep, uint64_t incarnation) {
  auto& st = self->state;
  std::map<std::string, wire::pod> fresh;
  std::set<std::string> listed;
  std::vector<wire::pod> mirrors;
  for (const auto& p : rep.pods) {
    listed.insert(p.metadata.uid);
    if (is_mirror_pod(p)) {
      if (mine(st, p))
        mirrors.push_back(p);
    } else if (mine(st, p) && !st.finished.count(p.metadata.uid)) {
      fresh[p.metadata.uid] = p;
    }
  }
  if (st.static_source)
    self->send(st.static_source, mirror_atom::value, std::string("SNAPSHOT"), std::move(mirrors),
               rep.revision);
  std::erase_if(st.finished, [&](const std::string& uid) { return !listed.count(uid); });
  // Pods that vanished while we were not listening.
  for (auto& [uid, w] : st.workers)
    if (!fresh.count(uid) && st.desired.count(uid))
      self->send(w, stop_atom::value, int64_t{0});
  st.desired = std::move(fresh);
  for (const auto& p : admission_order(st.desired))
    if (st.workers.count(p.metadata.uid) || admitted(self, p))
      self->send(worker_for(self, p.metadata.uid), sync_atom::value, p);
  st.follower.reset(incarnation, rep.feed_seq, self->clock().now());
  if (!st.api_synced)
    log::get()->info("msg=\"synced with the API server\" pods={}", st.desired.size());
  st.api_synced = true;
  auto buffered = std::move(st.buffered);
  st.buffered.clear();
  for (const auto& env : buffered)
    on_feed(self, env);
}

/// The file source's full set of static pods: new ones start, gone ones
/// (file removed or changed: a changed file is a new uid) stop with their
/// own grace period. Nothing here needs the API server.
void apply_static_pods(sync_actor* self, const std::vector<wire::pod>& pods) {
  auto& st = self->state;
  std::map<std::string, wire::pod> fresh;
  for (const auto& p : pods)
    fresh[p.metadata.uid] = p;
  for (const auto& [uid, p] : st.static_pods) {
    if (fresh.count(uid))
      continue;
    log::get()->info("msg=\"static pod removed\" {}", pod_ref(p));
    if (auto w = st.workers.find(uid); w != st.workers.end())
      self->send(w->second, stop_atom::value, p.spec.termination_grace_period_seconds);
  }
  st.static_pods = std::move(fresh);
  st.static_synced = true;
  for (const auto& [uid, p] : st.static_pods)
    self->send(worker_for(self, uid), sync_atom::value, p);
}

caf::behavior sync_loop(sync_actor* self, ctx_ptr ctx) {
  auto& st = self->state;
  st.ctx = ctx;
  st.follower = wire::feed_follower(ctx->cfg.feed_silence);
  st.status_mgr = spawn_status_manager(self->system(), ctx);
  self->link_to(st.status_mgr);
  auto node =
      spawn_node_status(self->system(), node_status_sink{ctx->api, ctx->cfg.request_deadline},
                        node_identity{ctx->cfg.node_name, ctx->cfg.host_ip}, ctx->cfg.node,
                        ctx->cfg.data_dir, ctx->cfg.node_status_period);
  self->link_to(node);
  st.allocatable = node_allocatable(ctx->cfg.node, node_capacity(ctx->cfg.node, ctx->cfg.data_dir));
  {
    event_recorder_config rc = ctx->cfg.events;
    rc.host = ctx->cfg.node_name;
    rc.request_deadline = ctx->cfg.request_deadline;
    st.recorder = spawn_event_recorder(self->system(), event_sink{ctx->api}, rc, ctx->event_stats);
    self->link_to(st.recorder);
  }
  {
    eviction_deps deps;
    auto data_dir = ctx->cfg.data_dir;
    deps.read_stats = [data_dir] { return read_node_stats(data_dir); };
    deps.runtime = ctx->runtime;
    deps.pod_source = caf::actor_cast<caf::actor>(self);
    deps.evict_target = deps.pod_source;
    deps.recorder = st.recorder;
    deps.pressure_listeners = {node, deps.pod_source};
    auto ec = ctx->cfg.eviction;
    ec.hard = ctx->cfg.node.eviction_hard;
    self->link_to(spawn_eviction_manager(self->system(), std::move(deps), ec));
  }
  if (!ctx->cfg.static_pod_path.empty()) {
    static_pod_source_config sc{ctx->cfg.static_pod_path, ctx->cfg.node_name,
                                ctx->cfg.static_pod_poll, ctx->cfg.request_deadline};
    st.static_source =
        spawn_static_pod_source(self->system(), sc, ctx->sockets.request, ctx->sockets.api,
                                caf::actor_cast<caf::actor>(self), st.status_mgr);
    self->link_to(st.static_source);
    st.static_synced = false;
  }
  self->send(self, tick_atom::value, uint64_t{0});
  return {
      [=](feed_atom, const wire::envelope& env) { on_feed(self, env); },
      [=](static_atom, const std::vector<wire::pod>& pods) { apply_static_pods(self, pods); },
      [=](const transport::inbound_request& req) {
        if (req.env.hdr.type != wire::pod_status_notify::type_id)
          return;  // notifications only; the bridge answers ping
        auto n = wire::decode_body<wire::pod_status_notify>(req.env.body);
        if (!n)
          return;
        auto it = self->state.workers.find(n->sandbox.uid);
        if (it != self->state.workers.end())
          self->send(it->second, status_atom::value, n->sandbox);
      },
      [=](tick_atom, uint64_t) {
        auto& s = self->state;
        if (!s.follower.synced() || s.follower.silent(self->clock().now()))
          request_list(self);
        request_relist(self);
        self->delayed_send(self, s.ctx->cfg.relist_period, tick_atom::value, uint64_t{0});
      },
      [=](pods_atom) {
        std::vector<wire::pod> out;
        for (const auto* p : active_pods(self->state, false))
          out.push_back(*p);
        return out;
      },
      [=](evict_atom, const std::string& uid, const std::string& message) {
        auto it = self->state.workers.find(uid);
        if (it != self->state.workers.end())
          self->send(it->second, evict_atom::value, message);
      },
      [=](pressure_atom, std::vector<std::string> pressure) {
        self->state.pressure = std::move(pressure);
      },
      [=](stop_atom, const std::string& uid) {
        auto& s = self->state;
        s.workers.erase(uid);
        s.finished.insert(uid);
        // A pod that is still desired (deleted and re-created with the same uid
        // cannot happen) is dropped from the desired set once terminated.
        s.desired.erase(uid);
        // A static pod whose file came back while it was stopping runs again.
        if (auto sp = s.static_pods.find(uid); sp != s.static_pods.end()) {
          s.finished.erase(uid);
          self->send(worker_for(self, uid), sync_atom::value, sp->second);
        }
      },
      [=](listed_atom, const peer_reply<pod_list>& r) {
        self->state.list_inflight = false;
        if (!r.value) {
          log::get()->warn("msg=\"listing pods failed\" error=\"{}\"", r.value.err().message);
          return;  // the next tick retries
        }
        on_snapshot(self, r.value->list, r.value->incarnation);
      },
      [=](relisted_atom, const peer_reply<wire::list_sandboxes_reply>& r) {
        on_relist(self, r.value);
      },
  };
}

}  // namespace

caf::actor spawn_sync_loop(caf::actor_system& sys, ctx_ptr ctx) {
  return sys.spawn(sync_loop, std::move(ctx));
}

}  // namespace deckhand::kubelet::detail

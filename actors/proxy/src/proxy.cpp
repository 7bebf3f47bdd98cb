#include "deckhand/proxy/proxy.hpp"

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/feed.hpp"

namespace deckhand::proxy {

std::vector<std::string> describe_rules(const std::map<std::string, wire::service>& services) {
  std::vector<std::string> out;
  for (const auto& [key, svc] : services) {
    for (const auto& port : svc.spec.ports) {
      std::string line = "service=" + key + " type=" + svc.spec.type;
      line += " clusterIP=" + (svc.spec.cluster_ip.empty() ? "<none>" : svc.spec.cluster_ip);
      line += " port=" + std::to_string(port.port) + "/" + port.protocol;
      line += " targetPort=" + (port.target_port.value.empty()
                                  ? std::to_string(port.port)
                                  : port.target_port.value);
      if (port.node_port)
        line += " nodePort=" + std::to_string(port.node_port);
      if (!svc.spec.session_affinity.empty())
        line += " sessionAffinity=" + svc.spec.session_affinity;
      out.push_back(std::move(line));
    }
  }
  return out;
}

namespace {

using clock_type = std::chrono::steady_clock;

struct proxy_state {
  transport::bridge* bus = nullptr;
  int api = -1;
  proxy_config cfg;
  wire::feed_follower follower;
  bool list_inflight = false;
  std::map<std::string, wire::service> services;
  std::vector<std::string> applied;
  std::vector<wire::envelope> buffered;
  static inline const char* name = "proxy";
};

using proxy_actor = caf::stateful_actor<proxy_state>;

std::string key_of(const wire::service& s) {
  return s.metadata.namespace_ + "/" + s.metadata.name;
}

void sync_rules(proxy_actor* self) {
  auto& st = self->state;
  auto rules = describe_rules(st.services);
  if (rules == st.applied)
    return;
  log::get()->info("msg=\"rule set changed (no data plane yet: logging only)\" services={} rules={}",
                   st.services.size(), rules.size());
  for (const auto& r : rules)
    log::get()->info("msg=\"would program\" {}", r);
  st.applied = std::move(rules);
}

void request_list(proxy_actor* self) {
  auto& st = self->state;
  if (st.list_inflight)
    return;
  st.list_inflight = true;
  st.follower.invalidate();
  wire::list_request req;
  req.kind = "services";
  host::call(*st.bus, st.api, req, st.cfg.request_deadline, caf::actor_cast<caf::actor>(self),
             0, "list");
}

void on_feed(proxy_actor* self, const wire::envelope& env);

void apply(proxy_actor* self, const wire::watch_event& ev) {
  if (ev.kind != "services")
    return;
  auto key = key_of(ev.service_);
  if (ev.type == "DELETED")
    self->state.services.erase(key);
  else
    self->state.services[key] = ev.service_;
  sync_rules(self);
}

void on_feed(proxy_actor* self, const wire::envelope& env) {
  auto& st = self->state;
  auto now = clock_type::now();
  using verdict = wire::feed_follower::verdict;
  if (env.hdr.type == wire::feed_heartbeat::type_id) {
    auto hb = wire::decode_body<wire::feed_heartbeat>(env.body);
    if (hb && st.follower.on_heartbeat(env.hdr.incarnation, hb->seq, now) == verdict::resync)
      request_list(self);
    return;
  }
  auto ev = wire::decode_as<wire::watch_event>(env);
  if (!ev)
    return;
  switch (st.follower.on_update(env.hdr.incarnation, ev->seq, now)) {
    case verdict::apply: apply(self, *ev); break;
    case verdict::ignore: break;
    case verdict::buffer:
      if (st.buffered.size() < 10000)
        st.buffered.push_back(env);
      break;
    case verdict::resync: request_list(self); break;
  }
}

caf::behavior proxy_loop(proxy_actor* self, transport::bridge* bus, int api, proxy_config cfg) {
  auto& st = self->state;
  st.bus = bus;
  st.api = api;
  st.cfg = cfg;
  st.follower = wire::feed_follower(cfg.feed_silence);
  self->send(self, host::tick_atom::value, uint64_t{0});
  return {
    [=](host::feed_atom, const wire::envelope& env) { on_feed(self, env); },
    [=](host::tick_atom, uint64_t) {
      auto& s = self->state;
      if (!s.follower.synced() || s.follower.silent(clock_type::now()))
        request_list(self);
      self->delayed_send(self, s.cfg.resync_period, host::tick_atom::value, uint64_t{0});
    },
    [=](const host::rpc_reply& r) {
      auto& s = self->state;
      s.list_inflight = false;
      auto rep = r.as<wire::list_reply>();
      if (!rep) {
        log::get()->warn("msg=\"listing services failed\" error=\"{}\"", rep.err().message);
        return;
      }
      s.services.clear();
      for (const auto& svc : rep->services)
        s.services[key_of(svc)] = svc;
      s.follower.reset(r.env.hdr.incarnation, rep->feed_seq, clock_type::now());
      auto buffered = std::move(s.buffered);
      s.buffered.clear();
      for (const auto& env : buffered)
        on_feed(self, env);
      sync_rules(self);
    },
  };
}

} // namespace

caf::actor spawn_proxy(caf::actor_system& sys, transport::bridge& bus, int api_dealer,
                       proxy_config cfg) {
  return sys.spawn(proxy_loop, &bus, api_dealer, cfg);
}

} // namespace deckhand::proxy

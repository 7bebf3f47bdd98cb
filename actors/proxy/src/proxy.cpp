#include "deckhand/proxy/proxy.hpp"

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/feed.hpp"
#include "deckhand/proxy/service_map.hpp"

namespace deckhand::proxy {

std::vector<std::string> describe_rules(const std::map<std::string, wire::service>& services) {
  std::vector<std::string> out;
  for (const auto& [key, svc] : services) {
    for (const auto& port : svc.spec.ports) {
      std::string line = "service=" + key + " type=" + svc.spec.type;
      line += " clusterIP=" + (svc.spec.cluster_ip.empty() ? "<none>" : svc.spec.cluster_ip);
      line += " port=" + std::to_string(port.port) + "/" + port.protocol;
      line += " targetPort=" +
              (port.target_port.value.empty() ? std::to_string(port.port) : port.target_port.value);
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

/// The two kinds the proxy follows share the API server's one feed sequence.
constexpr uint64_t tag_services = 1;
constexpr uint64_t tag_slices = 2;

struct proxy_state {
  transport::bridge* bus = nullptr;
  int api = -1;
  proxy_config cfg;
  /// One per topic: the API server numbers each topic's feed on its own.
  wire::feed_follower follow_services;
  wire::feed_follower follow_slices;
  /// Lists in flight (0-2) and what the current relist got so far.
  int lists_pending = 0;
  uint64_t list_gen = 0;  ///< replies of an abandoned relist are dropped
  std::optional<wire::list_reply> got_services, got_slices;
  /// Both kinds listed at least once: syncing is allowed.
  bool have_snapshot = false;
  std::map<std::string, wire::service> services;
  std::map<std::string, wire::endpoint_slice> slices;
  std::vector<wire::envelope> buffered;
  /// What the data plane holds (as far as this process knows).
  service_map applied;
  bool applied_once = false;
  /// An apply running on its worker, and what it applies.
  bool applying = false;
  std::shared_ptr<const service_map> in_flight;
  bool in_flight_full = false;
  /// A sync was asked for while one was running.
  bool again = false;
  bool again_full = false;
  bool sync_scheduled = false;
  uint64_t sync_gen = 0;
  clock_type::time_point last_sync{};
  std::vector<std::string> logged;
  uint64_t syncs = 0;
  uint64_t sync_failures = 0;
  static inline const char* name = "proxy";
};

using proxy_actor = caf::stateful_actor<proxy_state>;

std::string key_of(const wire::object_meta& m) { return m.namespace_ + "/" + m.name; }

void schedule_sync(proxy_actor* self);

using applied_atom = caf::atom_constant<caf::atom("px_applied")>;

/// Applies the current map if it changed (or `full`). The apply itself (nft,
/// iptables-restore, conntrack) blocks, so it runs on a short-lived blocking
/// actor of its own thread; one at a time, and a sync asked for meanwhile
/// runs when it reports back.
void sync_now(proxy_actor* self, bool full) {
  auto& st = self->state;
  st.last_sync = clock_type::now();
  if (!st.have_snapshot)
    return;
  if (!st.cfg.plane) {
    auto rules = describe_rules(st.services);
    if (rules == st.logged)
      return;
    log::get()->info("msg=\"rule set changed (no data plane: logging only)\" services={} rules={}",
                     st.services.size(), rules.size());
    for (const auto& r : rules)
      log::get()->info("msg=\"would program\" {}", r);
    st.logged = std::move(rules);
    return;
  }
  if (st.applying) {
    st.again = true;
    st.again_full = st.again_full || full;
    return;
  }
  auto desired = build_service_map(st.services, st.slices);
  full = full || !st.applied_once;
  if (!full && desired == st.applied)
    return;
  st.applying = true;
  st.in_flight = std::make_shared<const service_map>(std::move(desired));
  st.in_flight_full = full;
  auto previous = std::make_shared<const service_map>(st.applied);
  auto me = caf::actor_cast<caf::actor>(self);
  self->spawn(
      [plane = st.cfg.plane, want = st.in_flight, previous, full, me](caf::blocking_actor* worker) {
        if (full)
          plane->request_full_sync();
        auto t0 = clock_type::now();
        auto r = plane->apply(*want, *previous);
        double ms = std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
        worker->send(me, applied_atom::value, r.ok(), r ? std::string{} : r.err().message, ms);
      });
}

void on_applied(proxy_actor* self, bool ok, const std::string& err, double ms) {
  auto& st = self->state;
  st.applying = false;
  auto desired = std::move(st.in_flight);
  if (!ok) {
    ++st.sync_failures;
    log::get()->warn("msg=\"sync failed; retrying\" mode={} error=\"{}\"", st.cfg.plane->mode(),
                     err);
    // What the kernel holds is unknown: the retry (after min_sync_period)
    // is a full sync.
    st.applied_once = false;
  } else {
    ++st.syncs;
    size_t backends = 0;
    for (const auto& e : desired->entries)
      backends += e.usable_backends().size();
    log::get()->info("msg=\"rules applied\" mode={} full={} service_ports={} usable_endpoints={} "
                     "ms={:.1f}",
                     st.cfg.plane->mode(), st.in_flight_full, desired->entries.size(), backends,
                     ms);
    st.applied = *desired;
    st.applied_once = true;
  }
  bool again = st.again || !ok;
  bool again_full = st.again_full;
  st.again = st.again_full = false;
  if (again_full)
    sync_now(self, true);
  else if (again)
    schedule_sync(self);
}

/// Something changed: sync now if the last sync is older than
/// min_sync_period, else once it is (changes in between are batched).
void schedule_sync(proxy_actor* self) {
  auto& st = self->state;
  if (st.sync_scheduled)
    return;
  auto due = st.last_sync + st.cfg.min_sync_period;
  auto now = clock_type::now();
  st.sync_scheduled = true;
  auto gen = ++st.sync_gen;
  auto delay = due > now ? std::chrono::duration_cast<std::chrono::milliseconds>(due - now)
                         : std::chrono::milliseconds(0);
  self->delayed_send(self, delay, host::sync_atom::value, gen);
}

void request_list(proxy_actor* self) {
  auto& st = self->state;
  if (st.lists_pending > 0)
    return;
  st.lists_pending = 2;
  ++st.list_gen;
  st.got_services.reset();
  st.got_slices.reset();
  st.follow_services.invalidate();
  st.follow_slices.invalidate();
  auto me = caf::actor_cast<caf::actor>(self);
  wire::list_request req;
  req.kind = "services";
  host::call(*st.bus, st.api, req, st.cfg.request_deadline, me, (st.list_gen << 2) | tag_services,
             "list");
  req.kind = "endpointslices";
  host::call(*st.bus, st.api, req, st.cfg.request_deadline, me, (st.list_gen << 2) | tag_slices,
             "list");
}

void on_feed(proxy_actor* self, const wire::envelope& env);

void apply_event(proxy_actor* self, const wire::watch_event& ev) {
  auto& st = self->state;
  if (ev.kind == "services") {
    auto key = key_of(ev.service_.metadata);
    if (ev.type == "DELETED")
      st.services.erase(key);
    else
      st.services[key] = ev.service_;
  } else if (ev.kind == "endpointslices") {
    auto key = key_of(ev.endpoint_slice_.metadata);
    if (ev.type == "DELETED")
      st.slices.erase(key);
    else
      st.slices[key] = ev.endpoint_slice_;
  } else {
    return;
  }
  schedule_sync(self);
}

void on_feed(proxy_actor* self, const wire::envelope& env) {
  auto& st = self->state;
  auto now = clock_type::now();
  using verdict = wire::feed_follower::verdict;
  if (env.hdr.type == wire::feed_heartbeat::type_id) {
    auto hb = wire::decode_body<wire::feed_heartbeat>(env.body);
    if (!hb)
      return;
    auto a = st.follow_services.on_heartbeat(env.hdr.incarnation, hb->topic_seq("services"), now);
    auto b =
        st.follow_slices.on_heartbeat(env.hdr.incarnation, hb->topic_seq("endpointslices"), now);
    if (a == verdict::resync || b == verdict::resync)
      request_list(self);
    return;
  }
  auto ev = wire::decode_as<wire::watch_event>(env);
  if (!ev)
    return;
  wire::feed_follower* follower = ev->kind == "services"         ? &st.follow_services
                                  : ev->kind == "endpointslices" ? &st.follow_slices
                                                                 : nullptr;
  if (!follower)
    return;
  switch (follower->on_update(env.hdr.incarnation, ev->seq, now)) {
  case verdict::apply: apply_event(self, *ev); break;
  case verdict::ignore: break;
  case verdict::buffer:
    if (st.buffered.size() < 10000)
      st.buffered.push_back(env);
    break;
  case verdict::resync: request_list(self); break;
  }
}

/// Both lists of a relist arrived: they become the state, and each topic's
/// follower restarts at its own list's feed position; buffered events newer
/// than that are then applied, older ones ignored.
void finish_relist(proxy_actor* self, uint64_t incarnation) {
  auto& st = self->state;
  st.services.clear();
  for (auto& svc : st.got_services->services)
    st.services[key_of(svc.metadata)] = std::move(svc);
  st.slices.clear();
  for (auto& es : st.got_slices->endpoint_slices)
    st.slices[key_of(es.metadata)] = std::move(es);
  auto services_seq = st.got_services->feed_seq;
  auto slices_seq = st.got_slices->feed_seq;
  st.got_services.reset();
  st.got_slices.reset();
  st.follow_services.reset(incarnation, services_seq, clock_type::now());
  st.follow_slices.reset(incarnation, slices_seq, clock_type::now());
  bool first = !st.have_snapshot;
  st.have_snapshot = true;
  auto buffered = std::move(st.buffered);
  st.buffered.clear();
  for (const auto& env : buffered)
    on_feed(self, env);
  if (first)
    log::get()->info("msg=\"first snapshot\" services={} endpointslices={}", st.services.size(),
                     st.slices.size());
  schedule_sync(self);
}

caf::behavior proxy_loop(proxy_actor* self, transport::bridge* bus, int api, proxy_config cfg) {
  auto& st = self->state;
  st.bus = bus;
  st.api = api;
  st.cfg = cfg;
  st.follow_services = wire::feed_follower(cfg.feed_silence);
  st.follow_slices = wire::feed_follower(cfg.feed_silence);
  self->send(self, host::tick_atom::value, uint64_t{0});
  if (cfg.sync_period.count() > 0)
    self->delayed_send(self, cfg.sync_period, host::resync_atom::value);
  return {
      [=](host::feed_atom, const wire::envelope& env) { on_feed(self, env); },
      [=](host::tick_atom, uint64_t) {
        auto& s = self->state;
        auto now = clock_type::now();
        if (!s.follow_services.synced() || !s.follow_slices.synced() ||
            s.follow_services.silent(now) || s.follow_slices.silent(now))
          request_list(self);
        self->delayed_send(self, s.cfg.resync_period, host::tick_atom::value, uint64_t{0});
      },
      [=](host::sync_atom, uint64_t gen) {
        auto& s = self->state;
        if (gen != s.sync_gen)
          return;
        s.sync_scheduled = false;
        sync_now(self, false);
      },
      [=](applied_atom, bool ok, const std::string& err, double ms) {
        on_applied(self, ok, err, ms);
      },
      [=](host::resync_atom) {
        auto& s = self->state;
        // The periodic full resync: rewrites everything even if nothing
        // changed, so rules deleted by hand come back.
        sync_now(self, true);
        self->delayed_send(self, s.cfg.sync_period, host::resync_atom::value);
      },
      [=](const host::rpc_reply& r) {
        auto& s = self->state;
        if (s.lists_pending <= 0 || (r.tag >> 2) != s.list_gen)
          return;
        auto kind = r.tag & 3;
        auto rep = r.as<wire::list_reply>();
        if (!rep) {
          log::get()->warn("msg=\"listing failed\" kind={} error=\"{}\"",
                           kind == tag_services ? "services" : "endpointslices", rep.err().message);
          // Start over at the next tick; the other reply is dropped.
          s.lists_pending = -1;
          s.got_services.reset();
          s.got_slices.reset();
          return;
        }
        if (kind == tag_services)
          s.got_services = std::move(*rep);
        else
          s.got_slices = std::move(*rep);
        if (--s.lists_pending == 0 && s.got_services && s.got_slices)
          finish_relist(self, r.env.hdr.incarnation);
      },
  };
}

}  // namespace

caf::actor spawn_proxy(caf::actor_system& sys, transport::bridge& bus, int api_dealer,
                       proxy_config cfg) {
  return sys.spawn(proxy_loop, &bus, api_dealer, std::move(cfg));
}

}  // namespace deckhand::proxy

#include "deckhand/apiserver/node_service.hpp"

#include <map>
#include <mutex>

#include <caf/all.hpp>

#include "deckhand/apiserver/events.hpp"
#include "deckhand/apiserver/leases.hpp"
#include "deckhand/apiserver/mirror_pods.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::apiserver {

namespace {

using clock_type = std::chrono::steady_clock;
using host::sync_atom;
using host::tick_atom;

/// Numbers feed events and pairs snapshots with a feed position. Shared by
/// the registry's listener (called under the registry's write lock) and the
/// service actor.
struct feed {
  std::mutex mtx;
  /// Per topic, so that a subscriber to some topics sees no gaps from others.
  std::map<std::string, uint64_t> seqs;
  uint64_t total = 0;
  transport::bridge* bus = nullptr;
  int pub = -1;
};

std::string kind_topic(const std::string& kind) {
  if (kind == "Pod")
    return "pods";
  if (kind == "Service")
    return "services";
  if (kind == "EndpointSlice")
    return "endpointslices";
  return {};
}

struct service_state {
  registry* reg = nullptr;
  transport::bridge* bus = nullptr;
  std::shared_ptr<feed> fd;
  node_service_options opts;
  std::map<std::string, clock_type::time_point> node_seen;
  uint64_t subscription = 0;
  static inline const char* name = "node_service";
};

using service_actor = caf::stateful_actor<service_state>;

void reply_ack(service_actor* self, const transport::inbound_request& req, uint64_t rev) {
  self->state.bus->reply(req, wire::make_envelope(wire::ack{rev}));
}

uint64_t revision_of(const nlohmann::json& obj) {
  try {
    return std::stoull(obj.at("metadata").at("resourceVersion").get<std::string>());
  } catch (...) {
    return 0;
  }
}

void handle_list(service_actor* self, const transport::inbound_request& req) {
  auto& st = self->state;
  auto r = wire::decode_as<wire::list_request>(req.env);
  if (!r) {
    st.bus->reply_error(req, r.err());
    return;
  }
  wire::list_reply rep;
  rep.kind = r->kind;
  std::lock_guard<std::mutex> guard{st.fd->mtx};
  rep.feed_seq = st.fd->seqs[r->kind];
  if (r->kind == "pods") {
    auto fs = r->node_name.empty() ? std::string{} : "spec.nodeName=" + r->node_name;
    auto l = st.reg->list("pods", "", "", fs);
    if (!l) {
      st.bus->reply_error(req, l.err());
      return;
    }
    rep.revision = l->revision;
    for (const auto& item : l->items) {
      auto p = wire::from_json<wire::pod>(item);
      if (p)
        rep.pods.push_back(std::move(*p));
      else
        log::get()->warn("msg=\"stored pod does not decode\" error=\"{}\"", p.err().message);
    }
  } else if (r->kind == "services") {
    auto l = st.reg->list("services", "");
    if (!l) {
      st.bus->reply_error(req, l.err());
      return;
    }
    rep.revision = l->revision;
    for (const auto& item : l->items) {
      auto s = wire::from_json<wire::service>(item);
      if (s)
        rep.services.push_back(std::move(*s));
    }
  } else if (r->kind == "endpointslices") {
    auto l = st.reg->list("endpointslices", "");
    if (!l) {
      st.bus->reply_error(req, l.err());
      return;
    }
    rep.revision = l->revision;
    for (const auto& item : l->items) {
      auto s = wire::from_json<wire::endpoint_slice>(item);
      if (s)
        rep.endpoint_slices.push_back(std::move(*s));
      else
        log::get()->warn("msg=\"stored endpointslice does not decode\" error=\"{}\"",
                         s.err().message);
    }
  } else {
    st.bus->reply_error(req, error{errc::invalid, "unknown kind \"" + r->kind + "\""});
    return;
  }
  st.bus->reply(req, wire::make_envelope(rep));
}

void handle_status(service_actor* self, const transport::inbound_request& req) {
  auto& st = self->state;
  auto r = wire::decode_as<wire::pod_status_update>(req.env);
  if (!r) {
    st.bus->reply_error(req, r.err());
    return;
  }
  auto res = update_pod_status(*st.reg, *r);
  if (!res) {
    st.bus->reply_error(req, res.err());
    return;
  }
  reply_ack(self, req, revision_of(*res));
}

void handle_mirror(service_actor* self, const transport::inbound_request& req) {
  auto& st = self->state;
  auto r = wire::decode_as<wire::mirror_pod_update>(req.env);
  if (!r) {
    st.bus->reply_error(req, r.err());
    return;
  }
  auto rev = apply_mirror_pod_update(*st.reg, *r);
  if (!rev) {
    st.bus->reply_error(req, rev.err());
    return;
  }
  reply_ack(self, req, *rev);
}

void handle_finalize(service_actor* self, const transport::inbound_request& req) {
  auto& st = self->state;
  auto r = wire::decode_as<wire::pod_finalize>(req.env);
  if (!r) {
    st.bus->reply_error(req, r.err());
    return;
  }
  auto res = st.reg->finalize_pod_deletion(r->namespace_, r->name, r->uid);
  if (!res) {
    st.bus->reply_error(req, res.err());
    return;
  }
  log::get()->info("msg=\"pod deletion finalized\" pod={}/{} uid={}", r->namespace_, r->name,
                   r->uid);
  reply_ack(self, req, st.reg->revision());
}

void handle_heartbeat(service_actor* self, const transport::inbound_request& req) {
  auto& st = self->state;
  auto r = wire::decode_as<wire::node_heartbeat>(req.env);
  if (!r) {
    st.bus->reply_error(req, r.err());
    return;
  }
  const auto& name = r->node_.metadata.name;
  if (name.empty()) {
    st.bus->reply_error(req,
                        error{errc::invalid, "node_heartbeat: node.metadata.name: Required value"});
    return;
  }
  auto existing = st.reg->get("nodes", "", name);
  result<nlohmann::json> res = error{errc::internal, "unset"};
  if (!existing && existing.err().code == errc::not_found) {
    auto obj = wire::to_json(r->node_);
    obj["apiVersion"] = "v1";
    obj["kind"] = "Node";
    res = st.reg->create("nodes", "", obj);
    if (res)
      log::get()->info("msg=\"node registered\" node={}", name);
  } else if (existing) {
    auto status = wire::to_json(r->node_.status);
    // Keep transition times of conditions whose status did not change.
    const auto& old = (*existing)["status"];
    if (old.contains("conditions") && status.contains("conditions"))
      for (auto& c : status["conditions"])
        for (const auto& o : old["conditions"])
          if (o.value("type", "") == c.value("type", "") &&
              o.value("status", "") == c.value("status", "") && o.contains("lastTransitionTime"))
            c["lastTransitionTime"] = o["lastTransitionTime"];
    res = st.reg->update_status("nodes", "", name, status, "");
  } else {
    res = existing.err();
  }
  if (!res) {
    st.bus->reply_error(req, res.err());
    return;
  }
  bool is_new = !st.node_seen.count(name);
  st.node_seen[name] = clock_type::now();
  reply_ack(self, req, revision_of(*res));
  if (is_new)
    self->send(self, sync_atom::value);
}

/// A kubelet renews its node Lease (leases.hpp): the node counts as alive.
void handle_lease(service_actor* self, const transport::inbound_request& req) {
  auto& st = self->state;
  auto r = wire::decode_as<wire::lease_renew>(req.env);
  if (!r) {
    st.bus->reply_error(req, r.err());
    return;
  }
  auto res = renew_node_lease(*st.reg, r->node_name, r->holder_identity, r->lease_duration_seconds,
                              std::chrono::system_clock::now());
  if (!res) {
    st.bus->reply_error(req, res.err());
    return;
  }
  bool is_new = !st.node_seen.count(r->node_name);
  st.node_seen[r->node_name] = clock_type::now();
  reply_ack(self, req, revision_of(*res));
  if (is_new)
    self->send(self, sync_atom::value);
}

void handle_events(service_actor* self, const transport::inbound_request& req) {
  auto& st = self->state;
  auto r = wire::decode_as<wire::event_report>(req.env);
  if (!r) {
    st.bus->reply_error(req, r.err());
    return;
  }
  std::vector<nlohmann::json> events;
  events.reserve(r->events.size());
  for (const auto& ev : r->events)
    events.push_back(wire::to_json(ev));
  record_events(*st.reg, events);
  // Bounds per namespace right away: a crash-looping pod must not wait for
  // the periodic collection to be cut back.
  collect_events(*st.reg, st.opts.events, std::chrono::system_clock::now());
  reply_ack(self, req, st.reg->revision());
}

void schedule(service_actor* self) {
  auto& st = self->state;
  auto now = clock_type::now();
  std::map<std::string, int> load;
  for (const auto& [node, seen] : st.node_seen)
    if (now - seen <= st.opts.node_lease)
      load[node] = 0;
  if (load.empty())
    return;
  auto pods = st.reg->list("pods", "");
  if (!pods)
    return;
  std::vector<const nlohmann::json*> pending;
  for (const auto& p : pods->items) {
    auto node = p.value("/spec/nodeName"_json_pointer, std::string{});
    if (node.empty()) {
      if (!p.contains("/metadata/deletionTimestamp"_json_pointer))
        pending.push_back(&p);
    } else if (load.count(node)) {
      load[node]++;
    }
  }
  for (const auto* p : pending) {
    // nodeSelector must match the node's labels.
    std::string chosen;
    int best = 0;
    for (const auto& [node, n] : load) {
      if (p->contains("/spec/nodeSelector"_json_pointer)) {
        auto nobj = st.reg->get("nodes", "", node);
        if (!nobj)
          continue;
        bool fits = true;
        for (auto& [k, v] : (*p)["spec"]["nodeSelector"].items())
          if ((*nobj)["metadata"].value("labels", nlohmann::json::object()).value(k, "") !=
              v.get<std::string>())
            fits = false;
        if (!fits)
          continue;
      }
      if (chosen.empty() || n < best) {
        chosen = node;
        best = n;
      }
    }
    if (chosen.empty())
      continue;
    auto ns = (*p)["metadata"].value("namespace", "default");
    auto name = (*p)["metadata"].value("name", "");
    auto b = st.reg->bind(ns, name, chosen);
    if (b) {
      load[chosen]++;
      log::get()->info("msg=\"pod scheduled\" pod={}/{} node={}", ns, name, chosen);
      record_events(*st.reg, {scheduled_event(*b, chosen, std::chrono::system_clock::now())});
    }
  }
}

caf::behavior node_service(service_actor* self, registry* reg, transport::bridge* bus,
                           std::shared_ptr<feed> fd, node_service_options opts) {
  auto& st = self->state;
  st.reg = reg;
  st.bus = bus;
  st.fd = fd;
  st.opts = opts;
  auto me = caf::actor_cast<caf::actor>(self);
  st.subscription = reg->subscribe([fd, me](const watch_event& ev) {
                         auto topic = kind_topic(ev.kind);
                         if (topic.empty())
                           return;
                         wire::watch_event out;
                         out.type = to_string(ev.type);
                         out.kind = topic;
                         out.revision = ev.revision;
                         if (topic == "pods") {
                           auto p = wire::from_json<wire::pod>(ev.object);
                           if (p)
                             out.pod_ = std::move(*p);
                         } else if (topic == "endpointslices") {
                           auto s = wire::from_json<wire::endpoint_slice>(ev.object);
                           if (s)
                             out.endpoint_slice_ = std::move(*s);
                         } else {
                           auto s = wire::from_json<wire::service>(ev.object);
                           if (s)
                             out.service_ = std::move(*s);
                         }
                         bool unbound = topic == "pods" && ev.type == watch_event_type::added &&
                                        out.pod_.spec.node_name.empty();
                         {
                           std::lock_guard<std::mutex> guard{fd->mtx};
                           out.seq = ++fd->seqs[topic];
                           ++fd->total;
                           fd->bus->publish(fd->pub, topic, wire::make_envelope(out));
                         }
                         if (unbound)
                           caf::anon_send(me, sync_atom::value);
                       })
                        .id;
  self->attach_functor([reg, id = st.subscription] { reg->unsubscribe(id); });
  self->send(self, tick_atom::value, uint64_t{0});
  self->send(self, tick_atom::value, uint64_t{1});
  self->delayed_send(self, opts.events.collect_period, tick_atom::value, uint64_t{2});
  return {
      [=](const transport::inbound_request& req) {
        switch (req.env.hdr.type) {
        case wire::list_request::type_id: handle_list(self, req); break;
        case wire::pod_status_update::type_id: handle_status(self, req); break;
        case wire::pod_finalize::type_id: handle_finalize(self, req); break;
        case wire::mirror_pod_update::type_id: handle_mirror(self, req); break;
        case wire::node_heartbeat::type_id: handle_heartbeat(self, req); break;
        case wire::event_report::type_id: handle_events(self, req); break;
        case wire::lease_renew::type_id: handle_lease(self, req); break;
        default:
          self->state.bus->reply_error(
              req, error{errc::invalid, "message type " + std::to_string(req.env.hdr.type) +
                                            " is not served by the API server"});
        }
      },
      [=](sync_atom) { schedule(self); },
      [=](tick_atom, uint64_t which) {
        auto& s = self->state;
        if (which == 2) {
          collect_events(*s.reg, s.opts.events, std::chrono::system_clock::now());
          self->delayed_send(self, s.opts.events.collect_period, tick_atom::value, uint64_t{2});
        } else if (which == 0) {
          std::lock_guard<std::mutex> guard{s.fd->mtx};
          wire::feed_heartbeat hb;
          hb.seq = s.fd->total;
          hb.topics = s.fd->seqs;
          s.fd->bus->publish(s.fd->pub, "hb", wire::make_envelope(hb));
          self->delayed_send(self, s.opts.feed_heartbeat, tick_atom::value, uint64_t{0});
        } else {
          schedule(self);
          self->delayed_send(self, s.opts.schedule_period, tick_atom::value, uint64_t{1});
        }
      },
  };
}

}  // namespace

caf::actor spawn_node_service(caf::actor_system& sys, registry& reg, transport::bridge& bus,
                              int pub_socket, node_service_options opts) {
  auto fd = std::make_shared<feed>();
  fd->bus = &bus;
  fd->pub = pub_socket;
  return sys.spawn<caf::detached>(node_service, &reg, &bus, fd, opts);
}

}  // namespace deckhand::apiserver

#include "deckhand/runtime/sim_backend.hpp"

#include <algorithm>
#include <charconv>
#include <set>

#include <caf/all.hpp>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/host/config.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/net/ipv4.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"
#include "deckhand/runtime/sandbox_record.hpp"
#include "deckhand/supervisor/service.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;
using supervisor::exit_info;
using supervisor::millis;

namespace {

/// sandbox.json state of a simulated pod; read_sandbox() and the start-up
/// sweep of the oci back-end never see these pods (they run with `sim`).
constexpr const char* sim_state = "sim";

int64_t annotation_int(const wire::pod& p, const char* key, int64_t fallback) {
  auto it = p.metadata.annotations.find(key);
  if (it == p.metadata.annotations.end())
    return fallback;
  int64_t v = 0;
  const auto& s = it->second;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size() || v < 0)
    return fallback;
  return v;
}

}  // namespace

/// One simulated pod: the supervisor's state machine plus the pending
/// simulated exits of its containers.
struct sim_node::sim_pod {
  wire::pod pod;
  std::string ip;
  std::string created_at;
  std::unique_ptr<supervisor::pod_state> core;
  /// container name -> when it exits and how
  std::map<std::string, std::pair<time_point, exit_info>> exits;
  std::set<std::string> running;
  bool stopped_recorded = false;
};

sim_node::sim_node(runtime_options opts, const image::image_store* images,
                   supervisor::backoff_config backoff)
    : opts_(std::move(opts)), images_(images), backoff_(backoff) {}

sim_node::~sim_node() = default;

std::string sim_node::allocate_ip(const std::string& uid) {
  auto cidr = net::ipv4_cidr::parse(opts_.pod_cidr);
  if (!cidr)
    return {};
  uint32_t hosts = cidr->prefix >= 31 ? 0 : (~cidr->mask()) - 1;  // minus network, broadcast
  // The gateway (first host) belongs to the node.
  for (uint32_t n = 0; hosts > 1 && n < hosts - 1; ++n) {
    uint32_t offset = 2 + (next_ip_ + n) % (hosts - 1);
    net::ipv4 a{cidr->network.value + offset};
    auto text = a.to_string();
    if (!ips_.count(text)) {
      ips_[text] = uid;
      next_ip_ = offset - 1;
      return text;
    }
  }
  return {};
}

void sim_node::recover(time_point now) {
  for (const auto& uid : pod_uids_on_disk(opts_)) {
    auto dir = pod_dir::root(opts_.data_dir, uid);
    auto rec_text = fsutil::read_file(pod_dir::sandbox_json(dir), 1u << 20);
    auto pod_text = fsutil::read_file(pod_dir::pod_json(dir), 16u << 20);
    if (!rec_text || !pod_text)
      continue;
    auto rec = decode_sandbox_record(*rec_text);
    if (!rec || rec->state != sim_state)
      continue;
    auto j = nlohmann::json::parse(*pod_text, nullptr, false);
    if (j.is_discarded())
      continue;
    auto p = wire::from_json<wire::pod>(j);
    if (!p)
      continue;
    std::optional<supervisor::status_document> previous;
    if (auto st = fsutil::read_file(pod_dir::status_json(dir), 16u << 20))
      if (auto doc = supervisor::decode_status(*st))
        previous = std::move(*doc);
    std::optional<supervisor::stop_marker> marker;
    if (auto m = fsutil::read_file(pod_dir::stopping_marker(dir), 1u << 16))
      marker = supervisor::decode_stop_marker(*m);

    auto sp = std::make_unique<sim_pod>();
    sp->pod = std::move(*p);
    sp->created_at = rec->created_at;
    sp->ip = previous ? previous->sandbox.pod_ip_ : std::string{};
    if (!sp->ip.empty())
      ips_[sp->ip] = uid;
    else
      sp->ip = allocate_ip(uid);
    // Containers that were running keep running: no process ever existed,
    // so nothing can have died while the runtime was away.
    if (previous)
      for (const auto& c : previous->sandbox.containers)
        if (!c.status.state.running.started_at.empty())
          sp->running.insert(c.name);
    supervisor::pod_context ctx;
    ctx.pod = sp->pod;
    ctx.data_dir = opts_.data_dir;
    ctx.pod_dir = dir;
    ctx.backoff = backoff_;
    sp->core = std::make_unique<supervisor::pod_state>(std::move(ctx));
    sp->core->begin(previous, marker, now);
    auto& ref = *sp;
    pods_[uid] = std::move(sp);
    drain(ref, now);
  }
  log::get()->info("msg=\"simulated pods recovered\" count={}", pods_.size());
}

result<wire::sandbox_status> sim_node::run(const wire::pod& p, time_point now) {
  if (auto err = validate_pod(p))
    return err;
  const auto& uid = p.metadata.uid;
  if (auto it = pods_.find(uid); it != pods_.end())
    return *status(uid);
  if (images_)
    for (const auto& c : p.spec.containers)
      if (auto rec = images_->find(c.image); !rec)
        return error{rec.err().code == errc::not_found ? errc::not_found : rec.err().code,
                     "image \"" + c.image + "\" is not present on the node"};

  auto sp = std::make_unique<sim_pod>();
  sp->pod = p;
  sp->created_at = now_rfc3339();
  sp->ip = p.spec.host_network ? std::string{} : allocate_ip(uid);
  if (!p.spec.host_network && sp->ip.empty())
    return error{errc::unavailable, "no free address in the pod CIDR " + opts_.pod_cidr};

  auto dir = pod_dir::root(opts_.data_dir, uid);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    ips_.erase(sp->ip);
    return error::from_errno("mkdir " + dir.string(), ec.value());
  }
  sandbox_record rec;
  rec.uid = uid;
  rec.namespace_ = p.metadata.namespace_.empty() ? "default" : p.metadata.namespace_;
  rec.name = p.metadata.name;
  rec.state = sim_state;
  rec.host_network = p.spec.host_network;
  rec.created_at = sp->created_at;
  for (const auto& c : p.spec.containers)
    rec.containers.push_back(c.name);
  error err = fsutil::write_file_atomic(pod_dir::pod_json(dir), wire::to_json(p).dump(),
                                        fsutil::durability::process_crash);
  if (!err)
    err = fsutil::write_file_atomic(pod_dir::sandbox_json(dir), encode_sandbox_record(rec),
                                    fsutil::durability::process_crash);
  if (err) {
    ips_.erase(sp->ip);
    fs::remove_all(dir, ec);
    return err;
  }

  supervisor::pod_context ctx;
  ctx.pod = p;
  ctx.data_dir = opts_.data_dir;
  ctx.pod_dir = dir;
  ctx.backoff = backoff_;
  sp->core = std::make_unique<supervisor::pod_state>(std::move(ctx));
  sp->core->begin(std::nullopt, std::nullopt, now);
  auto& ref = *sp;
  pods_[uid] = std::move(sp);
  drain(ref, now);
  log::get()->info("msg=\"simulated pod started\" pod={}/{} uid={} ip={}", rec.namespace_, rec.name,
                   uid, ref.ip);
  return *status(uid);
}

std::optional<wire::sandbox_status> sim_node::stop(const std::string& uid, int64_t grace_seconds,
                                                   uint64_t token, time_point now) {
  auto it = pods_.find(uid);
  if (it == pods_.end()) {
    wire::sandbox_status st;
    st.uid = uid;
    st.state = "stopped";
    return st;
  }
  auto& sp = *it->second;
  if (sp.core->stopped())
    return status(uid);
  sp.core->on_stop_request(token, std::max<int64_t>(grace_seconds, 0), now);
  drain(sp, now);
  return std::nullopt;
}

error sim_node::remove(const std::string& uid) {
  if (auto it = pods_.find(uid); it != pods_.end()) {
    ips_.erase(it->second->ip);
    pods_.erase(it);
  }
  auto dir = pod_dir::root(opts_.data_dir, uid);
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec)
    return error::from_errno("remove " + dir.string(), ec.value());
  return {};
}

std::optional<wire::sandbox_status> sim_node::status(const std::string& uid) const {
  auto it = pods_.find(uid);
  if (it == pods_.end())
    return std::nullopt;
  const auto& sp = *it->second;
  auto st = sp.core->snapshot();
  st.uid = uid;
  st.namespace_ = sp.pod.metadata.namespace_.empty() ? "default" : sp.pod.metadata.namespace_;
  st.name = sp.pod.metadata.name;
  st.created_at = sp.created_at;
  st.pod_ip_ = sp.ip;
  st.supervisor_pid = 0;
  // No supervisor process exists; the state machine lives in the runtime
  // and is always there while the runtime is.
  st.supervisor_alive = true;
  st.state = sp.core->stopped() ? "stopped" : sp.core->stopping() ? "stopping" : "ready";
  return st;
}

std::vector<wire::sandbox_status> sim_node::list() const {
  std::vector<wire::sandbox_status> out;
  out.reserve(pods_.size());
  for (const auto& [uid, sp] : pods_)
    out.push_back(*status(uid));
  return out;
}

void sim_node::tick(time_point now) {
  for (auto& [uid, sp] : pods_) {
    bool changed = false;
    for (auto it = sp->exits.begin(); it != sp->exits.end();) {
      if (it->second.first <= now) {
        auto name = it->first;
        auto info = it->second.second;
        it = sp->exits.erase(it);
        sp->running.erase(name);
        sp->core->on_exited(name, info, now);
        changed = true;
      } else {
        ++it;
      }
    }
    auto wake = sp->core->next_wakeup();
    if (wake && *wake <= now) {
      sp->core->on_tick(now);
      changed = true;
    }
    if (changed)
      drain(*sp, now);
  }
}

std::optional<sim_node::time_point> sim_node::next_wakeup() const {
  std::optional<time_point> best;
  auto consider = [&](time_point t) {
    if (!best || t < *best)
      best = t;
  };
  for (const auto& [uid, sp] : pods_) {
    for (const auto& [name, e] : sp->exits)
      consider(e.first);
    if (auto w = sp->core->next_wakeup())
      consider(*w);
  }
  return best;
}

std::vector<std::pair<uint64_t, wire::sandbox_status>> sim_node::take_finished_stops() {
  return std::exchange(finished_, {});
}

void sim_node::drain(sim_pod& sp, time_point now) {
  using namespace supervisor;
  const auto& uid = sp.pod.metadata.uid;
  auto dir = pod_dir::root(opts_.data_dir, uid);
  // Actions can produce further actions (a probe answered launches); loop
  // until the core is quiet.
  for (int round = 0; round < 64; ++round) {
    auto actions = sp.core->take_actions();
    if (actions.empty())
      return;
    for (auto& a : actions) {
      if (auto* p = std::get_if<action::probe>(&a)) {
        sp.core->on_probed(p->name, sp.running.count(p->name) > 0, now);
        if (sp.running.count(p->name)) {
          auto run_ms = annotation_int(sp.pod, "sim.deckhand.io/run-ms", -1);
          if (run_ms >= 0) {
            exit_info e;
            e.code = static_cast<int>(annotation_int(sp.pod, "sim.deckhand.io/exit-code", 0));
            sp.exits[p->name] = {now + millis(run_ms), e};
          }
        }
      } else if (auto* l = std::get_if<action::launch>(&a)) {
        sp.running.insert(l->name);
        sp.exits.erase(l->name);
        auto run_ms = annotation_int(sp.pod, "sim.deckhand.io/run-ms", -1);
        if (run_ms >= 0) {
          exit_info e;
          e.code = static_cast<int>(annotation_int(sp.pod, "sim.deckhand.io/exit-code", 0));
          sp.exits[l->name] = {now + millis(run_ms), e};
        }
        sp.core->on_started(l->name, now);
      } else if (auto* k = std::get_if<action::kill>(&a)) {
        if (!sp.running.count(k->name))
          continue;
        exit_info e;
        e.signal = k->signal;
        e.code = 128 + k->signal;
        auto at = now;
        if (k->signal != 9)
          at += millis(annotation_int(sp.pod, "sim.deckhand.io/term-ms", 0));
        auto cur = sp.exits.find(k->name);
        // A kill never delays an exit that was due earlier.
        if (cur == sp.exits.end() || at < cur->second.first)
          sp.exits[k->name] = {at, e};
      } else if (std::holds_alternative<action::persist>(a)) {
        auto doc = sp.core->document();
        doc.sandbox.pod_ip_ = sp.ip;
        if (auto err = fsutil::write_file_atomic(pod_dir::status_json(dir), encode_status(doc),
                                                 fsutil::durability::process_crash))
          log::get()->warn("msg=\"writing simulated status failed\" uid={} error=\"{}\"", uid,
                           err.message);
      } else if (auto* m = std::get_if<action::write_stop_marker>(&a)) {
        if (auto err = fsutil::write_file_atomic(pod_dir::stopping_marker(dir),
                                                 encode_stop_marker(m->marker),
                                                 fsutil::durability::process_crash))
          log::get()->warn("msg=\"writing stopping marker failed\" uid={} error=\"{}\"", uid,
                           err.message);
      } else if (auto* pr = std::get_if<action::run_probe>(&a)) {
        // No processes to probe: a simulated container answers every probe
        // (and every hook, below) with success at once, so readiness and
        // the startup gate behave as for a healthy container.
        handler_result ok;
        ok.outcome = handler_outcome::success;
        sp.core->on_probe_result(pr->name, pr->kind, pr->instance, ok, now);
      } else if (auto* h = std::get_if<action::run_hook>(&a)) {
        sp.core->on_hook_done(h->name, h->gen, true, {}, now);
      } else if (auto* d = std::get_if<action::stop_done>(&a)) {
        auto st = status(uid);
        for (auto token : d->tokens)
          finished_.emplace_back(token, *st);
      }
    }
    // Exits that are due now (run-ms 0, term-ms 0) happen in this step.
    bool due = false;
    for (auto it = sp.exits.begin(); it != sp.exits.end();) {
      if (it->second.first <= now) {
        auto name = it->first;
        auto info = it->second.second;
        it = sp.exits.erase(it);
        sp.running.erase(name);
        sp.core->on_exited(name, info, now);
        due = true;
      } else {
        ++it;
      }
    }
    (void)due;
  }
  log::get()->error("msg=\"simulated pod did not settle\" uid={}", uid);
}

// -- the actor ---------------------------------------------------------------------

result<supervisor::backoff_config> backoff_from_args(const std::vector<std::string>& args) {
  CLI::App app{"sim back-off"};
  app.allow_extras();
  supervisor::service_options so;
  supervisor::add_service_options(app, so);
  std::vector<std::string> argv{"--pod-uid=sim"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::reverse(argv.begin(), argv.end());  // CLI11 parses a reversed vector
  try {
    app.parse(argv);
  } catch (const CLI::ParseError& e) {
    return error{errc::invalid, std::string("supervisor arguments: ") + e.what()};
  }
  if (so.backoff_initial_ms <= 0 || so.backoff_max_ms < so.backoff_initial_ms ||
      so.backoff_reset_ms <= 0)
    return error{errc::invalid, "invalid back-off settings"};
  return so.backoff();
}

namespace {

struct sim_state_holder {
  std::unique_ptr<sim_node> node;
  std::map<uint64_t, transport::inbound_request> pending_stops;
  uint64_t next_token = 1;
  uint64_t timer_gen = 0;
  std::optional<sim_node::time_point> timer_at;
};

using sim_actor = caf::stateful_actor<sim_state_holder>;

void settle(sim_actor* self, transport::bridge* bus) {
  auto& st = self->state;
  for (auto& [token, status] : st.node->take_finished_stops()) {
    auto it = st.pending_stops.find(token);
    if (it == st.pending_stops.end())
      continue;
    bus->reply(it->second, wire::make_envelope(wire::sandbox_status_reply{status}));
    st.pending_stops.erase(it);
  }
  auto wake = st.node->next_wakeup();
  if (wake && (!st.timer_at || *wake < *st.timer_at)) {
    st.timer_at = wake;
    auto delay =
        std::chrono::duration_cast<millis>(*wake - supervisor::wall_clock::now()) + millis(1);
    if (delay < millis(1))
      delay = millis(1);
    self->delayed_send(self, delay, host::tick_atom::value, ++st.timer_gen);
  }
}

caf::behavior sim_service(sim_actor* self, transport::bridge* bus, runtime_options opts,
                          std::shared_ptr<image::image_store> images,
                          supervisor::backoff_config backoff) {
  self->state.node = std::make_unique<sim_node>(opts, images.get(), backoff);
  self->state.node->recover(supervisor::wall_clock::now());
  settle(self, bus);
  return {
      [=](transport::inbound_request& req) {
        auto& st = self->state;
        auto now = supervisor::wall_clock::now();
        switch (req.env.hdr.type) {
        case wire::run_pod_request::type_id: {
          auto m = wire::decode_as<wire::run_pod_request>(req.env);
          if (!m) {
            bus->reply_error(req, m.err());
            break;
          }
          auto r = st.node->run(m->pod_, now);
          if (!r)
            bus->reply_error(req, r.err());
          else
            bus->reply(req, wire::make_envelope(wire::run_pod_reply{std::move(*r)}));
          break;
        }
        case wire::stop_pod_request::type_id: {
          auto m = wire::decode_as<wire::stop_pod_request>(req.env);
          if (!m) {
            bus->reply_error(req, m.err());
            break;
          }
          auto token = st.next_token++;
          auto done = st.node->stop(m->uid, m->grace_period_seconds, token, now);
          if (done)
            bus->reply(req, wire::make_envelope(wire::sandbox_status_reply{std::move(*done)}));
          else
            st.pending_stops.emplace(token, std::move(req));
          break;
        }
        case wire::remove_pod_request::type_id: {
          auto m = wire::decode_as<wire::remove_pod_request>(req.env);
          if (!m) {
            bus->reply_error(req, m.err());
            break;
          }
          if (auto err = st.node->remove(m->uid))
            bus->reply_error(req, err);
          else
            bus->reply(req, wire::make_envelope(wire::ack{}));
          break;
        }
        case wire::list_sandboxes_request::type_id: {
          wire::list_sandboxes_reply rep;
          rep.sandboxes = st.node->list();
          bus->reply(req, wire::make_envelope(rep));
          break;
        }
        default:
          bus->reply_error(req, {errc::invalid, "the sim back-end does not serve message type " +
                                                    std::to_string(req.env.hdr.type)});
        }
        settle(self, bus);
      },
      [=](host::tick_atom, uint64_t gen) {
        auto& st = self->state;
        if (gen != st.timer_gen)
          return;
        st.timer_at.reset();
        st.node->tick(supervisor::wall_clock::now());
        settle(self, bus);
      },
  };
}

}  // namespace

caf::actor spawn_sim_service(caf::actor_system& sys, transport::bridge& bus,
                             const runtime_options& opts,
                             std::shared_ptr<image::image_store> images) {
  auto backoff = backoff_from_args(opts.supervisor_args);
  if (!backoff) {
    log::get()->warn("msg=\"sim back-end: {}; using Kubernetes' defaults\"", backoff.err().message);
    backoff = supervisor::backoff_config{};
  }
  return sys.spawn<caf::detached>(sim_service, &bus, opts, std::move(images), *backoff);
}

backend_actors sim_backend::spawn(caf::actor_system& sys, transport::bridge& bus,
                                  const runtime_options& opts,
                                  std::shared_ptr<image::image_store> images, caf::actor) const {
  auto sim = spawn_sim_service(sys, bus, opts, std::move(images));
  return {sim, sim};
}

}  // namespace deckhand::runtime

#include "deckhand/kubelet/event_recorder.hpp"

#include <cstdio>
#include <deque>
#include <map>
#include <set>
#include <vector>

#include <caf/all.hpp>

#include "deckhand/api/time.hpp"
#include "deckhand/common/backoff.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet {

namespace {

/// The API server's reply to a batch (peer_reply.hpp).
using reported_atom = caf::atom_constant<caf::atom("kl_evsent")>;
using host::tick_atom;

/// What makes two events one series (client-go's aggregation key, with the
/// message included: only identical events are counted together).
std::string series_key(const wire::event& e) {
  const auto& o = e.involved_object;
  std::string k;
  for (const std::string* part :
       {&o.kind, &o.namespace_, &o.name, &o.uid, &o.field_path, &e.type, &e.reason, &e.message}) {
    k += *part;
    k.push_back('\0');
  }
  return k;
}

struct series {
  wire::event ev;
  caf::actor_clock::time_point last_seen;
};

struct recorder_state {
  event_sink sink;
  event_recorder_config cfg;
  std::shared_ptr<event_recorder_stats> stats;
  std::map<std::string, series> known;  // by series_key
  std::deque<std::string> pending;      // keys, oldest first
  std::set<std::string> pending_set;
  std::vector<std::string> inflight;  // keys of the batch on the wire
  bool flush_armed = false;
  /// Between failed batches; set from the config when the recorder starts.
  common::backoff backoff;
  uint64_t last_name_nanos = 0;
  static inline const char* name = "event_recorder";
};

using recorder_actor = caf::stateful_actor<recorder_state>;

void arm_flush(recorder_actor* self, std::chrono::milliseconds delay) {
  auto& st = self->state;
  if (st.flush_armed || !st.inflight.empty() || st.pending.empty())
    return;
  st.flush_armed = true;
  if (delay.count() == 0)
    self->send(self, tick_atom::value, uint64_t{0});
  else
    self->delayed_send(self, delay, tick_atom::value, uint64_t{0});
}

bool enqueue(recorder_state& st, const std::string& key) {
  if (st.pending_set.count(key))
    return true;
  if (st.pending.size() >= st.cfg.max_pending) {
    ++st.stats->dropped;
    return false;
  }
  st.pending.push_back(key);
  st.pending_set.insert(key);
  return true;
}

/// Forgets the least recently seen series that is not waiting to be sent.
void forget_oldest(recorder_state& st) {
  auto victim = st.known.end();
  for (auto it = st.known.begin(); it != st.known.end(); ++it) {
    if (st.pending_set.count(it->first))
      continue;
    if (victim == st.known.end() || it->second.last_seen < victim->second.last_seen)
      victim = it;
  }
  if (victim != st.known.end())
    st.known.erase(victim);
}

void record(recorder_actor* self, wire::event ev) {
  auto& st = self->state;
  ++st.stats->recorded;
  auto now = self->clock().now();
  auto wall = st.cfg.wall_clock();
  auto key = series_key(ev);
  auto it = st.known.find(key);
  if (it != st.known.end() && now - it->second.last_seen <= st.cfg.aggregation_window) {
    ++st.stats->aggregated;
    it->second.ev.count += 1;
    it->second.ev.last_timestamp = api::format_rfc3339(wall);
    it->second.last_seen = now;
  } else {
    if (it == st.known.end() && st.known.size() >= st.cfg.max_series)
      forget_oldest(st);
    auto nanos = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count());
    // Names must differ even when the wall clock does not move between two
    // series (coarse clocks, tests).
    nanos = std::max(nanos, st.last_name_nanos + 1);
    st.last_name_nanos = nanos;
    char suffix[24];
    std::snprintf(suffix, sizeof suffix, ".%llx", static_cast<unsigned long long>(nanos));
    ev.metadata = {};
    ev.metadata.name = ev.involved_object.name + suffix;
    ev.metadata.namespace_ =
        ev.involved_object.namespace_.empty() ? "default" : ev.involved_object.namespace_;
    ev.source.component = st.cfg.component;
    ev.source.host = st.cfg.host;
    ev.reporting_component = st.cfg.component;
    ev.reporting_instance = st.cfg.host;
    ev.count = 1;
    ev.first_timestamp = ev.last_timestamp = api::format_rfc3339(wall);
    if (ev.type.empty())
      ev.type = "Normal";
    st.known[key] = series{std::move(ev), now};
  }
  enqueue(st, key);
  arm_flush(self, st.cfg.batch_delay);
}

void flush(recorder_actor* self) {
  auto& st = self->state;
  st.flush_armed = false;
  if (!st.inflight.empty())
    return;
  wire::event_report rep;
  while (!st.pending.empty() && rep.events.size() < st.cfg.max_batch) {
    auto key = std::move(st.pending.front());
    st.pending.pop_front();
    st.pending_set.erase(key);
    auto it = st.known.find(key);
    if (it == st.known.end())
      continue;
    rep.events.push_back(it->second.ev);
    st.inflight.push_back(std::move(key));
  }
  if (rep.events.empty())
    return;
  st.sink.api->report_events(rep, st.cfg.request_deadline, deliver<reported_atom>(self));
}

void on_reply(recorder_actor* self, const result<wire::ack>& ack) {
  auto& st = self->state;
  auto batch = std::move(st.inflight);
  st.inflight.clear();
  if (ack) {
    st.stats->sent += batch.size();
    st.backoff.reset();
    arm_flush(self, std::chrono::milliseconds(0));
    return;
  }
  ++st.stats->failed_batches;
  auto delay = st.backoff.next();
  log::get()->warn("msg=\"sending events failed, will retry\" events={} retry_ms={} error=\"{}\"",
                   batch.size(), delay.count(), ack.err().message);
  // Back to the front of the queue, oldest first; what does not fit is lost.
  for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
    if (st.pending_set.count(*it))
      continue;
    if (st.pending.size() >= st.cfg.max_pending) {
      ++st.stats->dropped;
      continue;
    }
    st.pending.push_front(*it);
    st.pending_set.insert(*it);
  }
  arm_flush(self, delay);
}

caf::behavior event_recorder(recorder_actor* self, event_sink sink, event_recorder_config cfg,
                             std::shared_ptr<event_recorder_stats> stats) {
  auto& st = self->state;
  st.sink = std::move(sink);
  st.cfg = std::move(cfg);
  if (!st.cfg.wall_clock)
    st.cfg.wall_clock = [] { return std::chrono::system_clock::now(); };
  st.cfg.max_batch = std::max<std::size_t>(st.cfg.max_batch, 1);
  st.backoff = common::backoff({st.cfg.retry_initial, st.cfg.retry_max});
  st.stats = stats ? std::move(stats) : std::make_shared<event_recorder_stats>();
  return {
      [=](record_atom, wire::event ev) { record(self, std::move(ev)); },
      [=](tick_atom, uint64_t) { flush(self); },
      [=](reported_atom, const peer_reply<wire::ack>& r) { on_reply(self, r.value); },
  };
}

}  // namespace

caf::actor spawn_event_recorder(caf::actor_system& sys, event_sink sink, event_recorder_config cfg,
                                std::shared_ptr<event_recorder_stats> stats) {
  return sys.spawn(event_recorder, std::move(sink), std::move(cfg), std::move(stats));
}

std::string container_field_path(const std::string& container) {
  return "spec.containers{" + container + "}";
}

wire::event pod_event(const wire::pod& pod, const std::string& field_path, const std::string& type,
                      const std::string& reason, const std::string& message) {
  wire::event e;
  e.involved_object.kind = "Pod";
  e.involved_object.api_version = "v1";
  e.involved_object.namespace_ = pod.metadata.namespace_;
  e.involved_object.name = pod.metadata.name;
  e.involved_object.uid = pod.metadata.uid;
  e.involved_object.field_path = field_path;
  e.type = type;
  e.reason = reason;
  e.message = message;
  return e;
}

std::string go_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms <= 0)
    return "0s";
  if (ms < 1000)
    return std::to_string(ms) + "ms";
  std::string out;
  if (ms >= 3600000) {
    out += std::to_string(ms / 3600000) + "h";
    ms %= 3600000;
  }
  if (!out.empty() || ms >= 60000) {
    out += std::to_string(ms / 60000) + "m";
    ms %= 60000;
  }
  out += std::to_string(ms / 1000);
  if (auto frac = ms % 1000; frac != 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(frac));
    std::string f = buf;
    while (f.back() == '0')
      f.pop_back();
    out += f;
  }
  return out + "s";
}

}  // namespace deckhand::kubelet

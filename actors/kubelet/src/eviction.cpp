#include "deckhand/kubelet/eviction.hpp"

#include <sys/statvfs.h>
#include <sys/sysinfo.h>

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <caf/all.hpp>

#include "deckhand/api/quantity.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/kubelet/admission.hpp"
#include "deckhand/kubelet/event_recorder.hpp"
#include "deckhand/kubelet/pod_status.hpp"
#include "deckhand/messages/codec.hpp"

namespace deckhand::kubelet {

namespace {

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// "Key:   123 kB" lines of /proc/meminfo, in bytes.
std::map<std::string, int64_t> parse_meminfo(const std::string& text) {
  std::map<std::string, int64_t> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    std::istringstream rest(line.substr(colon + 1));
    int64_t v = 0;
    std::string unit;
    if (!(rest >> v))
      continue;
    rest >> unit;
    out[line.substr(0, colon)] = unit == "kB" ? v * 1024 : v;
  }
  return out;
}

/// The value of `key` in a cgroup v1 memory.stat.
std::optional<int64_t> stat_value(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  int64_t v = 0;
  while (in >> k >> v)
    if (k == key)
      return v;
  return std::nullopt;
}

/// BestEffort 0, Burstable 1, Guaranteed 2: the lower goes first.
int qos_rank(const wire::pod_spec& spec) { return static_cast<int>(pod_qos(spec)); }

int64_t container_memory_request(const wire::container& c) {
  auto text = [&]() -> const std::string* {
    auto req = c.resources.requests.find("memory");
    if (req != c.resources.requests.end())
      return &req->second;
    auto lim = c.resources.limits.find("memory");
    return lim != c.resources.limits.end() ? &lim->second : nullptr;
  }();
  if (!text)
    return 0;
  auto q = api::quantity_value(*text);
  return q ? *q : 0;
}

std::string container_memory_request_text(const wire::container& c) {
  auto req = c.resources.requests.find("memory");
  if (req != c.resources.requests.end())
    return req->second;
  auto lim = c.resources.limits.find("memory");
  return lim != c.resources.limits.end() ? lim->second : "0";
}

}  // namespace

bool memory_from_meminfo(const std::string& meminfo, node_stats& out) {
  auto m = parse_meminfo(meminfo);
  if (!m.count("MemTotal"))
    return false;
  int64_t total = m["MemTotal"];
  int64_t usage = total - m["MemFree"];
  int64_t working_set = std::max<int64_t>(0, usage - m["Inactive(file)"]);
  out.memory_capacity = total;
  out.memory_available = std::max<int64_t>(0, total - working_set);
  return true;
}

node_stats read_node_stats(const std::filesystem::path& data_dir) {
  node_stats s;
  auto meminfo = read_file("/proc/meminfo");
  memory_from_meminfo(meminfo, s);
  // cgroup v1: the root memory cgroup, as cAdvisor reports it to the kubelet.
  auto usage_text = read_file("/sys/fs/cgroup/memory/memory.usage_in_bytes");
  auto stat_text = read_file("/sys/fs/cgroup/memory/memory.stat");
  if (!usage_text.empty() && s.memory_capacity > 0) {
    int64_t usage = std::strtoll(usage_text.c_str(), nullptr, 10);
    auto inactive = stat_value(stat_text, "total_inactive_file");
    int64_t working_set = std::max<int64_t>(0, usage - inactive.value_or(0));
    s.memory_available = std::max<int64_t>(0, s.memory_capacity - working_set);
  }
  struct statvfs vfs {};
  if (!data_dir.empty() && ::statvfs(data_dir.c_str(), &vfs) == 0) {
    auto frsize = static_cast<int64_t>(vfs.f_frsize);
    s.nodefs_capacity = static_cast<int64_t>(vfs.f_blocks) * frsize;
    s.nodefs_available = static_cast<int64_t>(vfs.f_bavail) * frsize;
    if (vfs.f_files > 0) {
      s.nodefs_inodes = static_cast<int64_t>(vfs.f_files);
      s.nodefs_inodes_free = static_cast<int64_t>(vfs.f_favail);
    }
  }
  auto pid_max = read_file("/proc/sys/kernel/pid_max");
  struct sysinfo si {};
  if (!pid_max.empty() && ::sysinfo(&si) == 0) {
    s.pid_capacity = std::strtoll(pid_max.c_str(), nullptr, 10);
    s.pid_available = std::max<int64_t>(0, s.pid_capacity - si.procs);
  }
  return s;
}

pod_usages usage_from_stats(const std::vector<wire::container_stats>& stats) {
  pod_usages out;
  for (const auto& c : stats) {
    if (c.uid.empty())
      continue;
    auto& u = out[c.uid];
    auto ws = static_cast<int64_t>(c.memory_working_set_bytes);
    u.memory_working_set += ws;
    u.containers[c.container] = ws;
  }
  return out;
}

std::vector<threshold_met> thresholds_met(const std::vector<eviction_threshold>& hard,
                                          const node_stats& stats) {
  std::vector<threshold_met> out;
  for (const auto& t : hard) {
    int64_t available = -1, capacity = -1;
    std::string resource, condition;
    if (t.signal == "memory.available") {
      available = stats.memory_available;
      capacity = stats.memory_capacity;
      resource = "memory";
      condition = "MemoryPressure";
    } else if (t.signal == "nodefs.available" || t.signal == "imagefs.available") {
      available = stats.nodefs_available;
      capacity = stats.nodefs_capacity;
      resource = "ephemeral-storage";
      condition = "DiskPressure";
    } else if (t.signal == "nodefs.inodesFree" || t.signal == "imagefs.inodesFree") {
      available = stats.nodefs_inodes_free;
      capacity = stats.nodefs_inodes;
      resource = "inodes";
      condition = "DiskPressure";
    } else if (t.signal == "pid.available") {
      available = stats.pid_available;
      capacity = stats.pid_capacity;
      resource = "pids";
      condition = "PIDPressure";
    }
    if (available < 0 || capacity < 0)
      continue;  // not observed: never met
    auto quantity = t.value_for(capacity);
    if (available < quantity)
      out.push_back({t, quantity, available, resource, condition});
  }
  return out;
}

std::vector<const wire::pod*> rank_for_eviction(const std::string& resource,
                                                std::vector<const wire::pod*> pods,
                                                const pod_usages& usage) {
  auto stats_of = [&](const wire::pod* p) -> const pod_usage* {
    auto it = usage.find(p->metadata.uid);
    return it == usage.end() ? nullptr : &it->second;
  };
  std::stable_sort(pods.begin(), pods.end(), [&](const wire::pod* a, const wire::pod* b) {
    if (resource == "memory") {
      const auto* sa = stats_of(a);
      const auto* sb = stats_of(b);
      // Pods without stats first (Kubernetes: "prioritize evicting the pod
      // for which no stats were found").
      if (!sa != !sb)
        return !sa;
      if (sa && sb) {
        auto ra = pod_requests(a->spec).memory;
        auto rb = pod_requests(b->spec).memory;
        bool ea = sa->memory_working_set > ra;
        bool eb = sb->memory_working_set > rb;
        if (ea != eb)
          return ea;
        // Priority: every pod has 0 here.
        auto da = sa->memory_working_set - ra;
        auto db = sb->memory_working_set - rb;
        if (da != db)
          return da > db;
      }
    }
    return qos_rank(a->spec) < qos_rank(b->spec);
  });
  return pods;
}

std::string eviction_message(const threshold_met& met, const wire::pod& pod,
                             const pod_usages& usage) {
  auto fmt_quantity = [&](int64_t v) {
    if (met.resource == "memory" || met.resource == "ephemeral-storage")
      return format_binary_si(v);
    return std::to_string(v);
  };
  // Kubernetes keeps the configured text for a quantity threshold.
  std::string quantity =
      met.threshold.percentage > 0 ? fmt_quantity(met.quantity) : met.threshold.text;
  std::string msg = "The node was low on resource: " + met.resource + ". ";
  msg += "Threshold quantity: " + quantity + ", available: " + fmt_quantity(met.available) + ". ";
  if (met.resource != "memory")
    return msg;
  auto it = usage.find(pod.metadata.uid);
  if (it == usage.end())
    return msg;
  for (const auto& [name, ws] : it->second.containers)
    for (const auto& c : pod.spec.containers)
      if (c.name == name && ws > container_memory_request(c))
        msg += "Container " + name + " was using " + format_binary_si(ws) + ", request is " +
               container_memory_request_text(c) + ", has larger consumption of memory. ";
  return msg;
}

void mark_evicted(wire::pod_status& status, const std::string& message, const std::string& now) {
  status.phase = "Failed";
  status.reason = "Evicted";
  status.message = message;
  for (const auto& c : status.conditions)
    if (c.type == "DisruptionTarget")
      return;
  wire::pod_condition c;
  c.type = "DisruptionTarget";
  c.status = "True";
  c.reason = "TerminationByKubelet";
  c.message = message;
  c.last_transition_time = now;
  status.conditions.push_back(std::move(c));
}

// -- the actor --------------------------------------------------------------------

namespace {

using host::tick_atom;
/// The runtime's container stats arrived (peer_reply.hpp).
using stats_atom = caf::atom_constant<caf::atom("kl_stats")>;

struct eviction_state {
  eviction_deps deps;
  eviction_config cfg;
  /// When each condition's threshold was last met.
  std::map<std::string, caf::actor_clock::time_point> last_observed;
  std::vector<std::string> pressure;
  /// Pods told to go; not chosen again while the sync loop still lists them.
  std::set<std::string> evicted;
  /// The round in progress: thresholds met and the active pods.
  std::vector<threshold_met> met;
  std::vector<wire::pod> pods;
  bool busy = false;
  static inline const char* name = "eviction_manager";
};

using eviction_actor = caf::stateful_actor<eviction_state>;

void next_round(eviction_actor* self) {
  self->state.busy = false;
  self->delayed_send(self, self->state.cfg.monitoring_period, tick_atom::value, uint64_t{0});
}

void update_pressure(eviction_actor* self) {
  auto& st = self->state;
  auto now = self->clock().now();
  for (const auto& m : st.met)
    st.last_observed[m.condition] = now;
  std::vector<std::string> pressure;
  for (const auto& [cond, at] : st.last_observed)
    if (now - at < st.cfg.pressure_transition_period || now == at)
      pressure.push_back(cond);
  std::sort(pressure.begin(), pressure.end());
  if (pressure == st.pressure)
    return;
  st.pressure = pressure;
  for (const auto& l : st.deps.pressure_listeners)
    self->send(l, pressure_atom::value, pressure);
}

/// Picks and evicts one pod with the usage known.
void evict_one(eviction_actor* self, const pod_usages& usage) {
  auto& st = self->state;
  // The first threshold met decides the resource to reclaim (Kubernetes
  // sorts memory first).
  auto met = st.met.front();
  for (const auto& m : st.met)
    if (m.resource == "memory") {
      met = m;
      break;
    }
  std::vector<const wire::pod*> candidates;
  std::set<std::string> listed;
  for (const auto& p : st.pods) {
    listed.insert(p.metadata.uid);
    if (!st.evicted.count(p.metadata.uid))
      candidates.push_back(&p);
  }
  std::erase_if(st.evicted, [&](const std::string& uid) { return !listed.count(uid); });
  auto ranked = rank_for_eviction(met.resource, candidates, usage);
  if (ranked.empty()) {
    log::get()->warn("msg=\"eviction threshold met, but no pod to evict\" signal={}",
                     met.threshold.signal);
    return;
  }
  const auto& victim = *ranked.front();
  auto message = eviction_message(met, victim, usage);
  log::get()->warn("msg=\"evicting pod\" pod={}/{} uid={} signal={} message=\"{}\"",
                   victim.metadata.namespace_, victim.metadata.name, victim.metadata.uid,
                   met.threshold.signal, message);
  st.evicted.insert(victim.metadata.uid);
  if (st.deps.recorder)
    self->send(st.deps.recorder, record_atom::value,
               pod_event(victim, "", "Warning", "Evicted", message));
  if (st.deps.evict_target)
    self->send(st.deps.evict_target, evict_atom::value, victim.metadata.uid, message);
}

void round(eviction_actor* self) {
  auto& st = self->state;
  if (st.busy)
    return;
  auto stats = st.deps.read_stats ? st.deps.read_stats() : node_stats{};
  st.met = thresholds_met(st.cfg.hard, stats);
  update_pressure(self);
  if (st.met.empty() || !st.deps.pod_source) {
    next_round(self);
    return;
  }
  st.busy = true;
  self->request(st.deps.pod_source, st.cfg.request_deadline, pods_atom::value)
      .then(
          [=](std::vector<wire::pod>& pods) {
            auto& s = self->state;
            s.pods = std::move(pods);
            if (!s.deps.runtime) {
              evict_one(self, {});
              next_round(self);
              return;
            }
            s.deps.runtime->container_stats(s.cfg.request_deadline, deliver<stats_atom>(self));
          },
          [=](caf::error& err) {
            log::get()->warn("msg=\"eviction manager: no pod list\" error=\"{}\"",
                             self->system().render(err));
            next_round(self);
          });
}

caf::behavior eviction_manager(eviction_actor* self, eviction_deps deps, eviction_config cfg) {
  self->state.deps = std::move(deps);
  self->state.cfg = std::move(cfg);
  // The first observation after one period: pods known at start are admitted
  // before pressure is known, as in Kubernetes, where the eviction manager
  // waits for its first stats.
  self->delayed_send(self, self->state.cfg.monitoring_period, tick_atom::value, uint64_t{0});
  return {
      [=](tick_atom, uint64_t) { round(self); },
      [=](stats_atom, const peer_reply<wire::container_stats_reply>& r) {
        const auto& rep = r.value;
        pod_usages usage;
        if (rep)
          usage = usage_from_stats(rep->stats);
        else
          log::get()->warn("msg=\"eviction manager: no container stats\" error=\"{}\"",
                           rep.err().message);
        evict_one(self, usage);
        next_round(self);
      },
  };
}

}  // namespace

caf::actor spawn_eviction_manager(caf::actor_system& sys, eviction_deps deps, eviction_config cfg) {
  return sys.spawn(eviction_manager, std::move(deps), std::move(cfg));
}

}  // namespace deckhand::kubelet

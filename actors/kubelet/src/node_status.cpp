#include "deckhand/kubelet/node_status.hpp"

#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <thread>

#include <caf/all.hpp>

#include "deckhand/api/quantity.hpp"
#include "deckhand/api/time.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet {

namespace {

/// Replies of the API server (peer_reply.hpp).
using heartbeat_atom = caf::atom_constant<caf::atom("kl_nodehb")>;
using lease_atom = caf::atom_constant<caf::atom("kl_lease")>;
using host::tick_atom;

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t");
  auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string{} : s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text) {
    if (c == sep) {
      out.push_back(trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  out.push_back(trim(cur));
  return out;
}

std::string read_os_image() {
  std::ifstream in("/etc/os-release");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      auto v = line.substr(12);
      if (v.size() >= 2 && v.front() == '"')
        v = v.substr(1, v.size() - 2);
      return v;
    }
  return "Linux";
}

std::string read_machine_id() {
  std::ifstream in("/etc/machine-id");
  std::string id;
  std::getline(in, id);
  return trim(id);
}

const eviction_threshold* find_threshold(const std::vector<eviction_threshold>& ts,
                                         const std::string& signal) {
  for (const auto& t : ts)
    if (t.signal == signal)
      return &t;
  return nullptr;
}

}  // namespace

int64_t eviction_threshold::value_for(int64_t capacity) const {
  if (percentage > 0)
    return static_cast<int64_t>(static_cast<double>(capacity) * percentage);
  return quantity;
}

result<std::vector<eviction_threshold>> parse_eviction_thresholds(const std::string& text) {
  std::vector<eviction_threshold> out;
  if (trim(text).empty())
    return out;
  static const std::vector<std::string> known = {"memory.available",   "nodefs.available",
                                                 "nodefs.inodesFree",  "imagefs.available",
                                                 "imagefs.inodesFree", "pid.available"};
  for (const auto& item : split(text, ',')) {
    auto lt = item.find('<');
    if (lt == std::string::npos)
      return error{errc::invalid, "eviction threshold \"" + item +
                                      "\": expected SIGNAL<QUANTITY (only < is supported)"};
    eviction_threshold t;
    t.signal = trim(item.substr(0, lt));
    t.text = trim(item.substr(lt + 1));
    if (std::find(known.begin(), known.end(), t.signal) == known.end())
      return error{errc::invalid,
                   "eviction threshold \"" + item + "\": unknown signal \"" + t.signal + "\""};
    if (find_threshold(out, t.signal))
      return error{errc::invalid, "eviction threshold: signal \"" + t.signal + "\" given twice"};
    if (!t.text.empty() && t.text.back() == '%') {
      char* end = nullptr;
      auto num = t.text.substr(0, t.text.size() - 1);
      double p = std::strtod(num.c_str(), &end);
      if (num.empty() || end != num.c_str() + num.size() || !(p > 0) || p > 100)
        return error{errc::invalid,
                     "eviction threshold \"" + item + "\": percentage must be in (0%, 100%]"};
      t.percentage = p / 100.0;
    } else {
      auto q = api::quantity_value(t.text);
      if (!q)
        return error{errc::invalid, "eviction threshold \"" + item + "\": " + q.err().message};
      if (*q < 0)
        return error{errc::invalid, "eviction threshold \"" + item + "\": must not be negative"};
      t.quantity = *q;
    }
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<eviction_threshold> default_eviction_thresholds() {
  return *parse_eviction_thresholds("memory.available<100Mi,nodefs.available<10%");
}

result<resource_amounts> parse_reserved(const std::string& text) {
  resource_amounts r;
  if (trim(text).empty())
    return r;
  for (const auto& item : split(text, ',')) {
    auto eq = item.find('=');
    if (eq == std::string::npos)
      return error{errc::invalid, "reservation \"" + item + "\": expected NAME=QUANTITY"};
    auto name = trim(item.substr(0, eq));
    auto value = trim(item.substr(eq + 1));
    if (name == "cpu") {
      auto q = api::quantity_milli_value(value);
      if (!q || *q < 0)
        return error{errc::invalid, "reservation \"" + item + "\": invalid quantity"};
      r.cpu_milli = *q;
    } else if (name == "memory" || name == "ephemeral-storage") {
      auto q = api::quantity_value(value);
      if (!q || *q < 0)
        return error{errc::invalid, "reservation \"" + item + "\": invalid quantity"};
      (name == "memory" ? r.memory : r.ephemeral_storage) = *q;
    } else if (name == "pid") {
      // Accepted like Kubernetes; pids are not reported as a node resource.
    } else {
      return error{errc::invalid, "reservation \"" + item + "\": unknown resource \"" + name +
                                      "\" (cpu, memory, ephemeral-storage, pid)"};
    }
  }
  return r;
}

resource_amounts node_capacity(const node_status_config& cfg,
                               const std::filesystem::path& data_dir) {
  resource_amounts cap;
  if (cfg.capacity_override) {
    cap = *cfg.capacity_override;
  } else {
    cap.cpu_milli = static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency())) * 1000;
    struct sysinfo si {};
    if (::sysinfo(&si) == 0)
      cap.memory = static_cast<int64_t>(si.totalram) * si.mem_unit / 1024 * 1024;
    struct statvfs vfs {};
    if (!data_dir.empty() && ::statvfs(data_dir.c_str(), &vfs) == 0)
      cap.ephemeral_storage =
          static_cast<int64_t>(vfs.f_blocks) * static_cast<int64_t>(vfs.f_frsize) / 1024 * 1024;
  }
  cap.pods = cfg.max_pods;
  return cap;
}

resource_amounts node_allocatable(const node_status_config& cfg, const resource_amounts& capacity) {
  resource_amounts a = capacity;
  a.cpu_milli -= cfg.kube_reserved.cpu_milli + cfg.system_reserved.cpu_milli;
  a.memory -= cfg.kube_reserved.memory + cfg.system_reserved.memory;
  a.ephemeral_storage -=
      cfg.kube_reserved.ephemeral_storage + cfg.system_reserved.ephemeral_storage;
  if (auto* t = find_threshold(cfg.eviction_hard, "memory.available"))
    a.memory -= t->value_for(capacity.memory);
  if (auto* t = find_threshold(cfg.eviction_hard, "nodefs.available"))
    a.ephemeral_storage -= t->value_for(capacity.ephemeral_storage);
  a.cpu_milli = std::max<int64_t>(a.cpu_milli, 0);
  a.memory = std::max<int64_t>(a.memory, 0);
  a.ephemeral_storage = std::max<int64_t>(a.ephemeral_storage, 0);
  return a;
}

std::string format_cpu(int64_t milli) {
  if (milli % 1000 == 0)
    return std::to_string(milli / 1000);
  return std::to_string(milli) + "m";
}

std::string format_bytes(int64_t bytes) {
  if (bytes != 0 && bytes % 1024 == 0)
    return std::to_string(bytes / 1024) + "Ki";
  return std::to_string(bytes);
}

std::string format_binary_si(int64_t bytes) {
  static const char* suffixes[] = {"Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
  if (bytes == 0)
    return "0";
  int k = -1;
  int64_t v = bytes;
  while (k < 5 && v % 1024 == 0) {
    v /= 1024;
    ++k;
  }
  return k < 0 ? std::to_string(bytes) : std::to_string(v) + suffixes[k];
}

std::string format_time(std::chrono::system_clock::time_point t) { return api::format_rfc3339(t); }

wire::node make_node(const node_identity& id, const resource_amounts& capacity,
                     const resource_amounts& allocatable) {
  wire::node n;
  n.metadata.name = id.node_name;
  n.metadata.labels = {{"kubernetes.io/hostname", id.node_name},
                       {"kubernetes.io/os", "linux"},
                       {"kubernetes.io/arch", "amd64"}};
  auto resources = [](const resource_amounts& r) {
    wire::string_map m;
    m["cpu"] = format_cpu(r.cpu_milli);
    m["memory"] = format_bytes(r.memory);
    m["ephemeral-storage"] = format_bytes(r.ephemeral_storage);
    m["pods"] = std::to_string(r.pods);
    return m;
  };
  n.status.capacity = resources(capacity);
  n.status.allocatable = resources(allocatable);
  if (!id.host_ip.empty())
    n.status.addresses.push_back({"InternalIP", id.host_ip});
  n.status.addresses.push_back({"Hostname", id.node_name});
  static const std::string kernel = [] {
    struct utsname u {};
    ::uname(&u);
    return std::string(u.release);
  }();
  static const std::string os_image = read_os_image();
  static const std::string machine_id = read_machine_id();
  n.status.node_info.machine_id = machine_id;
  n.status.node_info.kernel_version = kernel;
  n.status.node_info.os_image = os_image;
  n.status.node_info.architecture = "amd64";
  n.status.node_info.kubelet_version = "v1.32.0-deckhand";
  n.status.node_info.container_runtime_version = "deckhand://0.1.0";
  return n;
}

void set_node_conditions(wire::node_status& status,
                         const std::vector<wire::node_condition>& previous,
                         const std::vector<std::string>& pressure, const std::string& now) {
  struct def {
    const char* type;
    bool is_true;
    const char* reason_true;
    const char* message_true;
    const char* reason_false;
    const char* message_false;
  };
  auto has = [&](const char* t) {
    return std::find(pressure.begin(), pressure.end(), t) != pressure.end();
  };
  // Kubernetes' wording (pkg/kubelet/nodestatus/setters.go).
  const def defs[] = {
      {"MemoryPressure", has("MemoryPressure"), "KubeletHasInsufficientMemory",
       "kubelet has insufficient memory available", "KubeletHasSufficientMemory",
       "kubelet has sufficient memory available"},
      {"DiskPressure", has("DiskPressure"), "KubeletHasDiskPressure", "kubelet has disk pressure",
       "KubeletHasNoDiskPressure", "kubelet has no disk pressure"},
      {"PIDPressure", has("PIDPressure"), "KubeletHasInsufficientPID",
       "kubelet has insufficient PID available", "KubeletHasSufficientPID",
       "kubelet has sufficient PID available"},
      {"Ready", true, "KubeletReady", "kubelet is posting ready status", "KubeletNotReady",
       "kubelet is not ready"},
  };
  status.conditions.clear();
  for (const auto& d : defs) {
    wire::node_condition c;
    c.type = d.type;
    c.status = d.is_true ? "True" : "False";
    c.reason = d.is_true ? d.reason_true : d.reason_false;
    c.message = d.is_true ? d.message_true : d.message_false;
    c.last_heartbeat_time = now;
    c.last_transition_time = now;
    for (const auto& old : previous)
      if (old.type == c.type && old.status == c.status && !old.last_transition_time.empty())
        c.last_transition_time = old.last_transition_time;
    status.conditions.push_back(std::move(c));
  }
}

bool node_status_changed(const wire::node_status& a, const wire::node_status& b) {
  auto strip = [](wire::node_status s) {
    for (auto& c : s.conditions)
      c.last_heartbeat_time.clear();
    return wire::encode_body(s);
  };
  return strip(a) != strip(b);
}

// -- the actor --------------------------------------------------------------------

namespace {

constexpr uint64_t status_timer = 0;
constexpr uint64_t lease_timer = 1;

struct node_actor_state {
  node_status_sink sink;
  node_identity id;
  node_status_config cfg;
  std::filesystem::path data_dir;
  std::chrono::milliseconds period{10000};
  std::vector<std::string> pressure;
  /// The status last computed (transition times come from it).
  std::optional<wire::node_status> current;
  /// The status the API server last acknowledged, and when.
  std::optional<wire::node_status> sent;
  /// The status in flight.
  std::optional<wire::node_status> pending;
  caf::actor_clock::time_point sent_at{};
  bool status_inflight = false;
  bool registered = false;
  bool lease_supported = true;
  bool lease_inflight = false;
  static inline const char* name = "node_status";
};

using node_actor = caf::stateful_actor<node_actor_state>;

std::string now_text(const node_actor_state& st) {
  return format_time(st.cfg.wall_clock ? st.cfg.wall_clock() : std::chrono::system_clock::now());
}

/// Computes the node and sends it if it changed, if the report frequency is
/// due, if the node is not registered yet, or if there is no lease to keep
/// it alive.
void sync_status(node_actor* self) {
  auto& st = self->state;
  auto cap = node_capacity(st.cfg, st.data_dir);
  auto node = make_node(st.id, cap, node_allocatable(st.cfg, cap));
  set_node_conditions(node.status,
                      st.current ? st.current->conditions : std::vector<wire::node_condition>{},
                      st.pressure, now_text(st));
  st.current = node.status;
  if (st.status_inflight)
    return;  // its reply syncs again
  auto now = self->clock().now();
  bool due = !st.registered || !st.sent || !st.lease_supported ||
             node_status_changed(*st.sent, node.status) ||
             now - st.sent_at >= st.cfg.status_report_frequency;
  if (!due)
    return;
  st.status_inflight = true;
  st.pending = node.status;
  wire::node_heartbeat hb;
  hb.node_ = std::move(node);
  st.sink.api->node_heartbeat(hb, st.sink.request_deadline, deliver<heartbeat_atom>(self));
}

bool unsupported(const error& e) {
  return e.code == errc::unsupported ||
         (e.code == errc::invalid && e.message.find("not served") != std::string::npos);
}

caf::behavior node_status_actor(node_actor* self, node_status_sink sink, node_identity id,
                                node_status_config cfg, std::filesystem::path data_dir,
                                std::chrono::milliseconds period) {
  auto& st = self->state;
  st.sink = std::move(sink);
  st.id = std::move(id);
  st.cfg = std::move(cfg);
  st.data_dir = std::move(data_dir);
  st.period = period;
  self->send(self, tick_atom::value, status_timer);
  self->send(self, tick_atom::value, lease_timer);
  return {
      [=](tick_atom, uint64_t which) {
        auto& s = self->state;
        if (which == status_timer) {
          sync_status(self);
          self->delayed_send(self, s.period, tick_atom::value, status_timer);
          return;
        }
        if (!s.lease_supported || s.lease_inflight)
          return;
        s.lease_inflight = true;
        wire::lease_renew req;
        req.node_name = s.id.node_name;
        req.holder_identity = s.id.node_name;
        req.lease_duration_seconds = s.cfg.lease_duration_seconds;
        s.sink.api->renew_lease(req, s.sink.request_deadline, deliver<lease_atom>(self));
      },
      [=](host::sync_atom) { sync_status(self); },
      [=](pressure_atom, std::vector<std::string> pressure) {
        auto& s = self->state;
        std::sort(pressure.begin(), pressure.end());
        if (pressure == s.pressure)
          return;
        std::string joined;
        for (const auto& c : pressure)
          joined += (joined.empty() ? "" : ",") + c;
        log::get()->info("msg=\"node pressure changed\" node={} conditions=\"{}\"", s.id.node_name,
                         joined);
        s.pressure = std::move(pressure);
        sync_status(self);
      },
      [=](lease_atom, const peer_reply<wire::ack>& r) {
        auto& s = self->state;
        const auto& ack = r.value;
        s.lease_inflight = false;
        auto retry = std::min(s.cfg.lease_renew_period, std::chrono::milliseconds(1000));
        if (ack) {
          self->delayed_send(self, s.cfg.lease_renew_period, tick_atom::value, lease_timer);
        } else if (unsupported(ack.err())) {
          log::get()->info("msg=\"API server does not serve leases; node status keeps the "
                           "node alive\" error=\"{}\"",
                           ack.err().message);
          s.lease_supported = false;
        } else {
          log::get()->warn("msg=\"lease renewal failed\" error=\"{}\"", ack.err().message);
          self->delayed_send(self, retry, tick_atom::value, lease_timer);
        }
      },
      [=](heartbeat_atom, const peer_reply<wire::ack>& r) {
        auto& s = self->state;
        const auto& ack = r.value;
        s.status_inflight = false;
        if (ack) {
          if (!s.registered)
            log::get()->info("msg=\"node registered\" node={}", s.id.node_name);
          s.registered = true;
          s.sent = s.pending;
          s.sent_at = self->clock().now();
          // A change (pressure) that arrived while this was in flight.
          if (s.current && node_status_changed(*s.sent, *s.current))
            sync_status(self);
        } else {
          log::get()->warn("msg=\"node status update failed\" error=\"{}\"", ack.err().message);
          self->delayed_send(self, std::min(s.period, std::chrono::milliseconds(1000)),
                             host::sync_atom::value);
        }
      },
  };
}

}  // namespace

caf::actor spawn_node_status(caf::actor_system& sys, node_status_sink sink, node_identity id,
                             node_status_config cfg, std::filesystem::path data_dir,
                             std::chrono::milliseconds status_period) {
  return sys.spawn(node_status_actor, std::move(sink), std::move(id), std::move(cfg),
                   std::move(data_dir), status_period);
}

}  // namespace deckhand::kubelet

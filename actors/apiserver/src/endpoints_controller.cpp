#include "deckhand/apiserver/endpoints_controller.hpp"

#include <algorithm>
#include <tuple>

#include "deckhand/common/log.hpp"

namespace deckhand::apiserver {

using nlohmann::json;

namespace {

constexpr const char* service_name_label = "kubernetes.io/service-name";
constexpr const char* managed_by_label = "endpointslice.kubernetes.io/managed-by";
constexpr const char* slice_controller = "endpointslice-controller.k8s.io";
constexpr const char* mirror_controller = "endpointslicemirroring-controller.k8s.io";
constexpr const char* skip_mirror_label = "endpointslice.kubernetes.io/skip-mirror";
constexpr const char* headless_label = "service.kubernetes.io/headless";

std::string str(const json& obj, const char* key) {
  if (obj.is_object() && obj.contains(key) && obj[key].is_string())
    return obj[key].get<std::string>();
  return {};
}

const json& member(const json& obj, const char* key) {
  static const json null;
  if (obj.is_object() && obj.contains(key))
    return obj[key];
  return null;
}

json labels_of(const json& obj) {
  const json& l = member(member(obj, "metadata"), "labels");
  return l.is_object() ? l : json::object();
}

/// A Service's selector, or null if it has none (an empty one counts as none,
/// as Kubernetes' omitempty encoding makes it).
json selector_of(const json& svc) {
  const json& sel = member(member(svc, "spec"), "selector");
  return sel.is_object() && !sel.empty() ? sel : json();
}

bool selects(const json& selector, const json& labels) {
  if (!selector.is_object() || selector.empty() || !labels.is_object())
    return false;
  for (const auto& [k, v] : selector.items())
    if (!labels.contains(k) || labels[k] != v)
      return false;
  return true;
}

bool pod_ready(const json& pod) {
  for (const auto& c : member(member(pod, "status"), "conditions"))
    if (str(c, "type") == "Ready")
      return str(c, "status") == "True";
  return false;
}

/// What of a pod the controller looks at; a change elsewhere (most status
/// updates) needs no sync.
json endpoint_view(const json& pod) {
  if (!pod.is_object())
    return nullptr;
  const json& md = member(pod, "metadata");
  const json& spec = member(pod, "spec");
  const json& status = member(pod, "status");
  json ports = json::array();
  for (const auto& c : member(spec, "containers"))
    ports.push_back(member(c, "ports"));
  return {labels_of(pod),
          member(md, "deletionTimestamp"),
          member(md, "uid"),
          member(spec, "nodeName"),
          member(spec, "hostname"),
          member(spec, "subdomain"),
          ports,
          member(status, "podIP"),
          member(status, "phase"),
          pod_ready(pod)};
}

/// A Service port resolved for one pod.
struct resolved_port {
  std::string name;
  std::string protocol;
  int port = 0;
  std::string app_protocol;
  auto tie() const { return std::tie(name, protocol, port, app_protocol); }
  bool operator<(const resolved_port& o) const { return tie() < o.tie(); }
  bool operator==(const resolved_port& o) const { return tie() == o.tie(); }
};

/// The container port a Service port's targetPort means for `pod`, as
/// Kubernetes' podutil.FindPort: a number as is, a name looked up in the
/// containers' ports with the same protocol.
std::optional<int> find_port(const json& pod, const json& svc_port) {
  const json& target = member(svc_port, "targetPort");
  if (target.is_number_integer())
    return target.get<int>();
  if (target.is_null()) {
    const json& p = member(svc_port, "port");
    return p.is_number_integer() ? std::optional<int>(p.get<int>()) : std::nullopt;
  }
  if (!target.is_string())
    return std::nullopt;
  std::string name = target.get<std::string>();
  std::string protocol = str(svc_port, "protocol");
  if (protocol.empty())
    protocol = "TCP";
  for (const auto& c : member(member(pod, "spec"), "containers"))
    for (const auto& cp : member(c, "ports")) {
      std::string cp_protocol = str(cp, "protocol");
      if (cp_protocol.empty())
        cp_protocol = "TCP";
      if (str(cp, "name") == name && cp_protocol == protocol &&
          member(cp, "containerPort").is_number_integer())
        return member(cp, "containerPort").get<int>();
    }
  return std::nullopt;
}

/// One pod as an endpoint of one Service.
struct pod_endpoint {
  std::string ip;
  std::string node;
  std::string hostname;
  json target_ref;
  bool ready = false;
  bool terminating = false;
  std::vector<resolved_port> ports;
};

json ports_json(const std::vector<resolved_port>& ports, bool slice) {
  json out = json::array();
  for (const auto& p : ports) {
    json j = {{"port", p.port}, {"protocol", p.protocol}};
    // Endpoints omit an empty name; slices spell it out, as Kubernetes does.
    if (slice || !p.name.empty())
      j["name"] = p.name;
    if (!p.app_protocol.empty())
      j["appProtocol"] = p.app_protocol;
    out.push_back(std::move(j));
  }
  return out;
}

/// The endpoints a Service has among `pods`, sorted by IP.
std::vector<pod_endpoint> service_endpoints(const json& svc, const std::vector<json>& pods) {
  const json& spec = member(svc, "spec");
  json selector = selector_of(svc);
  std::string svc_name = str(member(svc, "metadata"), "name");
  bool publish_not_ready = member(spec, "publishNotReadyAddresses") == true;
  const json& svc_ports = member(spec, "ports");
  std::vector<pod_endpoint> out;
  for (const auto& pod : pods) {
    const json& md = member(pod, "metadata");
    const json& pspec = member(pod, "spec");
    const json& status = member(pod, "status");
    if (!selects(selector, labels_of(pod)))
      continue;
    std::string phase = str(status, "phase");
    if (str(status, "podIP").empty() || str(pspec, "nodeName").empty() || phase == "Succeeded" ||
        phase == "Failed")
      continue;
    pod_endpoint ep;
    ep.ip = str(status, "podIP");
    ep.node = str(pspec, "nodeName");
    if (!str(pspec, "hostname").empty() && str(pspec, "subdomain") == svc_name)
      ep.hostname = str(pspec, "hostname");
    ep.target_ref = {{"kind", "Pod"},
                     {"namespace", str(md, "namespace")},
                     {"name", str(md, "name")},
                     {"uid", str(md, "uid")}};
    ep.terminating = md.contains("deletionTimestamp") && !md["deletionTimestamp"].is_null();
    ep.ready = publish_not_ready || pod_ready(pod);
    if (svc_ports.is_array() && !svc_ports.empty()) {
      for (const auto& sp : svc_ports) {
        auto port = find_port(pod, sp);
        if (!port)
          continue;
        std::string protocol = str(sp, "protocol");
        ep.ports.push_back(
            {str(sp, "name"), protocol.empty() ? "TCP" : protocol, *port, str(sp, "appProtocol")});
      }
      if (ep.ports.empty())
        continue;
      std::sort(ep.ports.begin(), ep.ports.end());
    }
    out.push_back(std::move(ep));
  }
  std::sort(out.begin(), out.end(), [](const pod_endpoint& a, const pod_endpoint& b) {
    return std::tie(a.ip, a.target_ref["name"]) < std::tie(b.ip, b.target_ref["name"]);
  });
  return out;
}

json address_json(const pod_endpoint& ep) {
  json a = {{"ip", ep.ip}, {"nodeName", ep.node}, {"targetRef", ep.target_ref}};
  if (!ep.hostname.empty())
    a["hostname"] = ep.hostname;
  return a;
}

/// Endpoints subsets: one per distinct set of resolved ports.
json endpoints_subsets(const std::vector<pod_endpoint>& eps, bool publish_not_ready) {
  std::map<std::vector<resolved_port>, std::pair<json, json>> groups;
  for (const auto& ep : eps) {
    // Endpoints (unlike slices) leave terminating pods out.
    if (ep.terminating && !publish_not_ready)
      continue;
    auto& g = groups[ep.ports];
    if (g.first.is_null()) {
      g.first = json::array();
      g.second = json::array();
    }
    (ep.ready ? g.first : g.second).push_back(address_json(ep));
  }
  json subsets = json::array();
  for (auto& [ports, lists] : groups) {
    json ss = json::object();
    if (!lists.first.empty())
      ss["addresses"] = lists.first;
    if (!lists.second.empty())
      ss["notReadyAddresses"] = lists.second;
    if (!ports.empty())
      ss["ports"] = ports_json(ports, false);
    subsets.push_back(std::move(ss));
  }
  return subsets;
}

json owner_reference(const json& svc) {
  const json& md = member(svc, "metadata");
  return json::array({{{"apiVersion", "v1"},
                       {"kind", "Service"},
                       {"name", str(md, "name")},
                       {"uid", str(md, "uid")},
                       {"controller", true},
                       {"blockOwnerDeletion", true}}});
}

/// The content of one slice: its ports and endpoints.
struct slice_content {
  json ports = json::array();
  json endpoints = json::array();
};

std::vector<slice_content> chunk(std::map<json, json> groups, std::size_t max_per_slice) {
  std::vector<slice_content> out;
  for (auto& [ports, endpoints] : groups) {
    for (std::size_t i = 0; i < endpoints.size(); i += max_per_slice) {
      slice_content c;
      c.ports = ports;
      for (std::size_t j = i; j < std::min(endpoints.size(), i + max_per_slice); ++j)
        c.endpoints.push_back(endpoints[j]);
      out.push_back(std::move(c));
    }
  }
  return out;
}

std::vector<slice_content> desired_slices(const std::vector<pod_endpoint>& eps,
                                          std::size_t max_per_slice) {
  std::map<json, json> groups;
  for (const auto& ep : eps) {
    json e = {{"addresses", json::array({ep.ip})},
              {"conditions",
               {{"ready", ep.ready && !ep.terminating},
                {"serving", ep.ready},
                {"terminating", ep.terminating}}},
              {"nodeName", ep.node},
              {"targetRef", ep.target_ref}};
    if (!ep.hostname.empty())
      e["hostname"] = ep.hostname;
    auto [it, fresh] = groups.try_emplace(ports_json(ep.ports, true), json::array());
    it->second.push_back(std::move(e));
  }
  return chunk(std::move(groups), max_per_slice);
}

/// Slices mirroring a user's Endpoints: one group per subset's ports.
std::vector<slice_content> mirrored_slices(const json& endpoints, std::size_t max_per_slice) {
  std::map<json, json> groups;
  for (const auto& ss : member(endpoints, "subsets")) {
    json ports = json::array();
    for (const auto& p : member(ss, "ports")) {
      json j = {{"name", str(p, "name")},
                {"port", member(p, "port")},
                {"protocol", str(p, "protocol").empty() ? "TCP" : str(p, "protocol")}};
      if (!str(p, "appProtocol").empty())
        j["appProtocol"] = str(p, "appProtocol");
      ports.push_back(std::move(j));
    }
    auto [it, fresh] = groups.try_emplace(ports, json::array());
    for (const auto& [list, ready] : {std::pair{"addresses", true}, {"notReadyAddresses", false}})
      for (const auto& a : member(ss, list)) {
        json e = {{"addresses", json::array({str(a, "ip")})}, {"conditions", {{"ready", ready}}}};
        for (const char* f : {"hostname", "nodeName"})
          if (!str(a, f).empty())
            e[f] = str(a, f);
        if (member(a, "targetRef").is_object())
          e["targetRef"] = a["targetRef"];
        it->second.push_back(std::move(e));
      }
  }
  return chunk(std::move(groups), max_per_slice);
}

bool is_ipv6(const std::string& ip) { return ip.find(':') != std::string::npos; }

}  // namespace

endpoints_controller::endpoints_controller(registry& reg, endpoints_controller_options opts)
    : reg_(reg), opts_(opts) {
  if (opts_.max_endpoints_per_slice == 0)
    opts_.max_endpoints_per_slice = 100;
}

endpoints_controller::~endpoints_controller() { stop(); }

void endpoints_controller::attach() {
  {
    std::lock_guard lock(mu_);
    if (attached_)
      return;
    attached_ = true;
  }
  subscription_ = reg_.subscribe([this](const watch_event& ev) { on_event(ev); }).id;
  // Everything once: what changed while no controller ran (or was lost in a
  // crash between a Service write and its endpoints) is found this way.
  if (auto l = reg_.list("services", ""))
    for (const auto& s : l->items)
      enqueue({str(s["metadata"], "namespace"), str(s["metadata"], "name")});
  if (auto l = reg_.list("endpoints", ""))
    for (const auto& e : l->items)
      enqueue({str(e["metadata"], "namespace"), str(e["metadata"], "name")});
  if (auto l = reg_.list("endpointslices", ""))
    for (const auto& s : l->items) {
      json labels = labels_of(s);
      std::string manager = str(labels, managed_by_label);
      if ((manager == slice_controller || manager == mirror_controller) &&
          !str(labels, service_name_label).empty())
        enqueue({str(s["metadata"], "namespace"), str(labels, service_name_label)});
    }
}

void endpoints_controller::start() {
  attach();
  std::lock_guard lock(mu_);
  if (worker_.joinable())
    return;
  stopping_ = false;
  worker_ = std::thread([this] { run(); });
}

void endpoints_controller::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable())
    worker_.join();
  std::uint64_t id = 0;
  {
    std::lock_guard lock(mu_);
    if (attached_)
      id = subscription_;
    attached_ = false;
  }
  if (id)
    reg_.unsubscribe(id);
}

std::size_t endpoints_controller::queued() const {
  std::lock_guard lock(mu_);
  return dirty_.size() + pod_changes_.size();
}

void endpoints_controller::enqueue(const service_key& key, bool service_deleted) {
  if (key.second.empty())
    return;
  {
    std::lock_guard lock(mu_);
    auto [it, fresh] = dirty_.try_emplace(key, service_deleted);
    if (!fresh)
      it->second = it->second || service_deleted;
  }
  cv_.notify_all();
}

void endpoints_controller::on_event(const watch_event& ev) {
  // Called under the registry's write lock: only queue work here.
  const json& obj = ev.object;
  std::string ns = str(member(obj, "metadata"), "namespace");
  if (ev.kind == "Service") {
    enqueue({ns, str(obj["metadata"], "name")}, ev.type == watch_event_type::deleted);
  } else if (ev.kind == "Endpoints") {
    enqueue({ns, str(obj["metadata"], "name")});
  } else if (ev.kind == "EndpointSlice") {
    for (const json* o : {&ev.object, &ev.previous}) {
      json labels = labels_of(*o);
      std::string manager = str(labels, managed_by_label);
      if (manager == slice_controller || manager == mirror_controller)
        enqueue({ns, str(labels, service_name_label)});
    }
  } else if (ev.kind == "Pod") {
    if (ev.type == watch_event_type::modified &&
        endpoint_view(ev.object) == endpoint_view(ev.previous))
      return;
    {
      std::lock_guard lock(mu_);
      pod_changes_.push_back(
          {ns, ev.previous.is_null() ? json() : labels_of(ev.previous), labels_of(ev.object)});
    }
    cv_.notify_all();
  }
}

bool endpoints_controller::take(std::map<service_key, bool>& keys) {
  std::vector<pod_change> changes;
  {
    std::lock_guard lock(mu_);
    keys.swap(dirty_);
    dirty_.clear();
    changes.swap(pod_changes_);
  }
  if (!changes.empty()) {
    // Which Services select the changed pods (before or after the change).
    std::map<std::string, std::vector<json>> services;
    for (const auto& c : changes) {
      auto it = services.find(c.ns);
      if (it == services.end()) {
        auto l = reg_.list("services", c.ns);
        it = services.emplace(c.ns, l ? std::move(l->items) : std::vector<json>{}).first;
      }
      for (const auto& svc : it->second) {
        json sel = selector_of(svc);
        if (selects(sel, c.labels_before) || selects(sel, c.labels_after))
          keys.try_emplace({c.ns, str(svc["metadata"], "name")}, false);
      }
    }
  }
  return !keys.empty();
}

endpoints_sync_stats endpoints_controller::sync_round() {
  endpoints_sync_stats stats;
  std::map<service_key, bool> keys;
  if (!take(keys))
    return stats;
  for (const auto& [key, deleted] : keys) {
    ++stats.services;
    auto r = sync_service(key, deleted);
    if (r) {
      stats.writes += *r;
      continue;
    }
    ++stats.failures;
    log::get()->warn("msg=\"endpoints sync failed, will retry\" service={}/{} error=\"{}\"",
                     key.first, key.second, r.err().message);
    std::lock_guard lock(mu_);
    auto [it, fresh] = dirty_.try_emplace(key, deleted);
    if (!fresh)
      it->second = it->second || deleted;
  }
  return stats;
}

endpoints_sync_stats endpoints_controller::sync_pending() {
  endpoints_sync_stats total;
  // Own writes queue their Service again; a few rounds settle it. The bound
  // keeps a persistent failure from spinning here.
  for (int round = 0; round < 8; ++round) {
    auto s = sync_round();
    total.services += s.services;
    total.writes += s.writes;
    total.failures += s.failures;
    if (s.services == 0 || s.failures > 0)
      break;
  }
  return total;
}

void endpoints_controller::run() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !dirty_.empty() || !pod_changes_.empty(); });
      if (stopping_)
        return;
    }
    auto s = sync_round();
    if (s.failures > 0) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, opts_.retry_after, [this] { return stopping_; });
    }
  }
}

result<std::size_t> endpoints_controller::sync_service(const service_key& key,
                                                       bool service_deleted) {
  const auto& [ns, name] = key;
  std::size_t writes = 0;
  auto svc_r = reg_.get("services", ns, name);
  if (!svc_r && svc_r.err().code != errc::not_found)
    return svc_r.err();
  std::optional<json> svc;
  if (svc_r)
    svc = std::move(*svc_r);

  auto slices_r = reg_.list("endpointslices", ns, std::string(service_name_label) + "=" + name);
  if (!slices_r)
    return slices_r.err();
  std::vector<json> ours, mirrored;
  for (auto& s : slices_r->items) {
    std::string manager = str(labels_of(s), managed_by_label);
    if (manager == slice_controller)
      ours.push_back(std::move(s));
    else if (manager == mirror_controller)
      mirrored.push_back(std::move(s));
  }
  auto current_ep = reg_.get("endpoints", ns, name);
  if (!current_ep && current_ep.err().code != errc::not_found)
    return current_ep.err();

  auto remove = [&](const char* kind, const json& obj) -> error {
    delete_options d;
    d.resource_version_precondition = str(obj["metadata"], "resourceVersion");
    auto r = reg_.remove(kind, ns, str(obj["metadata"], "name"), d);
    if (!r && r.err().code != errc::not_found)
      return r.err();
    ++writes;
    return {};
  };

  // Brings the stored slices of one manager in line with `want`, reusing a
  // stored slice where it has the same ports (an unchanged one is not written).
  auto reconcile = [&](std::vector<json>& have, std::vector<slice_content> want,
                       const json& labels) -> error {
    std::vector<bool> used(have.size(), false);
    std::vector<std::optional<std::size_t>> match(want.size());
    auto same = [](const json& s, const slice_content& c, bool endpoints_too) {
      return member(s, "ports") == c.ports &&
             (!endpoints_too || member(s, "endpoints") == c.endpoints);
    };
    for (bool endpoints_too : {true, false})
      for (std::size_t i = 0; i < want.size(); ++i) {
        if (match[i])
          continue;
        for (std::size_t j = 0; j < have.size(); ++j)
          if (!used[j] && same(have[j], want[i], endpoints_too)) {
            used[j] = true;
            match[i] = j;
            break;
          }
      }
    std::string address_type = "IPv4";
    for (const auto& c : want)
      for (const auto& e : c.endpoints)
        if (is_ipv6(e["addresses"][0].get<std::string>()))
          address_type = "IPv6";
    for (std::size_t i = 0; i < want.size(); ++i) {
      json owner = svc ? owner_reference(*svc) : json();
      if (match[i]) {
        json obj = have[*match[i]];
        json before = obj;
        obj["metadata"]["labels"] = labels;
        if (!owner.is_null())
          obj["metadata"]["ownerReferences"] = owner;
        obj["endpoints"] = want[i].endpoints;
        obj["ports"] = want[i].ports;
        if (obj == before)
          continue;
        std::string slice_name = str(obj["metadata"], "name");
        auto r = reg_.update("endpointslices", ns, slice_name, std::move(obj));
        if (!r)
          return r.err();
        ++writes;
        continue;
      }
      json obj = {
          {"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata", {{"generateName", name + "-"}, {"namespace", ns}, {"labels", labels}}},
          {"addressType", address_type},
          {"endpoints", want[i].endpoints},
          {"ports", want[i].ports}};
      if (!owner.is_null())
        obj["metadata"]["ownerReferences"] = owner;
      auto r = reg_.create("endpointslices", ns, std::move(obj));
      if (!r)
        return r.err();
      ++writes;
    }
    for (std::size_t j = 0; j < have.size(); ++j)
      if (!used[j])
        if (auto err = remove("endpointslices", have[j]))
          return err;
    return {};
  };

  if (!svc) {
    // Gone: its Endpoints go too if the deletion queued this key or the
    // controller wrote them; a user's Endpoints for a Service that does not
    // exist yet stay.
    if (current_ep && (service_deleted || str(labels_of(*current_ep), skip_mirror_label) == "true"))
      if (auto err = remove("endpoints", *current_ep))
        return err;
    for (auto* list : {&ours, &mirrored})
      for (const auto& s : *list)
        if (auto err = remove("endpointslices", s))
          return err;
    return writes;
  }

  json svc_labels = labels_of(*svc);
  bool headless = str(member(*svc, "spec"), "clusterIP") == "None";
  json selector = selector_of(*svc);
  if (selector.is_null()) {
    // Not managed; mirror a user's Endpoints.
    if (auto err = reconcile(ours, {}, json::object()))
      return err;
    bool mirror = current_ep && str(labels_of(*current_ep), skip_mirror_label) != "true";
    std::vector<slice_content> want;
    json labels = json::object();
    if (mirror) {
      want = mirrored_slices(*current_ep, opts_.max_endpoints_per_slice);
      labels = labels_of(*current_ep);
      labels[service_name_label] = name;
      labels[managed_by_label] = mirror_controller;
    }
    if (auto err = reconcile(mirrored, std::move(want), labels))
      return err;
    return writes;
  }

  auto pods = reg_.list("pods", ns);
  if (!pods)
    return pods.err();
  auto eps = service_endpoints(*svc, pods->items);
  bool publish_not_ready = member(member(*svc, "spec"), "publishNotReadyAddresses") == true;

  // core/v1 Endpoints.
  json ep_labels = svc_labels;
  ep_labels[skip_mirror_label] = "true";
  if (headless)
    ep_labels[headless_label] = "";
  json subsets = endpoints_subsets(eps, publish_not_ready);
  if (!current_ep) {
    json obj = {{"apiVersion", "v1"},
                {"kind", "Endpoints"},
                {"metadata", {{"name", name}, {"namespace", ns}, {"labels", ep_labels}}}};
    if (!subsets.empty())
      obj["subsets"] = subsets;
    auto r = reg_.create("endpoints", ns, std::move(obj));
    if (!r)
      return r.err();
    ++writes;
  } else {
    json obj = *current_ep;
    json before = obj;
    obj["metadata"]["labels"] = ep_labels;
    if (subsets.empty())
      obj.erase("subsets");
    else
      obj["subsets"] = subsets;
    if (obj != before) {
      auto r = reg_.update("endpoints", ns, name, std::move(obj));
      if (!r)
        return r.err();
      ++writes;
    }
  }

  // EndpointSlices; with no endpoints, one slice holding none (Kubernetes' own
  // controller keeps such a slice too).
  json slice_labels = svc_labels;
  slice_labels[service_name_label] = name;
  slice_labels[managed_by_label] = slice_controller;
  if (headless)
    slice_labels[headless_label] = "";
  auto want = desired_slices(eps, opts_.max_endpoints_per_slice);
  if (want.empty())
    want.push_back({});
  if (auto err = reconcile(ours, std::move(want), slice_labels))
    return err;
  if (auto err = reconcile(mirrored, {}, json::object()))
    return err;
  return writes;
}

}  // namespace deckhand::apiserver

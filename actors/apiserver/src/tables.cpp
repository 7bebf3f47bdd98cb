#include "deckhand/apiserver/tables.hpp"

#include <cctype>
#include <functional>
#include <map>

#include "deckhand/api/time.hpp"

namespace deckhand::apiserver {

using nlohmann::json;

namespace {

const json& member(const json& obj, const char* key) {
  static const json null;
  if (obj.is_object() && obj.contains(key))
    return obj[key];
  return null;
}

std::string str(const json& obj, const char* key) {
  const json& v = member(obj, key);
  return v.is_string() ? v.get<std::string>() : std::string{};
}

std::string or_none(const std::string& s) { return s.empty() ? "<none>" : s; }

/// "a,b,c + 2 more..." as kubectl shortens long lists.
std::string first_three(const std::vector<std::string>& items, std::size_t total) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < 3; ++i)
    out += (i ? "," : "") + items[i];
  if (total > 3)
    out += " + " + std::to_string(total - 3) + " more...";
  return out;
}

/// Ages are shown in whole seconds.
std::optional<std::chrono::system_clock::time_point> parse_time(const std::string& s) {
  auto t = api::parse_rfc3339(s);
  if (!t)
    return std::nullopt;
  return std::chrono::floor<std::chrono::seconds>(*t);
}

std::string age(const json& obj, std::chrono::system_clock::time_point now) {
  auto t = parse_time(str(member(obj, "metadata"), "creationTimestamp"));
  if (!t)
    return "<unknown>";
  return human_duration(std::chrono::duration_cast<std::chrono::seconds>(now - *t));
}

std::string service_ports(const json& spec) {
  std::string out;
  for (const auto& p : member(spec, "ports")) {
    if (!out.empty())
      out += ",";
    out += member(p, "port").dump();
    if (member(p, "nodePort").is_number_integer() && member(p, "nodePort") != 0)
      out += ":" + member(p, "nodePort").dump();
    out += "/" + (str(p, "protocol").empty() ? std::string("TCP") : str(p, "protocol"));
  }
  return or_none(out);
}

std::string external_ip(const json& svc) {
  const json& spec = member(svc, "spec");
  std::string type = str(spec, "type");
  std::string ips;
  for (const auto& ip : member(spec, "externalIPs"))
    if (ip.is_string())
      ips += (ips.empty() ? "" : ",") + ip.get<std::string>();
  if (type == "ExternalName")
    return str(spec, "externalName");
  if (type == "LoadBalancer") {
    for (const auto& ing : member(member(member(svc, "status"), "loadBalancer"), "ingress")) {
      std::string addr = str(ing, "ip").empty() ? str(ing, "hostname") : str(ing, "ip");
      if (!addr.empty())
        ips += (ips.empty() ? "" : ",") + addr;
    }
    return ips.empty() ? "<pending>" : ips;
  }
  return or_none(ips);
}

std::string selector(const json& spec) {
  std::string out;
  const json& sel = member(spec, "selector");
  if (sel.is_object())
    for (const auto& [k, v] : sel.items())
      out += (out.empty() ? "" : ",") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  return or_none(out);
}

std::string endpoints_text(const json& ep) {
  std::vector<std::string> list;
  std::size_t total = 0;
  for (const auto& ss : member(ep, "subsets")) {
    const json& addrs = member(ss, "addresses");
    const json& ports = member(ss, "ports");
    if (!ports.is_array() || ports.empty()) {
      for (const auto& a : addrs) {
        ++total;
        list.push_back(str(a, "ip"));
      }
      continue;
    }
    for (const auto& p : ports)
      for (const auto& a : addrs) {
        ++total;
        std::string ip = str(a, "ip");
        std::string host = ip.find(':') != std::string::npos ? "[" + ip + "]" : ip;
        list.push_back(host + ":" + member(p, "port").dump());
      }
  }
  return or_none(first_three(list, total));
}

std::string slice_ports(const json& slice) {
  const json& ports = member(slice, "ports");
  if (!ports.is_array() || ports.empty())
    return "<unset>";
  std::vector<std::string> list;
  for (const auto& p : ports)
    list.push_back(member(p, "port").is_number_integer() ? member(p, "port").dump() : "<unset>");
  return first_three(list, list.size());
}

std::string slice_endpoints(const json& slice) {
  std::vector<std::string> list;
  for (const auto& e : member(slice, "endpoints"))
    for (const auto& a : member(e, "addresses"))
      if (a.is_string())
        list.push_back(a.get<std::string>());
  if (list.empty())
    return "<none>";
  return first_three(list, list.size());
}

/// kubectl's STATUS column (printPod in Kubernetes' printers): the phase, or
/// the reason a container waits or terminated, or Terminating.
std::string pod_status(const json& pod, int& ready, int& total, int& restarts) {
  const json& status = member(pod, "status");
  std::string reason = str(status, "phase");
  if (!str(status, "reason").empty())
    reason = str(status, "reason");
  ready = 0;
  restarts = 0;
  total = static_cast<int>(member(member(pod, "spec"), "containers").size());
  bool init_running = false;
  const json& inits = member(status, "initContainerStatuses");
  if (inits.is_array()) {
    int i = 0;
    for (const auto& cs : inits) {
      restarts += cs.value("restartCount", 0);
      const json& st = member(cs, "state");
      const json& term = member(st, "terminated");
      const json& wait = member(st, "waiting");
      if (term.is_object() && term.value("exitCode", 0) == 0) {
        ++i;
        continue;
      }
      init_running = true;
      if (term.is_object())
        reason = "Init:" + (str(term, "reason").empty()
                                ? "ExitCode:" + std::to_string(term.value("exitCode", 0))
                                : str(term, "reason"));
      else if (wait.is_object() && !str(wait, "reason").empty() &&
               str(wait, "reason") != "PodInitializing")
        reason = "Init:" + str(wait, "reason");
      else
        reason = "Init:" + std::to_string(i) + "/" + std::to_string(inits.size());
      break;
    }
  }
  const json& cstats = member(status, "containerStatuses");
  if (!init_running && cstats.is_array()) {
    bool has_running = false;
    for (auto it = cstats.rbegin(); it != cstats.rend(); ++it) {
      const json& cs = *it;
      restarts += cs.value("restartCount", 0);
      const json& st = member(cs, "state");
      const json& wait = member(st, "waiting");
      const json& term = member(st, "terminated");
      if (wait.is_object() && !str(wait, "reason").empty()) {
        reason = str(wait, "reason");
      } else if (term.is_object()) {
        if (!str(term, "reason").empty())
          reason = str(term, "reason");
        else if (term.value("signal", 0) != 0)
          reason = "Signal:" + std::to_string(term.value("signal", 0));
        else
          reason = "ExitCode:" + std::to_string(term.value("exitCode", 0));
      } else if (member(st, "running").is_object() && cs.value("ready", false)) {
        has_running = true;
        ++ready;
      }
    }
    if (reason == "Completed" && has_running)
      reason = "Running";
  }
  if (!str(member(pod, "metadata"), "deletionTimestamp").empty())
    reason = "Terminating";
  return reason;
}

/// "pod/web", as kubectl names an event's object.
std::string involved_object(const json& ev) {
  const json& o = member(ev, "involvedObject");
  std::string kind = str(o, "kind");
  for (auto& c : kind)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return kind + "/" + str(o, "name");
}

std::string since(const std::string& stamp, std::chrono::system_clock::time_point now);

struct column {
  const char* name;
  const char* type;
  const char* format;
  const char* description;
  int priority;
};

struct table_def {
  std::vector<column> columns;
  std::function<json(const json&, std::chrono::system_clock::time_point)> cells;
};

const std::map<std::string, table_def>& tables() {
  static const column name_col = {"Name", "string", "name",
                                  "Name must be unique within a namespace.", 0};
  static const column age_col = {"Age", "string", "",
                                 "CreationTimestamp is a timestamp representing the server time "
                                 "when this object was created.",
                                 0};
  static const std::map<std::string, table_def> defs = {
      {"Service",
       {{name_col,
         {"Type", "string", "", "type determines how the Service is exposed.", 0},
         {"Cluster-IP", "string", "", "clusterIP is the IP address of the service.", 0},
         {"External-IP", "string", "", "externalIPs of the service.", 0},
         {"Port(s)", "string", "", "The list of ports that are exposed by this service.", 0},
         age_col,
         {"Selector", "string", "",
          "Route service traffic to pods with label keys and values "
          "matching this selector.",
          1}},
        [](const json& svc, std::chrono::system_clock::time_point now) {
          const json& spec = member(svc, "spec");
          return json::array({str(member(svc, "metadata"), "name"), str(spec, "type"),
                              or_none(str(spec, "clusterIP")), external_ip(svc),
                              service_ports(spec), age(svc, now), selector(spec)});
        }}},
      {"Endpoints",
       {{name_col, {"Endpoints", "string", "", "Endpoints of the service.", 0}, age_col},
        [](const json& ep, std::chrono::system_clock::time_point now) {
          return json::array(
              {str(member(ep, "metadata"), "name"), endpoints_text(ep), age(ep, now)});
        }}},
      {"Pod",
       {{name_col,
         {"Ready", "string", "",
          "The aggregate readiness state of this pod for accepting "
          "traffic.",
          0},
         {"Status", "string", "", "The aggregate status of the containers in this pod.", 0},
         {"Restarts", "string", "",
          "The number of times the containers in this pod have been "
          "restarted.",
          0},
         age_col,
         {"IP", "string", "", "IP address allocated to the pod.", 1},
         {"Node", "string", "", "Name of the node the pod is assigned to.", 1}},
        [](const json& pod, std::chrono::system_clock::time_point now) {
          int ready = 0, total = 0, restarts = 0;
          auto status = pod_status(pod, ready, total, restarts);
          return json::array({str(member(pod, "metadata"), "name"),
                              std::to_string(ready) + "/" + std::to_string(total), status,
                              std::to_string(restarts), age(pod, now),
                              or_none(str(member(pod, "status"), "podIP")),
                              or_none(str(member(pod, "spec"), "nodeName"))});
        }}},
      {"Event",
       {{{"Last Seen", "string", "", "Time the event was last seen.", 0},
         {"Type", "string", "", "The type of the event (Normal, Warning).", 0},
         {"Reason", "string", "", "Why the event happened.", 0},
         {"Object", "string", "", "The object the event is about.", 0},
         {"Subobject", "string", "", "The part of the object the event is about.", 1},
         {"Source", "string", "", "Who reported the event.", 1},
         {"Message", "string", "", "A human-readable description.", 0},
         {"First Seen", "string", "", "Time the event was first seen.", 1},
         {"Count", "string", "", "How many times the event was seen.", 1},
         {"Name", "string", "name", "The event's name.", 1}},
        [](const json& ev, std::chrono::system_clock::time_point now) {
          std::string last = str(ev, "lastTimestamp");
          if (last.empty())
            last = str(ev, "eventTime");
          std::string first = str(ev, "firstTimestamp");
          if (first.empty())
            first = last;
          const json& src = member(ev, "source");
          std::string source = str(src, "component");
          if (!str(src, "host").empty())
            source += ", " + str(src, "host");
          return json::array({since(last, now), str(ev, "type"), str(ev, "reason"),
                              involved_object(ev), str(member(ev, "involvedObject"), "fieldPath"),
                              source, str(ev, "message"), since(first, now),
                              std::to_string(ev.value("count", 1)),
                              str(member(ev, "metadata"), "name")});
        }}},
      {"Lease",
       {{name_col, {"Holder", "string", "", "The holder of the lease", 0}, age_col},
        [](const json& l, std::chrono::system_clock::time_point now) {
          return json::array({str(member(l, "metadata"), "name"),
                              str(member(l, "spec"), "holderIdentity"), age(l, now)});
        }}},
      {"EndpointSlice",
       {{name_col,
         {"AddressType", "string", "", "The IP protocol for this slice", 0},
         {"Ports", "string", "", "The ports contained by this slice", 0},
         {"Endpoints", "string", "", "The endpoints contained by this slice", 0},
         age_col},
        [](const json& s, std::chrono::system_clock::time_point now) {
          return json::array({str(member(s, "metadata"), "name"), str(s, "addressType"),
                              slice_ports(s), slice_endpoints(s), age(s, now)});
        }}},
  };
  return defs;
}

}  // namespace

std::string human_duration(std::chrono::seconds d) {
  long long s = d.count();
  if (s < -1)
    return "<invalid>";
  if (s < 0)
    return "0s";
  auto n = [](long long v) { return std::to_string(v); };
  if (s < 60 * 2)
    return n(s) + "s";
  long long minutes = s / 60;
  if (minutes < 10) {
    long long rest = s % 60;
    return rest == 0 ? n(minutes) + "m" : n(minutes) + "m" + n(rest) + "s";
  }
  if (minutes < 60 * 3)
    return n(minutes) + "m";
  long long hours = s / 3600;
  if (hours < 8) {
    long long m = minutes % 60;
    return m == 0 ? n(hours) + "h" : n(hours) + "h" + n(m) + "m";
  }
  if (hours < 48)
    return n(hours) + "h";
  if (hours < 24 * 8) {
    long long h = hours % 24;
    return h == 0 ? n(hours / 24) + "d" : n(hours / 24) + "d" + n(h) + "h";
  }
  if (hours < 24 * 365 * 2)
    return n(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    long long dy = (hours / 24) % 365;
    return dy == 0 ? n(hours / 24 / 365) + "y" : n(hours / 24 / 365) + "y" + n(dy) + "d";
  }
  return n(hours / 24 / 365) + "y";
}

namespace {

std::string since(const std::string& stamp, std::chrono::system_clock::time_point now) {
  auto t = parse_time(stamp);
  if (!t)
    return "<unknown>";
  auto d = std::chrono::duration_cast<std::chrono::seconds>(now - *t);
  return human_duration(d);
}

}  // namespace

bool has_table(const std::string& kind) { return tables().count(kind) > 0; }

json make_table(const std::string& kind, const std::vector<json>& objects,
                const std::string& resource_version, const std::string& include_object,
                std::chrono::system_clock::time_point now) {
  const table_def& def = tables().at(kind);
  json columns = json::array();
  for (const auto& c : def.columns)
    columns.push_back({{"name", c.name},
                       {"type", c.type},
                       {"format", c.format},
                       {"description", c.description},
                       {"priority", c.priority}});
  json rows = json::array();
  for (const auto& obj : objects) {
    json row = {{"cells", def.cells(obj, now)}};
    if (include_object == "Object")
      row["object"] = obj;
    else if (include_object != "None")
      row["object"] = {{"kind", "PartialObjectMetadata"},
                       {"apiVersion", "meta.k8s.io/v1"},
                       {"metadata", member(obj, "metadata")}};
    rows.push_back(std::move(row));
  }
  return {{"kind", "Table"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", {{"resourceVersion", resource_version}}},
          {"columnDefinitions", columns},
          {"rows", rows}};
}

}  // namespace deckhand::apiserver

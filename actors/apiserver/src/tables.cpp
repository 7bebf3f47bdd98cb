#include "deckhand/apiserver/tables.hpp"

#include <ctime>
#include <functional>
#include <map>

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

std::optional<std::time_t> parse_time(const std::string& s) {
  std::tm tm{};
  if (s.size() < 20 || !::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm))
    return std::nullopt;
  return ::timegm(&tm);
}

std::string age(const json& obj, std::chrono::system_clock::time_point now) {
  auto t = parse_time(str(member(obj, "metadata"), "creationTimestamp"));
  if (!t)
    return "<unknown>";
  return human_duration(std::chrono::duration_cast<std::chrono::seconds>(
      now - std::chrono::system_clock::from_time_t(*t)));
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
         {"Selector", "string", "", "Route service traffic to pods with label keys and values "
                                    "matching this selector.", 1}},
        [](const json& svc, std::chrono::system_clock::time_point now) {
          const json& spec = member(svc, "spec");
          return json::array({str(member(svc, "metadata"), "name"), str(spec, "type"),
                              or_none(str(spec, "clusterIP")), external_ip(svc),
                              service_ports(spec), age(svc, now), selector(spec)});
        }}},
      {"Endpoints",
       {{name_col, {"Endpoints", "string", "", "Endpoints of the service.", 0}, age_col},
        [](const json& ep, std::chrono::system_clock::time_point now) {
          return json::array({str(member(ep, "metadata"), "name"), endpoints_text(ep), age(ep, now)});
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

} // namespace

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

} // namespace deckhand::apiserver

#include "deckhand/cli/printers.hpp"

#include <algorithm>
#include <cstdio>
#include <functional>

namespace deckhand::cli {

namespace {

using nlohmann::json;

const json& member(const json& j, const char* key) {
  static const json null_value;
  if (!j.is_object())
    return null_value;
  auto it = j.find(key);
  return it == j.end() ? null_value : *it;
}

std::string str(const json& j, const char* key) {
  const auto& v = member(j, key);
  return v.is_string() ? v.get<std::string>() : std::string{};
}

int64_t num(const json& j, const char* key) {
  const auto& v = member(j, key);
  return v.is_number_integer() ? v.get<int64_t>() : 0;
}

/// A container state's `waiting`/`running`/`terminated` is set when present
/// as an object (Go's non-nil pointer).
bool present(const json& state, const char* which) { return member(state, which).is_object(); }

bool has_ready_condition(const json& pod) {
  for (const auto& c : member(member(pod, "status"), "conditions"))
    if (str(c, "type") == "Ready" && str(c, "status") == "True")
      return true;
  return false;
}

struct pod_summary {
  std::string reason;
  int ready = 0;
  int total = 0;
  int64_t restarts = 0;
  std::optional<wall_time> last_restart;
};

void note_restart(pod_summary& s, const json& cs) {
  const auto& last = member(member(cs, "lastState"), "terminated");
  if (!last.is_object())
    return;
  if (auto t = parse_rfc3339(str(last, "finishedAt")))
    if (!s.last_restart || *s.last_restart < *t)
      s.last_restart = t;
}

// This follows kubectl's printPod (pkg/printers/internalversion/printers.go).
pod_summary summarize(const json& pod) {
  pod_summary s;
  const auto& status = member(pod, "status");
  const auto& spec = member(pod, "spec");
  s.total = static_cast<int>(member(spec, "containers").size());
  s.reason = str(status, "phase");
  if (!str(status, "reason").empty())
    s.reason = str(status, "reason");
  if (s.reason.empty())
    s.reason = "Pending";

  bool initializing = false;
  const auto& init_statuses = member(status, "initContainerStatuses");
  auto init_total = member(spec, "initContainers").size();
  std::size_t i = 0;
  for (const auto& cs : init_statuses) {
    s.restarts += num(cs, "restartCount");
    note_restart(s, cs);
    const auto& state = member(cs, "state");
    const auto& term = member(state, "terminated");
    const auto& wait = member(state, "waiting");
    if (term.is_object() && num(term, "exitCode") == 0) {
      ++i;
      continue;
    }
    if (term.is_object()) {
      if (str(term, "reason").empty())
        s.reason = num(term, "signal") != 0
                       ? "Init:Signal:" + std::to_string(num(term, "signal"))
                       : "Init:ExitCode:" + std::to_string(num(term, "exitCode"));
      else
        s.reason = "Init:" + str(term, "reason");
    } else if (wait.is_object() && !str(wait, "reason").empty() &&
               str(wait, "reason") != "PodInitializing") {
      s.reason = "Init:" + str(wait, "reason");
    } else {
      s.reason = "Init:" + std::to_string(i) + "/" + std::to_string(init_total);
    }
    initializing = true;
    break;
  }

  if (!initializing) {
    bool has_running = false;
    const auto& statuses = member(status, "containerStatuses");
    if (statuses.is_array()) {
      for (auto it = statuses.rbegin(); it != statuses.rend(); ++it) {
        const auto& cs = *it;
        s.restarts += num(cs, "restartCount");
        note_restart(s, cs);
        const auto& state = member(cs, "state");
        const auto& term = member(state, "terminated");
        const auto& wait = member(state, "waiting");
        if (wait.is_object() && !str(wait, "reason").empty()) {
          s.reason = str(wait, "reason");
        } else if (term.is_object() && !str(term, "reason").empty()) {
          s.reason = str(term, "reason");
        } else if (term.is_object()) {
          s.reason = num(term, "signal") != 0 ? "Signal:" + std::to_string(num(term, "signal"))
                                              : "ExitCode:" + std::to_string(num(term, "exitCode"));
        } else if (member(cs, "ready").is_boolean() && member(cs, "ready").get<bool>() &&
                   present(state, "running")) {
          has_running = true;
          ++s.ready;
        }
      }
    }
    // A pod whose last container completed but another still runs is Running.
    if (s.reason == "Completed" && has_running)
      s.reason = has_ready_condition(pod) ? "Running" : "NotReady";
  }

  const auto& meta = member(pod, "metadata");
  if (!str(meta, "deletionTimestamp").empty())
    s.reason = str(status, "reason") == "NodeLost" ? "Unknown" : "Terminating";
  return s;
}

std::string or_none(const std::string& s) { return s.empty() ? "<none>" : s; }

std::string service_ports(const json& svc) {
  std::string out;
  for (const auto& p : member(member(svc, "spec"), "ports")) {
    if (!out.empty())
      out += ",";
    out += std::to_string(num(p, "port"));
    if (num(p, "nodePort") != 0)
      out += ":" + std::to_string(num(p, "nodePort"));
    auto proto = str(p, "protocol");
    out += "/" + (proto.empty() ? std::string("TCP") : proto);
  }
  return or_none(out);
}

std::string service_external_ip(const json& svc) {
  const auto& spec = member(svc, "spec");
  auto type = str(spec, "type");
  std::string ips;
  for (const auto& ip : member(spec, "externalIPs"))
    if (ip.is_string())
      ips += (ips.empty() ? "" : ",") + ip.get<std::string>();
  if (type == "ExternalName")
    return str(spec, "externalName");
  if (type == "LoadBalancer") {
    for (const auto& ing : member(member(member(svc, "status"), "loadBalancer"), "ingress")) {
      auto addr = str(ing, "ip").empty() ? str(ing, "hostname") : str(ing, "ip");
      if (!addr.empty())
        ips += (ips.empty() ? "" : ",") + addr;
    }
    return ips.empty() ? "<pending>" : ips;
  }
  return or_none(ips);
}

std::string selector_text(const json& svc) {
  std::string out;
  const auto& sel = member(member(svc, "spec"), "selector");
  if (sel.is_object())
    for (auto it = sel.begin(); it != sel.end(); ++it)
      out += (out.empty() ? "" : ",") + it.key() + "=" +
             (it->is_string() ? it->get<std::string>() : it->dump());
  return or_none(out);
}

}  // namespace

std::optional<wall_time> parse_rfc3339(const std::string& text) {
  auto t = api::parse_rfc3339(text);
  if (!t)
    return std::nullopt;
  return *t;
}

// kubectl's duration.HumanDuration (k8s.io/apimachinery/pkg/util/duration).
std::string human_duration(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  auto seconds = duration_cast<std::chrono::seconds>(d).count();
  if (seconds < -1)
    return "<invalid>";
  if (seconds < 0)
    return "0s";
  if (seconds < 60 * 2)
    return std::to_string(seconds) + "s";
  auto minutes = duration_cast<std::chrono::minutes>(d).count();
  if (minutes < 10) {
    auto s = seconds % 60;
    return s == 0 ? std::to_string(minutes) + "m"
                  : std::to_string(minutes) + "m" + std::to_string(s) + "s";
  }
  if (minutes < 60 * 3)
    return std::to_string(minutes) + "m";
  auto hours = duration_cast<std::chrono::hours>(d).count();
  if (hours < 8) {
    auto m = minutes % 60;
    return m == 0 ? std::to_string(hours) + "h"
                  : std::to_string(hours) + "h" + std::to_string(m) + "m";
  }
  if (hours < 48)
    return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    auto h = hours % 24;
    return h == 0 ? std::to_string(hours / 24) + "d"
                  : std::to_string(hours / 24) + "d" + std::to_string(h) + "h";
  }
  if (hours < 24 * 365 * 2)
    return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    auto dy = (hours / 24) % 365;
    return dy == 0 ? std::to_string(hours / 24 / 365) + "y"
                   : std::to_string(hours / 24 / 365) + "y" + std::to_string(dy) + "d";
  }
  return std::to_string(hours / 24 / 365) + "y";
}

std::string age_since(const std::string& timestamp, wall_time now) {
  auto t = parse_rfc3339(timestamp);
  if (!t)
    return "<unknown>";
  return human_duration(now - *t);
}

std::string pod_status_text(const json& pod) { return summarize(pod).reason; }

std::string pod_ready_text(const json& pod) {
  auto s = summarize(pod);
  return std::to_string(s.ready) + "/" + std::to_string(s.total);
}

std::string pod_restarts_text(const json& pod, wall_time now) {
  auto s = summarize(pod);
  auto text = std::to_string(s.restarts);
  if (s.restarts != 0 && s.last_restart)
    text += " (" + human_duration(now - *s.last_restart) + " ago)";
  return text;
}

std::string format_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows)
    for (std::size_t c = 0; c + 1 < row.size(); ++c) {
      if (widths.size() <= c)
        widths.resize(c + 1, 0);
      widths[c] = std::max(widths[c], row[c].size());
    }
  std::string out;
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < row.size(); ++c) {
      out += row[c];
      if (c + 1 < row.size())
        out.append(std::max<std::size_t>(widths[c] + 3, 6) - row[c].size(), ' ');
    }
    out += "\n";
  }
  return out;
}

std::string format_pod_table(const std::vector<json>& pods, const table_options& opts,
                             wall_time now) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head;
  if (opts.all_namespaces)
    head.push_back("NAMESPACE");
  for (auto* h : {"NAME", "READY", "STATUS", "RESTARTS", "AGE"})
    head.push_back(h);
  if (opts.wide) {
    head.push_back("IP");
    head.push_back("NODE");
  }
  rows.push_back(head);
  for (const auto& pod : pods) {
    const auto& meta = member(pod, "metadata");
    auto s = summarize(pod);
    std::vector<std::string> row;
    if (opts.all_namespaces)
      row.push_back(str(meta, "namespace"));
    row.push_back(str(meta, "name"));
    row.push_back(std::to_string(s.ready) + "/" + std::to_string(s.total));
    row.push_back(s.reason);
    row.push_back(pod_restarts_text(pod, now));
    row.push_back(age_since(str(meta, "creationTimestamp"), now));
    if (opts.wide) {
      row.push_back(or_none(str(member(pod, "status"), "podIP")));
      row.push_back(or_none(str(member(pod, "spec"), "nodeName")));
    }
    rows.push_back(std::move(row));
  }
  return format_table(rows);
}

std::string format_service_table(const std::vector<json>& services, const table_options& opts,
                                 wall_time now) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head;
  if (opts.all_namespaces)
    head.push_back("NAMESPACE");
  for (auto* h : {"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"})
    head.push_back(h);
  if (opts.wide)
    head.push_back("SELECTOR");
  rows.push_back(head);
  for (const auto& svc : services) {
    const auto& meta = member(svc, "metadata");
    const auto& spec = member(svc, "spec");
    std::vector<std::string> row;
    if (opts.all_namespaces)
      row.push_back(str(meta, "namespace"));
    row.push_back(str(meta, "name"));
    auto type = str(spec, "type");
    row.push_back(type.empty() ? "ClusterIP" : type);
    row.push_back(or_none(str(spec, "clusterIP")));
    row.push_back(service_external_ip(svc));
    row.push_back(service_ports(svc));
    row.push_back(age_since(str(meta, "creationTimestamp"), now));
    if (opts.wide)
      row.push_back(selector_text(svc));
    rows.push_back(std::move(row));
  }
  return format_table(rows);
}

namespace {

/// "a,b,c + 2 more..." as kubectl shortens long lists.
std::string first_three(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < 3; ++i)
    out += (i ? "," : "") + items[i];
  if (items.size() > 3)
    out += " + " + std::to_string(items.size() - 3) + " more...";
  return out;
}

/// A table with NAME first, NAMESPACE before it when listing all namespaces.
std::string named_table(const std::vector<json>& objs, const table_options& opts,
                        std::vector<std::string> columns,
                        const std::function<std::vector<std::string>(const json&)>& cells) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head;
  if (opts.all_namespaces)
    head.push_back("NAMESPACE");
  head.push_back("NAME");
  head.insert(head.end(), columns.begin(), columns.end());
  rows.push_back(head);
  for (const auto& obj : objs) {
    const auto& meta = member(obj, "metadata");
    std::vector<std::string> row;
    if (opts.all_namespaces)
      row.push_back(str(meta, "namespace"));
    row.push_back(str(meta, "name"));
    auto rest = cells(obj);
    row.insert(row.end(), rest.begin(), rest.end());
    rows.push_back(std::move(row));
  }
  return format_table(rows);
}

}  // namespace

std::string endpoints_text(const json& endpoints) {
  std::vector<std::string> list;
  for (const auto& ss : member(endpoints, "subsets")) {
    const auto& addrs = member(ss, "addresses");
    const auto& ports = member(ss, "ports");
    if (!ports.is_array() || ports.empty()) {
      for (const auto& a : addrs)
        list.push_back(str(a, "ip"));
      continue;
    }
    for (const auto& p : ports)
      for (const auto& a : addrs) {
        auto ip = str(a, "ip");
        list.push_back((ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" +
                       std::to_string(num(p, "port")));
      }
  }
  return or_none(first_three(list));
}

std::string format_endpoints_table(const std::vector<json>& endpoints, const table_options& opts,
                                   wall_time now) {
  return named_table(endpoints, opts, {"ENDPOINTS", "AGE"}, [&](const json& ep) {
    return std::vector<std::string>{
        endpoints_text(ep), age_since(str(member(ep, "metadata"), "creationTimestamp"), now)};
  });
}

std::string format_endpoint_slice_table(const std::vector<json>& slices, const table_options& opts,
                                        wall_time now) {
  return named_table(
      slices, opts, {"ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"}, [&](const json& s) {
        std::vector<std::string> ports, addrs;
        for (const auto& p : member(s, "ports"))
          ports.push_back(member(p, "port").is_number_integer() ? std::to_string(num(p, "port"))
                                                                : "<unset>");
        for (const auto& e : member(s, "endpoints"))
          for (const auto& a : member(e, "addresses"))
            if (a.is_string())
              addrs.push_back(a.get<std::string>());
        return std::vector<std::string>{
            str(s, "addressType"), ports.empty() ? "<unset>" : first_three(ports),
            addrs.empty() ? "<none>" : first_three(addrs),
            age_since(str(member(s, "metadata"), "creationTimestamp"), now)};
      });
}

std::string human_size(int64_t bytes) {
  static const char* units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
  double size = static_cast<double>(bytes);
  std::size_t u = 0;
  while (size >= 1000.0 && u + 1 < std::size(units)) {
    size /= 1000.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g%s", size, units[u]);
  return buf;
}

}  // namespace deckhand::cli

/// describe pod and the events table: kubectl's describe.go and event
/// printing, from the JSON objects.

#include "deckhand/cli/describe.hpp"

#include <algorithm>
#include <ctime>
#include <map>
#include <sstream>

#include "deckhand/api/manifest.hpp"
#include "deckhand/cli/api_client.hpp"

namespace deckhand::cli {

using nlohmann::json;

namespace {

std::string str(const json& j, const char* key) {
  if (!j.is_object())
    return {};
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return {};
  if (it->is_string())
    return it->get<std::string>();
  return it->dump();
}

const json& obj(const json& j, const char* key) {
  static const json empty = json::object();
  if (!j.is_object())
    return empty;
  auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : empty;
}

const json& arr(const json& j, const char* key) {
  static const json empty = json::array();
  if (!j.is_object())
    return empty;
  auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : empty;
}

int64_t num(const json& j, const char* key, int64_t dflt = 0) {
  if (!j.is_object())
    return dflt;
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : dflt;
}

/// Go's time.RFC1123Z, in UTC: `Wed, 01 May 2024 12:00:00 +0000`.
std::string rfc1123z(const std::string& timestamp) {
  auto t = parse_rfc3339(timestamp);
  if (!t)
    return "Mon, 01 Jan 0001 00:00:00 +0000";  // Go's zero time
  auto tt = std::chrono::system_clock::to_time_t(*t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

/// printLabelsMultiline: sorted `k=v` (or `k: v` for annotations), one per line.
void multiline_map(std::ostringstream& w, const std::string& title, const json& m,
                   const char* sep) {
  w << title << ":\t";
  if (!m.is_object() || m.empty()) {
    w << "<none>\n";
    return;
  }
  bool first = true;
  for (auto it = m.begin(); it != m.end(); ++it) {  // nlohmann keeps keys sorted
    if (!first)
      w << "\t";
    first = false;
    w << it.key() << sep << (it->is_string() ? it->get<std::string>() : it->dump()) << "\n";
  }
}

std::string go_seconds(int64_t s) { return std::to_string(s) + "s"; }

std::string probe_text(const json& p) {
  std::string out;
  if (p.contains("exec")) {
    out = "exec [";
    bool first = true;
    for (const auto& c : arr(obj(p, "exec"), "command")) {
      out += (first ? "" : " ") + (c.is_string() ? c.get<std::string>() : c.dump());
      first = false;
    }
    out += "]";
  } else if (p.contains("httpGet")) {
    const auto& h = obj(p, "httpGet");
    std::string scheme = str(h, "scheme");
    std::transform(scheme.begin(), scheme.end(), scheme.begin(), ::tolower);
    if (scheme.empty())
      scheme = "http";
    std::string path = str(h, "path");
    out = "http-get " + scheme + "://" + str(h, "host") + ":" + str(h, "port") + path;
  } else if (p.contains("tcpSocket")) {
    const auto& t = obj(p, "tcpSocket");
    out = "tcp-socket " + str(t, "host") + ":" + str(t, "port");
  } else if (p.contains("grpc")) {
    out = "grpc <pod>:" + str(obj(p, "grpc"), "port") + " " + str(obj(p, "grpc"), "service");
  } else {
    out = "unknown";
  }
  out += " delay=" + go_seconds(num(p, "initialDelaySeconds", 0)) +
         " timeout=" + go_seconds(num(p, "timeoutSeconds", 1)) +
         " period=" + go_seconds(num(p, "periodSeconds", 10)) +
         " #success=" + std::to_string(num(p, "successThreshold", 1)) +
         " #failure=" + std::to_string(num(p, "failureThreshold", 3));
  return out;
}

/// The value a fieldRef env var resolves to, for the paths kubectl resolves.
std::string field_ref_value(const json& pod, const std::string& path) {
  const auto& md = obj(pod, "metadata");
  if (path == "metadata.name")
    return str(md, "name");
  if (path == "metadata.namespace")
    return str(md, "namespace");
  if (path == "metadata.uid")
    return str(md, "uid");
  if (path == "spec.nodeName")
    return str(obj(pod, "spec"), "nodeName");
  if (path == "spec.serviceAccountName")
    return str(obj(pod, "spec"), "serviceAccountName");
  if (path == "status.podIP")
    return str(obj(pod, "status"), "podIP");
  if (path == "status.hostIP")
    return str(obj(pod, "status"), "hostIP");
  return {};
}

void describe_state(std::ostringstream& w, const std::string& title, const json& state) {
  if (state.contains("running") && state["running"].is_object()) {
    w << "    " << title << ":\tRunning\n";
    w << "      Started:\t" << rfc1123z(str(state["running"], "startedAt")) << "\n";
  } else if (state.contains("terminated") && state["terminated"].is_object()) {
    const auto& t = state["terminated"];
    w << "    " << title << ":\tTerminated\n";
    if (!str(t, "reason").empty())
      w << "      Reason:\t" << str(t, "reason") << "\n";
    if (!str(t, "message").empty())
      w << "      Message:\t" << str(t, "message") << "\n";
    w << "      Exit Code:\t" << num(t, "exitCode") << "\n";
    if (num(t, "signal") > 0)
      w << "      Signal:\t" << num(t, "signal") << "\n";
    w << "      Started:\t" << rfc1123z(str(t, "startedAt")) << "\n";
    w << "      Finished:\t" << rfc1123z(str(t, "finishedAt")) << "\n";
  } else {
    w << "    " << title << ":\tWaiting\n";
    if (state.contains("waiting") && !str(state["waiting"], "reason").empty())
      w << "      Reason:\t" << str(state["waiting"], "reason") << "\n";
  }
}

void describe_containers(std::ostringstream& w, const std::string& title, const json& pod,
                         const json& containers, const json& statuses) {
  w << title << ":\n";
  for (const auto& c : containers) {
    std::string name = str(c, "name");
    const json* st = nullptr;
    for (const auto& s : statuses)
      if (str(s, "name") == name)
        st = &s;
    w << "  " << name << ":\n";
    if (st)
      w << "    Container ID:\t" << str(*st, "containerID") << "\n";
    w << "    Image:\t" << str(c, "image") << "\n";
    if (st)
      w << "    Image ID:\t" << str(*st, "imageID") << "\n";
    std::vector<std::string> ports, host_ports;
    for (const auto& p : arr(c, "ports")) {
      std::string proto = str(p, "protocol").empty() ? "TCP" : str(p, "protocol");
      ports.push_back(std::to_string(num(p, "containerPort")) + "/" + proto);
      host_ports.push_back(std::to_string(num(p, "hostPort")) + "/" + proto);
    }
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v)
        s += (s.empty() ? "" : ", ") + x;
      return s;
    };
    auto ps = join(ports), hps = join(host_ports);
    if (ports.size() > 1)
      w << "    Ports:\t" << ps << "\n";
    else
      w << "    Port:\t" << (ps.empty() ? "<none>" : ps) << "\n";
    if (host_ports.size() > 1)
      w << "    Host Ports:\t" << hps << "\n";
    else
      w << "    Host Port:\t" << (hps.empty() ? "<none>" : hps) << "\n";
    for (const char* key : {"command", "args"}) {
      const auto& list = arr(c, key);
      if (list.empty())
        continue;
      w << "    " << (std::string(key) == "command" ? "Command" : "Args") << ":\n";
      for (const auto& part : list) {
        std::istringstream lines(part.is_string() ? part.get<std::string>() : part.dump());
        std::string line;
        while (std::getline(lines, line))
          w << "      " << line << "\n";
      }
    }
    if (st) {
      describe_state(w, "State", obj(*st, "state"));
      const auto& last = obj(*st, "lastState");
      if (last.contains("terminated") && last["terminated"].is_object())
        describe_state(w, "Last State", last);
      w << "    Ready:\t" << (st->value("ready", false) ? "True" : "False") << "\n";
      w << "    Restart Count:\t" << num(*st, "restartCount") << "\n";
    }
    const auto& res = obj(c, "resources");
    for (const char* key : {"limits", "requests"}) {
      const auto& m = obj(res, key);
      if (m.empty())
        continue;
      w << "    " << (std::string(key) == "limits" ? "Limits" : "Requests") << ":\n";
      for (auto it = m.begin(); it != m.end(); ++it)
        w << "      " << it.key() << ":\t"
          << (it->is_string() ? it->get<std::string>() : it->dump()) << "\n";
    }
    for (auto [key, label] :
         {std::pair{"livenessProbe", "Liveness"}, std::pair{"readinessProbe", "Readiness"},
          std::pair{"startupProbe", "Startup"}})
      if (c.contains(key) && c[key].is_object())
        w << "    " << label << ":\t" << probe_text(c[key]) << "\n";
    const auto& env = arr(c, "env");
    w << "    Environment:" << (env.empty() ? "\t<none>" : "") << "\n";
    for (const auto& e : env) {
      std::string ename = str(e, "name");
      if (!e.contains("valueFrom")) {
        std::istringstream lines(str(e, "value"));
        std::string line;
        bool first = true;
        while (std::getline(lines, line)) {
          w << "      " << (first ? ename + ":" : "") << "\t" << line << "\n";
          first = false;
        }
        if (first)
          w << "      " << ename << ":\t\n";
        continue;
      }
      const auto& vf = obj(e, "valueFrom");
      if (vf.contains("fieldRef")) {
        const auto& fr = obj(vf, "fieldRef");
        std::string api = str(fr, "apiVersion").empty() ? "v1" : str(fr, "apiVersion");
        w << "      " << ename << ":\t" << field_ref_value(pod, str(fr, "fieldPath")) << " (" << api
          << ":" << str(fr, "fieldPath") << ")\n";
      } else if (vf.contains("resourceFieldRef")) {
        w << "      " << ename << ":\t (" << str(obj(vf, "resourceFieldRef"), "resource") << ")\n";
      } else if (vf.contains("secretKeyRef")) {
        const auto& r = obj(vf, "secretKeyRef");
        w << "      " << ename << ":\t<set to the key '" << str(r, "key") << "' in secret '"
          << str(r, "name") << "'>\n";
      } else if (vf.contains("configMapKeyRef")) {
        const auto& r = obj(vf, "configMapKeyRef");
        w << "      " << ename << ":\t<set to the key '" << str(r, "key") << "' of config map '"
          << str(r, "name") << "'>\n";
      }
    }
    std::vector<json> mounts(arr(c, "volumeMounts").begin(), arr(c, "volumeMounts").end());
    std::stable_sort(mounts.begin(), mounts.end(), [](const json& a, const json& b) {
      return str(a, "mountPath") < str(b, "mountPath");
    });
    w << "    Mounts:" << (mounts.empty() ? "\t<none>" : "") << "\n";
    for (const auto& m : mounts) {
      std::string flags = m.value("readOnly", false) ? "ro" : "rw";
      if (!str(m, "subPath").empty())
        flags += ",path=" + json(str(m, "subPath")).dump();
      w << "      " << str(m, "mountPath") << " from " << str(m, "name") << " (" << flags << ")\n";
    }
  }
}

void describe_volumes(std::ostringstream& w, const json& volumes) {
  if (volumes.empty()) {
    w << "Volumes:\t<none>\n";
    return;
  }
  w << "Volumes:\n";
  for (const auto& v : volumes) {
    w << "  " << str(v, "name") << ":\n";
    if (v.contains("emptyDir")) {
      const auto& e = obj(v, "emptyDir");
      w << "    Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n";
      w << "    Medium:\t" << str(e, "medium") << "\n";
      w << "    SizeLimit:\t" << (str(e, "sizeLimit").empty() ? "<unset>" : str(e, "sizeLimit"))
        << "\n";
    } else if (v.contains("hostPath")) {
      const auto& h = obj(v, "hostPath");
      w << "    Type:\tHostPath (bare host directory volume)\n";
      w << "    Path:\t" << str(h, "path") << "\n";
      w << "    HostPathType:\t" << str(h, "type") << "\n";
    } else if (v.contains("downwardAPI")) {
      w << "    Type:\tDownwardAPI (a volume populated by information about the pod)\n";
      w << "    Items:\n";
      for (const auto& item : arr(obj(v, "downwardAPI"), "items")) {
        if (item.contains("fieldRef"))
          w << "      " << str(obj(item, "fieldRef"), "fieldPath") << " -> " << str(item, "path")
            << "\n";
        else if (item.contains("resourceFieldRef"))
          w << "      " << str(obj(item, "resourceFieldRef"), "resource") << " -> "
            << str(item, "path") << "\n";
      }
    } else {
      w << "    Type:\t<unknown>\n";
    }
  }
}

void describe_tolerations(std::ostringstream& w, const json& tolerations) {
  w << "Tolerations:\t";
  if (tolerations.empty()) {
    w << "<none>\n";
    return;
  }
  bool first = true;
  for (const auto& t : tolerations) {
    if (!first)
      w << "\t";
    first = false;
    std::string key = str(t, "key"), value = str(t, "value"), effect = str(t, "effect");
    w << key;
    if (!value.empty())
      w << "=" << value;
    if (!effect.empty())
      w << ":" << effect;
    if (str(t, "operator") == "Exists" && value.empty())
      w << (key.empty() && effect.empty() ? "op=Exists" : " op=Exists");
    if (t.contains("tolerationSeconds") && t["tolerationSeconds"].is_number_integer())
      w << " for " << t["tolerationSeconds"].get<int64_t>() << "s";
    w << "\n";
  }
}

wall_time last_seen(const json& e) {
  for (const char* key : {"lastTimestamp", "eventTime", "firstTimestamp"})
    if (auto t = parse_rfc3339(str(e, key)))
      return *t;
  return {};
}

std::vector<json> sorted_events(std::vector<json> events) {
  std::stable_sort(events.begin(), events.end(),
                   [](const json& a, const json& b) { return last_seen(a) < last_seen(b); });
  return events;
}

std::string first_seen_age(const json& e, wall_time now) {
  auto first = str(e, "eventTime");
  if (first.empty())
    first = str(e, "firstTimestamp");
  return age_since(first, now);
}

std::string last_seen_age(const json& e, wall_time now) {
  auto last = str(e, "lastTimestamp");
  if (last.empty())
    last = str(e, "eventTime");
  return age_since(last, now);
}

std::string trim(std::string s) {
  auto b = s.find_first_not_of(" \t\n\r");
  auto e = s.find_last_not_of(" \t\n\r");
  return b == std::string::npos ? std::string{} : s.substr(b, e - b + 1);
}

std::string event_source(const json& e) {
  auto s = str(obj(e, "source"), "component");
  return s.empty() ? str(e, "reportingComponent") : s;
}

}  // namespace

std::string pod_events_selector(const json& pod) {
  const auto& md = obj(pod, "metadata");
  // kubectl's PodDescriber: the reference without its kind, and for a mirror
  // pod the static pod's uid, which the kubelet records its events under.
  auto uid = str(obj(md, "annotations"), "kubernetes.io/config.mirror");
  if (uid.empty())
    uid = str(md, "uid");
  std::string selector = "involvedObject.name=" + str(md, "name") +
                         ",involvedObject.namespace=" + str(md, "namespace");
  if (!uid.empty())
    selector += ",involvedObject.uid=" + uid;
  return selector;
}

namespace {

std::string percent_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

}  // namespace

std::string tab_align(const std::string& text) {
  // Split into lines of cells; a cell is terminated by '\t', the rest of the
  // line is the last (unaligned) cell.
  std::vector<std::vector<std::string>> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::size_t start = 0;
    for (;;) {
      auto tab = line.find('\t', start);
      if (tab == std::string::npos) {
        cells.push_back(line.substr(start));
        break;
      }
      cells.push_back(line.substr(start, tab - start));
      start = tab + 1;
    }
    lines.push_back(std::move(cells));
  }
  constexpr std::size_t padding = 2;
  std::vector<std::size_t> widths;
  std::string out;
  auto write_lines = [&](std::size_t from, std::size_t to) {
    for (std::size_t i = from; i < to; ++i) {
      const auto& cells = lines[i];
      for (std::size_t j = 0; j < cells.size(); ++j) {
        out += cells[j];
        if (j < widths.size() && j + 1 < cells.size())
          out.append(widths[j] > cells[j].size() ? widths[j] - cells[j].size() : 0, ' ');
      }
      out += "\n";
    }
  };
  // Go's tabwriter.format: a column block is a run of consecutive lines that
  // all have a terminated cell in this column.
  auto format = [&](auto& self, std::size_t line0, std::size_t line1) -> void {
    std::size_t column = widths.size();
    for (std::size_t cur = line0; cur < line1; ++cur) {
      if (column + 1 >= lines[cur].size())
        continue;
      write_lines(line0, cur);
      line0 = cur;
      std::size_t width = 0;
      for (; cur < line1; ++cur) {
        if (column + 1 >= lines[cur].size())
          break;
        width = std::max(width, lines[cur][column].size() + padding);
      }
      widths.push_back(width);
      self(self, line0, cur);
      widths.pop_back();
      line0 = cur;
      if (cur >= line1)
        break;
      // `cur` has no cell here; the outer loop continues after it.
    }
    write_lines(line0, line1);
  };
  format(format, 0, lines.size());
  return out;
}

std::string describe_pod(const json& pod, const std::vector<json>& events, wall_time now) {
  const auto& md = obj(pod, "metadata");
  const auto& spec = obj(pod, "spec");
  const auto& status = obj(pod, "status");
  std::ostringstream w;
  w << "Name:\t" << str(md, "name") << "\n";
  w << "Namespace:\t" << str(md, "namespace") << "\n";
  w << "Priority:\t" << num(spec, "priority") << "\n";
  if (!str(spec, "priorityClassName").empty())
    w << "Priority Class Name:\t" << str(spec, "priorityClassName") << "\n";
  if (!str(spec, "serviceAccountName").empty())
    w << "Service Account:\t" << str(spec, "serviceAccountName") << "\n";
  if (str(spec, "nodeName").empty())
    w << "Node:\t<none>\n";
  else
    w << "Node:\t" << str(spec, "nodeName") << "/" << str(status, "hostIP") << "\n";
  if (!str(status, "startTime").empty())
    w << "Start Time:\t" << rfc1123z(str(status, "startTime")) << "\n";
  multiline_map(w, "Labels", obj(md, "labels"), "=");
  multiline_map(w, "Annotations", obj(md, "annotations"), ": ");
  if (!str(md, "deletionTimestamp").empty()) {
    auto t = parse_rfc3339(str(md, "deletionTimestamp"));
    w << "Status:\tTerminating (lasts " << (t ? human_duration(now - *t) : "<unknown>") << ")\n";
    w << "Termination Grace Period:\t" << num(md, "deletionGracePeriodSeconds") << "s\n";
  } else {
    w << "Status:\t" << str(status, "phase") << "\n";
  }
  if (!str(status, "reason").empty())
    w << "Reason:\t" << str(status, "reason") << "\n";
  if (!str(status, "message").empty())
    w << "Message:\t" << str(status, "message") << "\n";
  w << "IP:\t" << str(status, "podIP") << "\n";
  const auto& ips = arr(status, "podIPs");
  if (ips.empty()) {
    w << "IPs:\t<none>\n";
  } else {
    w << "IPs:\n";
    for (const auto& ip : ips)
      w << "  IP:\t" << str(ip, "ip") << "\n";
  }
  if (!arr(spec, "initContainers").empty())
    describe_containers(w, "Init Containers", pod, arr(spec, "initContainers"),
                        arr(status, "initContainerStatuses"));
  describe_containers(w, "Containers", pod, arr(spec, "containers"),
                      arr(status, "containerStatuses"));
  const auto& conds = arr(status, "conditions");
  if (!conds.empty()) {
    w << "Conditions:\n  Type\tStatus\n";
    for (const auto& c : conds)
      w << "  " << str(c, "type") << " \t" << str(c, "status") << " \n";
  }
  describe_volumes(w, arr(spec, "volumes"));
  w << "QoS Class:\t" << str(status, "qosClass") << "\n";
  multiline_map(w, "Node-Selectors", obj(spec, "nodeSelector"), "=");
  describe_tolerations(w, arr(spec, "tolerations"));
  if (events.empty()) {
    w << "Events:\t<none>\n";
    return tab_align(w.str());
  }
  // kubectl flushes its tab writer before the events table.
  std::string out = tab_align(w.str());
  std::ostringstream ev;
  ev << "Events:\n  Type\tReason\tAge\tFrom\tMessage\n";
  ev << "  ----\t------\t----\t----\t-------\n";
  for (const auto& e : sorted_events(events)) {
    std::string interval = first_seen_age(e, now);
    if (num(e, "count", 1) > 1)
      interval = last_seen_age(e, now) + " (x" + std::to_string(num(e, "count")) + " over " +
                 interval + ")";
    ev << "  " << str(e, "type") << "\t" << str(e, "reason") << "\t" << interval << "\t"
       << event_source(e) << "\t" << trim(str(e, "message")) << "\n";
  }
  return out + tab_align(ev.str());
}

std::string format_event_table(const std::vector<json>& events, const table_options& opts,
                               wall_time now) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> head;
  if (opts.all_namespaces)
    head.push_back("NAMESPACE");
  for (const char* h : {"LAST SEEN", "TYPE", "REASON", "OBJECT"})
    head.push_back(h);
  if (opts.wide) {
    head.push_back("SUBOBJECT");
    head.push_back("SOURCE");
  }
  head.push_back("MESSAGE");
  if (opts.wide)
    for (const char* h : {"FIRST SEEN", "COUNT", "NAME"})
      head.push_back(h);
  rows.push_back(head);
  for (const auto& e : sorted_events(events)) {
    const auto& io = obj(e, "involvedObject");
    std::string kind = str(io, "kind");
    std::transform(kind.begin(), kind.end(), kind.begin(), ::tolower);
    std::vector<std::string> row;
    if (opts.all_namespaces)
      row.push_back(str(obj(e, "metadata"), "namespace"));
    row.push_back(last_seen_age(e, now));
    row.push_back(str(e, "type"));
    row.push_back(str(e, "reason"));
    row.push_back(kind + "/" + str(io, "name"));
    if (opts.wide) {
      row.push_back(str(io, "fieldPath"));
      std::string source = event_source(e);
      auto host = str(obj(e, "source"), "host");
      row.push_back(host.empty() ? source : source + ", " + host);
    }
    row.push_back(trim(str(e, "message")));
    if (opts.wide) {
      row.push_back(first_seen_age(e, now));
      row.push_back(std::to_string(num(e, "count", 1)));
      row.push_back(str(obj(e, "metadata"), "name"));
    }
    rows.push_back(std::move(row));
  }
  return format_table(rows);
}

int describe_command(const describe_options& opts, io_streams io) {
  std::string type = opts.resource;
  std::vector<std::string> names = opts.names;
  if (auto slash = type.find('/'); slash != std::string::npos) {
    names.insert(names.begin(), type.substr(slash + 1));
    type = type.substr(0, slash);
  }
  if (api::resource_collection(type) != "pods") {
    io.err << "error: the server doesn't have a resource type \"" << type << "\"\n";
    return 1;
  }
  auto api = api_client::for_node(opts.node.data_dir);
  if (!api) {
    io.err << "error: " << api.err().message << "\n";
    return 1;
  }
  const auto& ns = opts.node.ns;
  std::vector<json> pods;
  int rc = 0;
  if (names.empty()) {
    auto resp = api->get(collection_path(ns, "pods"));
    if (!resp || !resp->ok()) {
      io.err << (resp ? server_error(*resp) : "error: " + resp.err().message) << "\n";
      return 1;
    }
    // Kept in a variable: arr() returns a reference into it (see below).
    const auto list = resp->json();
    for (const auto& p : arr(list, "items"))
      pods.push_back(p);
    if (pods.empty()) {
      io.err << "No resources found in " << ns << " namespace.\n";
      return 0;
    }
  }
  for (const auto& name : names) {
    auto resp = api->get(collection_path(ns, "pods", name));
    if (!resp) {
      io.err << "error: " << resp.err().message << "\n";
      return 1;
    }
    if (!resp->ok()) {
      auto msg = server_error(*resp);
      if (resp->status == 404 && resp->json().is_null())
        msg = "Error from server (NotFound): pods \"" + name + "\" not found";
      io.err << msg << "\n";
      rc = 1;
      continue;
    }
    pods.push_back(resp->json());
  }
  bool first = true;
  for (const auto& pod : pods) {
    const auto& md = obj(pod, "metadata");
    std::vector<json> events;
    auto resp = api->get(collection_path(str(md, "namespace"), "events") +
                         "?fieldSelector=" + percent_encode(pod_events_selector(pod)));
    if (resp && resp->ok()) {
      // A temporary's member would dangle in the loop (C++20 extends only the
      // range expression's own temporary): keep the list.
      const auto list = resp->json();
      for (const auto& e : arr(list, "items"))
        events.push_back(e);
    }
    if (!first)
      io.out << "\n\n";
    first = false;
    io.out << describe_pod(pod, events, std::chrono::system_clock::now());
  }
  return rc;
}

}  // namespace deckhand::cli

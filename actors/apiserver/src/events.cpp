#include "deckhand/apiserver/events.hpp"

#include <algorithm>
#include <cstdio>
#include <map>

#include "deckhand/api/time.hpp"
#include "deckhand/common/log.hpp"

namespace deckhand::apiserver {

using nlohmann::json;

namespace {

std::string str_at(const json& obj, const char* key) {
  if (obj.is_object() && obj.contains(key) && obj[key].is_string())
    return obj[key].get<std::string>();
  return {};
}

int64_t count_of(const json& ev) {
  if (ev.contains("count") && ev["count"].is_number_integer())
    return ev["count"].get<int64_t>();
  return 1;
}

}  // namespace

kind_info event_kind() {
  kind_info k;
  k.kind = "Event";
  k.resource = "events";
  k.singular = "event";
  k.short_names = {"ev"};
  k.status_subresource = false;
  // Kubernetes' event field set (pkg/registry/core/event), except `source`,
  // which it flattens from source.component.
  k.field_selectors = {"involvedObject.kind",       "involvedObject.namespace",
                       "involvedObject.name",       "involvedObject.uid",
                       "involvedObject.apiVersion", "involvedObject.resourceVersion",
                       "involvedObject.fieldPath",  "reason",
                       "reportingComponent",        "type"};
  k.prepare_create = [](json& obj) { return api::validate_event(obj); };
  k.prepare_update = [](const json&, json& obj) { return api::validate_event(obj); };
  return k;
}

result<std::chrono::system_clock::time_point> parse_rfc3339(const std::string& text) {
  // Events are written in UTC by every client we know; an offset means the
  // text did not come from one, and expiry works in whole seconds.
  if (text.empty() || text.back() != 'Z')
    return error{errc::invalid, "not an RFC 3339 UTC time: " + text};
  auto t = api::parse_rfc3339(text);
  if (!t)
    return t.err();
  return std::chrono::system_clock::time_point{std::chrono::floor<std::chrono::seconds>(*t)};
}

std::chrono::system_clock::time_point event_last_seen(const json& ev) {
  std::string candidates[] = {
      str_at(ev, "lastTimestamp"), str_at(ev, "eventTime"), str_at(ev, "firstTimestamp"),
      ev.contains("metadata") ? str_at(ev["metadata"], "creationTimestamp") : std::string{}};
  for (const auto& c : candidates) {
    if (c.empty())
      continue;
    if (auto t = parse_rfc3339(c))
      return *t;
  }
  return {};
}

record_stats record_events(registry& reg, const std::vector<json>& events) {
  record_stats stats;
  bool logged = false;
  auto reject = [&](const std::string& name, const error& e) {
    ++stats.rejected;
    if (!logged)
      log::get()->warn("msg=\"event rejected\" event={} error=\"{}\"", name, e.message);
    logged = true;
  };
  for (json ev : events) {
    if (!ev.is_object() || !ev.contains("metadata") || !ev["metadata"].is_object()) {
      reject("?", error{errc::invalid, "event without metadata"});
      continue;
    }
    json& md = ev["metadata"];
    std::string ns = str_at(md, "namespace");
    if (ns.empty() && ev.contains("involvedObject"))
      ns = str_at(ev["involvedObject"], "namespace");
    if (ns.empty())
      ns = "default";
    md["namespace"] = ns;
    md.erase("resourceVersion");
    std::string name = str_at(md, "name");
    auto existing = reg.get("events", ns, name);
    if (existing) {
      if (count_of(*existing) > count_of(ev) ||
          (count_of(*existing) == count_of(ev) &&
           str_at(*existing, "lastTimestamp") == str_at(ev, "lastTimestamp"))) {
        ++stats.unchanged;
        continue;
      }
      auto r = reg.update("events", ns, name, std::move(ev));
      if (r)
        ++stats.updated;
      else
        reject(ns + "/" + name, r.err());
      continue;
    }
    auto r = reg.create("events", ns, std::move(ev));
    if (r)
      ++stats.created;
    else
      reject(ns + "/" + name, r.err());
  }
  return stats;
}

std::size_t collect_events(registry& reg, const event_limits& limits,
                           std::chrono::system_clock::time_point now) {
  auto all = reg.list("events", "");
  if (!all)
    return 0;
  struct entry {
    std::chrono::system_clock::time_point seen;
    std::string name;
  };
  std::map<std::string, std::vector<entry>> by_ns;
  std::vector<std::pair<std::string, std::string>> doomed;
  for (const auto& ev : all->items) {
    std::string ns = str_at(ev["metadata"], "namespace");
    std::string name = str_at(ev["metadata"], "name");
    auto seen = event_last_seen(ev);
    if (now - seen > limits.ttl)
      doomed.emplace_back(ns, name);
    else
      by_ns[ns].push_back({seen, name});
  }
  for (auto& [ns, list] : by_ns) {
    if (list.size() <= limits.max_per_namespace)
      continue;
    std::sort(list.begin(), list.end(), [](const entry& a, const entry& b) {
      return a.seen != b.seen ? a.seen < b.seen : a.name < b.name;
    });
    for (std::size_t i = 0; i < list.size() - limits.max_per_namespace; ++i)
      doomed.emplace_back(ns, list[i].name);
  }
  std::size_t removed = 0;
  for (const auto& [ns, name] : doomed)
    if (reg.remove("events", ns, name))
      ++removed;
  if (removed > 0)
    log::get()->info("msg=\"events collected\" removed={}", removed);
  return removed;
}

json scheduled_event(const json& pod, const std::string& node,
                     std::chrono::system_clock::time_point now) {
  const json& md = pod.at("metadata");
  std::string ns = str_at(md, "namespace");
  std::string name = str_at(md, "name");
  auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, ".%llx", static_cast<unsigned long long>(nanos));
  std::string ts = format_rfc3339(now);
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", name + suffix}, {"namespace", ns}}},
          {"involvedObject",
           {{"kind", "Pod"},
            {"namespace", ns},
            {"name", name},
            {"uid", str_at(md, "uid")},
            {"apiVersion", "v1"}}},
          {"reason", "Scheduled"},
          {"message", "Successfully assigned " + ns + "/" + name + " to " + node},
          {"type", "Normal"},
          {"source", {{"component", "default-scheduler"}}},
          {"firstTimestamp", ts},
          {"lastTimestamp", ts},
          {"count", 1},
          {"reportingComponent", "default-scheduler"},
          {"reportingInstance", "default-scheduler-deckhand"}};
}

}  // namespace deckhand::apiserver

/// LIST and WATCH: lists (as Tables for kubectl get) and watch streams fed
/// from the watch cache.

#include "http_api_impl.hpp"

#include <algorithm>
#include <chrono>
#include <set>

#include "deckhand/apiserver/tables.hpp"

namespace deckhand::apiserver {

using namespace http_detail;

namespace {

/// The state of one watch stream between calls of its content provider.
struct watch_stream {
  const kind_info* kind = nullptr;
  std::string ns;
  label_selector labels;
  field_selector fields;
  std::uint64_t after = 0;
  std::vector<json> initial;
  bool initial_sent = false;
  std::chrono::steady_clock::time_point deadline;
  /// kubectl get -w: each event's object is a one-row Table.
  bool table = false;
  std::string include_object;

  /// What an event carries for `obj`.
  json event_object(const json& obj) const {
    if (!table)
      return obj;
    return make_table(kind->kind, {obj}, body_meta(obj, "resourceVersion"), include_object,
                      std::chrono::system_clock::now());
  }

  bool matches(const json& obj) const {
    if (!obj.is_object())
      return false;
    if (kind->namespaced && !ns.empty() && body_meta(obj, "namespace") != ns)
      return false;
    const json& md = obj["metadata"];
    return labels.matches(md.contains("labels") ? md["labels"] : json()) && fields.matches(obj);
  }
};

std::string watch_line(const char* type, const json& obj) {
  return json{{"type", type}, {"object", obj}}.dump() + "\n";
}

}  // namespace

void http_api::impl::list_or_watch(const kind_info& k, const std::string& ns,
                                   const httplib::Request& req, httplib::Response& res) {
  if (req.method == "POST") {
    auto body = parse_body(req, res);
    if (!body || !check_identity(k, *body, ns, {}, res))
      return;
    std::string name = body_meta(*body, "name");
    field_errors causes;
    auto out = reg.create(k.kind, ns, std::move(*body), &causes);
    if (!out && out.err().code == errc::invalid)
      return send_invalid(res, out.err(), name, k, causes);
    if (!out)
      return send_error(res, out.err(), name, k.resource);
    return send_json(res, 201, *out);
  }
  if (req.method != "GET")
    return send_status(res, 405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource");
  auto ls = parse_label_selector(param(req, "labelSelector"));
  if (!ls)
    return send_status(res, 400, "BadRequest", ls.err().message);
  std::set<std::string> allowed = k.field_selectors;
  allowed.insert("metadata.name");
  if (k.namespaced)
    allowed.insert("metadata.namespace");
  auto fs = parse_field_selector(param(req, "fieldSelector"), allowed);
  if (!fs)
    return send_status(res, 400, "BadRequest", fs.err().message);
  if (is_true(param(req, "watch")))
    return watch(k, ns, *ls, *fs, req, res);
  auto list = reg.list(k.kind, ns, *ls, *fs);
  if (!list)
    return send_error(res, list.err());
  if (wants_table(req, k))
    return send_json(res, 200,
                     make_table(k.kind, list->items, std::to_string(list->revision),
                                param(req, "includeObject"), std::chrono::system_clock::now()));
  send_json(res, 200,
            {{"kind", k.kind + "List"},
             {"apiVersion", k.api_version()},
             {"metadata", {{"resourceVersion", std::to_string(list->revision)}}},
             {"items", std::move(list->items)}});
}

void http_api::impl::watch(const kind_info& k, const std::string& ns, const label_selector& ls,
                           const field_selector& fs, const httplib::Request& req,
                           httplib::Response& res) {
  auto st = std::make_shared<watch_stream>();
  st->kind = &k;
  st->ns = ns;
  st->labels = ls;
  st->fields = fs;
  st->table = wants_table(req, k);
  st->include_object = param(req, "includeObject");
  std::string rv = param(req, "resourceVersion");
  if (rv.empty() || rv == "0") {
    // "Start at most recent": the current objects as ADDED, then changes.
    auto list = reg.list(k.kind, ns, ls, fs);
    if (!list)
      return send_error(res, list.err());
    st->initial = std::move(list->items);
    st->after = list->revision;
  } else {
    try {
      std::size_t used = 0;
      st->after = std::stoull(rv, &used);
      if (used != rv.size())
        throw std::invalid_argument(rv);
    } catch (const std::exception&) {
      return send_status(res, 400, "BadRequest", "invalid resource version: " + rv);
    }
  }
  int seconds = opts.max_watch_seconds;
  if (std::string t = param(req, "timeoutSeconds"); !t.empty()) {
    try {
      seconds = std::clamp(std::stoi(t), 1, opts.max_watch_seconds);
    } catch (const std::exception&) {
      return send_status(res, 400, "BadRequest", "invalid timeoutSeconds: " + t);
    }
  }
  st->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  res.status = 200;
  res.set_chunked_content_provider(json_type, [this, st](std::size_t, httplib::DataSink& sink) {
    auto write = [&sink](const std::string& s) { return sink.write(s.data(), s.size()); };
    if (!st->initial_sent) {
      st->initial_sent = true;
      for (const auto& obj : st->initial)
        if (!write(watch_line("ADDED", st->event_object(obj))))
          return false;
      st->initial.clear();
    }
    auto now = std::chrono::steady_clock::now();
    if (stopping || now >= st->deadline) {
      sink.done();
      return true;
    }
    // Short waits so a stopping server or a vanished client is noticed.
    auto wait = std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(500),
                                                              st->deadline - now);
    auto events =
        watches.wait_after(st->after, std::chrono::duration_cast<std::chrono::milliseconds>(wait));
    if (!events) {
      write(watch_line("ERROR", status_object(410, "Expired", events.err().message)));
      sink.done();
      return true;
    }
    for (const auto& ev : *events) {
      st->after = ev.revision;
      if (ev.kind != st->kind->kind)
        continue;
      bool now_in = st->matches(ev.object);
      bool was_in = st->matches(ev.previous);
      const char* type = nullptr;
      if (ev.type == watch_event_type::deleted)
        type = was_in ? "DELETED" : nullptr;
      else if (now_in)
        type = was_in ? "MODIFIED" : "ADDED";
      else if (was_in)
        type = "DELETED";  // left the selection
      if (type && !write(watch_line(type, st->event_object(ev.object))))
        return false;
    }
    return true;
  });
}

}  // namespace deckhand::apiserver

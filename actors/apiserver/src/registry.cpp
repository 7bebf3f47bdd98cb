#include "deckhand/apiserver/registry.hpp"

#include "deckhand/apiserver/events.hpp"
#include "deckhand/apiserver/leases.hpp"
#include "deckhand/common/log.hpp"

namespace deckhand::apiserver {

using nlohmann::json;

namespace {

std::string str_at(const json& obj, const char* key) {
  if (obj.is_object() && obj.contains(key) && obj[key].is_string())
    return obj[key].get<std::string>();
  return {};
}

std::string meta_str(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains("metadata"))
    return {};
  return str_at(obj["metadata"], key);
}

/// The object as clients see it: with its resourceVersion.
json with_revision(json obj, std::uint64_t rev) {
  obj["metadata"]["resourceVersion"] = std::to_string(rev);
  return obj;
}

error not_found(const kind_info& k, const std::string& name) {
  return {errc::not_found, k.resource + " \"" + name + "\" not found"};
}

error modified_conflict(const kind_info& k, const std::string& name) {
  return {errc::conflict, "Operation cannot be fulfilled on " + k.resource + " \"" + name +
                              "\": the object has been modified; please apply your changes to "
                              "the latest version and try again"};
}

/// Kubernetes' precondition checks on uid and resourceVersion.
error check_preconditions(const kind_info& k, const std::string& name, const stored_value& cur,
                          const std::string& uid, const std::string& rv) {
  std::string have_uid = meta_str(cur.value, "uid");
  if (!uid.empty() && uid != have_uid)
    return {errc::conflict, "Precondition failed: UID in precondition: " + uid +
                                ", UID in object meta: " + have_uid};
  if (!rv.empty() && rv != std::to_string(cur.mod_revision))
    return {errc::conflict,
            "Precondition failed: ResourceVersion in precondition: " + rv +
                ", ResourceVersion in object meta: " + std::to_string(cur.mod_revision)};
  (void)k;
  (void)name;
  return {};
}

/// Metadata that only the server sets; dropped from what a client sends.
void strip_server_metadata(json& md) {
  for (const char* f : {"uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                        "deletionGracePeriodSeconds", "generation", "selfLink", "managedFields"})
    md.erase(f);
}

kind_info pod_kind() {
  kind_info k;
  k.kind = "Pod";
  k.resource = "pods";
  k.singular = "pod";
  k.short_names = {"po"};
  k.field_selectors = {
      "spec.nodeName",           "status.phase", "spec.restartPolicy",      "spec.schedulerName",
      "spec.serviceAccountName", "status.podIP", "status.nominatedNodeName"};
  k.prepare_create = [](json& obj) { return api::default_and_validate_pod(obj); };
  k.prepare_update = [](const json& old, json& obj) { return api::validate_pod_update(old, obj); };
  return k;
}

kind_info service_kind() {
  kind_info k;
  k.kind = "Service";
  k.resource = "services";
  k.singular = "service";
  k.short_names = {"svc"};
  k.prepare_create = [](json& obj) { return api::default_and_validate_service(obj); };
  k.prepare_update = [](const json& old, json& obj) {
    return api::validate_service_update(old, obj);
  };
  return k;
}

kind_info node_kind() {
  kind_info k;
  k.kind = "Node";
  k.resource = "nodes";
  k.singular = "node";
  k.short_names = {"no"};
  k.namespaced = false;
  k.field_selectors = {"spec.unschedulable"};
  k.prepare_create = [](json& obj) { return api::default_and_validate_node(obj); };
  k.prepare_update = [](const json&, json& obj) { return api::default_and_validate_node(obj); };
  return k;
}

kind_info endpoints_kind() {
  kind_info k;
  k.kind = "Endpoints";
  k.resource = "endpoints";
  k.singular = "endpoints";
  k.short_names = {"ep"};
  k.status_subresource = false;
  k.prepare_create = [](json& obj) { return api::default_and_validate_endpoints(obj); };
  k.prepare_update = [](const json&, json& obj) {
    return api::default_and_validate_endpoints(obj);
  };
  return k;
}

kind_info endpoint_slice_kind() {
  kind_info k;
  k.kind = "EndpointSlice";
  k.group = "discovery.k8s.io";
  k.resource = "endpointslices";
  k.singular = "endpointslice";
  k.status_subresource = false;
  k.prepare_create = [](json& obj) { return api::default_and_validate_endpoint_slice(obj); };
  k.prepare_update = [](const json& old, json& obj) {
    return api::validate_endpoint_slice_update(old, obj);
  };
  return k;
}

}  // namespace

const char* to_string(watch_event_type t) {
  switch (t) {
  case watch_event_type::added: return "ADDED";
  case watch_event_type::modified: return "MODIFIED";
  case watch_event_type::deleted: return "DELETED";
  }
  return "ERROR";
}

registry::registry(store& s, registry_options opts)
    : store_(s), opts_(std::move(opts)), rng_(std::random_device{}()) {
  if (!opts_.clock)
    opts_.clock = [] { return std::chrono::system_clock::now(); };
  rebuild_allocations();
  register_kind(pod_kind());
  register_kind(service_kind());
  register_kind(node_kind());
  register_kind(endpoints_kind());
  register_kind(endpoint_slice_kind());
  register_kind(event_kind());
  register_kind(lease_kind());
}

void registry::register_kind(kind_info k) { kinds_.push_back(std::move(k)); }

void registry::rebuild_allocations() {
  if (!opts_.allocator)
    return;
  std::vector<json> services;
  for (auto& e : store_.list("services/").entries)
    services.push_back(std::move(e.data.value));
  opts_.allocator->rebuild(services);
}

const kind_info* registry::find_kind(std::string_view name) const {
  for (const auto& k : kinds_)
    if (k.kind == name || k.resource == name)
      return &k;
  return nullptr;
}

std::string registry::key(const kind_info& k, const std::string& ns,
                          const std::string& name) const {
  return k.namespaced ? k.resource + "/" + ns + "/" + name : k.resource + "/" + name;
}

std::string registry::now_rfc3339(std::chrono::seconds offset) const {
  return format_rfc3339(opts_.clock() + offset);
}

std::string registry::new_uid() {
  std::uniform_int_distribution<int> nibble(0, 15);
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 32; ++i) {
    int v = nibble(rng_);
    if (i == 12)
      v = 4;  // version 4
    if (i == 16)
      v = 8 + (v & 3);  // RFC 4122 variant
    if (i == 8 || i == 12 || i == 16 || i == 20)
      s.push_back('-');
    s.push_back(hex[v]);
  }
  return s;
}

void registry::emit(watch_event_type type, const kind_info& k, const json& obj,
                    const json& previous, std::uint64_t rev) {
  if (listeners_.empty())
    return;
  watch_event ev{type, k.kind, obj, previous, rev};
  for (auto& [id, fn] : listeners_) {
    try {
      fn(ev);
    } catch (const std::exception& e) {
      log::get()->error("apiserver registry: watch listener failed id={} error={}", id, e.what());
    }
  }
}

result<json> registry::write_locked(const kind_info& k, const std::string& key, json obj,
                                    const stored_value* prev, watch_event_type type) {
  obj["metadata"].erase("resourceVersion");
  auto rev = store_.put_if(key, obj, prev ? prev->mod_revision : 0);
  if (!rev)
    return rev.err();
  json out = with_revision(std::move(obj), *rev);
  if (!listeners_.empty())
    emit(type, k, out, prev ? with_revision(prev->value, prev->mod_revision) : json(), *rev);
  return out;
}

result<json> registry::create(std::string_view kind, const std::string& ns, json obj,
                              field_errors* causes) {
  const kind_info* k = find_kind(kind);
  if (!k)
    return error{errc::not_found, "the server could not find the requested resource (kind " +
                                      std::string(kind) + ")"};
  if (!obj.is_object())
    return error{errc::invalid, k->kind + " is invalid: body must be a JSON object"};
  try {
    if (!obj.contains("apiVersion"))
      obj["apiVersion"] = k->api_version();
    if (!obj.contains("kind"))
      obj["kind"] = k->kind;
    if (obj["apiVersion"] != k->api_version() || obj["kind"] != k->kind)
      return error{errc::invalid, "the object provided is of kind " + obj["kind"].dump() +
                                      " and apiVersion " + obj["apiVersion"].dump() +
                                      ", expected kind \"" + k->kind + "\" and apiVersion \"" +
                                      k->api_version() + "\""};
    if (!obj.contains("metadata") || obj["metadata"].is_null())
      obj["metadata"] = json::object();
    if (!obj["metadata"].is_object())
      return error{errc::invalid, k->kind + " is invalid: metadata: must be an object"};
    json& md = obj["metadata"];
    strip_server_metadata(md);
    if (k->namespaced) {
      std::string obj_ns = str_at(md, "namespace");
      if (!ns.empty() && !obj_ns.empty() && obj_ns != ns)
        return error{errc::invalid, "the namespace of the provided object does not match the "
                                    "namespace sent on the request"};
      md["namespace"] = !ns.empty() ? ns : (!obj_ns.empty() ? obj_ns : "default");
    } else {
      md.erase("namespace");
    }

    std::lock_guard lock(mu_);
    std::string name = str_at(md, "name");
    std::string generate = str_at(md, "generateName");
    if (name.empty() && !generate.empty()) {
      static const char* alphabet = "bcdfghjklmnpqrstvwxz2456789";
      std::uniform_int_distribution<int> pick(0, 26);
      for (int attempt = 0; attempt < 8; ++attempt) {
        name = generate;
        for (int i = 0; i < 5; ++i)
          name.push_back(alphabet[pick(rng_)]);
        if (!store_.get(key(*k, str_at(md, "namespace"), name)))
          break;
      }
      md["name"] = name;
    }
    field_errors errs = k->prepare_create(obj);
    if (!errs.empty()) {
      if (causes)
        *causes = errs;
      return error{errc::invalid, api::invalid_message(k->kind, name, errs)};
    }
    std::string ns_final = str_at(obj["metadata"], "namespace");
    std::string store_key = key(*k, ns_final, name);
    if (store_.get(store_key))
      return error{errc::already_exists, k->resource + " \"" + name + "\" already exists"};

    json& meta = obj["metadata"];
    meta["uid"] = new_uid();
    meta["creationTimestamp"] = now_rfc3339();
    meta["generation"] = 1;
    if (k->kind == "Service" && opts_.allocator) {
      auto taken = opts_.allocator->prepare(nullptr, obj, errs);
      if (!taken) {
        if (taken.err().code != errc::invalid)
          return taken.err();
        if (causes)
          *causes = errs;
        return error{errc::invalid, api::invalid_message(k->kind, name, errs)};
      }
      auto out = write_locked(*k, store_key, std::move(obj), nullptr, watch_event_type::added);
      if (out)
        opts_.allocator->commit(*taken);
      else
        opts_.allocator->abort(*taken);
      return out;
    }
    return write_locked(*k, store_key, std::move(obj), nullptr, watch_event_type::added);
  } catch (const json::exception& e) {
    return error{errc::invalid, k->kind + " is invalid: " + e.what()};
  }
}

result<json> registry::get(std::string_view kind, const std::string& ns,
                           const std::string& name) const {
  const kind_info* k = find_kind(kind);
  if (!k)
    return error{errc::not_found, "the server could not find the requested resource"};
  auto v = store_.get(key(*k, ns, name));
  if (!v)
    return not_found(*k, name);
  return with_revision(std::move(v->value), v->mod_revision);
}

result<object_list> registry::list(std::string_view kind, const std::string& ns,
                                   const std::string& label_selector_text,
                                   const std::string& field_selector_text) const {
  const kind_info* k = find_kind(kind);
  if (!k)
    return error{errc::not_found, "the server could not find the requested resource"};
  auto labels = parse_label_selector(label_selector_text);
  if (!labels)
    return labels.err();
  std::set<std::string> allowed = k->field_selectors;
  allowed.insert("metadata.name");
  if (k->namespaced)
    allowed.insert("metadata.namespace");
  auto fields = parse_field_selector(field_selector_text, allowed);
  if (!fields)
    return fields.err();
  return list(kind, ns, *labels, *fields);
}

result<object_list> registry::list(std::string_view kind, const std::string& ns,
                                   const label_selector& labels,
                                   const field_selector& fields) const {
  const kind_info* k = find_kind(kind);
  if (!k)
    return error{errc::not_found, "the server could not find the requested resource"};
  std::string prefix = k->resource + "/";
  if (k->namespaced && !ns.empty())
    prefix += ns + "/";
  stored_list sl = store_.list(prefix);
  object_list out;
  out.revision = sl.revision;
  for (auto& e : sl.entries) {
    json obj = with_revision(std::move(e.data.value), e.data.mod_revision);
    const json& md = obj["metadata"];
    if (!labels.matches(md.contains("labels") ? md["labels"] : json()))
      continue;
    if (!fields.matches(obj))
      continue;
    out.items.push_back(std::move(obj));
  }
  return out;
}

result<json> registry::update(std::string_view kind, const std::string& ns, const std::string& name,
                              json obj, field_errors* causes) {
  const kind_info* k = find_kind(kind);
  if (!k)
    return error{errc::not_found, "the server could not find the requested resource"};
  if (!obj.is_object())
    return error{errc::invalid, k->kind + " is invalid: body must be a JSON object"};
  try {
    std::lock_guard lock(mu_);
    std::string store_key = key(*k, ns, name);
    auto cur = store_.get(store_key);
    if (!cur)
      return not_found(*k, name);
    const json& old = cur->value;
    if (!obj.contains("metadata") || !obj["metadata"].is_object())
      obj["metadata"] = json::object();
    json& md = obj["metadata"];
    std::string rv = str_at(md, "resourceVersion");
    if (!rv.empty() && rv != std::to_string(cur->mod_revision))
      return modified_conflict(*k, name);
    std::string uid = str_at(md, "uid");
    if (!uid.empty() && uid != meta_str(old, "uid"))
      return error{errc::conflict, "Precondition failed: UID in precondition: " + uid +
                                       ", UID in object meta: " + meta_str(old, "uid")};
    std::string body_name = str_at(md, "name");
    if (!body_name.empty() && body_name != name)
      return error{errc::invalid, "the name of the object (" + body_name +
                                      ") does not match the name on the URL (" + name + ")"};
    if (!obj.contains("apiVersion"))
      obj["apiVersion"] = k->api_version();
    if (!obj.contains("kind"))
      obj["kind"] = k->kind;
    if (obj["apiVersion"] != k->api_version() || obj["kind"] != k->kind)
      return error{errc::invalid, "the object provided is of kind " + obj["kind"].dump() +
                                      ", expected kind \"" + k->kind + "\" and apiVersion \"" +
                                      k->api_version() + "\""};
    strip_server_metadata(md);
    md["name"] = name;
    if (k->namespaced)
      md["namespace"] = ns;
    else
      md.erase("namespace");
    for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation"})
      if (old["metadata"].contains(f))
        md[f] = old["metadata"][f];
    if (k->status_subresource) {
      if (old.contains("status"))
        obj["status"] = old["status"];
      else
        obj.erase("status");
    }
    json status_before = obj.contains("status") ? obj["status"] : json();
    field_errors errs = k->prepare_update(old, obj);
    if (!errs.empty()) {
      if (causes)
        *causes = errs;
      return error{errc::invalid, api::invalid_message(k->kind, name, errs)};
    }
    // Defaulting may rewrite status (pods, services); a PUT must not.
    if (k->status_subresource) {
      if (status_before.is_null())
        obj.erase("status");
      else
        obj["status"] = status_before;
    }
    std::optional<service_allocation> taken;
    if (k->kind == "Service" && opts_.allocator) {
      auto t = opts_.allocator->prepare(&old, obj, errs);
      if (!t) {
        if (t.err().code != errc::invalid)
          return t.err();
        if (causes)
          *causes = errs;
        return error{errc::invalid, api::invalid_message(k->kind, name, errs)};
      }
      taken = std::move(*t);
    }
    if (old.contains("spec") && obj.value("spec", json()) != old["spec"])
      md["generation"] = old["metadata"].value("generation", 1) + 1;
    if (obj == old) {
      if (taken)
        opts_.allocator->abort(*taken);
      return with_revision(obj, cur->mod_revision);
    }
    auto out = write_locked(*k, store_key, std::move(obj), &*cur, watch_event_type::modified);
    if (taken && out)
      opts_.allocator->commit(*taken);
    else if (taken)
      opts_.allocator->abort(*taken);
    return out;
  } catch (const json::exception& e) {
    return error{errc::invalid, k->kind + " \"" + name + "\" is invalid: " + e.what()};
  }
}

result<json> registry::update_status(std::string_view kind, const std::string& ns,
                                     const std::string& name, json status,
                                     const std::string& uid_precondition,
                                     const std::string& resource_version_precondition) {
  const kind_info* k = find_kind(kind);
  if (!k)
    return error{errc::not_found, "the server could not find the requested resource"};
  if (!status.is_object() && !status.is_null())
    return error{errc::invalid,
                 k->kind + " \"" + name + "\" is invalid: status: must be an object"};
  std::lock_guard lock(mu_);
  std::string store_key = key(*k, ns, name);
  auto cur = store_.get(store_key);
  if (!cur)
    return not_found(*k, name);
  if (!resource_version_precondition.empty() &&
      resource_version_precondition != std::to_string(cur->mod_revision))
    return modified_conflict(*k, name);
  if (auto err = check_preconditions(*k, name, *cur, uid_precondition, {}))
    return err;
  json obj = cur->value;
  if (status.is_null())
    obj.erase("status");
  else
    obj["status"] = std::move(status);
  if (obj == cur->value)
    return with_revision(std::move(obj), cur->mod_revision);
  return write_locked(*k, store_key, std::move(obj), &*cur, watch_event_type::modified);
}

result<delete_result> registry::remove_locked(const kind_info& k, const std::string& key,
                                              const stored_value& cur) {
  auto rev = store_.remove_if(key, cur.mod_revision);
  if (!rev)
    return rev.err();
  json out = with_revision(cur.value, *rev);
  if (!listeners_.empty())
    emit(watch_event_type::deleted, k, out, with_revision(cur.value, cur.mod_revision), *rev);
  if (k.kind == "Service" && opts_.allocator)
    opts_.allocator->release(out);
  return delete_result{std::move(out), true};
}

result<delete_result> registry::remove(std::string_view kind, const std::string& ns,
                                       const std::string& name, const delete_options& opts) {
  const kind_info* k = find_kind(kind);
  if (!k)
    return error{errc::not_found, "the server could not find the requested resource"};
  std::lock_guard lock(mu_);
  std::string store_key = key(*k, ns, name);
  auto cur = store_.get(store_key);
  if (!cur)
    return not_found(*k, name);
  if (auto err = check_preconditions(*k, name, *cur, opts.uid_precondition,
                                     opts.resource_version_precondition))
    return err;
  if (k->kind != "Pod")
    return remove_locked(*k, store_key, *cur);

  const json& pod = cur->value;
  json spec = pod.value("spec", json::object());
  std::string phase = str_at(pod.value("status", json::object()), "phase");
  std::int64_t grace = 30;
  if (opts.grace_period_seconds)
    grace = *opts.grace_period_seconds < 0 ? 1 : *opts.grace_period_seconds;
  else if (spec.contains("terminationGracePeriodSeconds") &&
           spec["terminationGracePeriodSeconds"].is_number_integer())
    grace = std::max<std::int64_t>(0, spec["terminationGracePeriodSeconds"].get<std::int64_t>());
  // Nothing runs an unbound or finished pod, so there is nobody to wait for.
  if (str_at(spec, "nodeName").empty() || phase == "Succeeded" || phase == "Failed")
    grace = 0;
  // A mirror pod only shows a static pod (which keeps running): it goes at
  // once, and its kubelet creates it again.
  if (pod.contains(json::json_pointer("/metadata/annotations/kubernetes.io~1config.mirror")))
    grace = 0;
  if (grace == 0)
    return remove_locked(*k, store_key, *cur);

  json obj = pod;
  json& md = obj["metadata"];
  std::string deletion_at = now_rfc3339(std::chrono::seconds{grace});
  if (md.contains("deletionTimestamp")) {
    // A repeated delete may only shorten the grace period; the deadline
    // moves by the difference (Kubernetes' BeforeDelete).
    std::int64_t have = md.value("deletionGracePeriodSeconds", std::int64_t{0});
    if (grace >= have)
      return delete_result{with_revision(pod, cur->mod_revision), false};
    if (auto was = parse_rfc3339(str_at(md, "deletionTimestamp")))
      deletion_at = format_rfc3339(*was - std::chrono::seconds{have - grace});
  }
  md["deletionTimestamp"] = deletion_at;
  md["deletionGracePeriodSeconds"] = grace;
  md["generation"] = md.value("generation", 1) + 1;
  auto out = write_locked(*k, store_key, std::move(obj), &*cur, watch_event_type::modified);
  if (!out)
    return out.err();
  log::get()->info("apiserver registry: graceful pod delete ns={} name={} uid={} grace={}", ns,
                   name, meta_str(*out, "uid"), grace);
  return delete_result{std::move(*out), false};
}

result<json> registry::finalize_pod_deletion(const std::string& ns, const std::string& name,
                                             const std::string& uid) {
  const kind_info* k = find_kind("Pod");
  std::lock_guard lock(mu_);
  std::string store_key = key(*k, ns, name);
  auto cur = store_.get(store_key);
  if (!cur)
    return not_found(*k, name);
  if (auto err = check_preconditions(*k, name, *cur, uid, {}))
    return err;
  auto out = remove_locked(*k, store_key, *cur);
  if (!out)
    return out.err();
  return std::move(out->object);
}

result<json> registry::bind(const std::string& ns, const std::string& name,
                            const std::string& node_name) {
  const kind_info* k = find_kind("Pod");
  auto bad_node = api::check_dns1123_subdomain(node_name);
  if (!bad_node.empty())
    return error{errc::invalid, "Binding \"" + name +
                                    "\" is invalid: target.name: Invalid value: " +
                                    json(node_name).dump() + ": " + bad_node.front()};
  std::lock_guard lock(mu_);
  std::string store_key = key(*k, ns, name);
  auto cur = store_.get(store_key);
  if (!cur)
    return not_found(*k, name);
  json obj = cur->value;
  if (obj["metadata"].contains("deletionTimestamp"))
    return error{errc::conflict, "Operation cannot be fulfilled on pods/binding \"" + name +
                                     "\": pod " + name +
                                     " is being deleted, cannot be assigned to a host"};
  std::string have = str_at(obj["spec"], "nodeName");
  if (!have.empty())
    return error{errc::conflict, "Operation cannot be fulfilled on pods/binding \"" + name +
                                     "\": pod " + name + " is already assigned to node \"" + have +
                                     "\""};
  obj["spec"]["nodeName"] = node_name;
  json& status = obj["status"];
  if (!status.is_object())
    status = json::object();
  if (!status.contains("conditions") || !status["conditions"].is_array())
    status["conditions"] = json::array();
  status["conditions"].push_back({{"type", "PodScheduled"},
                                  {"status", "True"},
                                  {"lastProbeTime", nullptr},
                                  {"lastTransitionTime", now_rfc3339()}});
  return write_locked(*k, store_key, std::move(obj), &*cur, watch_event_type::modified);
}

subscription registry::subscribe(watch_listener listener) {
  std::lock_guard lock(mu_);
  std::uint64_t id = next_listener_id_++;
  listeners_.emplace(id, std::move(listener));
  return {id, store_.revision()};
}

void registry::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(mu_);
  listeners_.erase(id);
}

std::set<std::string> registry::namespaces() const {
  std::set<std::string> out = {"default", "kube-node-lease", "kube-public", "kube-system"};
  for (const auto& k : kinds_) {
    if (!k.namespaced)
      continue;
    for (const auto& e : store_.list(k.resource + "/").entries)
      out.insert(meta_str(e.data.value, "namespace"));
  }
  out.erase("");
  return out;
}

}  // namespace deckhand::apiserver

#include "deckhand/apiserver/mirror_pods.hpp"

#include <string>

#include "deckhand/common/log.hpp"
#include "deckhand/messages/json.hpp"

namespace deckhand::apiserver {

namespace {

using nlohmann::json;

std::string mirror_hash(const json& pod) {
  const auto* md = pod.is_object() && pod.contains("metadata") ? &pod["metadata"] : nullptr;
  if (!md || !md->is_object() || !md->contains("annotations") || !(*md)["annotations"].is_object())
    return {};
  const auto& a = (*md)["annotations"];
  auto it = a.find(mirror_annotation);
  return it != a.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

std::string meta(const json& pod, const char* key) {
  if (!pod.contains("metadata") || !pod["metadata"].is_object())
    return {};
  auto it = pod["metadata"].find(key);
  return it != pod["metadata"].end() && it->is_string() ? it->get<std::string>() : std::string{};
}

std::uint64_t revision_of(const json& obj) {
  try {
    return std::stoull(meta(obj, "resourceVersion"));
  } catch (...) {
    return 0;
  }
}

}  // namespace

bool is_mirror_pod(const json& pod) {
  return pod.is_object() && pod.contains("metadata") && pod["metadata"].is_object() &&
         pod["metadata"].contains("annotations") && pod["metadata"]["annotations"].is_object() &&
         pod["metadata"]["annotations"].contains(mirror_annotation);
}

result<std::uint64_t> apply_mirror_pod_update(registry& reg, const wire::mirror_pod_update& u) {
  const auto& md = u.pod_.metadata;
  auto ns = md.namespace_.empty() ? std::string("default") : md.namespace_;
  if (md.name.empty())
    return error{errc::invalid, "mirror_pod_update: pod.metadata.name: Required value"};
  auto want = md.annotations.count(mirror_annotation) ? md.annotations.at(mirror_annotation)
                                                      : std::string{};
  auto existing = reg.get("pods", ns, md.name);
  if (!existing && existing.err().code != errc::not_found)
    return existing.err();
  if (existing && !is_mirror_pod(*existing))
    return error{errc::already_exists, "pods \"" + md.name + "\" already exists in namespace " +
                                           ns + " and is not a mirror pod"};
  if (u.remove) {
    if (!existing || (!want.empty() && mirror_hash(*existing) != want))
      return reg.revision();
    delete_options opts;
    opts.grace_period_seconds = 0;
    opts.uid_precondition = meta(*existing, "uid");
    auto r = reg.remove("pods", ns, md.name, opts);
    if (!r && r.err().code == errc::not_found)
      return reg.revision();
    if (!r)
      return r.err();
    log::get()->info("msg=\"mirror pod removed\" pod={}/{}", ns, md.name);
    return revision_of(r->object);
  }
  if (want.empty())
    return error{errc::invalid, "mirror_pod_update: pod.metadata.annotations[" +
                                    std::string(mirror_annotation) + "]: Required value"};
  if (md.namespace_.empty() || u.pod_.spec.node_name.empty())
    return error{errc::invalid, "mirror_pod_update: a mirror pod needs metadata.namespace and "
                                "spec.nodeName"};
  if (existing) {
    if (mirror_hash(*existing) == want && meta(*existing, "deletionTimestamp").empty())
      return revision_of(*existing);
    // Another version of the static pod (or one being deleted): replace it.
    delete_options opts;
    opts.grace_period_seconds = 0;
    opts.uid_precondition = meta(*existing, "uid");
    auto r = reg.remove("pods", ns, md.name, opts);
    if (!r && r.err().code != errc::not_found)
      return r.err();
  }
  auto obj = wire::to_json(u.pod_);
  obj["apiVersion"] = "v1";
  obj["kind"] = "Pod";
  for (const char* f : {"uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                        "deletionGracePeriodSeconds", "generation"})
    obj["metadata"].erase(f);
  field_errors causes;
  auto created = reg.create("pods", ns, std::move(obj), &causes);
  if (!created)
    return created.err();
  log::get()->info("msg=\"mirror pod created\" pod={}/{} uid={} hash={}", ns, md.name,
                   meta(*created, "uid"), want);
  return revision_of(*created);
}

result<nlohmann::json> update_pod_status(registry& reg, const wire::pod_status_update& u) {
  auto status = wire::to_json(u.status);
  auto res = reg.update_status("pods", u.namespace_, u.name, status, u.uid);
  if (res || res.err().code != errc::conflict || u.uid.empty())
    return res;
  auto cur = reg.get("pods", u.namespace_, u.name);
  if (!cur || mirror_hash(*cur) != u.uid)
    return res;
  return reg.update_status("pods", u.namespace_, u.name, status, meta(*cur, "uid"));
}

}  // namespace deckhand::apiserver

#include "deckhand/kubelet/static_pods.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "deckhand/api/validation.hpp"
#include "deckhand/api/yaml.hpp"
#include "deckhand/common/sha256.hpp"
#include "deckhand/messages/json.hpp"

namespace deckhand::kubelet {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string annotation(const wire::pod& p, const char* key) {
  auto it = p.metadata.annotations.find(key);
  return it == p.metadata.annotations.end() ? std::string{} : it->second;
}

}  // namespace

std::string pod_key(const wire::pod& p) {
  return (p.metadata.namespace_.empty() ? std::string("default") : p.metadata.namespace_) + "/" +
         p.metadata.name;
}

std::string static_pod_hash(std::string_view content, const std::string& node_name) {
  // The node name and a separator first, so that no content can collide with
  // another node's manifest.
  std::string input = lower(node_name);
  input.push_back('\0');
  input.append(content);
  auto md = sha256::of(input);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < 16; ++i) {
    out.push_back(hex[md[i] >> 4]);
    out.push_back(hex[md[i] & 0xf]);
  }
  return out;
}

result<wire::pod> parse_static_pod(std::string_view content, const std::string& file,
                                   const std::string& node_name) {
  auto docs = api::parse_documents(content, file);
  if (!docs)
    return docs.err();
  if (docs->size() != 1)
    return error{errc::invalid, file + ": expected exactly one Pod per file, found " +
                                    std::to_string(docs->size()) + " documents"};
  json obj = std::move(docs->front());
  if (!obj.is_object())
    return error{errc::invalid, file + ": expected a Pod object"};
  auto kind = obj.value("kind", json()).is_string() ? obj["kind"].get<std::string>() : "";
  auto version =
      obj.value("apiVersion", json()).is_string() ? obj["apiVersion"].get<std::string>() : "";
  if (kind != "Pod" || version != "v1")
    return error{errc::invalid, file + ": expected kind Pod in apiVersion v1, got kind \"" + kind +
                                    "\" in \"" + version + "\""};
  if (!obj.contains("metadata") || !obj["metadata"].is_object())
    return error{errc::invalid, file + ": metadata.name: Required value"};
  json& md = obj["metadata"];
  auto name = md.value("name", json()).is_string() ? md["name"].get<std::string>() : "";
  if (name.empty())
    return error{errc::invalid, file + ": metadata.name: Required value"};
  auto hash = static_pod_hash(content, node_name);
  md["name"] = name + "-" + lower(node_name);
  if (!md.value("namespace", json()).is_string() || md["namespace"].get<std::string>().empty())
    md["namespace"] = "default";
  // Server-owned fields have no meaning in a file.
  for (const char* f : {"resourceVersion", "creationTimestamp", "deletionTimestamp",
                        "deletionGracePeriodSeconds", "generation"})
    md.erase(f);
  md["uid"] = hash;
  if (!md.contains("annotations") || !md["annotations"].is_object())
    md["annotations"] = json::object();
  md["annotations"][config_hash_annotation] = hash;
  md["annotations"][config_source_annotation] = "file";
  md["annotations"].erase(config_mirror_annotation);
  if (!obj.contains("spec") || !obj["spec"].is_object())
    obj["spec"] = json::object();
  obj["spec"]["nodeName"] = lower(node_name);
  obj.erase("status");
  auto errs = api::default_and_validate_pod(obj);
  if (!errs.empty())
    return error{errc::invalid,
                 file + ": " + api::invalid_message("Pod", md["name"].get<std::string>(), errs)};
  auto pod = wire::from_json<wire::pod>(obj);
  if (!pod)
    return error{errc::invalid, file + ": " + pod.err().message};
  pod->metadata.uid = hash;
  return pod;
}

static_pod_set desired_static_pods(const std::vector<manifest_file>& files,
                                   const std::string& node_name) {
  static_pod_set out;
  std::map<std::string, std::string> by_key;  // namespace/name -> file
  for (const auto& f : files) {
    if (!f.read_error.empty()) {
      out.problems.push_back({f.name, f.read_error});
      continue;
    }
    auto p = parse_static_pod(f.content, f.name, node_name);
    if (!p) {
      out.problems.push_back({f.name, p.err().message});
      continue;
    }
    auto key = pod_key(*p);
    auto [it, fresh] = by_key.emplace(key, f.name);
    if (!fresh) {
      out.problems.push_back({f.name, f.name + ": pod " + key + " is already defined by " +
                                          it->second + "; this file is ignored"});
      continue;
    }
    out.pods.push_back({f.name, std::move(*p)});
  }
  return out;
}

result<std::vector<manifest_file>> read_manifest_dir(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec))
    return error{errc::not_found, dir.string() + ": no such directory"};
  fs::directory_iterator it(dir, ec);
  if (ec)
    return error{errc::internal, dir.string() + ": " + ec.message()};
  std::vector<fs::path> paths;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec)
      return error{errc::internal, dir.string() + ": " + ec.message()};
    auto name = it->path().filename().string();
    if (name.empty() || name.front() == '.')
      continue;
    std::error_code type_ec;
    if (!fs::is_regular_file(it->path(), type_ec))
      continue;
    paths.push_back(it->path());
    if (paths.size() >= max_manifest_files)
      break;
  }
  std::sort(paths.begin(), paths.end());
  std::vector<manifest_file> out;
  out.reserve(paths.size());
  for (const auto& p : paths) {
    manifest_file f;
    f.name = p.filename().string();
    std::error_code size_ec;
    auto size = fs::file_size(p, size_ec);
    if (size_ec) {
      f.read_error = f.name + ": " + size_ec.message();
    } else if (size > max_manifest_bytes) {
      f.read_error =
          f.name + ": manifest is larger than " + std::to_string(max_manifest_bytes) + " bytes";
    } else {
      std::ifstream in(p, std::ios::binary);
      std::ostringstream ss;
      ss << in.rdbuf();
      if (!in && !in.eof())
        f.read_error = f.name + ": cannot read the file";
      else
        f.content = ss.str();
    }
    out.push_back(std::move(f));
  }
  return out;
}

bool is_mirror_pod(const wire::pod& p) {
  return p.metadata.annotations.count(config_mirror_annotation) > 0;
}

wire::pod mirror_pod_of(const wire::pod& static_pod) {
  wire::pod m = static_pod;
  m.metadata.uid.clear();
  m.metadata.resource_version.clear();
  m.metadata.creation_timestamp.clear();
  m.status = {};
  m.metadata.annotations[config_mirror_annotation] = static_pod.metadata.uid;
  return m;
}

// -- mirror_reconciler --------------------------------------------------------------

void mirror_reconciler::set_desired(const std::vector<wire::pod>& static_pods) {
  desired_.clear();
  for (const auto& p : static_pods)
    desired_[pod_key(p)] = p;
}

void mirror_reconciler::observe(const std::string& key, const wire::pod* mirror,
                                uint64_t revision) {
  auto& o = observed_[key];
  if (revision < o.revision)
    return;  // older than what we know
  o.revision = revision;
  o.present = mirror != nullptr;
  o.deleting = mirror && !mirror->metadata.deletion_timestamp.empty();
  o.hash = mirror ? annotation(*mirror, config_mirror_annotation) : std::string{};
}

void mirror_reconciler::observe_snapshot(const std::vector<wire::pod>& mirrors, uint64_t revision) {
  std::set<std::string> listed;
  for (const auto& m : mirrors) {
    auto key = pod_key(m);
    listed.insert(key);
    observe(key, &m, revision);
  }
  for (auto& [key, o] : observed_)
    if (!listed.count(key))
      observe(key, nullptr, revision);
}

void mirror_reconciler::observe_event(const std::string& type, const wire::pod& mirror,
                                      uint64_t revision) {
  observe(pod_key(mirror), type == "DELETED" ? nullptr : &mirror, revision);
}

void mirror_reconciler::acknowledged(const action& a, uint64_t revision) {
  inflight_.erase(a.key);
  auto& c = confirmed_[a.key];
  c.hash = a.update.remove ? std::string{} : a.hash;
  c.revision = revision;
}

void mirror_reconciler::failed(const std::string& key) {
  inflight_.erase(key);
  failed_.insert(key);
}

std::vector<mirror_reconciler::action> mirror_reconciler::next() {
  std::vector<action> out;
  std::set<std::string> keys;
  for (const auto& [k, p] : desired_)
    keys.insert(k);
  for (const auto& [k, o] : observed_)
    if (o.present)
      keys.insert(k);
  for (const auto& key : keys) {
    if (inflight_.count(key) || failed_.count(key))
      continue;
    auto o_it = observed_.find(key);
    observed o = o_it == observed_.end() ? observed{} : o_it->second;
    auto c_it = confirmed_.find(key);
    auto d_it = desired_.find(key);
    if (d_it != desired_.end()) {
      const auto& hash = d_it->second.metadata.uid;
      if (o.present && !o.deleting && o.hash == hash)
        continue;
      // Our own write that the feed has not shown yet.
      if (c_it != confirmed_.end() && c_it->second.hash == hash &&
          c_it->second.revision >= o.revision)
        continue;
      action a;
      a.key = key;
      a.hash = hash;
      a.update.pod_ = mirror_pod_of(d_it->second);
      out.push_back(std::move(a));
    } else {
      if (!o.present)
        continue;
      if (c_it != confirmed_.end() && c_it->second.hash.empty() &&
          c_it->second.revision >= o.revision)
        continue;
      action a;
      a.key = key;
      a.hash = o.hash;
      auto slash = key.find('/');
      a.update.pod_.metadata.namespace_ = key.substr(0, slash);
      a.update.pod_.metadata.name = key.substr(slash + 1);
      a.update.pod_.metadata.annotations[config_mirror_annotation] = o.hash;
      a.update.remove = true;
      out.push_back(std::move(a));
    }
  }
  for (const auto& a : out)
    inflight_.insert(a.key);
  return out;
}

}  // namespace deckhand::kubelet

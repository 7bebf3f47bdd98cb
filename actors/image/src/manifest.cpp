#include "manifest.hpp"

#include <nlohmann/json.hpp>

#include "deckhand/image/reference.hpp"

namespace deckhand::image::detail {

namespace {

using json = nlohmann::json;

error invalid(const std::string& what, const std::string& why) {
  return {errc::invalid, what + ": " + why};
}

std::string str_or(const json& j, const char* key, std::string def = {}) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return def;
  if (!it->is_string())
    throw std::runtime_error(std::string(key) + " is not a string");
  return it->get<std::string>();
}

std::vector<std::string> strings_or_empty(const json& j, const char* key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null())
    return out;
  if (!it->is_array())
    throw std::runtime_error(std::string(key) + " is not an array");
  for (const auto& v : *it) {
    if (!v.is_string())
      throw std::runtime_error(std::string(key) + " holds a non-string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

descriptor parse_descriptor(const json& j) {
  if (!j.is_object())
    throw std::runtime_error("descriptor is not an object");
  descriptor d;
  d.media_type = str_or(j, "mediaType");
  d.digest = str_or(j, "digest");
  if (!is_sha256_digest(d.digest))
    throw std::runtime_error("unsupported or malformed digest \"" + d.digest + "\"");
  auto size = j.find("size");
  if (size == j.end() || !size->is_number_integer() || size->get<std::int64_t>() < 0)
    throw std::runtime_error("descriptor size missing or negative");
  d.size = size->get<std::uint64_t>();
  if (auto a = j.find("annotations"); a != j.end() && a->is_object())
    for (const auto& [k, v] : a->items())
      if (v.is_string())
        d.annotations[k] = v.get<std::string>();
  if (auto p = j.find("platform"); p != j.end() && p->is_object()) {
    d.os = str_or(*p, "os");
    d.architecture = str_or(*p, "architecture");
    d.variant = str_or(*p, "variant");
  }
  return d;
}

json render_descriptor(const descriptor& d) {
  json j = {{"mediaType", d.media_type}, {"digest", d.digest}, {"size", d.size}};
  if (!d.annotations.empty())
    j["annotations"] = d.annotations;
  if (!d.os.empty()) {
    j["platform"] = {{"os", d.os}, {"architecture", d.architecture}};
    if (!d.variant.empty())
      j["platform"]["variant"] = d.variant;
  }
  return j;
}

template <class F>
auto guarded(const char* what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return invalid(what, e.what());
  }
}

json parse_object(const std::string& text, const char* what) {
  json j = json::parse(text);
  if (!j.is_object())
    throw std::runtime_error(std::string(what) + " is not a JSON object");
  return j;
}

json config_to_json(const image_config& c) {
  return {{"entrypoint", c.entrypoint},     {"cmd", c.cmd},   {"env", c.env},
          {"workingDir", c.working_dir},    {"user", c.user}, {"stopSignal", c.stop_signal},
          {"exposedPorts", c.exposed_ports}};
}

image_config config_from_json(const json& j) {
  image_config c;
  c.entrypoint = strings_or_empty(j, "entrypoint");
  c.cmd = strings_or_empty(j, "cmd");
  c.env = strings_or_empty(j, "env");
  c.working_dir = str_or(j, "workingDir");
  c.user = str_or(j, "user");
  c.stop_signal = str_or(j, "stopSignal");
  c.exposed_ports = strings_or_empty(j, "exposedPorts");
  return c;
}

}  // namespace

bool is_index_type(const std::string& mt) {
  return mt == media::oci_index || mt == media::docker_list;
}

bool is_manifest_type(const std::string& mt) {
  return mt == media::oci_manifest || mt == media::docker_manifest;
}

bool is_layer_type(const std::string& mt) {
  static const char* const known[] = {
      media::oci_layer,
      media::oci_layer_gzip,
      media::oci_layer_zstd,
      "application/vnd.oci.image.layer.nondistributable.v1.tar",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
      "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
      "application/vnd.docker.image.rootfs.diff.tar.gzip",
      "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  };
  for (const char* k : known)
    if (mt == k)
      return true;
  return false;
}

std::string sniff_media_type(const std::string& text) {
  try {
    json j = json::parse(text);
    if (!j.is_object())
      return {};
    if (auto mt = str_or(j, "mediaType"); !mt.empty())
      return mt;
    if (j.contains("manifests"))
      return media::oci_index;
    if (j.contains("layers"))
      return media::oci_manifest;
  } catch (const std::exception&) {
  }
  return {};
}

result<index_doc> parse_index(const std::string& text) {
  return guarded("image index", [&]() -> result<index_doc> {
    json j = parse_object(text, "image index");
    index_doc idx;
    auto m = j.find("manifests");
    if (m == j.end() || !m->is_array())
      throw std::runtime_error("no manifests array");
    for (const auto& d : *m)
      idx.manifests.push_back(parse_descriptor(d));
    return idx;
  });
}

result<manifest_doc> parse_manifest(const std::string& text) {
  return guarded("image manifest", [&]() -> result<manifest_doc> {
    json j = parse_object(text, "image manifest");
    manifest_doc m;
    m.media_type = str_or(j, "mediaType", media::oci_manifest);
    if (j.value("schemaVersion", 0) != 2)
      throw std::runtime_error("schemaVersion is not 2");
    auto c = j.find("config");
    if (c == j.end())
      throw std::runtime_error("no config descriptor");
    m.config = parse_descriptor(*c);
    auto l = j.find("layers");
    if (l == j.end() || !l->is_array())
      throw std::runtime_error("no layers array");
    for (const auto& d : *l)
      m.layers.push_back(parse_descriptor(d));
    return m;
  });
}

result<config_doc> parse_config(const std::string& text) {
  return guarded("image config", [&]() -> result<config_doc> {
    json j = parse_object(text, "image config");
    config_doc c;
    c.os = str_or(j, "os");
    c.architecture = str_or(j, "architecture");
    if (auto cfg = j.find("config"); cfg != j.end() && cfg->is_object()) {
      c.config.entrypoint = strings_or_empty(*cfg, "Entrypoint");
      c.config.cmd = strings_or_empty(*cfg, "Cmd");
      c.config.env = strings_or_empty(*cfg, "Env");
      c.config.working_dir = str_or(*cfg, "WorkingDir");
      c.config.user = str_or(*cfg, "User");
      c.config.stop_signal = str_or(*cfg, "StopSignal");
      if (auto p = cfg->find("ExposedPorts"); p != cfg->end() && p->is_object())
        for (const auto& [port, _] : p->items())
          c.config.exposed_ports.push_back(port);
    }
    auto rootfs = j.find("rootfs");
    if (rootfs == j.end() || !rootfs->is_object())
      throw std::runtime_error("no rootfs");
    c.diff_ids = strings_or_empty(*rootfs, "diff_ids");
    for (const auto& d : c.diff_ids)
      if (!is_sha256_digest(d))
        throw std::runtime_error("malformed diff_id \"" + d + "\"");
    return c;
  });
}

result<std::vector<docker_save_entry>> parse_docker_save(const std::string& text) {
  return guarded("docker archive manifest.json", [&]() -> result<std::vector<docker_save_entry>> {
    json j = json::parse(text);
    if (!j.is_array() || j.empty())
      throw std::runtime_error("not a non-empty array");
    std::vector<docker_save_entry> out;
    for (const auto& e : j) {
      if (!e.is_object())
        throw std::runtime_error("entry is not an object");
      docker_save_entry d;
      d.config = str_or(e, "Config");
      if (d.config.empty())
        throw std::runtime_error("entry without Config");
      d.repo_tags = strings_or_empty(e, "RepoTags");
      d.layers = strings_or_empty(e, "Layers");
      out.push_back(std::move(d));
    }
    return out;
  });
}

std::string render_config(const config_doc& c) {
  json cfg = json::object();
  if (!c.config.entrypoint.empty())
    cfg["Entrypoint"] = c.config.entrypoint;
  if (!c.config.cmd.empty())
    cfg["Cmd"] = c.config.cmd;
  if (!c.config.env.empty())
    cfg["Env"] = c.config.env;
  if (!c.config.working_dir.empty())
    cfg["WorkingDir"] = c.config.working_dir;
  if (!c.config.user.empty())
    cfg["User"] = c.config.user;
  if (!c.config.stop_signal.empty())
    cfg["StopSignal"] = c.config.stop_signal;
  if (!c.config.exposed_ports.empty()) {
    json ports = json::object();
    for (const auto& p : c.config.exposed_ports)
      ports[p] = json::object();
    cfg["ExposedPorts"] = ports;
  }
  json j = {{"architecture", c.architecture},
            {"os", c.os},
            {"config", cfg},
            {"rootfs", {{"type", "layers"}, {"diff_ids", c.diff_ids}}}};
  return j.dump();
}

std::string render_manifest(const manifest_doc& m) {
  json layers = json::array();
  for (const auto& l : m.layers)
    layers.push_back(render_descriptor(l));
  json j = {{"schemaVersion", 2},
            {"mediaType", m.media_type},
            {"config", render_descriptor(m.config)},
            {"layers", layers}};
  return j.dump();
}

std::string render_index(const index_doc& idx) {
  json ms = json::array();
  for (const auto& d : idx.manifests)
    ms.push_back(render_descriptor(d));
  json j = {{"schemaVersion", 2}, {"mediaType", media::oci_index}, {"manifests", ms}};
  return j.dump();
}

std::string render_store_index(const std::map<std::string, image_record>& images) {
  json arr = json::array();
  for (const auto& [id, r] : images)
    arr.push_back({{"id", r.id},
                   {"manifestDigest", r.manifest_digest},
                   {"names", r.names},
                   {"size", r.size},
                   {"os", r.os},
                   {"architecture", r.architecture},
                   {"config", config_to_json(r.config)},
                   {"blobs", r.blobs},
                   {"lastUsed", r.last_used}});
  return json({{"schemaVersion", 1}, {"images", arr}}).dump(2) + "\n";
}

result<std::map<std::string, image_record>> parse_store_index(const std::string& text) {
  return guarded("image store index", [&]() -> result<std::map<std::string, image_record>> {
    json j = parse_object(text, "image store index");
    std::map<std::string, image_record> out;
    auto imgs = j.find("images");
    if (imgs == j.end() || !imgs->is_array())
      throw std::runtime_error("no images array");
    for (const auto& e : *imgs) {
      image_record r;
      r.id = str_or(e, "id");
      if (!is_sha256_digest(r.id))
        throw std::runtime_error("malformed id");
      r.manifest_digest = str_or(e, "manifestDigest");
      r.names = strings_or_empty(e, "names");
      r.size = e.value("size", std::uint64_t{0});
      r.os = str_or(e, "os", "linux");
      r.architecture = str_or(e, "architecture", "amd64");
      if (auto c = e.find("config"); c != e.end() && c->is_object())
        r.config = config_from_json(*c);
      r.blobs = strings_or_empty(e, "blobs");
      if (auto lu = e.find("lastUsed"); lu != e.end() && lu->is_number_integer())
        r.last_used = lu->get<std::int64_t>();
      for (const auto& b : r.blobs)
        if (!is_sha256_digest(b))
          throw std::runtime_error("malformed blob digest");
      out[r.id] = std::move(r);
    }
    return out;
  });
}

}  // namespace deckhand::image::detail

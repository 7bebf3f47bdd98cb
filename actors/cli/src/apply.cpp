#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include "deckhand/api/manifest.hpp"
#include "deckhand/cli/commands.hpp"

namespace deckhand::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* last_applied_key = "kubectl.kubernetes.io/last-applied-configuration";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// Every field `want` sets has the same value in `have` (arrays compared
/// element by element, extra fields in `have` ignored: the server's defaults).
bool subset_of(const json& want, const json& have) {
  if (want.is_object()) {
    if (!have.is_object())
      return false;
    for (auto it = want.begin(); it != want.end(); ++it) {
      auto h = have.find(it.key());
      if (h == have.end()) {
        if (!it->is_null())
          return false;
        continue;
      }
      if (!subset_of(*it, *h))
        return false;
    }
    return true;
  }
  if (want.is_array()) {
    if (!have.is_array() || have.size() != want.size())
      return false;
    for (std::size_t i = 0; i < want.size(); ++i)
      if (!subset_of(want[i], have[i]))
        return false;
    return true;
  }
  if (want.is_number() && have.is_number())
    return want.get<double>() == have.get<double>();
  return want == have;
}

/// The last-applied configuration kubectl would record for `obj`.
std::string last_applied(const api::manifest_object& obj, const std::string& ns) {
  json j = obj.object;
  if (obj.namespace_.empty())
    j["metadata"]["namespace"] = ns;
  if (j["metadata"].contains("annotations") && j["metadata"]["annotations"].is_object())
    j["metadata"]["annotations"].erase(last_applied_key);
  return j.dump() + "\n";
}

result<std::string> read_source(const std::string& file, std::istream& in) {
  if (file == "-") {
    std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    return text;
  }
  std::ifstream f(file, std::ios::binary);
  if (!f)
    return error{errc::not_found, "the path \"" + file + "\" does not exist"};
  std::string text{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  if (f.bad())
    return error{errc::io, "error reading \"" + file + "\""};
  return text;
}

/// FILE, `-`, or the .yaml/.yml/.json files of a directory in name order.
result<std::vector<std::string>> expand_sources(const std::vector<std::string>& files) {
  std::vector<std::string> out;
  for (const auto& f : files) {
    std::error_code ec;
    if (f != "-" && fs::is_directory(f, ec)) {
      std::vector<std::string> entries;
      for (const auto& e : fs::directory_iterator(f, ec)) {
        auto ext = e.path().extension().string();
        if (e.is_regular_file() && (ext == ".yaml" || ext == ".yml" || ext == ".json"))
          entries.push_back(e.path().string());
      }
      if (ec)
        return error{errc::io, "error reading \"" + f + "\": " + ec.message()};
      std::sort(entries.begin(), entries.end());
      out.insert(out.end(), entries.begin(), entries.end());
    } else {
      out.push_back(f);
    }
  }
  return out;
}

}  // namespace

json apply_body(const api::manifest_object& obj, const std::string& ns) {
  json body = obj.object;
  auto applied = last_applied(obj, ns);
  body["metadata"]["namespace"] = ns;
  body["metadata"]["annotations"][last_applied_key] = applied;
  return body;
}

bool apply_unchanged(const api::manifest_object& obj, const json& existing) {
  const auto& meta = existing.contains("metadata") ? existing["metadata"] : json();
  if (meta.is_object() && meta.contains("annotations") && meta["annotations"].is_object() &&
      meta["annotations"].contains(last_applied_key) &&
      meta["annotations"][last_applied_key].is_string()) {
    auto stored =
        json::parse(meta["annotations"][last_applied_key].get<std::string>(), nullptr, false);
    if (!stored.is_discarded()) {
      auto ns = meta.contains("namespace") && meta["namespace"].is_string()
                    ? meta["namespace"].get<std::string>()
                    : std::string("default");
      auto mine = json::parse(last_applied(obj, ns), nullptr, false);
      return stored == mine;
    }
  }
  json want_spec = obj.object.contains("spec") ? obj.object["spec"] : json::object();
  json have_spec = existing.contains("spec") ? existing["spec"] : json::object();
  json want_labels =
      obj.object["metadata"].contains("labels") ? obj.object["metadata"]["labels"] : json::object();
  json have_labels = meta.is_object() && meta.contains("labels") ? meta["labels"] : json::object();
  return subset_of(want_spec, have_spec) && subset_of(want_labels, have_labels);
}

int apply_objects(const api_client& api, const std::vector<api::manifest_object>& objects,
                  const std::string& source, const node_options& opts, io_streams io) {
  int rc = 0;
  for (const auto& obj : objects) {
    auto ns = obj.namespace_.empty() ? opts.ns : obj.namespace_;
    if (opts.ns_given && !obj.namespace_.empty() && obj.namespace_ != opts.ns) {
      io.err << "error: the namespace from the provided object \"" << obj.namespace_
             << "\" does not match the namespace \"" << opts.ns
             << "\". You must pass '--namespace=" << obj.namespace_
             << "' to perform this operation.\n";
      rc = 1;
      continue;
    }
    auto label = lower(obj.kind) + "/" + obj.name;
    auto body = apply_body(obj, ns);
    auto created = api.post(collection_path(ns, obj.resource), body);
    if (!created) {
      io.err << "error: " << created.err().message << "\n";
      return 1;
    }
    if (created->ok()) {
      io.out << label << " created\n";
      continue;
    }
    // On create, 409 means AlreadyExists (a Conflict needs a resourceVersion).
    if (created->status != 409) {
      io.err << server_error(*created, "error when creating \"" + source + "\"") << "\n";
      rc = 1;
      continue;
    }
    auto path = collection_path(ns, obj.resource, obj.name);
    auto current = api.get(path);
    if (!current) {
      io.err << "error: " << current.err().message << "\n";
      return 1;
    }
    if (!current->ok()) {
      io.err << server_error(*current,
                             "error when retrieving current configuration of \"" + source + "\"")
             << "\n";
      rc = 1;
      continue;
    }
    auto existing = current->json();
    if (apply_unchanged(obj, existing)) {
      io.out << label << " unchanged\n";
      continue;
    }
    // Overlay the manifest on the stored object: fields the server filled in
    // (defaults, clusterIP, status) stay, the manifest's own fields win.
    json updated = existing;
    if (obj.object.contains("spec"))
      updated["spec"].merge_patch(obj.object["spec"]);
    const auto& meta = obj.object["metadata"];
    if (meta.contains("labels"))
      updated["metadata"]["labels"] = meta["labels"];
    if (meta.contains("annotations") && meta["annotations"].is_object())
      for (auto it = meta["annotations"].begin(); it != meta["annotations"].end(); ++it)
        updated["metadata"]["annotations"][it.key()] = it.value();
    updated["metadata"]["annotations"][last_applied_key] = last_applied(obj, ns);
    auto replaced = api.put(path, updated);
    if (!replaced) {
      io.err << "error: " << replaced.err().message << "\n";
      return 1;
    }
    if (!replaced->ok()) {
      io.err << server_error(*replaced, "error when applying \"" + source + "\"") << "\n";
      rc = 1;
      continue;
    }
    io.out << label << " configured\n";
  }
  return rc;
}

int apply_command(const node_options& opts, const std::vector<std::string>& files, io_streams io) {
  if (files.empty()) {
    io.err << "error: must specify one of -f and -k\n";
    return 1;
  }
  auto sources = expand_sources(files);
  if (!sources) {
    io.err << "error: " << sources.err().message << "\n";
    return 1;
  }
  // Read and validate everything first: one bad document applies nothing.
  std::vector<std::pair<std::string, std::vector<api::manifest_object>>> parsed;
  for (const auto& src : *sources) {
    auto text = read_source(src, io.in);
    if (!text) {
      io.err << "error: " << text.err().message << "\n";
      return 1;
    }
    auto name = src == "-" ? std::string("STDIN") : src;
    auto objects = api::parse_manifests(*text, name);
    if (!objects) {
      io.err << "error: " << objects.err().message << "\n";
      return 1;
    }
    parsed.emplace_back(name, std::move(*objects));
  }
  std::size_t total = 0;
  for (const auto& [src, objs] : parsed)
    total += objs.size();
  if (total == 0) {
    io.err << "error: no objects passed to apply\n";
    return 1;
  }
  auto api = api_client::for_node(opts.data_dir);
  if (!api) {
    io.err << "error: " << api.err().message << "\n";
    return 1;
  }
  int rc = 0;
  for (const auto& [src, objs] : parsed)
    if (apply_objects(*api, objs, src, opts, io) != 0)
      rc = 1;
  return rc;
}

}  // namespace deckhand::cli

/// get, delete and logs: the commands that read and remove API objects.

#include <algorithm>
#include <fstream>
#include <iostream>
#include <thread>

#include <sys/stat.h>

#include "deckhand/api/manifest.hpp"
#include "deckhand/api/yaml.hpp"
#include "deckhand/cli/commands.hpp"
#include "deckhand/cli/describe.hpp"
#include "deckhand/cli/printers.hpp"
#include "deckhand/common/paths.hpp"

namespace deckhand::cli {

namespace fs = std::filesystem;
using nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {

std::string str(const json& j, const char* key) {
  if (!j.is_object())
    return {};
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

const json& meta_of(const json& obj) {
  static const json empty = json::object();
  auto it = obj.find("metadata");
  return it != obj.end() && it->is_object() ? *it : empty;
}

std::string singular(const std::string& collection) {
  if (collection == "pods")
    return "pod";
  if (collection == "services")
    return "service";
  if (collection == "endpointslices")
    return "endpointslice";
  return collection;
}

/// The REST path of a collection or object, under /apis/GROUP/VERSION for
/// collections outside the core group.
std::string object_path(const std::string& ns, const std::string& collection,
                        const std::string& name = {}) {
  auto path = collection_path(ns, collection, name);
  auto version = api::collection_api_version(collection);
  if (version != "v1")
    path = "/apis/" + version + path.substr(std::string("/api/v1").size());
  return path;
}

/// `pod/NAME` or `RESOURCE NAME...`: the collection and the names.
struct target {
  std::string collection;
  std::vector<std::string> names;
};

result<target> resolve(const std::string& resource, const std::vector<std::string>& names) {
  target t;
  auto type = resource;
  t.names = names;
  if (auto slash = resource.find('/'); slash != std::string::npos) {
    type = resource.substr(0, slash);
    t.names.insert(t.names.begin(), resource.substr(slash + 1));
  }
  t.collection = api::resource_collection(type);
  if (t.collection.empty())
    return error{errc::not_found, "the server doesn't have a resource type \"" + type + "\""};
  return t;
}

/// Objects in a list response lack kind and apiVersion; kubectl fills them in.
json with_type(json obj, const std::string& collection) {
  if (!obj.contains("apiVersion"))
    obj["apiVersion"] = api::collection_api_version(collection);
  if (!obj.contains("kind"))
    obj["kind"] = api::collection_kind(collection);
  return obj;
}

json as_list(const std::vector<json>& items) {
  return json{{"apiVersion", "v1"},
              {"kind", "List"},
              {"items", items},
              {"metadata", {{"resourceVersion", ""}}}};
}

void print_objects(const std::vector<json>& objs, bool single, const std::string& collection,
                   const get_options& opts, std::ostream& out) {
  if (opts.output == "json" || opts.output == "yaml") {
    json doc = single && objs.size() == 1 ? objs.front() : as_list(objs);
    if (opts.output == "json")
      out << doc.dump(4) << "\n";
    else
      out << api::to_yaml(doc);
    return;
  }
  if (opts.output == "name") {
    for (const auto& o : objs)
      out << singular(collection) << "/" << str(meta_of(o), "name") << "\n";
    return;
  }
  table_options topts;
  topts.wide = opts.output == "wide";
  topts.all_namespaces = opts.all_namespaces;
  auto now = std::chrono::system_clock::now();
  if (collection == "pods")
    out << format_pod_table(objs, topts, now);
  else if (collection == "endpoints")
    out << format_endpoints_table(objs, topts, now);
  else if (collection == "endpointslices")
    out << format_endpoint_slice_table(objs, topts, now);
  else if (collection == "events")
    out << format_event_table(objs, topts, now);
  else
    out << format_service_table(objs, topts, now);
}

std::string not_found_message(const std::string& collection, const std::string& name) {
  return "Error from server (NotFound): " + collection + " \"" + name + "\" not found";
}

}  // namespace

// -- get ------------------------------------------------------------------------------

int get_command(const get_options& opts, io_streams io) {
  static const std::vector<std::string> formats = {"", "wide", "json", "yaml", "name"};
  if (std::find(formats.begin(), formats.end(), opts.output) == formats.end()) {
    io.err << "error: unable to match a printer suitable for the output format \"" << opts.output
           << "\", allowed formats are: json,name,wide,yaml\n";
    return 1;
  }
  // `svc,ep` names several types; kubectl prints one table per type.
  std::vector<target> targets;
  {
    std::vector<std::string> types;
    std::string rest = opts.resource;
    for (std::size_t comma; (comma = rest.find(',')) != std::string::npos;) {
      types.push_back(rest.substr(0, comma));
      rest = rest.substr(comma + 1);
    }
    types.push_back(rest);
    if (types.size() > 1)
      for (const auto& type : types)
        if (type.find('/') != std::string::npos || type.empty()) {
          io.err << "error: arguments in resource/name form must have a single resource and "
                    "name\n";
          return 1;
        }
    for (const auto& type : types) {
      auto t = resolve(type, opts.names);
      if (!t) {
        io.err << "error: " << t.err().message << "\n";
        return 1;
      }
      targets.push_back(std::move(*t));
    }
  }
  if (opts.all_namespaces && !targets.front().names.empty()) {
    io.err << "error: a resource cannot be retrieved by name across all namespaces\n";
    return 1;
  }
  auto api = api_client::for_node(opts.node.data_dir);
  if (!api) {
    io.err << "error: " << api.err().message << "\n";
    return 1;
  }
  const auto& ns = opts.node.ns;
  bool several = targets.size() > 1;
  int rc = 0;
  // Per type: the objects found, whether a single named object was asked for.
  std::vector<std::pair<std::vector<json>, bool>> results;
  for (const auto& t : targets) {
    std::vector<json> items;
    if (t.names.empty()) {
      auto resp = api->get(object_path(opts.all_namespaces ? "" : ns, t.collection));
      if (!resp) {
        io.err << "error: " << resp.err().message << "\n";
        return 1;
      }
      if (!resp->ok()) {
        io.err << server_error(*resp) << "\n";
        return 1;
      }
      auto body = resp->json();
      if (body.contains("items") && body["items"].is_array())
        for (const auto& item : body["items"])
          items.push_back(with_type(item, t.collection));
      if (opts.all_namespaces)
        std::stable_sort(items.begin(), items.end(), [](const json& a, const json& b) {
          return str(meta_of(a), "namespace") < str(meta_of(b), "namespace");
        });
    } else {
      for (const auto& name : t.names) {
        auto resp = api->get(object_path(ns, t.collection, name));
        if (!resp) {
          io.err << "error: " << resp.err().message << "\n";
          return 1;
        }
        if (resp->status == 404) {
          auto msg = server_error(*resp);
          if (resp->json().is_null())
            msg = not_found_message(t.collection, name);
          io.err << msg << "\n";
          rc = 1;
          continue;
        }
        if (!resp->ok()) {
          io.err << server_error(*resp) << "\n";
          rc = 1;
          continue;
        }
        items.push_back(with_type(resp->json(), t.collection));
      }
    }
    results.emplace_back(std::move(items), !several && t.names.size() == 1);
  }

  if (opts.output == "json" || opts.output == "yaml") {
    std::vector<json> all;
    for (auto& [items, single] : results)
      all.insert(all.end(), items.begin(), items.end());
    if (all.empty() && !targets.front().names.empty())
      return rc;
    print_objects(all, results.size() == 1 && results.front().second, targets.front().collection,
                  opts, io.out);
    return rc;
  }
  bool printed = false;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    auto& items = results[i].first;
    if (items.empty())
      continue;
    if (several && opts.output != "name") {
      // kubectl names each row `TYPE/NAME` when it shows several types.
      for (auto& item : items)
        item["metadata"]["name"] =
            singular(targets[i].collection) + "/" + str(meta_of(item), "name");
      if (printed)
        io.out << "\n";
    }
    print_objects(items, results[i].second, targets[i].collection, opts, io.out);
    printed = true;
  }
  if (!printed && targets.front().names.empty()) {
    if (opts.all_namespaces)
      io.err << "No resources found\n";
    else
      io.err << "No resources found in " << ns << " namespace.\n";
  }
  return rc;
}

// -- delete -----------------------------------------------------------------------------

int delete_command(const delete_options& opts, io_streams io) {
  auto t = resolve(opts.resource, opts.names);
  if (!t) {
    io.err << "error: " << t.err().message << "\n";
    return 1;
  }
  if (t->names.empty()) {
    io.err << "error: resource(s) were provided, but no name was specified\n";
    return 1;
  }
  // kubectl's rules: --now is a one-second grace, 0 without --force means 1,
  // --force alone means 0.
  int64_t grace = opts.grace_period;
  if (opts.now && grace != -1) {
    io.err << "error: --now and --grace-period cannot be specified together\n";
    return 1;
  }
  if (opts.now)
    grace = 1;
  if (grace == 0 && !opts.force)
    grace = 1;
  if (opts.force && grace < 0)
    grace = 0;
  if (opts.force && grace == 0)
    io.err << "Warning: Immediate deletion does not wait for confirmation that the "
              "running resource has been terminated. The resource may continue to run "
              "on the cluster indefinitely.\n";
  auto api = api_client::for_node(opts.node.data_dir);
  if (!api) {
    io.err << "error: " << api.err().message << "\n";
    return 1;
  }
  int rc = 0;
  for (const auto& name : t->names) {
    auto path = object_path(opts.node.ns, t->collection, name);
    json body = {
        {"kind", "DeleteOptions"}, {"apiVersion", "v1"}, {"propagationPolicy", "Background"}};
    if (grace >= 0)
      body["gracePeriodSeconds"] = grace;
    auto resp = api->del(path, body);
    if (!resp) {
      io.err << "error: " << resp.err().message << "\n";
      return 1;
    }
    if (!resp->ok()) {
      auto msg = server_error(*resp);
      if (resp->status == 404 && resp->json().is_null())
        msg = not_found_message(t->collection, name);
      io.err << msg << "\n";
      rc = 1;
      continue;
    }
    io.out << singular(t->collection) << " \"" << name << "\" deleted\n";
    if (!opts.wait)
      continue;
    auto obj = resp->json();
    auto uid = str(meta_of(obj), "uid");
    if (uid.empty() && obj.contains("details"))
      uid = str(obj["details"], "uid");  // a Status: the object is already gone
    int64_t wait_grace = grace;
    if (wait_grace < 0) {
      const auto& m = meta_of(obj);
      if (m.contains("deletionGracePeriodSeconds") &&
          m["deletionGracePeriodSeconds"].is_number_integer())
        wait_grace = m["deletionGracePeriodSeconds"].get<int64_t>();
      else if (obj.contains("spec") && obj["spec"].is_object() &&
               obj["spec"].contains("terminationGracePeriodSeconds") &&
               obj["spec"]["terminationGracePeriodSeconds"].is_number_integer())
        wait_grace = obj["spec"]["terminationGracePeriodSeconds"].get<int64_t>();
      else
        wait_grace = 30;
    }
    auto deadline = steady::now() + std::chrono::seconds(wait_grace + 30);
    bool gone = false;
    while (!gone) {
      auto cur = api->get(path);
      if (cur && cur->status == 404) {
        gone = true;
        break;
      }
      if (cur && cur->ok() && !uid.empty() && str(meta_of(cur->json()), "uid") != uid) {
        gone = true;  // deleted and created again under the same name
        break;
      }
      if (steady::now() >= deadline)
        break;
      std::this_thread::sleep_for(opts.poll_interval);
    }
    if (!gone) {
      io.err << "error: timed out waiting for the condition on " << t->collection << "/" << name
             << "\n";
      rc = 1;
    }
  }
  return rc;
}

// -- logs -------------------------------------------------------------------------------

namespace {

/// One CRI log line (`TIMESTAMP STREAM TAG MESSAGE`) reduced to its message;
/// other lines unchanged. `complete` is false for a partial (`P`) line.
std::string decode_log_line(std::string_view line, bool& complete) {
  complete = true;
  auto s1 = line.find(' ');
  if (s1 == std::string_view::npos || !parse_rfc3339(std::string(line.substr(0, s1))))
    return std::string(line);
  auto s2 = line.find(' ', s1 + 1);
  if (s2 == std::string_view::npos)
    return std::string(line);
  auto stream = line.substr(s1 + 1, s2 - s1 - 1);
  if (stream != "stdout" && stream != "stderr")
    return std::string(line);
  auto s3 = line.find(' ', s2 + 1);
  auto tag =
      line.substr(s2 + 1, s3 == std::string_view::npos ? std::string_view::npos : s3 - s2 - 1);
  if (tag.empty() || (tag[0] != 'F' && tag[0] != 'P'))
    return std::string(line);
  complete = tag[0] == 'F';
  return s3 == std::string_view::npos ? std::string{} : std::string(line.substr(s3 + 1));
}

/// The numbers N of the `N.log` files in `dir`, ascending.
std::vector<int64_t> log_instances(const fs::path& dir) {
  std::vector<int64_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    auto name = e.path().filename().string();
    if (name.size() < 5 || name.substr(name.size() - 4) != ".log")
      continue;
    auto stem = name.substr(0, name.size() - 4);
    if (stem.empty() ||
        !std::all_of(stem.begin(), stem.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
        stem.size() > 15)
      continue;
    out.push_back(std::stoll(stem));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string keep_last_lines(const std::string& text, int64_t n) {
  if (n < 0)
    return text;
  if (n == 0)
    return {};
  std::size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n')
    --pos;
  int64_t count = 0;
  while (pos > 0) {
    auto nl = text.rfind('\n', pos - 1);
    if (nl == std::string::npos)
      return text;
    if (++count == n)
      return text.substr(nl + 1);
    pos = nl;
  }
  return text;
}

/// Reads what `file` holds past `offset` and advances it.
/// Where a reader of a log file is: the file (by inode) and the offset in it.
struct log_position {
  std::uintmax_t offset = 0;
  ino_t inode = 0;
};

std::string read_from(const fs::path& file, log_position& pos) {
  std::ifstream in(file, std::ios::binary);
  if (!in)
    return {};
  // The supervisor rotates N.log by renaming it away and starting a new,
  // shorter file under the same name: start that one from its beginning.
  struct stat st {};
  if (::stat(file.c_str(), &st) == 0) {
    if ((pos.inode != 0 && st.st_ino != pos.inode) ||
        static_cast<std::uintmax_t>(st.st_size) < pos.offset)
      pos.offset = 0;
    pos.inode = st.st_ino;
  }
  auto& offset = pos.offset;
  in.seekg(static_cast<std::streamoff>(offset));
  std::string data{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  offset += data.size();
  return data;
}

}  // namespace

std::string decode_log_chunk(std::string_view chunk, std::string& partial, bool final) {
  std::string text = partial;
  text.append(chunk);
  partial.clear();
  std::string out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      if (final) {
        bool complete = true;
        out += decode_log_line(std::string_view(text).substr(pos), complete);
      } else {
        partial = text.substr(pos);
      }
      break;
    }
    bool complete = true;
    out += decode_log_line(std::string_view(text).substr(pos, nl - pos), complete);
    if (complete)
      out += '\n';
    pos = nl + 1;
  }
  return out;
}

int logs_command(const logs_options& opts, io_streams io) {
  auto pod_name = opts.pod;
  if (auto slash = pod_name.find('/'); slash != std::string::npos) {
    if (api::resource_collection(pod_name.substr(0, slash)) != "pods") {
      io.err << "error: cannot get the logs from " << pod_name.substr(0, slash) << "\n";
      return 1;
    }
    pod_name = pod_name.substr(slash + 1);
  }
  auto api = api_client::for_node(opts.node.data_dir);
  if (!api) {
    io.err << "error: " << api.err().message << "\n";
    return 1;
  }
  const auto& ns = opts.node.ns;
  auto pod_path = collection_path(ns, "pods", pod_name);
  auto resp = api->get(pod_path);
  if (!resp) {
    io.err << "error: " << resp.err().message << "\n";
    return 1;
  }
  if (!resp->ok()) {
    auto msg = server_error(*resp);
    if (resp->status == 404 && resp->json().is_null())
      msg = not_found_message("pods", pod_name);
    io.err << msg << "\n";
    return 1;
  }
  auto pod = resp->json();
  auto uid = str(meta_of(pod), "uid");
  std::vector<std::string> containers;
  if (pod.contains("spec") && pod["spec"].is_object() && pod["spec"].contains("containers"))
    for (const auto& c : pod["spec"]["containers"])
      containers.push_back(str(c, "name"));
  auto container = opts.container;
  if (container.empty()) {
    if (containers.size() != 1) {
      io.err << "error: a container name must be specified for pod " << pod_name
             << ", choose one of: [";
      for (std::size_t i = 0; i < containers.size(); ++i)
        io.err << (i ? " " : "") << containers[i];
      io.err << "]\n";
      return 1;
    }
    container = containers.front();
  } else if (std::find(containers.begin(), containers.end(), container) == containers.end()) {
    io.err << "Error from server (BadRequest): container " << container << " is not valid for pod "
           << pod_name << "\n";
    return 1;
  }

  auto dir = paths::pod_log_dir(opts.node.data_dir, ns, pod_name, uid) / container;
  auto instances = log_instances(dir);
  if (instances.empty() || (opts.previous && instances.size() < 2)) {
    if (opts.previous) {
      io.err << "Error from server (BadRequest): previous terminated container \"" << container
             << "\" in pod \"" << pod_name << "\" not found\n";
      return 1;
    }
    std::string reason = "ContainerCreating";
    if (pod.contains("status") && pod["status"].contains("containerStatuses"))
      for (const auto& cs : pod["status"]["containerStatuses"])
        if (str(cs, "name") == container && cs.contains("state") && cs["state"].contains("waiting"))
          if (auto r = str(cs["state"]["waiting"], "reason"); !r.empty())
            reason = r;
    io.err << "Error from server (BadRequest): container \"" << container << "\" in pod \""
           << pod_name << "\" is waiting to start: " << reason << "\n";
    return 1;
  }
  auto instance = opts.previous ? instances[instances.size() - 2] : instances.back();
  auto file = dir / (std::to_string(instance) + ".log");
  log_position offset;
  std::string partial;
  auto text = decode_log_chunk(read_from(file, offset), partial, !opts.follow);
  io.out << keep_last_lines(text, opts.tail) << std::flush;
  if (!opts.follow || opts.previous)
    return 0;

  // Follow: poll the file; move on to the next instance when the container
  // restarts; stop once the pod is gone.
  auto next_check = steady::now();
  while (true) {
    std::this_thread::sleep_for(opts.poll_interval);
    io.out << decode_log_chunk(read_from(file, offset), partial, false) << std::flush;
    auto now_instances = log_instances(dir);
    if (!now_instances.empty() && now_instances.back() > instance) {
      io.out << decode_log_chunk(read_from(file, offset), partial, true);
      instance = now_instances.back();
      file = dir / (std::to_string(instance) + ".log");
      offset = log_position{};
    }
    if (steady::now() >= next_check) {
      next_check = steady::now() + std::chrono::seconds(1);
      auto cur = api->get(pod_path);
      bool gone =
          cur && (cur->status == 404 || (cur->ok() && str(meta_of(cur->json()), "uid") != uid));
      if (gone) {
        io.out << decode_log_chunk(read_from(file, offset), partial, true) << std::flush;
        return 0;
      }
    }
  }
}

}  // namespace deckhand::cli

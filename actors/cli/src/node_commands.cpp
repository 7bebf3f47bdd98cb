/// status and image: the commands that talk to the node's processes over the
/// transport rather than to the API server.

#include <cstdio>
#include <fstream>
#include <iostream>

#include "deckhand/cli/commands.hpp"
#include "deckhand/cli/node_client.hpp"
#include "deckhand/cli/printers.hpp"
#include "deckhand/common/paths.hpp"

namespace deckhand::cli {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> node_components = {"apiserver", "runtime", "kubelet", "proxy"};

std::string hex_incarnation(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

json read_up_status(const fs::path& data_dir) {
  std::ifstream in(paths::launcher_status_file(data_dir));
  if (!in)
    return json();
  auto j = json::parse(in, nullptr, false);
  return j.is_discarded() ? json() : j;
}

std::string short_id(const std::string& id) {
  auto hex = id.rfind(':') == std::string::npos ? id : id.substr(id.rfind(':') + 1);
  return hex.substr(0, 12);
}

}  // namespace

int status_command(const node_options& opts, io_streams io) {
  auto up = read_up_status(opts.data_dir);
  std::vector<std::string> names = node_components;
  if (up.is_object() && up.contains("components") && up["components"].is_object()) {
    // A component disabled in the launcher's configuration is not expected.
    std::vector<std::string> managed;
    for (const auto& n : node_components)
      if (up["components"].contains(n))
        managed.push_back(n);
    if (!managed.empty())
      names = managed;
  }
  node_client node(opts.data_dir);
  auto pongs = node.ping_all(names, 1000ms);

  std::vector<std::vector<std::string>> rows = {
      {"NAME", "PID", "INCARNATION", "UPTIME", "RESTARTS", "HEALTH"}};
  bool all_ok = true;
  for (const auto& name : names) {
    const auto& pong = pongs.at(name);
    json entry;
    if (up.is_object() && up.contains("components") && up["components"].contains(name))
      entry = up["components"][name];
    std::string restarts = "-";
    if (entry.is_object() && entry.contains("restarts"))
      restarts = entry["restarts"].dump();
    if (pong) {
      rows.push_back({name, std::to_string(pong->pid), hex_incarnation(pong->incarnation),
                      human_duration(std::chrono::milliseconds(pong->uptime_ms)), restarts, "ok"});
    } else {
      all_ok = false;
      std::string pid = "-";
      if (entry.is_object() && entry.contains("pid") && entry["pid"].is_number() &&
          entry["pid"].get<int64_t>() > 0)
        pid = entry["pid"].dump();
      rows.push_back({name, pid, "-", "-", restarts, "unreachable"});
    }
  }
  if (auto rt = pongs.find("runtime"); rt != pongs.end() && rt->second.ok()) {
    auto list =
        node.request<wire::list_sandboxes_reply>("runtime", wire::list_sandboxes_request{}, 2000ms);
    if (list) {
      auto now = std::chrono::system_clock::now();
      for (const auto& sb : list->sandboxes)
        rows.push_back(
            {"pod-supervisor " + sb.namespace_ + "/" + sb.name,
             sb.supervisor_pid > 0 ? std::to_string(sb.supervisor_pid) : "-",
             sb.supervisor_incarnation ? hex_incarnation(sb.supervisor_incarnation) : "-",
             age_since(sb.created_at, now), "-", sb.supervisor_alive ? "ok" : "dead"});
    } else {
      io.err << "warning: cannot list pod supervisors: " << list.err().message << "\n";
    }
  }
  io.out << format_table(rows);
  if (!all_ok && !up.is_object())
    io.err << "error: no deckhand node at " << opts.data_dir.string()
           << " (is 'deckhand up' running?)\n";
  return all_ok ? 0 : 1;
}

int image_import_command(const node_options& opts, const std::string& path, const std::string& name,
                         io_streams io) {
  std::error_code ec;
  // The runtime resolves the path in its own working directory.
  auto abs = fs::absolute(path, ec);
  if (ec || !fs::exists(abs, ec)) {
    io.err << "error: the path \"" << path << "\" does not exist\n";
    return 1;
  }
  node_client node(opts.data_dir);
  wire::image_import_request req;
  req.path = abs.lexically_normal().string();
  req.name = name;
  auto reply = node.request<wire::image_import_reply>("runtime", req, 600s);
  if (!reply) {
    io.err << "error: " << reply.err().message << "\n";
    return 1;
  }
  const auto& img = reply->image;
  std::string names;
  for (const auto& n : img.names)
    names += (names.empty() ? "" : ", ") + n;
  io.out << "imported " << (names.empty() ? "<none>" : names) << " (" << short_id(img.id) << ", "
         << human_size(img.size) << ")\n";
  return 0;
}

int image_list_command(const node_options& opts, io_streams io) {
  node_client node(opts.data_dir);
  auto reply = node.request<wire::image_list_reply>("runtime", wire::image_list_request{}, 10s);
  if (!reply) {
    io.err << "error: " << reply.err().message << "\n";
    return 1;
  }
  std::vector<std::vector<std::string>> rows = {{"IMAGE", "IMAGE ID", "SIZE"}};
  for (const auto& img : reply->images) {
    if (img.names.empty())
      rows.push_back({"<none>", short_id(img.id), human_size(img.size)});
    for (const auto& n : img.names)
      rows.push_back({n, short_id(img.id), human_size(img.size)});
  }
  io.out << format_table(rows);
  return 0;
}

}  // namespace deckhand::cli

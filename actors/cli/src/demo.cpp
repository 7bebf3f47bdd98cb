#include "deckhand/cli/demo.hpp"

#include <stdlib.h>

#include <algorithm>
#include <sstream>
#include <thread>

#include "deckhand/cli/api_client.hpp"
#include "deckhand/cli/commands.hpp"
#include "deckhand/cli/node_client.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/image/builder.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::cli {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

result<fs::path> build_demo_layout(const fs::path& data_dir) {
  std::error_code ec;
  fs::create_directories(paths::run_dir(data_dir), ec);
  auto tmpl = (paths::run_dir(data_dir) / "demo-rootfs.XXXXXX").string();
  if (!::mkdtemp(tmpl.data()))
    return error::from_errno("mkdtemp " + tmpl);
  fs::path rootfs = tmpl;
  struct remove_on_exit {
    fs::path dir;
    ~remove_on_exit() {
      std::error_code e;
      fs::remove_all(dir, e);
    }
  } guard{rootfs};
  if (auto err = image::make_busybox_rootfs(rootfs))
    return err;
  auto layout = data_dir / "demo-image";
  fs::remove_all(layout, ec);
  image::image_config cfg;
  cfg.cmd = {"/bin/sh"};
  cfg.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  auto digest = image::build_layout(rootfs, layout, demo_image_name, cfg);
  if (!digest)
    return std::move(digest).err();
  return layout;
}

namespace {

/// Sleeps `d` unless cancelled first; false when cancelled.
bool pause(std::chrono::milliseconds d, const std::atomic<bool>& cancel) {
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
    if (cancel)
      return false;
    std::this_thread::sleep_for(std::min<std::chrono::milliseconds>(d, 50ms));
  }
  return !cancel;
}

bool has_demo_image(const wire::image_list_reply& list) {
  for (const auto& img : list.images)
    for (const auto& name : img.names)
      if (name == demo_image_name)
        return true;
  return false;
}

}  // namespace

bool run_demo(const fs::path& data_dir, const std::atomic<bool>& cancel) {
  auto log = log::get();
  auto deadline = std::chrono::steady_clock::now() + 120s;
  node_client node(data_dir);

  // The node is up once the API server published its URL and the runtime
  // answers: both restart with back-off, so keep asking until the deadline.
  while (true) {
    if (cancel)
      return false;
    if (std::chrono::steady_clock::now() > deadline) {
      log->error("msg=\"demo: node did not come up within 120s\"");
      return false;
    }
    std::error_code ec;
    if (fs::exists(paths::apiserver_url_file(data_dir), ec)) {
      auto pong = node.request<wire::pong>("runtime", wire::ping{}, 1000ms, &cancel);
      if (pong)
        break;
    }
    if (!pause(200ms, cancel))
      return false;
  }

  auto images =
      node.request<wire::image_list_reply>("runtime", wire::image_list_request{}, 10s, &cancel);
  if (!images) {
    log->error("msg=\"demo: cannot list images\" error=\"{}\"", images.err().message);
    return false;
  }
  if (!has_demo_image(*images)) {
    log->info("msg=\"demo: building image\" image={}", demo_image_name);
    auto layout = build_demo_layout(data_dir);
    if (!layout) {
      log->error("msg=\"demo: cannot build image\" error=\"{}\"", layout.err().message);
      return false;
    }
    wire::image_import_request req;
    req.path = layout->string();
    req.name = demo_image_name;
    auto imported = node.request<wire::image_import_reply>("runtime", req, 300s, &cancel);
    if (!imported) {
      log->error("msg=\"demo: image import failed\" error=\"{}\"", imported.err().message);
      return false;
    }
    log->info("msg=\"demo: image imported\" image={} id={}", demo_image_name, imported->image.id);
  }

  auto objects = api::parse_manifests(demo_manifest(), "configs/demo/pod.yaml");
  if (!objects) {
    log->error("msg=\"demo: bad embedded manifest\" error=\"{}\"", objects.err().message);
    return false;
  }
  while (true) {
    auto api = api_client::for_node(data_dir);
    if (api) {
      std::ostringstream out, err;
      std::istringstream in;
      node_options opts;
      opts.data_dir = data_dir;
      if (apply_objects(*api, *objects, "configs/demo/pod.yaml", opts, {out, err, in}) == 0) {
        std::istringstream lines(out.str());
        for (std::string line; std::getline(lines, line);)
          log->info("msg=\"demo: {}\"", line);
        return true;
      }
      log->warn("msg=\"demo: apply failed, retrying\" error=\"{}\"", err.str());
    }
    if (std::chrono::steady_clock::now() > deadline) {
      log->error("msg=\"demo: could not apply the demo pod\"");
      return false;
    }
    if (!pause(1000ms, cancel))
      return false;
  }
}

}  // namespace deckhand::cli

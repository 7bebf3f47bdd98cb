// deckhand-kubelet: the node agent. Wiring only; the logic is in actors/kubelet.
#include <unistd.h>

#include <iostream>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/host/component.hpp"
#include "deckhand/host/config.hpp"
#include "deckhand/kubelet/kubelet.hpp"

using namespace deckhand;

namespace {

std::string default_node_name() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || !buf[0])
    return "deckhand-node";
  std::string name = buf;
  for (auto& c : name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

} // namespace

int main(int argc, char** argv) {
  host::block_signals();
  CLI::App app{"deckhand-kubelet: runs the node's pods"};
  host::common_options common;
  host::add_common_options(app, common);
  kubelet::kubelet_config cfg;
  cfg.node_name = default_node_name();
  std::string api_endpoint, feed_endpoint, runtime_endpoint, endpoint;
  int64_t relist_ms = 1000, node_status_ms = 10000, feed_silence_ms = 3000;
  app.add_option("--node-name", cfg.node_name, "name of this node (default: hostname)");
  app.add_option("--host-ip", cfg.host_ip, "the node's IP address reported in status");
  app.add_option("--api-endpoint", api_endpoint, "API server request endpoint");
  app.add_option("--api-feed-endpoint", feed_endpoint, "API server feed endpoint");
  app.add_option("--runtime-endpoint", runtime_endpoint, "runtime endpoint");
  app.add_option("--endpoint", endpoint, "this kubelet's request endpoint");
  app.add_option("--relist-period-ms", relist_ms, "runtime relist period")->check(CLI::Range(10, 600000));
  app.add_option("--node-status-period-ms", node_status_ms, "node heartbeat period")
    ->check(CLI::Range(10, 3600000));
  app.add_option("--feed-silence-ms", feed_silence_ms,
                 "relist when the API feed is silent this long")
    ->check(CLI::Range(100, 600000));
  if (auto rc = host::parse(app, argc, argv); rc >= 0)
    return rc;
  log::init("kubelet", common.log_level, common.log_json);
  const auto& data = common.data_dir;
  if (api_endpoint.empty())
    api_endpoint = paths::ipc_endpoint(data, "apiserver");
  if (feed_endpoint.empty())
    feed_endpoint = paths::ipc_endpoint(data, "apiserver-feed");
  if (runtime_endpoint.empty())
    runtime_endpoint = paths::ipc_endpoint(data, "runtime");
  if (endpoint.empty())
    endpoint = paths::ipc_endpoint(data, "kubelet");
  cfg.data_dir = data;
  cfg.relist_period = std::chrono::milliseconds(relist_ms);
  cfg.node_status_period = std::chrono::milliseconds(node_status_ms);
  cfg.feed_silence = std::chrono::milliseconds(feed_silence_ms);

  std::error_code ec;
  std::filesystem::create_directories(paths::run_dir(data), ec);
  if (ec) {
    std::cerr << "deckhand-kubelet: cannot create " << paths::run_dir(data) << ": "
              << ec.message() << "\n";
    return 1;
  }
  host::component comp("kubelet", common);
  auto& bus = comp.bus();
  kubelet::kubelet_sockets sockets;
  sockets.bus = &bus;
  auto api = bus.connect_dealer(api_endpoint);
  auto rt = bus.connect_dealer(runtime_endpoint);
  if (!api || !rt) {
    std::cerr << "deckhand-kubelet: " << (!api ? api.err().message : rt.err().message) << "\n";
    return 1;
  }
  sockets.api = *api;
  sockets.runtime = *rt;
  auto kl = kubelet::spawn_kubelet(comp.system(), sockets, cfg);
  auto router = bus.bind_router(endpoint, host::forward_to(kl));
  auto sub = bus.connect_sub(feed_endpoint, {"pods", "hb"},
                             [kl](const std::string&, wire::envelope env) {
                               caf::anon_send(kl, host::feed_atom::value, std::move(env));
                             });
  if (!router || !sub) {
    std::cerr << "deckhand-kubelet: " << (!router ? router.err().message : sub.err().message)
              << "\n";
    caf::anon_send_exit(kl, caf::exit_reason::user_shutdown);
    return 1;
  }
  bus.start();
  log::get()->info("msg=\"kubelet started\" node={} incarnation={} endpoint={}",
                   cfg.node_name, bus.incarnation(), endpoint);
  comp.wait_for_stop();
  caf::anon_send_exit(kl, caf::exit_reason::user_shutdown);
  comp.shutdown();
  return 0;
}

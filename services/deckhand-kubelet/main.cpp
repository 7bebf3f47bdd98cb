// deckhand-kubelet: the node agent. Wiring only; the logic is in actors/kubelet.
#include <iostream>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/host/component.hpp"
#include "deckhand/host/config.hpp"
#include "deckhand/kubelet/kubelet.hpp"
#include "deckhand/kubelet/node_defaults.hpp"

using namespace deckhand;

int main(int argc, char** argv) {
  host::block_signals();
  CLI::App app{"deckhand-kubelet: runs the node's pods"};
  host::common_options common;
  host::add_common_options(app, common);
  kubelet::kubelet_config cfg;
  cfg.node_name = kubelet::default_node_name();
  std::string api_endpoint, feed_endpoint, runtime_endpoint, endpoint;
  int64_t relist_ms = 1000, node_status_ms = 10000, feed_silence_ms = 3000;
  app.add_option("--node-name", cfg.node_name, "name of this node (default: hostname)");
  app.add_option("--host-ip", cfg.host_ip, "the node's IP address reported in status");
  app.add_option("--api-endpoint", api_endpoint, "API server request endpoint");
  app.add_option("--api-feed-endpoint", feed_endpoint, "API server feed endpoint");
  app.add_option("--runtime-endpoint", runtime_endpoint, "runtime endpoint");
  app.add_option("--endpoint", endpoint, "this kubelet's request endpoint");
  app.add_option("--relist-period-ms", relist_ms, "runtime relist period")
      ->check(CLI::Range(10, 600000));
  app.add_option("--node-status-period-ms", node_status_ms, "node heartbeat period")
      ->check(CLI::Range(10, 3600000));
  app.add_option("--feed-silence-ms", feed_silence_ms,
                 "relist when the API feed is silent this long")
      ->check(CLI::Range(100, 600000));
  std::string static_pod_path;
  int64_t static_pod_poll_ms = 500;
  app.add_option("--static-pod-path", static_pod_path,
                 "directory of static pod manifests (Kubernetes' staticPodPath)");
  app.add_option("--static-pod-poll-ms", static_pod_poll_ms,
                 "how often the static pod directory is read")
      ->check(CLI::Range(10, 60000));
  // The node: capacity, reservations, eviction, lease (node_status.hpp, eviction.hpp).
  std::string kube_reserved, system_reserved;
  std::string eviction_hard = "memory.available<100Mi,nodefs.available<10%";
  int64_t eviction_period_ms = 10000, eviction_transition_ms = 300000;
  int64_t lease_renew_ms = 10000, status_report_ms = 300000;
  int32_t lease_duration_s = 40;
  app.add_option("--max-pods", cfg.node.max_pods, "pods capacity of the node")
      ->check(CLI::Range(1, 100000));
  app.add_option("--kube-reserved", kube_reserved,
                 "resources reserved for Kubernetes components (cpu=100m,memory=256Mi,...)");
  app.add_option("--system-reserved", system_reserved,
                 "resources reserved for the system (cpu=100m,memory=256Mi,...)");
  app.add_option("--eviction-hard", eviction_hard,
                 "hard eviction thresholds (memory.available<100Mi,nodefs.available<10%); "
                 "empty: none");
  app.add_option("--eviction-monitoring-period-ms", eviction_period_ms,
                 "how often eviction thresholds are checked")
      ->check(CLI::Range(10, 3600000));
  app.add_option("--eviction-pressure-transition-period-ms", eviction_transition_ms,
                 "how long a pressure condition stays after its signal recovered")
      ->check(CLI::Range(0, 86400000));
  app.add_option("--lease-renew-period-ms", lease_renew_ms, "node lease renewal period")
      ->check(CLI::Range(10, 3600000));
  app.add_option("--node-lease-duration-seconds", lease_duration_s,
                 "leaseDurationSeconds of the node lease")
      ->check(CLI::Range(1, 3600));
  app.add_option("--node-status-report-frequency-ms", status_report_ms,
                 "node status is sent at least this often even when unchanged")
      ->check(CLI::Range(10, 86400000));
  if (auto rc = host::parse(app, argc, argv); rc >= 0)
    return rc;
  {
    auto thresholds = kubelet::parse_eviction_thresholds(eviction_hard);
    auto kr = kubelet::parse_reserved(kube_reserved);
    auto sr = kubelet::parse_reserved(system_reserved);
    for (const auto* e : {thresholds ? nullptr : &thresholds.err(), kr ? nullptr : &kr.err(),
                          sr ? nullptr : &sr.err()})
      if (e) {
        std::cerr << "deckhand-kubelet: " << e->message << "\n";
        return 2;
      }
    cfg.node.eviction_hard = *thresholds;
    cfg.node.kube_reserved = *kr;
    cfg.node.system_reserved = *sr;
    cfg.node.lease_renew_period = std::chrono::milliseconds(lease_renew_ms);
    cfg.node.lease_duration_seconds = lease_duration_s;
    cfg.node.status_report_frequency = std::chrono::milliseconds(status_report_ms);
    cfg.eviction.monitoring_period = std::chrono::milliseconds(eviction_period_ms);
    cfg.eviction.pressure_transition_period = std::chrono::milliseconds(eviction_transition_ms);
  }
  log::init("kubelet", common.log_level, common.log_json);
  if (cfg.host_ip.empty())
    cfg.host_ip = kubelet::detect_node_ip();
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
  if (!static_pod_path.empty())
    cfg.static_pod_path = std::filesystem::absolute(static_pod_path);
  cfg.static_pod_poll = std::chrono::milliseconds(static_pod_poll_ms);

  std::error_code ec;
  std::filesystem::create_directories(paths::run_dir(data), ec);
  if (ec) {
    std::cerr << "deckhand-kubelet: cannot create " << paths::run_dir(data) << ": " << ec.message()
              << "\n";
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
  auto sub =
      bus.connect_sub(feed_endpoint, {"pods", "hb"}, [kl](const std::string&, wire::envelope env) {
        caf::anon_send(kl, host::feed_atom::value, std::move(env));
      });
  if (!router || !sub) {
    std::cerr << "deckhand-kubelet: " << (!router ? router.err().message : sub.err().message)
              << "\n";
    caf::anon_send_exit(kl, caf::exit_reason::user_shutdown);
    return 1;
  }
  bus.start();
  log::get()->info("msg=\"kubelet started\" node={} incarnation={} endpoint={}", cfg.node_name,
                   bus.incarnation(), endpoint);
  comp.wait_for_stop();
  caf::anon_send_exit(kl, caf::exit_reason::user_shutdown);
  comp.shutdown();
  return 0;
}

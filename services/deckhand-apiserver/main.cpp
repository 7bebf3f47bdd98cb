// deckhand-apiserver: durable cluster state, Kubernetes REST for users and
// kubectl, and the ZeroMQ feed for nodes. Wiring only.
#include <iostream>

#include <caf/all.hpp>

#include "deckhand/apiserver/endpoints_controller.hpp"
#include "deckhand/apiserver/http_api.hpp"
#include "deckhand/apiserver/node_service.hpp"
#include "deckhand/apiserver/registry.hpp"
#include "deckhand/apiserver/store.hpp"
#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/host/component.hpp"
#include "deckhand/host/config.hpp"

using namespace deckhand;

int main(int argc, char** argv) {
  host::block_signals();
  CLI::App app{"deckhand-apiserver: the cluster's API server"};
  host::common_options common;
  host::add_common_options(app, common);
  apiserver::http_options http;
  apiserver::node_service_options nodes;
  std::string endpoint, feed_endpoint, url_file;
  int64_t lease_ms = 40000, hb_ms = 1000;
  apiserver::service_allocator_options alloc_opts;
  std::string node_port_range = "30000-32767";
  apiserver::endpoints_controller_options ep_opts;
  app.add_option("--bind-address", http.host, "HTTP listen address");
  app.add_option("--secure-port,--port", http.port, "HTTP port (0: chosen by the OS)")
      ->check(CLI::Range(0, 65535));
  app.add_option("--endpoint", endpoint, "ZeroMQ request endpoint for nodes");
  app.add_option("--feed-endpoint", feed_endpoint, "ZeroMQ feed (PUB) endpoint for nodes");
  app.add_option("--url-file", url_file, "where to write the HTTP URL");
  app.add_option("--node-lease-ms", lease_ms, "a node silent this long gets no new pods")
      ->check(CLI::Range(100, 3600000));
  app.add_option("--feed-heartbeat-ms", hb_ms, "feed heartbeat interval")
      ->check(CLI::Range(10, 60000));
  app.add_option("--service-cluster-ip-range", alloc_opts.service_cidr,
                 "IPv4 CIDR from which Services get cluster IPs");
  app.add_option("--service-node-port-range", node_port_range,
                 "MIN-MAX: the ports NodePort Services get");
  app.add_option("--max-endpoints-per-slice", ep_opts.max_endpoints_per_slice,
                 "endpoints per EndpointSlice")
      ->check(CLI::Range(1, 1000));
  if (auto rc = host::parse(app, argc, argv); rc >= 0)
    return rc;
  log::init("apiserver", common.log_level, common.log_json);
  const auto& data = common.data_dir;
  if (endpoint.empty())
    endpoint = paths::ipc_endpoint(data, "apiserver");
  if (feed_endpoint.empty())
    feed_endpoint = paths::ipc_endpoint(data, "apiserver-feed");
  if (url_file.empty())
    url_file = paths::apiserver_url_file(data).string();
  nodes.node_lease = std::chrono::milliseconds(lease_ms);
  nodes.feed_heartbeat = std::chrono::milliseconds(hb_ms);

  std::error_code ec;
  std::filesystem::create_directories(paths::run_dir(data), ec);
  std::filesystem::create_directories(paths::apiserver_dir(data), ec);
  if (ec) {
    std::cerr << "deckhand-apiserver: cannot create directories under " << data << ": "
              << ec.message() << "\n";
    return 1;
  }
  auto port_range = apiserver::parse_port_range(node_port_range);
  if (!port_range) {
    std::cerr << "deckhand-apiserver: --service-node-port-range: " << port_range.err().message
              << "\n";
    return 1;
  }
  alloc_opts.node_port_min = port_range->first;
  alloc_opts.node_port_max = port_range->second;
  auto allocator = apiserver::service_allocator::create(alloc_opts);
  if (!allocator) {
    std::cerr << "deckhand-apiserver: --service-cluster-ip-range: " << allocator.err().message
              << "\n";
    return 1;
  }
  auto st = apiserver::store::open(paths::apiserver_dir(data));
  if (!st) {
    std::cerr << "deckhand-apiserver: cannot open the store: " << st.err().message << "\n";
    return 1;
  }
  apiserver::registry_options reg_opts;
  reg_opts.allocator = std::move(*allocator);
  apiserver::registry reg(*st, reg_opts);
  // Endpoints follow Services and Pods from here on, whichever side writes.
  apiserver::endpoints_controller endpoints(reg, ep_opts);
  endpoints.start();
  host::component comp("apiserver", common);
  auto& bus = comp.bus();
  auto pub = bus.bind_pub(feed_endpoint);
  if (!pub) {
    std::cerr << "deckhand-apiserver: " << pub.err().message << "\n";
    return 1;
  }
  auto svc = apiserver::spawn_node_service(comp.system(), reg, bus, *pub, nodes);
  auto router = bus.bind_router(endpoint, host::forward_to(svc));
  if (!router) {
    std::cerr << "deckhand-apiserver: " << router.err().message << "\n";
    caf::anon_send_exit(svc, caf::exit_reason::user_shutdown);
    return 1;
  }
  bus.start();
  apiserver::http_api api(reg, http);
  auto port = api.start();
  if (!port) {
    std::cerr << "deckhand-apiserver: cannot serve HTTP: " << port.err().message << "\n";
    caf::anon_send_exit(svc, caf::exit_reason::user_shutdown);
    return 1;
  }
  if (auto err = fsutil::write_file_atomic(url_file, api.url() + "\n")) {
    std::cerr << "deckhand-apiserver: " << err.message << "\n";
    caf::anon_send_exit(svc, caf::exit_reason::user_shutdown);
    return 1;
  }
  log::get()->info("msg=\"apiserver started\" url={} endpoint={} incarnation={} revision={}",
                   api.url(), endpoint, bus.incarnation(), reg.revision());
  comp.wait_for_stop();
  api.stop();
  endpoints.stop();
  caf::anon_send_exit(svc, caf::exit_reason::user_shutdown);
  // A detached actor's thread waits until the last handle to it is gone.
  svc = caf::actor{};
  comp.shutdown();
  return 0;
}

// deckhand-proxy: Service routing. Wiring only; see actors/proxy.
#include <unistd.h>

#include <fstream>
#include <iostream>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/host/component.hpp"
#include "deckhand/host/config.hpp"
#include "deckhand/proxy/iptables.hpp"
#include "deckhand/proxy/nftables.hpp"
#include "deckhand/proxy/proxy.hpp"
#include "deckhand/proxy/userspace.hpp"

using namespace deckhand;

int main(int argc, char** argv) {
  host::block_signals();
  CLI::App app{"deckhand-proxy: routes Service traffic to ready pods"};
  host::common_options common;
  host::add_common_options(app, common);
  std::string api_endpoint, feed_endpoint, endpoint, mode;
  proxy::proxy_config cfg;
  proxy::kernel_options kopts;
  std::string node_ip = "0.0.0.0";
  bool cleanup = false;
  app.add_option("--api-endpoint", api_endpoint, "API server request endpoint");
  app.add_option("--api-feed-endpoint", feed_endpoint, "API server feed endpoint");
  app.add_option("--endpoint", endpoint, "this proxy's request endpoint");
  app.add_option("--proxy-mode,--mode", mode,
                 "data plane: nftables, iptables, userspace, or log (compute and log only). "
                 "Default: nftables when root with nft available, else userspace");
  host::add_duration_option(app, "--min-sync-period", cfg.min_sync_period,
                            "changes are applied at most this often, batched (e.g. 1s, 500ms)");
  host::add_duration_option(app, "--sync-period", cfg.sync_period,
                            "full resync period that rewrites every rule (e.g. 30s; 0: never)");
  app.add_option("--cluster-cidr,--pod-cidr", kopts.pod_cidr,
                 "pod CIDR: ClusterIP traffic from outside it is masqueraded (empty: all)");
  app.add_option("--node-name,--hostname-override", kopts.node_name,
                 "this node's name (externalTrafficPolicy: Local)");
  app.add_option("--nft-table", kopts.nft_table,
                 "nftables mode: the table (family ip) that holds every rule");
  app.add_option("--iptables-chain-prefix", kopts.chain_prefix,
                 "iptables mode: prefix of every chain (at most 8 characters)");
  app.add_option("--node-ip", node_ip, "userspace mode: the address NodePorts listen on");
  app.add_flag("--cleanup", cleanup,
               "remove every rule any mode of deckhand-proxy created, then exit");
  if (auto rc = host::parse(app, argc, argv); rc >= 0)
    return rc;
  log::init("proxy", common.log_level, common.log_json);

  if (cleanup) {
    int rc = 0;
    proxy::nftables_data_plane nft(kopts);
    proxy::iptables_data_plane ipt(kopts);
    for (proxy::data_plane* p :
         {static_cast<proxy::data_plane*>(&nft), static_cast<proxy::data_plane*>(&ipt)}) {
      if (auto r = p->cleanup(); !r) {
        std::cerr << "deckhand-proxy: cleanup of " << p->mode() << " rules: " << r.err().message
                  << "\n";
        rc = 1;
      }
    }
    log::get()->info("msg=\"cleanup done\" ok={}", rc == 0);
    return rc;
  }

  if (mode.empty())
    mode = proxy::nftables_available() ? "nftables" : "userspace";
  if (mode == "nftables") {
    if (!proxy::nftables_available()) {
      std::cerr << "deckhand-proxy: mode nftables needs root and the nft program\n";
      return 2;
    }
    cfg.plane = std::make_shared<proxy::nftables_data_plane>(kopts);
  } else if (mode == "iptables") {
    if (!proxy::iptables_available()) {
      std::cerr << "deckhand-proxy: mode iptables needs root and iptables-restore\n";
      return 2;
    }
    cfg.plane = std::make_shared<proxy::iptables_data_plane>(kopts);
  } else if (mode == "userspace") {
#ifdef DECKHAND_PROXY_HAVE_USERSPACE
    proxy::userspace_options uopts;
    uopts.node_address = node_ip;
    cfg.plane = proxy::make_userspace_data_plane(uopts);
#else
    std::cerr << "deckhand-proxy: mode userspace is not available in this build\n";
    return 2;
#endif
  } else if (mode != "log") {
    std::cerr << "deckhand-proxy: unknown mode \"" << mode
              << "\" (nftables, iptables, userspace, log)\n";
    return 2;
  }
  if (mode == "nftables" || mode == "iptables") {
    // Pod traffic to a Service is forwarded after DNAT.
    auto fwd = proxy::enable_ip_forward();
    if (!fwd)
      log::get()->warn("msg=\"cannot enable ip_forward\" error=\"{}\"", fwd.err().message);
    else if (!*fwd)
      log::get()->info("msg=\"enabled net.ipv4.ip_forward\"");
    // A pod reaching a Service whose endpoint is on the same bridge gets its
    // reply straight over the bridge; only with bridge netfilter does that
    // reply pass conntrack and get its source rewritten back to the ClusterIP
    // (Kubernetes' network plugins require the same).
    const char* brnf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
    std::ifstream in(brnf);
    std::string v;
    if (!(in >> v)) {
      log::get()->warn("msg=\"br_netfilter is not loaded: pods cannot reach Services whose "
                       "endpoints share their bridge (modprobe br_netfilter)\"");
    } else if (v != "1") {
      std::ofstream out(brnf);
      out << "1\n";
      out.flush();
      if (out)
        log::get()->info("msg=\"enabled net.bridge.bridge-nf-call-iptables\"");
      else
        log::get()->warn("msg=\"cannot enable net.bridge.bridge-nf-call-iptables\"");
    }
  }

  const auto& data = common.data_dir;
  if (api_endpoint.empty())
    api_endpoint = paths::ipc_endpoint(data, "apiserver");
  if (feed_endpoint.empty())
    feed_endpoint = paths::ipc_endpoint(data, "apiserver-feed");
  if (endpoint.empty())
    endpoint = paths::ipc_endpoint(data, "proxy");
  std::error_code ec;
  std::filesystem::create_directories(paths::run_dir(data), ec);
  host::component comp("proxy", common);
  auto& bus = comp.bus();
  auto api = bus.connect_dealer(api_endpoint);
  if (!api) {
    std::cerr << "deckhand-proxy: " << api.err().message << "\n";
    return 1;
  }
  auto px = proxy::spawn_proxy(comp.system(), bus, *api, cfg);
  auto router = bus.bind_router(endpoint, {});
  auto sub = bus.connect_sub(feed_endpoint, {"services", "endpointslices", "hb"},
                             [px](const std::string&, wire::envelope env) {
                               caf::anon_send(px, host::feed_atom::value, std::move(env));
                             });
  if (!router || !sub) {
    std::cerr << "deckhand-proxy: " << (!router ? router.err().message : sub.err().message) << "\n";
    caf::anon_send_exit(px, caf::exit_reason::user_shutdown);
    return 1;
  }
  bus.start();
  log::get()->info("msg=\"proxy started\" mode={} incarnation={} min_sync_ms={} sync_ms={} "
                   "pod_cidr={}",
                   mode, bus.incarnation(), cfg.min_sync_period.count(), cfg.sync_period.count(),
                   kopts.pod_cidr);
  comp.wait_for_stop();
  // Rules stay in the kernel: a proxy that exits must not interrupt Service
  // traffic (the next one adopts them).
  caf::anon_send_exit(px, caf::exit_reason::user_shutdown);
  comp.shutdown();
  return 0;
}

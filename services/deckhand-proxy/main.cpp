// deckhand-proxy: Service routing. Wiring only; see actors/proxy.
#include <iostream>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/host/component.hpp"
#include "deckhand/host/config.hpp"
#include "deckhand/proxy/proxy.hpp"

using namespace deckhand;

int main(int argc, char** argv) {
  host::block_signals();
  CLI::App app{"deckhand-proxy: routes Service traffic to ready pods"};
  host::common_options common;
  host::add_common_options(app, common);
  std::string api_endpoint, feed_endpoint, endpoint, mode = "log";
  app.add_option("--api-endpoint", api_endpoint, "API server request endpoint");
  app.add_option("--api-feed-endpoint", feed_endpoint, "API server feed endpoint");
  app.add_option("--endpoint", endpoint, "this proxy's request endpoint");
  app.add_option("--proxy-mode,--mode", mode,
                 "data plane: only 'log' exists so far (nftables, iptables and userspace "
                 "are not implemented yet)");
  if (auto rc = host::parse(app, argc, argv); rc >= 0)
    return rc;
  log::init("proxy", common.log_level, common.log_json);
  if (mode != "log") {
    std::cerr << "deckhand-proxy: proxy mode \"" << mode
              << "\" is not implemented yet; only \"log\" (compute and log the rules) is\n";
    return 2;
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
  auto px = proxy::spawn_proxy(comp.system(), bus, *api, {});
  auto router = bus.bind_router(endpoint, {});
  auto sub = bus.connect_sub(feed_endpoint, {"services", "hb"},
                             [px](const std::string&, wire::envelope env) {
                               caf::anon_send(px, host::feed_atom::value, std::move(env));
                             });
  if (!router || !sub) {
    std::cerr << "deckhand-proxy: " << (!router ? router.err().message : sub.err().message)
              << "\n";
    caf::anon_send_exit(px, caf::exit_reason::user_shutdown);
    return 1;
  }
  bus.start();
  log::get()->info("msg=\"proxy started\" mode=log incarnation={} note=\"no data plane yet: "
                   "rules are computed and logged, not programmed\"",
                   bus.incarnation());
  comp.wait_for_stop();
  caf::anon_send_exit(px, caf::exit_reason::user_shutdown);
  comp.shutdown();
  return 0;
}

#include "deckhand/kubelet/kubelet.hpp"

#include <memory>
#include <utility>

#include "context.hpp"

namespace deckhand::kubelet {

caf::actor spawn_kubelet(caf::actor_system& sys, kubelet_sockets sockets, kubelet_config cfg) {
  if (!sockets.request) {
    auto* bus = sockets.bus;
    sockets.request = [bus](int dealer, wire::envelope req, std::chrono::milliseconds deadline,
                            transport::reply_handler on_reply) {
      bus->request(dealer, std::move(req), deadline, std::move(on_reply));
    };
  }
  auto runtime = sockets.runtime_peer ? sockets.runtime_peer
                                      : make_runtime_client(sockets.request, sockets.runtime);
  auto api = sockets.api_peer ? sockets.api_peer : make_api_client(sockets.request, sockets.api);
  auto stats = cfg.event_stats;
  auto ctx = std::make_shared<const detail::context>(detail::context{
      std::move(sockets), std::move(cfg), std::move(stats), std::move(runtime), std::move(api)});
  return detail::spawn_sync_loop(sys, ctx);
}

}  // namespace deckhand::kubelet

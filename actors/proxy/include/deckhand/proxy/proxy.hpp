#pragma once

/// kube-proxy's control loop: follows Services and EndpointSlices from the API
/// server (snapshot + numbered feed, relisting both on a gap, a restart or
/// silence), builds the service_map and applies it through one data plane:
/// batched (at most one sync per `min_sync_period`), only when the map
/// changed, plus a full resync every `sync_period` that rewrites everything
/// (repairing rules deleted by hand). Nothing is applied before both kinds
/// have been listed once, so a restarted proxy never replaces working rules
/// with a map that lacks endpoints.

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/model.hpp"
#include "deckhand/proxy/data_plane.hpp"

namespace deckhand::proxy {

struct proxy_config {
  std::chrono::milliseconds resync_period{1000};
  std::chrono::milliseconds feed_silence{3000};
  std::chrono::milliseconds request_deadline{5000};
  /// Changes arriving within this period are applied together.
  std::chrono::milliseconds min_sync_period{1000};
  /// Full resync period (0: never).
  std::chrono::milliseconds sync_period{30000};
  /// Where the map goes; null: rules are only logged.
  std::shared_ptr<data_plane> plane;
};

/// One line per Service port: what a data plane would program for it.
std::vector<std::string> describe_rules(const std::map<std::string, wire::service>& services);

/// Spawns the proxy's sync actor (applies run on short-lived blocking actors,
/// as nft and iptables-restore block); it must receive (feed_atom, envelope) for
/// every feed message of the topics "services", "endpointslices" and "hb".
caf::actor spawn_proxy(caf::actor_system& sys, transport::bridge& bus, int api_dealer,
                       proxy_config cfg);

}  // namespace deckhand::proxy

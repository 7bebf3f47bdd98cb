#pragma once

/// kube-proxy's control loop: follows Services from the API server (snapshot +
/// numbered feed, relisting on a gap, a restart or silence) and computes the
/// rules a data plane would program. The data planes (nftables, iptables,
/// userspace) are not implemented yet: this proxy logs the rule set it would
/// apply on every change, and says so at start-up.

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/model.hpp"

namespace deckhand::proxy {

struct proxy_config {
  std::chrono::milliseconds resync_period{1000};
  std::chrono::milliseconds feed_silence{3000};
  std::chrono::milliseconds request_deadline{5000};
};

/// One line per Service port: what a data plane would program for it.
std::vector<std::string> describe_rules(const std::map<std::string, wire::service>& services);

/// Spawns the proxy's sync actor; it must receive (feed_atom, envelope) for
/// every feed message.
caf::actor spawn_proxy(caf::actor_system& sys, transport::bridge& bus, int api_dealer,
                       proxy_config cfg);

} // namespace deckhand::proxy

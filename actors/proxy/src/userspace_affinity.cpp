/// Backend choice: round robin, with ClientIP session affinity.

#include "userspace_impl.hpp"

namespace deckhand::proxy {

std::optional<sockaddr_in> userspace_data_plane::impl::pick(service_state& s, uint32_t client_ip,
                                                            const std::vector<sockaddr_in>& tried) {
  auto was_tried = [&](const sockaddr_in& b) {
    return std::any_of(tried.begin(), tried.end(),
                       [&](const sockaddr_in& t) { return same_endpoint(t, b); });
  };
  auto now = clock_type::now();
  if (s.entry.affinity_client_ip) {
    auto it = s.affinity.find(client_ip);
    if (it != s.affinity.end()) {
      bool fresh =
          now - it->second.last_used <= std::chrono::seconds(s.entry.affinity_timeout_seconds);
      if (fresh && s.has_backend(it->second.backend) && !was_tried(it->second.backend)) {
        it->second.last_used = now;
        return it->second.backend;
      }
    }
  }
  std::size_t n = s.backends.size();
  for (std::size_t i = 0; i < n; ++i) {
    const auto& b = s.backends[(s.rr_next + i) % n];
    if (was_tried(b))
      continue;
    s.rr_next = (s.rr_next + i + 1) % n;
    if (s.entry.affinity_client_ip && s.affinity.size() < max_affinity_records)
      s.affinity[client_ip] = {b, now};
    else if (s.entry.affinity_client_ip)
      s.affinity.erase(client_ip);
    return b;
  }
  return std::nullopt;
}

}  // namespace deckhand::proxy

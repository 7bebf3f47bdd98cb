/// Applying a service map: which listeners to open, keep or close, checked
/// against the ports this process may bind, and each service port's backends.

#include "userspace_impl.hpp"

namespace deckhand::proxy {

std::string userspace_data_plane::impl::validate(const service_port_entry& e, plan& p) {
  if (e.protocol == "UDP")
    p.udp = true;
  else if (e.protocol != "TCP")
    return "protocol " + (e.protocol.empty() ? std::string("\"\"") : e.protocol) +
           " is not supported by the userspace proxy (TCP and UDP only)";
  bool has_cluster = !e.cluster_ip.empty() && e.cluster_ip != "None";
  if (has_cluster) {
    if (e.port <= 0 || e.port > 65535)
      return "port " + std::to_string(e.port) + " is out of range 1-65535";
    auto a = parse_ipv4(e.cluster_ip, e.port);
    if (!a)
      return "clusterIP \"" + e.cluster_ip + "\" is not an IPv4 address";
    uint32_t host = ntohl(a->sin_addr.s_addr);
    if (host == INADDR_ANY || host == INADDR_BROADCAST || IN_MULTICAST(host))
      return "clusterIP " + e.cluster_ip + " cannot be a Service address";
    if (auto err = check_port(e.port, "port"); !err.empty())
      return err;
    p.cluster = a;
  }
  if (e.node_port < 0 || e.node_port > 65535)
    return "nodePort " + std::to_string(e.node_port) + " is out of range 1-65535";
  if (e.node_port > 0) {
    auto a = parse_ipv4(opts_.node_address, e.node_port);
    if (!a)
      return "node address \"" + opts_.node_address + "\" is not an IPv4 address";
    if (auto err = check_port(e.node_port, "nodePort"); !err.empty())
      return err;
    p.node = a;
  }
  if (!p.cluster && !p.node)
    return "nothing to listen on: no clusterIP and no nodePort";
  return {};
}

std::string userspace_data_plane::impl::check_port(int port, const char* what) const {
  if (port < unprivileged_port_start_ && !privileged_)
    return std::string(what) + " " + std::to_string(port) +
           " is below net.ipv4.ip_unprivileged_port_start=" +
           std::to_string(unprivileged_port_start_) +
           " and this process lacks CAP_NET_BIND_SERVICE (grant it, lower the sysctl, "
           "or use a higher port)";
  return {};
}

result<void> userspace_data_plane::impl::apply_on_thread(const service_map& desired) {
  std::vector<plan> plans;
  std::set<std::string> keys;
  for (const auto& e : desired.entries) {
    plan p;
    p.entry = &e;
    p.key = e.key();
    if (!keys.insert(p.key).second)
      p.error = "duplicate entry " + p.key;
    else
      p.error = validate(e, p);
    plans.push_back(std::move(p));
  }

  // Listen addresses: an entry that already holds one keeps it; otherwise
  // the first entry in map order gets it and later ones fail.
  std::map<std::string, std::string> owner;  // listen key -> entry key
  auto current_owner = [&](const std::string& lk) -> std::string {
    auto it = listen_index_.find(lk);
    if (it == listen_index_.end())
      return {};
    auto t = targets_.find(it->second);
    return t == targets_.end() ? std::string{}
                               : static_cast<listener&>(*t->second).svc->entry.key();
  };
  for (auto& p : plans) {
    if (!p.error.empty())
      continue;
    for (auto& a : {p.cluster, p.node})
      if (a) {
        auto lk = listen_key(p.udp, *a);
        if (current_owner(lk) == p.key)
          owner[lk] = p.key;
      }
  }
  for (auto& p : plans) {
    if (!p.error.empty())
      continue;
    std::vector<std::string> mine;
    for (auto& a : {p.cluster, p.node}) {
      if (!a)
        continue;
      auto lk = listen_key(p.udp, *a);
      auto [it, inserted] = owner.emplace(lk, p.key);
      if (!inserted && it->second != p.key) {
        p.error = "listen address " + lk + " is already used by " + it->second;
        break;
      }
      if (std::find(mine.begin(), mine.end(), lk) != mine.end()) {
        p.error = "clusterIP and nodePort both want " + lk;
        break;
      }
      mine.push_back(lk);
    }
    if (!p.error.empty())
      for (auto& lk : mine)
        if (owner[lk] == p.key)
          owner.erase(lk);
  }

  // Close first, so that an address given up by one entry can be taken by
  // another in the same apply.
  std::map<std::string, const plan*> wanted;
  for (auto& p : plans)
    if (p.error.empty())
      wanted[p.key] = &p;
  for (auto it = services_.begin(); it != services_.end();) {
    auto w = wanted.find(it->first);
    auto& s = *it->second;
    if (w == wanted.end() || w->second->udp != s.udp) {
      close_listener(s.cluster_listener);
      close_listener(s.node_listener);
      it = services_.erase(it);
      continue;
    }
    auto differs = [](const std::optional<sockaddr_in>& a, const std::optional<sockaddr_in>& b) {
      return a.has_value() != b.has_value() || (a && !same_endpoint(*a, *b));
    };
    if (differs(s.cluster_addr, w->second->cluster)) {
      close_listener(s.cluster_listener);
      s.cluster_addr.reset();
    }
    if (differs(s.node_addr, w->second->node)) {
      close_listener(s.node_listener);
      s.node_addr.reset();
    }
    ++it;
  }

  for (auto& p : plans) {
    if (!p.error.empty())
      continue;
    auto& sp = services_[p.key];
    if (!sp) {
      sp = std::make_shared<service_state>();
      sp->udp = p.udp;
    }
    update_backends(*sp, *p.entry);
    std::string err;
    if (p.cluster && !sp->cluster_listener) {
      auto r = open_listener(sp, *p.cluster);
      if (r.ok()) {
        sp->cluster_listener = *r;
        sp->cluster_addr = p.cluster;
      } else {
        err = r.err().message;
      }
    }
    if (p.node && !sp->node_listener) {
      auto r = open_listener(sp, *p.node);
      if (r.ok()) {
        sp->node_listener = *r;
        sp->node_addr = p.node;
      } else {
        err += (err.empty() ? "" : "; ") + r.err().message;
      }
    }
    p.error = err;
    if (!sp->cluster_listener && !sp->node_listener)
      services_.erase(p.key);
  }

  errors_.clear();
  std::map<std::string, std::string> still_failing;
  for (auto& p : plans) {
    if (p.error.empty())
      continue;
    errors_.push_back({p.key, p.error});
    ++stats_.entry_errors;
    auto lit = logged_errors_.find(p.key);
    if (lit == logged_errors_.end() || lit->second != p.error)
      log::get()->warn("msg=\"userspace proxy cannot serve entry\" service={} error=\"{}\"", p.key,
                       p.error);
    still_failing[p.key] = p.error;
  }
  logged_errors_ = std::move(still_failing);
  housekeeping_due_ =
      housekeeping_due_ ? housekeeping_due_ : clock_type::now() + std::chrono::seconds(1);

  if (errors_.empty())
    return {};
  std::string msg = std::to_string(errors_.size()) + " of " +
                    std::to_string(desired.entries.size()) +
                    " entries not served by the userspace proxy: ";
  for (std::size_t i = 0; i < errors_.size(); ++i)
    msg += (i ? "; " : "") + errors_[i].key + ": " + errors_[i].message;
  return error{errc::invalid, msg};
}

void userspace_data_plane::impl::close_listener(uint64_t& id) {
  if (id)
    close_target(id);
  id = 0;
}

void userspace_data_plane::impl::update_backends(service_state& s, const service_port_entry& e) {
  std::vector<sockaddr_in> fresh;
  for (const auto& b : e.usable_backends()) {
    if (b.port <= 0 || b.port > 65535)
      continue;
    if (auto a = parse_ipv4(b.ip, b.port))
      fresh.push_back(*a);
  }
  bool changed = fresh.size() != s.backends.size() ||
                 !std::equal(fresh.begin(), fresh.end(), s.backends.begin(), same_endpoint);
  bool affinity_changed = e.affinity_client_ip != s.entry.affinity_client_ip ||
                          e.affinity_timeout_seconds != s.entry.affinity_timeout_seconds;
  s.entry = e;
  if (changed) {
    s.backends = std::move(fresh);
    s.rr_next = 0;
  }
  if (affinity_changed || !e.affinity_client_ip)
    s.affinity.clear();
  if (!changed)
    return;
  for (auto it = s.affinity.begin(); it != s.affinity.end();)
    it = s.has_backend(it->second.backend) ? std::next(it) : s.affinity.erase(it);
  // UDP has no connection to finish: sessions to backends that can no
  // longer take traffic are dropped, as kube-proxy flushes their conntrack.
  if (s.udp) {
    for (uint64_t lid : {s.cluster_listener, s.node_listener}) {
      auto lit = targets_.find(lid);
      if (!lid || lit == targets_.end())
        continue;
      std::vector<uint64_t> stale;
      for (auto& [_, sid] : static_cast<listener&>(*lit->second).sessions) {
        auto sit = targets_.find(sid);
        if (sit != targets_.end() &&
            !s.has_backend(static_cast<udp_session&>(*sit->second).backend))
          stale.push_back(sid);
      }
      for (auto sid : stale)
        close_target(sid);
    }
  }
}

result<uint64_t>
userspace_data_plane::impl::open_listener(const std::shared_ptr<service_state>& svc,
                                          const sockaddr_in& a) {
  auto l = std::make_unique<listener>();
  l->udp = svc->udp;
  l->addr = a;
  l->wildcard = a.sin_addr.s_addr == htonl(INADDR_ANY);
  l->key = listen_key(l->udp, a);
  l->svc = svc;
  l->fd.reset(
      ::socket(AF_INET, (l->udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!l->fd)
    return error::from_errno("socket for " + l->key);
  int one = 1;
  if (!l->udp)
    ::setsockopt(l->fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (l->udp && l->wildcard)
    ::setsockopt(l->fd.get(), IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
  if (::bind(l->fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    int e = errno;
    if (e == EADDRNOTAVAIL)
      return error{errc::unavailable,
                   "cannot listen on " + l->key +
                       ": the address is not local to this host; "
                       "the userspace proxy only serves cluster IPs it can bind (put the service "
                       "CIDR in 127.0.0.0/8, e.g. 127.96.0.0/16, or add the address to an "
                       "interface)"};
    if (e == EACCES)
      return error{errc::unavailable, "cannot listen on " + l->key +
                                          ": permission denied (ports below "
                                          "net.ipv4.ip_unprivileged_port_start need "
                                          "CAP_NET_BIND_SERVICE)"};
    return error::from_errno("cannot listen on " + l->key, e);
  }
  if (!l->udp && ::listen(l->fd.get(), SOMAXCONN) != 0)
    return error::from_errno("listen on " + l->key);
  int fd = l->fd.get();
  std::string key = l->key;
  uint64_t id = add_target(std::move(l));
  if (!watch(fd, id, EPOLLIN)) {
    auto err = error::from_errno("epoll_ctl for " + key);
    targets_.erase(id);
    return err;
  }
  listen_index_[key] = id;
  return id;
}

}  // namespace deckhand::proxy

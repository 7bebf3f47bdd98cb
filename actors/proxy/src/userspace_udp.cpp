/// UDP forwarding: one session socket per client towards its backend, and
/// the replies sent back from the address the client sent to.

#include "userspace_impl.hpp"

namespace deckhand::proxy {

void userspace_data_plane::impl::on_udp_listener(listener& l, uint64_t lid) {
  auto now = clock_type::now();
  for (int i = 0; i < 64; ++i) {
    sockaddr_in peer{};
    iovec iov{udp_buf_.data(), udp_buf_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))];
    msghdr msg{};
    msg.msg_name = &peer;
    msg.msg_namelen = sizeof peer;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(l.fd.get(), &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        return;
      continue;  // a stray ICMP error on the listener; keep serving
    }
    ++stats_.udp_datagrams_in;
    in_addr local = l.addr.sin_addr;
    for (auto* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
      if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
        local = reinterpret_cast<in_pktinfo*>(CMSG_DATA(cm))->ipi_addr;

    uint64_t sid = 0;
    if (auto it = l.sessions.find(client_key(peer)); it != l.sessions.end())
      sid = it->second;
    else
      sid = open_session(l, lid, peer, local);
    if (!sid) {
      ++stats_.udp_dropped;
      continue;
    }
    auto& s = static_cast<udp_session&>(*targets_.at(sid));
    s.last_active = now;
    if (::send(s.fd.get(), udp_buf_.data(), static_cast<std::size_t>(n), MSG_DONTWAIT) < 0) {
      ++stats_.udp_dropped;
      if (errno == ECONNREFUSED)
        drop_session(sid);
    }
  }
}

uint64_t userspace_data_plane::impl::open_session(listener& l, uint64_t lid,
                                                  const sockaddr_in& peer, in_addr local) {
  if (stats_.udp_sessions >= opts_.max_udp_sessions)
    return 0;
  auto b = pick(*l.svc, peer.sin_addr.s_addr, {});
  if (!b)
    return 0;
  auto s = std::make_unique<udp_session>();
  s->fd.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!s->fd || ::connect(s->fd.get(), reinterpret_cast<const sockaddr*>(&*b), sizeof *b) != 0)
    return 0;
  s->listener_id = lid;
  s->client = peer;
  s->backend = *b;
  s->local = local;
  s->last_active = clock_type::now();
  int fd = s->fd.get();
  uint64_t sid = add_target(std::move(s));
  if (!watch(fd, sid, EPOLLIN)) {
    targets_.erase(sid);
    return 0;
  }
  ++stats_.udp_sessions;
  l.sessions[client_key(peer)] = sid;
  schedule_housekeeping(udp_sweep_interval());
  return sid;
}

void userspace_data_plane::impl::drop_session(uint64_t sid) {
  auto& s = static_cast<udp_session&>(*targets_.at(sid));
  if (auto lit = targets_.find(s.listener_id); lit != targets_.end()) {
    auto& svc = *static_cast<listener&>(*lit->second).svc;
    auto a = svc.affinity.find(s.client.sin_addr.s_addr);
    if (a != svc.affinity.end() && same_endpoint(a->second.backend, s.backend))
      svc.affinity.erase(a);
  }
  close_target(sid);
}

void userspace_data_plane::impl::on_udp_session(uint64_t sid) {
  auto& s = static_cast<udp_session&>(*targets_.at(sid));
  auto lit = targets_.find(s.listener_id);
  if (lit == targets_.end()) {
    close_target(sid);
    return;
  }
  auto& l = static_cast<listener&>(*lit->second);
  for (int i = 0; i < 64; ++i) {
    ssize_t n = ::recv(s.fd.get(), udp_buf_.data(), udp_buf_.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == ECONNREFUSED) {
        drop_session(sid);
        return;
      }
      return;
    }
    s.last_active = clock_type::now();
    iovec iov{udp_buf_.data(), static_cast<std::size_t>(n)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(in_pktinfo))] = {};
    msghdr msg{};
    msg.msg_name = &s.client;
    msg.msg_namelen = sizeof s.client;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    if (l.wildcard) {
      // Answer from the address the client wrote to, or it drops the reply.
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      auto* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = IPPROTO_IP;
      cm->cmsg_type = IP_PKTINFO;
      cm->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
      in_pktinfo pi{};
      pi.ipi_spec_dst = s.local;
      std::memcpy(CMSG_DATA(cm), &pi, sizeof pi);
    }
    if (::sendmsg(l.fd.get(), &msg, MSG_DONTWAIT) >= 0)
      ++stats_.udp_datagrams_out;
    else
      ++stats_.udp_dropped;
  }
}

}  // namespace deckhand::proxy

/// TCP forwarding: accept, connect to a backend (with retries), then pump
/// both directions with splice(2) or a buffer.

#include "userspace_impl.hpp"

namespace deckhand::proxy {

void userspace_data_plane::impl::on_tcp_listener(listener& l) {
  for (int i = 0; i < 64; ++i) {
    sockaddr_in peer{};
    socklen_t len = sizeof peer;
    int fd = ::accept4(l.fd.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // Level-triggered: without a pause this would spin until an fd frees.
        epoll_event ev{};
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, l.fd.get(), &ev);
        l.paused = true;
        schedule_housekeeping(std::chrono::milliseconds(100));
        log::get()->warn("msg=\"userspace proxy: accept paused\" listener={} error=\"{}\"", l.key,
                         std::strerror(errno));
      }
      return;
    }
    ++stats_.tcp_accepted;
    auto c = std::make_unique<tcp_conn>();
    c->client.reset(fd);
    c->client_addr = peer;
    c->svc = l.svc;
    if (stats_.tcp_active >= opts_.max_tcp_connections || l.svc->backends.empty()) {
      ++stats_.tcp_rejected;
      abort_socket(c->client);
      continue;
    }
    ++stats_.tcp_active;
    uint64_t id = add_target(std::move(c));
    start_connect(id);
  }
}

void userspace_data_plane::impl::start_connect(uint64_t id) {
  auto& c = static_cast<tcp_conn&>(*targets_.at(id));
  for (;;) {
    c.backend.reset();
    std::optional<sockaddr_in> b;
    if (c.attempts < opts_.connect_attempts)
      b = pick(*c.svc, c.client_addr.sin_addr.s_addr, c.tried);
    if (!b) {
      if (c.attempts == 0)
        ++stats_.tcp_rejected;
      abort_socket(c.client);
      close_target(id);
      return;
    }
    ++c.attempts;
    c.tried.push_back(*b);
    c.backend_addr = *b;
    c.backend.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!c.backend) {
      abort_socket(c.client);
      close_target(id);
      return;
    }
    int one = 1;
    ::setsockopt(c.backend.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int r = ::connect(c.backend.get(), reinterpret_cast<const sockaddr*>(&*b), sizeof *b);
    if (r != 0 && errno != EINPROGRESS) {
      ++stats_.tcp_connect_failures;
      continue;
    }
    if (!watch(c.backend.get(), id, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, 1)) {
      abort_socket(c.client);
      close_target(id);
      return;
    }
    if (r == 0) {
      on_connected(id);
      return;
    }
    connect_deadlines_.emplace(clock_type::now() + opts_.connect_timeout,
                               std::make_pair(id, c.attempts));
    return;
  }
}

void userspace_data_plane::impl::on_tcp(uint64_t id, uint32_t events, unsigned side) {
  auto& c = static_cast<tcp_conn&>(*targets_.at(id));
  if (!c.connected) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
      return;
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(c.backend.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      ++stats_.tcp_connect_failures;
      if (c.svc->entry.affinity_client_ip)
        c.svc->affinity.erase(c.client_addr.sin_addr.s_addr);
      start_connect(id);
      return;
    }
    on_connected(id);
    return;
  }
  // Only the directions this event can move: the one reading from the
  // socket, and the one writing to it if that write was blocked.
  bool from_client = side == 0;
  bool readable = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
  bool writable = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
  auto& writing = from_client ? c.down : c.up;
  pump(id, readable, writable && writing.pending > 0, from_client);
}

void userspace_data_plane::impl::on_connected(uint64_t id) {
  auto& c = static_cast<tcp_conn&>(*targets_.at(id));
  c.connected = true;
  ++stats_.tcp_forwarded;
  int one = 1;
  ::setsockopt(c.client.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (!setup(c.up, c.client.get(), c.backend.get()) ||
      !setup(c.down, c.backend.get(), c.client.get()) ||
      !watch(c.client.get(), id, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)) {
    abort_socket(c.client);
    abort_socket(c.backend);
    close_target(id);
    return;
  }
  pump(id, true, true, true);
}

bool userspace_data_plane::impl::setup(direction& d, int from, int to) {
  d.from = from;
  d.to = to;
  if (opts_.use_splice) {
    int p[2];
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0) {
      d.pipe_r.reset(p[0]);
      d.pipe_w.reset(p[1]);
      int got = ::fcntl(p[1], F_SETPIPE_SZ, static_cast<int>(opts_.buffer_bytes));
      if (got < 0)
        got = ::fcntl(p[1], F_GETPIPE_SZ);
      d.capacity = got > 0 ? static_cast<std::size_t>(got) : 65536;
      return true;
    }
    // Out of pipes (per-user pipe buffer limits): this connection copies.
  }
  d.buf.resize(opts_.buffer_bytes);
  d.capacity = d.buf.size();
  return true;
}

pump_status userspace_data_plane::impl::pump_direction(direction& d) {
  for (;;) {
    bool progress = false;
    if (!d.eof && d.pending < d.capacity) {
      ssize_t n;
      if (d.pipe_w)
        n = ::splice(d.from, nullptr, d.pipe_w.get(), nullptr, d.capacity - d.pending,
                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      else {
        if (d.pending == 0)
          d.buf_off = 0;
        std::size_t end = d.buf_off + d.pending;
        n = end < d.buf.size() ? ::recv(d.from, d.buf.data() + end, d.buf.size() - end, 0) : -2;
        if (n == -2) {
          n = -1;
          errno = EAGAIN;
        }
      }
      if (n > 0) {
        d.pending += static_cast<std::size_t>(n);
        progress = true;
      } else if (n == 0) {
        d.eof = true;
      } else if (errno != EAGAIN && errno != EINTR) {
        return pump_status::failed;
      }
    }
    if (d.pending > 0) {
      ssize_t n;
      if (d.pipe_r)
        n = ::splice(d.pipe_r.get(), nullptr, d.to, nullptr, d.pending,
                     SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      else
        n = ::send(d.to, d.buf.data() + d.buf_off, d.pending, MSG_NOSIGNAL);
      if (n > 0) {
        d.pending -= static_cast<std::size_t>(n);
        d.buf_off += static_cast<std::size_t>(n);
        progress = true;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return pump_status::failed;
      }
    }
    if (d.eof && d.pending == 0 && !d.shut) {
      // Pass the half-close on: the peer may still answer.
      ::shutdown(d.to, SHUT_WR);
      d.shut = true;
    }
    if (!progress)
      return d.done() ? pump_status::closed : pump_status::open;
  }
}

void userspace_data_plane::impl::pump(uint64_t id, bool reading, bool writing, bool from_client) {
  auto& c = static_cast<tcp_conn&>(*targets_.at(id));
  auto& first = from_client ? c.up : c.down;
  auto& second = from_client ? c.down : c.up;
  auto status = [](direction& d) { return d.done() ? pump_status::closed : pump_status::open; };
  auto a = reading ? pump_direction(first) : status(first);
  auto b = a == pump_status::failed ? a : writing ? pump_direction(second) : status(second);
  auto up = from_client ? a : b;
  auto down = from_client ? b : a;
  if (up == pump_status::failed || down == pump_status::failed) {
    // One side died: the other learns it by a reset, not a hang.
    abort_socket(c.client);
    abort_socket(c.backend);
    close_target(id);
    return;
  }
  if (up == pump_status::closed && down == pump_status::closed)
    close_target(id);
}

}  // namespace deckhand::proxy

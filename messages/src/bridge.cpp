#include "deckhand/messages/bridge.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <zmq.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::transport {

namespace {

enum class kind { router, dealer, pub, sub };

using clock = std::chrono::steady_clock;

struct pending_request {
  int socket = 0;
  clock::time_point deadline;
  reply_handler on_reply;
};

struct unsent {
  int socket = 0;
  std::vector<zmq::message_t> frames;
  clock::time_point deadline;
  uint64_t correlation_id = 0;  ///< 0 for notifications
};

}  // namespace

struct bridge::impl {
  struct sock {
    kind k;
    zmq::socket_t s;
    request_handler on_request;
    sub_handler on_sub;
  };

  bridge& owner;
  zmq::context_t ctx{1};
  int wake_fd = -1;
  std::thread thread;
  std::thread::id thread_id;
  std::atomic<bool> running{false};
  std::atomic<int> next_socket{1};
  std::atomic<uint64_t> next_correlation{1};
  clock::time_point started_at = clock::now();

  std::mutex mtx;
  std::deque<std::function<void()>> commands;  // guarded by mtx

  // Owned by the bridge thread (or by the caller before start).
  std::map<int, sock> sockets;
  std::unordered_map<uint64_t, pending_request> pending;
  std::deque<unsent> outbox;

  std::atomic<uint64_t> frames_in{0}, frames_out{0}, dropped{0}, expired{0};

  explicit impl(bridge& b) : owner(b) { wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

  ~impl() {
    if (wake_fd >= 0)
      ::close(wake_fd);
  }

  void wake() {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof(one));
  }

  void post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      commands.push_back(std::move(fn));
    }
    wake();
  }

  /// Runs `fn` on the bridge thread (inline before start or when already on it).
  template <class T>
  T run_sync(std::function<T()> fn) {
    if (!running || std::this_thread::get_id() == thread_id)
      return fn();
    auto prom = std::make_shared<std::promise<T>>();
    auto fut = prom->get_future();
    post([fn = std::move(fn), prom] { prom->set_value(fn()); });
    return fut.get();
  }

  void configure(zmq::socket_t& s, kind k) {
    s.set(zmq::sockopt::linger, 0);
    s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(owner.cfg_.limits.max_body + 4096));
    s.set(zmq::sockopt::heartbeat_ivl, owner.cfg_.heartbeat_interval_ms);
    s.set(zmq::sockopt::heartbeat_timeout, owner.cfg_.heartbeat_timeout_ms);
    s.set(zmq::sockopt::heartbeat_ttl, owner.cfg_.heartbeat_timeout_ms);
    s.set(zmq::sockopt::reconnect_ivl, 100);
    s.set(zmq::sockopt::reconnect_ivl_max, 1000);
    if (k == kind::router) {
      s.set(zmq::sockopt::router_mandatory, true);
      s.set(zmq::sockopt::router_handover, true);
    }
    if (k == kind::dealer)
      s.set(zmq::sockopt::immediate, true);
    if (k == kind::pub)
      s.set(zmq::sockopt::sndhwm, 100000);
  }

  result<int> add_socket(kind k, const std::string& endpoint, bool bind, request_handler on_request,
                         sub_handler on_sub, std::vector<std::string> topics) {
    try {
      zmq::socket_type t = k == kind::router   ? zmq::socket_type::router
                           : k == kind::dealer ? zmq::socket_type::dealer
                           : k == kind::pub    ? zmq::socket_type::pub
                                               : zmq::socket_type::sub;
      zmq::socket_t s{ctx, t};
      configure(s, k);
      for (const auto& topic : topics)
        s.set(zmq::sockopt::subscribe, topic);
      if (bind)
        s.bind(endpoint);
      else
        s.connect(endpoint);
      int id = next_socket++;
      sockets.emplace(id, sock{k, std::move(s), std::move(on_request), std::move(on_sub)});
      return id;
    } catch (const zmq::error_t& e) {
      return error{errc::io, (bind ? "bind " : "connect ") + endpoint + ": " + e.what()};
    }
  }

  bool send_frames(zmq::socket_t& s, std::vector<zmq::message_t>& frames) {
    // All-or-nothing: ZeroMQ delivers multipart messages atomically, and with
    // dontwait the first part fails with EAGAIN when no peer can take it.
    for (std::size_t i = 0; i < frames.size(); ++i) {
      auto flags = zmq::send_flags::dontwait;
      if (i + 1 < frames.size())
        flags = flags | zmq::send_flags::sndmore;
      auto res = s.send(frames[i], flags);
      if (!res) {
        if (i == 0)
          return false;
        // Cannot happen for later parts of a multipart message; treat as sent.
      }
    }
    frames_out += 1;
    return true;
  }

  static std::vector<zmq::message_t> make_frames(const envelope& env) {
    auto h = wire::encode_header(env.hdr);
    std::vector<zmq::message_t> frames;
    frames.emplace_back(h.data(), h.size());
    frames.emplace_back(env.body.data(), env.body.size());
    return frames;
  }

  void fail(uint64_t corr, error err) {
    auto it = pending.find(corr);
    if (it == pending.end())
      return;
    auto handler = std::move(it->second.on_reply);
    pending.erase(it);
    handler(std::move(err));
  }

  void enqueue_send(int socket, std::vector<zmq::message_t> frames, clock::time_point deadline,
                    uint64_t corr) {
    auto it = sockets.find(socket);
    if (it == sockets.end()) {
      dropped++;
      if (corr)
        fail(corr, error{errc::unavailable, "socket closed"});
      return;
    }
    // Keep order: only send directly when nothing is queued for this socket.
    bool queued = false;
    for (auto& u : outbox)
      if (u.socket == socket) {
        queued = true;
        break;
      }
    if (!queued) {
      try {
        if (send_frames(it->second.s, frames))
          return;
      } catch (const zmq::error_t& e) {
        dropped++;
        if (corr)
          fail(corr, error{errc::unavailable, std::string("send: ") + e.what()});
        return;
      }
    }
    outbox.push_back(unsent{socket, std::move(frames), deadline, corr});
  }

  void flush_outbox() {
    auto now = clock::now();
    for (auto it = outbox.begin(); it != outbox.end();) {
      auto sit = sockets.find(it->socket);
      if (sit == sockets.end() || now >= it->deadline) {
        dropped++;
        if (it->correlation_id)
          fail(it->correlation_id, error{errc::unavailable, "peer unavailable until the deadline"});
        it = outbox.erase(it);
        continue;
      }
      bool sent = false;
      try {
        sent = send_frames(sit->second.s, it->frames);
      } catch (const zmq::error_t&) {
        sent = false;
      }
      if (sent) {
        it = outbox.erase(it);
      } else {
        // Preserve per-socket order: skip later messages of this socket.
        int blocked = it->socket;
        ++it;
        while (it != outbox.end() && it->socket == blocked)
          ++it;
      }
    }
  }

  void expire_deadlines() {
    auto now = clock::now();
    std::vector<uint64_t> expired_ids;
    for (auto& [corr, p] : pending)
      if (now >= p.deadline)
        expired_ids.push_back(corr);
    for (auto corr : expired_ids) {
      expired++;
      fail(corr, error{errc::unavailable, "deadline exceeded"});
    }
  }

  std::chrono::milliseconds next_timeout() {
    auto now = clock::now();
    auto next = now + std::chrono::milliseconds(100);
    for (auto& [corr, p] : pending)
      next = std::min(next, p.deadline);
    if (!outbox.empty())
      next = std::min(next, now + std::chrono::milliseconds(5));
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(next - now);
    return std::max(d, std::chrono::milliseconds(0));
  }

  void answer_ping(zmq::socket_t& s, const std::string& peer, uint64_t corr) {
    wire::pong p;
    p.component = owner.cfg_.component;
    p.incarnation = owner.incarnation_;
    p.pid = ::getpid();
    p.uptime_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - started_at).count();
    p.frames_in = frames_in;
    p.frames_out = frames_out;
    p.dropped = dropped;
    auto env = wire::make_envelope(p, corr, wire::flag_reply);
    env.hdr.incarnation = owner.incarnation_;
    send_routed(s, peer, env);
  }

  void send_routed(zmq::socket_t& s, const std::string& peer, const envelope& env) {
    auto frames = make_frames(env);
    try {
      zmq::message_t id(peer.data(), peer.size());
      if (!s.send(id, zmq::send_flags::sndmore | zmq::send_flags::dontwait)) {
        dropped++;
        return;
      }
      s.send(frames[0], zmq::send_flags::sndmore);
      s.send(frames[1], zmq::send_flags::none);
      frames_out++;
    } catch (const zmq::error_t&) {
      // EHOSTUNREACH (ROUTER_MANDATORY): the requester is gone.
      dropped++;
    }
  }

  /// Receives one whole multipart message without blocking; false when the
  /// socket has nothing (more) to read.
  bool recv_multipart(zmq::socket_t& s, std::vector<zmq::message_t>& parts) {
    parts.clear();
    try {
      zmq::message_t part;
      if (!s.recv(part, zmq::recv_flags::dontwait))
        return false;
      parts.push_back(std::move(part));
      while (parts.back().more()) {
        zmq::message_t next;
        (void)s.recv(next, zmq::recv_flags::none);
        parts.push_back(std::move(next));
      }
    } catch (const zmq::error_t&) {
      return false;
    }
    frames_in++;
    return true;
  }

  void on_router(sock& so, int id) {
    std::vector<zmq::message_t> parts;
    while (recv_multipart(so.s, parts)) {
      if (parts.size() != 3) {
        dropped++;
        continue;
      }
      std::string peer(parts[0].data<char>(), parts[0].size());
      auto env = wire::decode_frames(parts[1].data(), parts[1].size(), parts[2].data(),
                                     parts[2].size(), owner.cfg_.limits);
      if (!env) {
        dropped++;
        // A header with our magic carries a correlation id: tell the sender.
        if (parts[1].size() == wire::header_size && parts[1].data<char>()[0] == 'D' &&
            parts[1].data<char>()[1] == 'K') {
          auto p = parts[1].data<uint8_t>();
          uint64_t corr = 0;
          for (int i = 8; i < 16; ++i)
            corr = (corr << 8) | p[i];
          auto reply = wire::make_error_envelope(env.err(), corr);
          reply.hdr.incarnation = owner.incarnation_;
          send_routed(so.s, peer, reply);
        }
        continue;
      }
      if (env->hdr.type == wire::ping::type_id) {
        answer_ping(so.s, peer, env->hdr.correlation_id);
        continue;
      }
      if (!so.on_request) {
        dropped++;
        continue;
      }
      so.on_request(inbound_request{id, std::move(peer), std::move(*env)});
    }
  }

  void on_dealer(sock& so) {
    std::vector<zmq::message_t> parts;
    while (recv_multipart(so.s, parts)) {
      if (parts.size() != 2) {
        dropped++;
        continue;
      }
      auto env = wire::decode_frames(parts[0].data(), parts[0].size(), parts[1].data(),
                                     parts[1].size(), owner.cfg_.limits);
      if (!env) {
        dropped++;
        continue;
      }
      auto it = pending.find(env->hdr.correlation_id);
      if (it == pending.end()) {
        dropped++;  // late reply after its deadline, or unsolicited
        continue;
      }
      auto handler = std::move(it->second.on_reply);
      pending.erase(it);
      handler(std::move(*env));
    }
  }

  void on_sub(sock& so) {
    std::vector<zmq::message_t> parts;
    while (recv_multipart(so.s, parts)) {
      if (parts.size() != 3) {
        dropped++;
        continue;
      }
      auto env = wire::decode_frames(parts[1].data(), parts[1].size(), parts[2].data(),
                                     parts[2].size(), owner.cfg_.limits);
      if (!env) {
        dropped++;
        continue;
      }
      if (so.on_sub)
        so.on_sub(std::string(parts[0].data<char>(), parts[0].size()), std::move(*env));
    }
  }

  void drain_commands() {
    uint64_t value = 0;
    [[maybe_unused]] auto n = ::read(wake_fd, &value, sizeof(value));
    std::deque<std::function<void()>> batch;
    {
      std::lock_guard<std::mutex> guard{mtx};
      batch.swap(commands);
    }
    for (auto& fn : batch)
      fn();
  }

  /// Reads every socket that has something (each handler drains its socket
  /// until EAGAIN), sends what waits, expires deadlines. ZMQ_FD is an edge
  /// signal that a send may consume, so the round repeats while a socket
  /// still reports input (bounded; the caller's loop comes back at once).
  bool external = false;

  int run_external_once() {
    drain_commands();
    for (int round = 0; round < 16; ++round) {
      std::vector<int> ids;
      for (auto& [id, so] : sockets)
        if (so.k != kind::pub)
          ids.push_back(id);
      for (int id : ids) {
        auto it = sockets.find(id);  // a handler may have closed it
        if (it == sockets.end())
          continue;
        switch (it->second.k) {
        case kind::router: on_router(it->second, it->first); break;
        case kind::dealer: on_dealer(it->second); break;
        case kind::sub: on_sub(it->second); break;
        case kind::pub: break;
        }
      }
      flush_outbox();
      expire_deadlines();
      bool more = false;
      for (auto& [id, so] : sockets)
        if (so.k != kind::pub && (so.s.get(zmq::sockopt::events) & ZMQ_POLLIN))
          more = true;
      if (!more) {
        if (pending.empty() && outbox.empty())
          return -1;
        return static_cast<int>(next_timeout().count());
      }
    }
    return 0;
  }

  void finish() {
    drain_commands();
    // Fail whatever is still waiting so that no caller waits forever.
    for (auto& [corr, p] : pending)
      if (p.on_reply)
        p.on_reply(error{errc::unavailable, "transport stopped"});
    pending.clear();
    outbox.clear();
    sockets.clear();
  }

  void loop() {
    thread_id = std::this_thread::get_id();
    while (running) {
      std::vector<zmq::pollitem_t> items;
      std::vector<int> ids;
      items.push_back({nullptr, wake_fd, ZMQ_POLLIN, 0});
      for (auto& [id, so] : sockets) {
        if (so.k == kind::pub)
          continue;
        items.push_back({so.s.handle(), 0, ZMQ_POLLIN, 0});
        ids.push_back(id);
      }
      try {
        zmq::poll(items.data(), items.size(), next_timeout());
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR)
          log::get()->error("msg=\"zmq poll failed\" error=\"{}\"", e.what());
        continue;
      }
      if (items[0].revents & ZMQ_POLLIN)
        drain_commands();
      for (std::size_t i = 1; i < items.size(); ++i) {
        if (!(items[i].revents & ZMQ_POLLIN))
          continue;
        auto it = sockets.find(ids[i - 1]);
        if (it == sockets.end())
          continue;
        switch (it->second.k) {
        case kind::router: on_router(it->second, it->first); break;
        case kind::dealer: on_dealer(it->second); break;
        case kind::sub: on_sub(it->second); break;
        case kind::pub: break;
        }
      }
      flush_outbox();
      expire_deadlines();
    }
    finish();
  }
};

bridge::bridge(bridge_config cfg)
    : cfg_(std::move(cfg)),
      incarnation_(cfg_.incarnation ? cfg_.incarnation : wire::new_incarnation()),
      impl_(std::make_unique<impl>(*this)) {}

bridge::~bridge() { stop(); }

result<int> bridge::bind_router(const std::string& endpoint, request_handler handler) {
  return impl_->run_sync<result<int>>(
      [&] { return impl_->add_socket(kind::router, endpoint, true, std::move(handler), {}, {}); });
}

result<int> bridge::connect_dealer(const std::string& endpoint) {
  return impl_->run_sync<result<int>>(
      [&] { return impl_->add_socket(kind::dealer, endpoint, false, {}, {}, {}); });
}

result<int> bridge::bind_pub(const std::string& endpoint) {
  return impl_->run_sync<result<int>>(
      [&] { return impl_->add_socket(kind::pub, endpoint, true, {}, {}, {}); });
}

result<int> bridge::connect_sub(const std::string& endpoint, std::vector<std::string> topics,
                                sub_handler handler) {
  return impl_->run_sync<result<int>>([&] {
    return impl_->add_socket(kind::sub, endpoint, false, {}, std::move(handler), std::move(topics));
  });
}

void bridge::close(int socket) {
  impl_->run_sync<bool>([&] {
    std::vector<uint64_t> doomed;
    for (auto& [corr, p] : impl_->pending)
      if (p.socket == socket)
        doomed.push_back(corr);
    for (auto corr : doomed)
      impl_->fail(corr, error{errc::unavailable, "socket closed"});
    for (auto it = impl_->outbox.begin(); it != impl_->outbox.end();)
      it = it->socket == socket ? impl_->outbox.erase(it) : std::next(it);
    impl_->sockets.erase(socket);
    return true;
  });
}

std::string bridge::last_endpoint(int socket) {
  return impl_->run_sync<std::string>([&]() -> std::string {
    auto it = impl_->sockets.find(socket);
    if (it == impl_->sockets.end())
      return {};
    return it->second.s.get(zmq::sockopt::last_endpoint);
  });
}

void bridge::start() {
  if (impl_->running.exchange(true))
    return;
  impl_->thread = std::thread([this] { impl_->loop(); });
}

void bridge::start_on_caller() {
  if (impl_->running.exchange(true))
    return;
  impl_->external = true;
  impl_->thread_id = std::this_thread::get_id();
}

void bridge::fill_pollfds(std::vector<struct pollfd>& fds) {
  fds.push_back({impl_->wake_fd, POLLIN, 0});
  for (auto& [id, so] : impl_->sockets)
    if (so.k != kind::pub)
      fds.push_back({so.s.get(zmq::sockopt::fd), POLLIN, 0});
}

int bridge::run_once() {
  if (!impl_->running)
    return -1;
  return impl_->run_external_once();
}

void bridge::stop() {
  if (!impl_->running.exchange(false))
    return;
  if (impl_->external) {
    impl_->finish();
    return;
  }
  impl_->wake();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

void bridge::request(int dealer, envelope env, std::chrono::milliseconds deadline,
                     reply_handler on_reply) {
  auto corr = impl_->next_correlation++;
  env.hdr.correlation_id = corr;
  env.hdr.incarnation = incarnation_;
  env.hdr.flags = 0;
  auto when = clock::now() + deadline;
  impl_->post(
      [this, dealer, corr, when, env = std::move(env), on_reply = std::move(on_reply)]() mutable {
        impl_->pending.emplace(corr, pending_request{dealer, when, std::move(on_reply)});
        impl_->enqueue_send(dealer, impl::make_frames(env), when, corr);
      });
}

void bridge::notify(int dealer, envelope env) {
  env.hdr.correlation_id = 0;
  env.hdr.incarnation = incarnation_;
  auto when = clock::now() + std::chrono::seconds(5);
  impl_->post([this, dealer, when, env = std::move(env)]() mutable {
    impl_->enqueue_send(dealer, impl::make_frames(env), when, 0);
  });
}

void bridge::reply(const inbound_request& req, envelope env) {
  env.hdr.correlation_id = req.env.hdr.correlation_id;
  env.hdr.incarnation = incarnation_;
  env.hdr.flags |= wire::flag_reply;
  impl_->post([this, socket = req.socket, peer = req.peer, env = std::move(env)] {
    auto it = impl_->sockets.find(socket);
    if (it == impl_->sockets.end()) {
      impl_->dropped++;
      return;
    }
    impl_->send_routed(it->second.s, peer, env);
  });
}

void bridge::reply_error(const inbound_request& req, const error& err) {
  reply(req, wire::make_error_envelope(err, req.env.hdr.correlation_id));
}

void bridge::publish(int pub, const std::string& topic, envelope env) {
  env.hdr.incarnation = incarnation_;
  impl_->post([this, pub, topic, env = std::move(env)] {
    auto it = impl_->sockets.find(pub);
    if (it == impl_->sockets.end()) {
      impl_->dropped++;
      return;
    }
    auto frames = impl::make_frames(env);
    try {
      zmq::message_t t(topic.data(), topic.size());
      it->second.s.send(t, zmq::send_flags::sndmore);
      it->second.s.send(frames[0], zmq::send_flags::sndmore);
      it->second.s.send(frames[1], zmq::send_flags::none);
      impl_->frames_out++;
    } catch (const zmq::error_t&) {
      impl_->dropped++;
    }
  });
}

bridge_stats bridge::stats() const {
  return {impl_->frames_in, impl_->frames_out, impl_->dropped, impl_->expired};
}

}  // namespace deckhand::transport

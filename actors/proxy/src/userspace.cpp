/// The userspace data plane's forwarding thread: its command queue, the
/// epoll loop that dispatches to listeners, connections and sessions, and
/// the timers (connect deadlines, idle UDP sessions, affinity expiry).

#include "userspace_impl.hpp"

#include <fstream>
#include <sstream>

namespace deckhand::proxy {

namespace {

int read_unprivileged_port_start() {
  std::ifstream in("/proc/sys/net/ipv4/ip_unprivileged_port_start");
  int v = 1024;
  if (!(in >> v))
    v = 1024;
  return v;
}

bool has_net_bind_service() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) {
      unsigned long long caps = 0;
      std::istringstream(line.substr(7)) >> std::hex >> caps;
      return (caps >> 10) & 1;  // CAP_NET_BIND_SERVICE
    }
  }
  return false;
}

}  // namespace

userspace_data_plane::impl::impl(userspace_options opts) : opts_(std::move(opts)) {
  unprivileged_port_start_ = read_unprivileged_port_start();
  privileged_ = opts_.privileged ? *opts_.privileged : has_net_bind_service();
  if (opts_.connect_attempts < 1)
    opts_.connect_attempts = 1;
  if (opts_.buffer_bytes < 4096)
    opts_.buffer_bytes = 4096;
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!epoll_ || !wake_) {
    init_error_ = error::from_errno("userspace proxy: epoll/eventfd");
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev);
  thread_ = std::thread([this] { run(); });
}

userspace_data_plane::impl::~impl() {
  if (thread_.joinable()) {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake();
    thread_.join();
  }
  // Connections and sessions before listeners: sessions refer to them.
  targets_.clear();
  services_.clear();
}

void userspace_data_plane::impl::call(const std::function<void()>& f) {
  if (!thread_.joinable()) {
    f();
    return;
  }
  bool done = false;
  std::unique_lock lock(mu_);
  commands_.push_back([&] {
    f();
    std::lock_guard l(mu_);
    done = true;
    done_cv_.notify_all();
  });
  lock.unlock();
  wake();
  lock.lock();
  done_cv_.wait(lock, [&] { return done; });
}

result<void> userspace_data_plane::impl::apply(const service_map& desired) {
  if (init_error_)
    return init_error_;
  result<void> out;
  call([&] { out = apply_on_thread(desired); });
  return out;
}

result<void> userspace_data_plane::impl::cleanup() {
  if (init_error_)
    return init_error_;
  call([&] {
    std::vector<uint64_t> ids;
    for (auto& [id, t] : targets_)
      ids.push_back(id);
    for (auto id : ids)
      if (targets_.count(id) && targets_[id]->kind != target_kind::listener)
        close_target(id);
    for (auto id : ids)
      if (targets_.count(id))
        close_target(id);
    services_.clear();
    listen_index_.clear();
    errors_.clear();
    logged_errors_.clear();
    connect_deadlines_.clear();
  });
  return {};
}

userspace_stats userspace_data_plane::impl::stats() {
  userspace_stats s;
  call([&] {
    s = stats_;
    s.listeners = listen_index_.size();
  });
  return s;
}

std::vector<userspace_entry_error> userspace_data_plane::impl::entry_errors() {
  std::vector<userspace_entry_error> out;
  call([&] { out = errors_; });
  return out;
}

void userspace_data_plane::impl::wake() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_.get(), &one, sizeof one);
}

void userspace_data_plane::impl::run() {
  // splice(2) into a socket whose peer has gone raises SIGPIPE in the
  // writing thread; this thread reports EPIPE instead.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  std::array<epoll_event, 128> events{};
  for (;;) {
    int timeout = next_timeout_ms();
    int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout);
    if (n < 0 && errno != EINTR) {
      log::get()->error("msg=\"userspace proxy: epoll_wait failed\" error=\"{}\"",
                        std::strerror(errno));
      return;
    }
    for (int i = 0; i < n; ++i) {
      uint64_t id = events[i].data.u64 >> 1;
      unsigned side = events[i].data.u64 & 1;
      if (id == 0)
        continue;
      auto it = targets_.find(id);
      if (it == targets_.end())
        continue;
      switch (it->second->kind) {
      case target_kind::listener: {
        auto& l = static_cast<listener&>(*it->second);
        if (l.udp)
          on_udp_listener(l, id);
        else
          on_tcp_listener(l);
        break;
      }
      case target_kind::tcp: on_tcp(id, events[i].events, side); break;
      case target_kind::udp_session: on_udp_session(id); break;
      }
    }
    run_timers();
    // Drain the wake-up before taking the commands: a command queued in
    // between then still finds the eventfd set.
    uint64_t drain = 0;
    [[maybe_unused]] auto r = ::read(wake_.get(), &drain, sizeof drain);
    std::deque<std::function<void()>> cmds;
    bool stop = false;
    {
      std::lock_guard lock(mu_);
      cmds.swap(commands_);
      stop = stopping_;
    }
    for (auto& c : cmds)
      c();
    if (stop)
      return;
  }
}

int userspace_data_plane::impl::next_timeout_ms() {
  std::optional<clock_type::time_point> next;
  if (!connect_deadlines_.empty())
    next = connect_deadlines_.begin()->first;
  if (housekeeping_due_ && (!next || *housekeeping_due_ < *next))
    next = housekeeping_due_;
  if (!next)
    return -1;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(*next - clock_type::now()).count();
  return ms < 0 ? 0 : static_cast<int>(std::min<long long>(ms, 60'000));
}

uint64_t userspace_data_plane::impl::add_target(std::unique_ptr<target> t) {
  uint64_t id = next_id_++;
  targets_.emplace(id, std::move(t));
  return id;
}

bool userspace_data_plane::impl::watch(int fd, uint64_t id, uint32_t events, unsigned side) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id << 1 | side;
  return ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) == 0;
}

void userspace_data_plane::impl::close_target(uint64_t id) {
  auto it = targets_.find(id);
  if (it == targets_.end())
    return;
  switch (it->second->kind) {
  case target_kind::listener: {
    auto& l = static_cast<listener&>(*it->second);
    auto sessions = l.sessions;
    for (auto& [_, sid] : sessions)
      close_target(sid);
    listen_index_.erase(l.key);
    break;
  }
  case target_kind::tcp: --stats_.tcp_active; break;
  case target_kind::udp_session: {
    auto& s = static_cast<udp_session&>(*it->second);
    if (auto lit = targets_.find(s.listener_id); lit != targets_.end())
      static_cast<listener&>(*lit->second).sessions.erase(client_key(s.client));
    --stats_.udp_sessions;
    break;
  }
  }
  targets_.erase(id);
}

std::chrono::milliseconds userspace_data_plane::impl::udp_sweep_interval() const {
  return std::max(std::chrono::milliseconds(5), opts_.udp_idle_timeout / 4);
}

void userspace_data_plane::impl::schedule_housekeeping(std::chrono::milliseconds in) {
  auto when = clock_type::now() + in;
  if (!housekeeping_due_ || when < *housekeeping_due_)
    housekeeping_due_ = when;
}

void userspace_data_plane::impl::run_timers() {
  auto now = clock_type::now();
  while (!connect_deadlines_.empty() && connect_deadlines_.begin()->first <= now) {
    auto [id, attempt] = connect_deadlines_.begin()->second;
    connect_deadlines_.erase(connect_deadlines_.begin());
    auto it = targets_.find(id);
    if (it == targets_.end() || it->second->kind != target_kind::tcp)
      continue;
    auto& c = static_cast<tcp_conn&>(*it->second);
    if (c.connected || c.attempts != attempt)
      continue;
    ++stats_.tcp_connect_failures;
    if (c.svc->entry.affinity_client_ip)
      c.svc->affinity.erase(c.client_addr.sin_addr.s_addr);
    start_connect(id);
  }
  if (!housekeeping_due_ || *housekeeping_due_ > now)
    return;
  housekeeping_due_.reset();
  bool again = false;
  std::vector<uint64_t> idle;
  for (auto& [id, t] : targets_) {
    if (t->kind == target_kind::udp_session) {
      if (now - static_cast<udp_session&>(*t).last_active >= opts_.udp_idle_timeout)
        idle.push_back(id);
      else
        again = true;
    } else if (t->kind == target_kind::listener) {
      auto& l = static_cast<listener&>(*t);
      if (l.paused) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = id << 1;
        ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, l.fd.get(), &ev);
        l.paused = false;
      }
    }
  }
  for (auto id : idle)
    close_target(id);
  if (again)
    schedule_housekeeping(udp_sweep_interval());
  // Affinity records outlive nothing: expired ones go at most once a second.
  if (now >= next_affinity_sweep_) {
    next_affinity_sweep_ = now + std::chrono::seconds(1);
    bool any = false;
    for (auto& [_, s] : services_) {
      auto ttl = std::chrono::seconds(s->entry.affinity_timeout_seconds);
      for (auto it = s->affinity.begin(); it != s->affinity.end();)
        it = now - it->second.last_used > ttl ? s->affinity.erase(it) : std::next(it);
      any = any || !s->affinity.empty();
    }
    if (any)
      schedule_housekeeping(std::chrono::seconds(1));
  }
}

userspace_data_plane::userspace_data_plane(userspace_options opts)
    : impl_(std::make_unique<impl>(std::move(opts))) {}

userspace_data_plane::~userspace_data_plane() = default;

result<void> userspace_data_plane::apply(const service_map& desired, const service_map&) {
  return impl_->apply(desired);
}

result<void> userspace_data_plane::cleanup() { return impl_->cleanup(); }

userspace_stats userspace_data_plane::stats() const { return impl_->stats(); }

std::vector<userspace_entry_error> userspace_data_plane::entry_errors() const {
  return impl_->entry_errors();
}

std::unique_ptr<data_plane> make_userspace_data_plane(userspace_options opts) {
  return std::make_unique<userspace_data_plane>(std::move(opts));
}

}  // namespace deckhand::proxy

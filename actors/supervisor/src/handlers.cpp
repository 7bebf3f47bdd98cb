#include "deckhand/supervisor/handlers.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "handler_executor_impl.hpp"

namespace deckhand::supervisor {

namespace handler_detail {

std::string go_errno(int err) {
  std::string s = std::strerror(err);
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z')
    s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

std::string go_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

op::~op() {
  if (ssl)
    tls_lib::get().ssl_free(ssl);
  if (pid > 0) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    int st = 0;
    while (::waitpid(pid, &st, __WALL) < 0 && errno == EINTR) {
    }
  }
}

handler_result failure(std::string message) {
  handler_result r;
  r.outcome = handler_outcome::failure;
  r.message = std::move(message);
  return r;
}

handler_result unknown(std::string message) {
  handler_result r;
  r.outcome = handler_outcome::unknown;
  r.message = std::move(message);
  return r;
}

result<int> resolve_port(const wire::int_or_string& port,
                         const std::vector<wire::container_port>& ports) {
  if (port.is_int()) {
    long v = std::stol(port.value);
    if (v < 1 || v > 65535)
      return error{errc::invalid, "invalid port number: " + port.value};
    return static_cast<int>(v);
  }
  for (const auto& p : ports)
    if (!port.value.empty() && p.name == port.value)
      return static_cast<int>(p.container_port);
  return error{errc::invalid, "couldn't find port: " + port.value};
}

}  // namespace handler_detail

using namespace handler_detail;

handler_action handler_action::of(const wire::probe& p) {
  handler_action a;
  a.exec = p.exec;
  a.http_get = p.http_get;
  a.tcp_socket = p.tcp_socket;
  return a;
}

handler_action handler_action::of(const wire::lifecycle_handler& h) {
  handler_action a;
  a.exec = h.exec;
  a.http_get = h.http_get;
  a.tcp_socket = h.tcp_socket;
  a.sleep = h.sleep;
  return a;
}

std::string handler_action::kind() const {
  if (exec)
    return "exec";
  if (http_get)
    return "httpGet";
  if (tcp_socket)
    return "tcpSocket";
  if (sleep)
    return "sleep";
  return {};
}

// -- the executor --------------------------------------------------------------------

handler_executor::handler_executor(options opts) : impl_(std::make_unique<impl>()) {
  impl_->opts = std::move(opts);
  impl_->wake.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
}

handler_executor::~handler_executor() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop = true;
  }
  impl_->notify();
  if (impl_->thread.joinable())
    impl_->thread.join();
  // ops and incoming die here: exec children are killed and reaped (~op).
}

handler_id handler_executor::run(handler_action what, handler_target target,
                                 std::chrono::milliseconds timeout, completion done) {
  auto o = std::make_unique<op>();
  o->what = std::move(what);
  o->target = std::move(target);
  o->done = std::move(done);
  if (timeout <= std::chrono::milliseconds(0))
    timeout = std::chrono::seconds(1);
  o->deadline = steady::now() + timeout;
  handler_id id;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    id = impl_->next_id++;
    o->id = id;
    impl_->incoming.emplace(id, std::move(o));
    ++impl_->count;
    if (!impl_->thread.joinable()) {
      impl_->thread = std::thread([this] { impl_->loop(); });
      impl_->thread_id = impl_->thread.get_id();
    }
  }
  impl_->notify();
  return id;
}

void handler_executor::cancel(handler_id id) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (auto it = impl_->incoming.find(id); it != impl_->incoming.end()) {
    impl_->incoming.erase(it);
    --impl_->count;
    return;
  }
  impl_->cancels.push_back(id);
  if (std::this_thread::get_id() != impl_->thread_id)
    impl_->cv.wait(lock, [&] { return impl_->calling != id; });
  lock.unlock();
  impl_->notify();
}

std::size_t handler_executor::in_flight() const { return impl_->count.load(); }

void handler_executor::impl::finish(std::unique_ptr<op> o, handler_result r) {
  {
    std::lock_guard<std::mutex> lock(mu);
    if (std::find(cancels.begin(), cancels.end(), o->id) != cancels.end())
      return;
    calling = o->id;
  }
  if (o->done)
    o->done(std::move(r));
  {
    std::lock_guard<std::mutex> lock(mu);
    calling = 0;
  }
  cv.notify_all();
}

void handler_executor::impl::begin(op& o) {
  o.started = true;
  if (o.what.exec) {
    begin_exec(o);
  } else if (o.what.http_get) {
    const auto& h = *o.what.http_get;
    o.https = h.scheme == "HTTPS" || h.scheme == "https";
    begin_socket(o, h.port, h.host);
  } else if (o.what.tcp_socket) {
    begin_socket(o, o.what.tcp_socket->port, o.what.tcp_socket->host);
  } else if (o.what.sleep) {
    o.at = step::sleeping;
    o.deadline = steady::now() + std::chrono::seconds(std::max<int64_t>(o.what.sleep->seconds, 0));
  }
}

handler_result handler_executor::impl::timed_out(op& o) {
  handler_result r;
  r.outcome = handler_outcome::failure;
  r.timed_out = true;
  if (o.at == step::exec_running) {
    std::string joined;
    for (const auto& c : o.what.exec->command)
      joined += (joined.empty() ? "" : " ") + c;
    r.message = "command " + go_quote(joined) + " timed out";
    r.output = o.output;
    r.exit_code = 137;
  } else if (o.what.http_get) {
    r.message = "Get " + go_quote(o.url) +
                ": context deadline exceeded (Client.Timeout exceeded while awaiting headers)";
  } else {
    r.message = "dial tcp " + o.addr_text + ": i/o timeout";
  }
  return r;
}

void handler_executor::impl::loop() {
  for (;;) {
    std::vector<std::unique_ptr<op>> fresh;
    std::vector<handler_id> cancelled;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stop)
        return;
      for (auto& [id, o] : incoming)
        fresh.push_back(std::move(o));
      incoming.clear();
      cancelled.swap(cancels);
    }
    for (auto id : cancelled) {
      if (ops.erase(id))
        --count;
    }
    cv.notify_all();
    for (auto& o : fresh) {
      begin(*o);
      ops.emplace(o->id, std::move(o));
    }

    // Finished before any waiting: actions that could not start.
    std::vector<std::pair<handler_id, handler_result>> done;
    auto now = steady::now();
    std::vector<pollfd> fds;
    std::vector<handler_id> owners;
    fds.push_back({wake.get(), POLLIN, 0});
    owners.push_back(0);
    auto next = now + std::chrono::seconds(60);
    for (auto& [id, o] : ops) {
      const bool sockety = o->what.http_get || o->what.tcp_socket;
      if (o->what.exec && o->at != step::exec_running) {
        done.emplace_back(id, o->what.exec->command.empty()
                                  ? unknown("exec probe without a command")
                                  : unknown("cannot run the exec action: " + o->output));
        continue;
      }
      if (sockety && !o->sock) {
        if (!o->output.empty()) {
          // dial failed at once (connection refused on loopback, no route)
          std::string msg = o->output.rfind("dial tcp", 0) == 0 || o->output.rfind("socket", 0) == 0
                                ? o->output
                                : "dial tcp " + o->addr_text + ": " + o->output;
          done.emplace_back(
              id, failure(o->what.http_get ? "Get " + go_quote(o->url) + ": " + msg : msg));
        } else {
          auto port = o->what.http_get ? o->what.http_get->port : o->what.tcp_socket->port;
          done.emplace_back(id, unknown(resolve_port(port, o->target.ports).err().message));
        }
        continue;
      }
      if (!o->what.exec && !sockety && !o->what.sleep) {
        done.emplace_back(id, unknown("no action"));
        continue;
      }
      if (now >= o->deadline) {
        if (o->at == step::sleeping) {
          handler_result r;
          r.outcome = handler_outcome::success;
          done.emplace_back(id, r);
        } else {
          done.emplace_back(id, timed_out(*o));
        }
        continue;
      }
      next = std::min(next, o->deadline);
      if (o->at == step::exec_running) {
        fds.push_back({o->pidfd.get(), POLLIN, 0});
        owners.push_back(id);
        if (o->out) {
          fds.push_back({o->out.get(), POLLIN, 0});
          owners.push_back(id);
        }
      } else if (sockety) {
        fds.push_back({o->sock.get(), o->want, 0});
        owners.push_back(id);
      }
    }
    for (auto& [id, r] : done) {
      auto it = ops.find(id);
      auto o = std::move(it->second);
      ops.erase(it);
      --count;
      finish(std::move(o), std::move(r));
    }
    if (!done.empty())
      continue;

    auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    int n =
        ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<int64_t>(wait_ms, 0, 60000)));
    if (n < 0 && errno != EINTR)
      n = 0;
    uint64_t drained;
    while (::read(wake.get(), &drained, sizeof drained) > 0) {
    }
    for (std::size_t i = 1; i < fds.size(); ++i) {
      if (!fds[i].revents)
        continue;
      auto it = ops.find(owners[i]);
      if (it == ops.end())
        continue;  // finished through an earlier descriptor of the same action
      auto& o = *it->second;
      handler_result r;
      bool finished =
          o.at == step::exec_running ? advance_exec(o, r) : advance(o, fds[i].revents, r);
      if (!finished)
        continue;
      auto owned = std::move(it->second);
      ops.erase(it);
      --count;
      finish(std::move(owned), std::move(r));
    }
  }
}

}  // namespace deckhand::supervisor

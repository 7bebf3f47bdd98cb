#include "deckhand/supervisor/log_pump.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

#include "deckhand/common/log.hpp"

namespace deckhand::supervisor {

namespace fs = std::filesystem;

namespace {

/// What the pipe buffer is grown to, so that a container's output survives a
/// supervisor restart without blocking it (capped by fs.pipe-max-size).
constexpr int pipe_buffer_size = 1 << 20;
constexpr std::size_t read_chunk = 16 << 10;
/// Bytes read from one stream before the others get a turn.
constexpr std::size_t turn_budget = 1 << 20;
/// Bound on a final drain, in case something still writes.
constexpr std::size_t drain_budget = 16 << 20;

result<common::unique_fd> open_reader(const fs::path& fifo) {
  if (auto r = ensure_fifo(fifo); !r)
    return r.err();
  // O_RDWR: opening never blocks, and read() never reports EOF when a
  // container instance closes its end.
  return common::open_fd(fifo, O_RDWR | O_NONBLOCK);
}

}  // namespace

result<void> ensure_fifo(const fs::path& path) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec)
    return error{errc::io, "create " + path.parent_path().string() + ": " + ec.message()};
  if (::mkfifo(path.c_str(), 0600) == 0)
    return {};
  if (errno != EEXIST)
    return error::from_errno("mkfifo " + path.string());
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return error::from_errno("stat " + path.string());
  if (!S_ISFIFO(st.st_mode))
    return error{errc::conflict, path.string() + " exists and is not a FIFO"};
  return {};
}

result<common::unique_fd> open_container_stream(const fs::path& fifo) {
  if (auto r = ensure_fifo(fifo); !r)
    return r.err();
  auto fd = common::open_fd(fifo, O_RDWR);
  if (!fd)
    return fd;
  // Best effort: a smaller buffer only means the container blocks sooner
  // while its supervisor is down.
  (void)::fcntl(fd->get(), F_SETPIPE_SZ, pipe_buffer_size);
  return fd;
}

log_pump::log_pump(log_limits limits, std::string log_fields, clock_fn clock)
    : limits_(limits), log_fields_(std::move(log_fields)), clock_(std::move(clock)) {}

log_pump::~log_pump() { stop(); }

void log_pump::start() {
  wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  thread_ = std::thread([this] {
    owner_ = std::this_thread::get_id();
    loop();
  });
}

bool log_pump::share_thread() {
  if (thread_.joinable())
    return false;
  // Only for calls from other threads: the sharing thread's own calls run
  // at once and never need a wake-up.
  if (!wake_)
    wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  owner_ = std::this_thread::get_id();
  shared_ = true;
  return true;
}

void log_pump::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(wake_.get(), &one, sizeof one);
    thread_.join();
    return;
  }
  if (shared_ && !stopped_) {
    // The sharing thread's poll loop has returned: the last turn is ours.
    stopped_ = true;
    (void)run_queued();
    drain_all();
  }
}

void log_pump::post(std::function<void()> cmd) {
  if (on_pump_thread()) {
    // Queueing it would deadlock a caller waiting on finish()'s future: the
    // thread that would run the queue is the caller's.
    cmd();
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    cmds_.push_back(std::move(cmd));
  }
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

void log_pump::attach(const std::string& name, const fs::path& stdout_fifo,
                      const fs::path& stderr_fifo, const fs::path& log_file, int64_t instance) {
  // The read ends are opened here, before the caller starts the container:
  // a container that writes and exits before the pump thread gets to this
  // command must find a reader holding its pipe, or its output is gone.
  auto open = [&](const fs::path& fifo, const char* what) {
    auto fd = open_reader(fifo);
    if (fd)
      return std::make_shared<common::unique_fd>(std::move(*fd));
    log::get()->error("{} container={} msg=\"cannot open {} pipe\" error=\"{}\"", log_fields_, name,
                      what, fd.err().message);
    return std::make_shared<common::unique_fd>();
  };
  auto out_fd = open(stdout_fifo, "stdout");
  auto err_fd = open(stderr_fifo, "stderr");
  post([this, name, out_fd, err_fd, log_file, instance] {
    auto it = io_.find(name);
    if (it != io_.end() && it->second->file.path() != log_file)
      do_finish(name);
    auto& c = io_[name];
    if (!c)
      c = std::make_unique<container_io>(limits_);
    // A reader kept from before stays: it may hold a partial line.
    if (!c->out.fd)
      c->out.fd = std::move(*out_fd);
    if (!c->err.fd)
      c->err.fd = std::move(*err_fd);
    if (!c->file.is_open() || c->file.path() != log_file) {
      if (auto r = c->file.open(log_file, instance); !r)
        log::get()->error("{} container={} msg=\"cannot open log file\" error=\"{}\"", log_fields_,
                          name, r.err().message);
      prune_container_logs(log_file.parent_path(), instance, limits_.max_files);
    }
  });
}

std::future<void> log_pump::finish(const std::string& name) {
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  post([this, name, done] {
    do_finish(name);
    done->set_value();
  });
  return fut;
}

void log_pump::write_lines(const std::string& name, container_io& c,
                           const std::vector<std::string>& lines) {
  if (lines.empty() || !c.file.is_open())
    return;
  if (auto r = c.file.write(lines, clock_()); !r)
    log::get()->warn("{} container={} msg=\"writing container log failed\" error=\"{}\"",
                     log_fields_, name, r.err().message);
}

bool log_pump::pump(const std::string& name, container_io& c, stream& s, std::size_t budget) {
  if (!s.fd)
    return true;
  // One buffer for the pump's life, never zero-filled: a page of it becomes
  // resident only once a read fills it (most reads are a few lines).
  if (!buf_)
    buf_ = std::make_unique_for_overwrite<char[]>(read_chunk);
  char* buf = buf_.get();
  std::size_t total = 0;
  while (total < budget) {
    ssize_t n = ::read(s.fd.get(), buf, read_chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n == 0 || errno == EAGAIN || errno == EWOULDBLOCK;
    total += static_cast<std::size_t>(n);
    std::vector<std::string> lines;
    s.framer.feed(std::string_view(buf, static_cast<std::size_t>(n)), clock_(), lines);
    write_lines(name, c, lines);
  }
  return true;
}

void log_pump::do_finish(const std::string& name) {
  auto it = io_.find(name);
  if (it == io_.end())
    return;
  auto& c = *it->second;
  // Everything the exited instance wrote is in the pipes by now.
  (void)pump(name, c, c.out, drain_budget);
  (void)pump(name, c, c.err, drain_budget);
  std::vector<std::string> tail;
  c.out.framer.flush(clock_(), tail);
  c.err.framer.flush(clock_(), tail);
  write_lines(name, c, tail);
  io_.erase(it);
}

void log_pump::collect(std::vector<struct pollfd>& fds, std::vector<polled>& who) const {
  for (const auto& [name, c] : io_) {
    if (c->out.fd) {
      fds.push_back({c->out.fd.get(), POLLIN, 0});
      who.push_back({name, false});
    }
    if (c->err.fd) {
      fds.push_back({c->err.fd.get(), POLLIN, 0});
      who.push_back({name, true});
    }
  }
}

void log_pump::pump_ready(const std::vector<polled>& who, const struct pollfd* begin,
                          const struct pollfd* end) {
  for (std::size_t i = 0; i < who.size() && begin + i < end; ++i) {
    const struct pollfd& p = begin[i];
    if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
      continue;
    auto it = io_.find(who[i].name);
    if (it == io_.end())
      continue;
    stream& s = who[i].err ? it->second->err : it->second->out;
    // Not the descriptor that was polled: the container was finished and
    // attached again since.
    if (!s.fd || s.fd.get() != p.fd)
      continue;
    if (!pump(who[i].name, *it->second, s, turn_budget)) {
      log::get()->warn("{} container={} stream={} msg=\"reading container output failed\" "
                       "errno={}",
                       log_fields_, who[i].name, s.framer.stream(), errno);
      s.fd.reset();
    }
  }
}

bool log_pump::run_queued() {
  if (wake_) {
    uint64_t n;
    while (::read(wake_.get(), &n, sizeof n) > 0) {
    }
  }
  for (;;) {
    std::function<void()> cmd;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cmds_.empty())
        return stop_;
      cmd = std::move(cmds_.front());
      cmds_.pop_front();
    }
    cmd();
  }
}

void log_pump::drain_all() {
  // What is readable now goes out; an unfinished line is written as a
  // partial one, which the next supervisor's first line completes.
  for (auto& [name, c] : io_) {
    (void)pump(name, *c, c->out, drain_budget);
    (void)pump(name, *c, c->err, drain_budget);
    std::vector<std::string> tail;
    c->out.framer.flush(clock_(), tail);
    c->err.framer.flush(clock_(), tail);
    write_lines(name, *c, tail);
  }
}

void log_pump::fill_pollfds(std::vector<struct pollfd>& fds) {
  polled_.clear();
  polled_wake_ = false;
  if (!shared_ || stopped_)
    return;
  if (wake_) {
    fds.push_back({wake_.get(), POLLIN, 0});
    polled_wake_ = true;
  }
  collect(fds, polled_);
}

void log_pump::on_ready(const struct pollfd* begin, const struct pollfd* end) {
  if (!shared_ || stopped_)
    return;
  if (polled_wake_ && begin < end)
    ++begin;  // the wake fd: run_queued() below empties it
  pump_ready(polled_, begin, end);
  polled_.clear();
  polled_wake_ = false;
  (void)run_queued();
}

void log_pump::pump_ready_now() {
  if (!shared_ || stopped_ || io_.empty())
    return;
  std::vector<struct pollfd> fds;
  std::vector<polled> who;
  collect(fds, who);
  if (fds.empty() || ::poll(fds.data(), fds.size(), 0) <= 0)
    return;
  pump_ready(who, fds.data(), fds.data() + fds.size());
}

void log_pump::loop() {
  for (;;) {
    std::vector<struct pollfd> fds;
    std::vector<polled> who;
    fds.push_back({wake_.get(), POLLIN, 0});
    collect(fds, who);
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR)
      log::get()->error("{} msg=\"log pump poll failed\" errno={}", log_fields_, errno);
    pump_ready(who, fds.data() + 1, fds.data() + fds.size());
    if (run_queued()) {
      drain_all();
      return;
    }
  }
}

}  // namespace deckhand::supervisor

/// bench_bus: what deckhand's inter-process bus (transport::bridge) costs
/// between two processes, against bare cppzmq sockets measured in the same run
/// with the same frames and bodies.
///
/// Every scenario forks a server (or publisher) process, talks to it over an
/// ipc:// endpoint in a fresh temporary directory, and tears it down. The
/// parent holds no ZeroMQ context and no thread while it forks, so the child
/// starts from a clean single-threaded copy. Parent and child synchronise over
/// two pipes; the child dies with the parent (PR_SET_PDEATHSIG).
///
/// This is a program that prints figures, not a test: nothing here asserts a
/// speed, and it is not registered with ctest.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <zmq.hpp>

#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/wire.hpp"

namespace {

using namespace deckhand;
using clock_type = std::chrono::steady_clock;
using transport::bridge;
using wire::envelope;

// -- options -----------------------------------------------------------------

constexpr std::size_t max_in_flight = 4096;

struct options {
  std::size_t requests = 20000;  ///< sequential requests per latency figure
  std::size_t warmup = 1000;     ///< requests before each latency figure
  std::size_t in_flight = 64;    ///< pipelining depth of the throughput figures
  std::size_t events = 50000;    ///< watch_event messages per PUB/SUB figure
  std::string only;              ///< run one scenario (for profiling)
};

void usage(const char* argv0) {
  std::printf("usage: %s [--requests N] [--warmup N] [--in-flight N] [--events N] "
              "[--quick]\n"
              "  --requests N   sequential requests per latency figure, and requests\n"
              "                 per throughput figure (default 20000)\n"
              "  --warmup N     unmeasured requests before each latency figure "
              "(default 1000)\n"
              "  --in-flight N  outstanding requests in the throughput figures "
              "(default 64)\n"
              "  --events N     watch_event messages per PUB/SUB figure (default "
              "50000;\n"
              "                 above 100000, the PUB high-water mark, a burst loses "
              "its tail)\n"
              "  --quick        smoke run: --requests 500 --warmup 50 --events 5000\n"
              "  --only NAME    run one scenario, for profiling: rr-bare, rr-bridge,\n"
              "                 ps-bare, ps-bridge\n",
              argv0);
}

std::optional<options> parse_options(int argc, char** argv) {
  options opt;
  auto number = [&](int& i) -> std::optional<std::size_t> {
    if (i + 1 >= argc)
      return std::nullopt;
    char* end = nullptr;
    auto v = std::strtoull(argv[++i], &end, 10);
    if (!end || *end != '\0' || v == 0)
      return std::nullopt;
    return static_cast<std::size_t>(v);
  };
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::optional<std::size_t> v;
    if (a == "--quick") {
      opt.requests = 500;
      opt.warmup = 50;
      opt.events = 5000;
      continue;
    }
    if (a == "--help" || a == "-h") {
      usage(argv[0]);
      std::exit(0);
    }
    if (a == "--only" && i + 1 < argc) {
      opt.only = argv[++i];
      if (opt.only != "rr-bare" && opt.only != "rr-bridge" && opt.only != "ps-bare" &&
          opt.only != "ps-bridge") {
        std::fprintf(stderr, "bench_bus: unknown scenario %s\n", opt.only.c_str());
        return std::nullopt;
      }
      continue;
    }
    if (a != "--requests" && a != "--warmup" && a != "--in-flight" && a != "--events") {
      std::fprintf(stderr, "bench_bus: unknown argument %s\n", a.c_str());
      return std::nullopt;
    }
    if (!(v = number(i))) {
      std::fprintf(stderr, "bench_bus: %s needs a positive number\n", a.c_str());
      return std::nullopt;
    }
    if (a == "--requests")
      opt.requests = *v;
    else if (a == "--warmup")
      opt.warmup = *v;
    else if (a == "--in-flight")
      opt.in_flight = std::min(*v, max_in_flight);
    else
      opt.events = *v;
  }
  return opt;
}

// -- bodies --------------------------------------------------------------------

/// A pod as the API server hands it to a kubelet: three containers with
/// images, commands, environment, ports and resources.
wire::pod make_pod() {
  wire::pod p;
  p.metadata.name = "web-7d4b9c8f6d-x2x9q";
  p.metadata.namespace_ = "default";
  p.metadata.uid = "3f1c2a7e-9b4d-4c1e-8f2a-6d5e4c3b2a19";
  p.metadata.resource_version = "182734";
  p.metadata.generation = 1;
  p.metadata.creation_timestamp = "2024-05-01T12:00:00Z";
  p.metadata.labels = {{"app", "web"}, {"pod-template-hash", "7d4b9c8f6d"}, {"tier", "frontend"}};
  p.metadata.annotations = {{"deckhand.io/restartedAt", "2024-05-01T11:59:58Z"}};
  p.spec.node_name = "node-1";
  p.spec.restart_policy = "Always";
  p.spec.termination_grace_period_seconds = 30;
  const char* names[] = {"nginx", "log-shipper", "metrics"};
  for (int i = 0; i < 3; ++i) {
    wire::container c;
    c.name = names[i];
    c.image = std::string("registry.local:5000/library/") + names[i] + ":1.25.3";
    c.command = {"/bin/sh", "-c"};
    c.args = {std::string("exec /usr/local/bin/") + names[i] + " --config /etc/" + names[i] +
              "/config.yaml"};
    c.working_dir = "/";
    c.env = {{"POD_NAME", p.metadata.name}, {"POD_NAMESPACE", "default"}, {"LOG_LEVEL", "info"}};
    wire::container_port port;
    port.name = "http";
    port.container_port = 8080 + i;
    port.protocol = "TCP";
    c.ports = {port};
    c.resources.limits = {{"cpu", "500m"}, {"memory", "256Mi"}};
    c.resources.requests = {{"cpu", "100m"}, {"memory", "64Mi"}};
    c.image_pull_policy = "IfNotPresent";
    p.spec.containers.push_back(std::move(c));
  }
  p.status.phase = "Pending";
  return p;
}

wire::sandbox_status make_sandbox(const wire::pod& p) {
  wire::sandbox_status s;
  s.uid = p.metadata.uid;
  s.namespace_ = p.metadata.namespace_;
  s.name = p.metadata.name;
  s.state = "ready";
  s.pod_ip_ = "10.88.0.17";
  s.supervisor_pid = 41234;
  s.supervisor_alive = true;
  s.supervisor_incarnation = 0x1234567890abcdefULL;
  s.created_at = "2024-05-01T12:00:01Z";
  for (const auto& c : p.spec.containers) {
    wire::container_record r;
    r.name = c.name;
    r.runtime_id = p.metadata.uid + "-" + c.name;
    r.status.name = c.name;
    r.status.state.running.started_at = "2024-05-01T12:00:02Z";
    r.status.ready = true;
    r.status.image = c.image;
    r.status.image_id = "sha256:9e3c1f1b2d4a5c6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6";
    r.status.container_id = "runc://" + r.runtime_id;
    r.status.started = true;
    s.containers.push_back(std::move(r));
  }
  return s;
}

/// Every body of the run, encoded once.
struct bodies {
  envelope small_req;  ///< remove_pod_request
  envelope pod_req;    ///< run_pod_request, 3 containers
  envelope small_rep;  ///< ack
  envelope pod_rep;    ///< run_pod_reply, 3 container records
  envelope event;      ///< watch_event carrying the same pod
  envelope marker;     ///< feed_heartbeat, for the PUB/SUB "sync" and "end" topics

  const envelope& reply_for(uint16_t request_type) const {
    return request_type == wire::run_pod_request::type_id ? pod_rep : small_rep;
  }
};

bodies make_bodies() {
  bodies b;
  auto p = make_pod();
  wire::remove_pod_request rm;
  rm.uid = p.metadata.uid;
  b.small_req = wire::make_envelope(rm);
  b.pod_req = wire::make_envelope(wire::run_pod_request{p});
  b.small_rep = wire::make_envelope(wire::ack{182735}, 0, wire::flag_reply);
  wire::run_pod_reply rep;
  rep.sandbox = make_sandbox(p);
  b.pod_rep = wire::make_envelope(rep, 0, wire::flag_reply);
  wire::watch_event ev;
  ev.seq = 1;
  ev.type = "MODIFIED";
  ev.kind = "pods";
  ev.revision = 182735;
  ev.pod_ = p;
  b.event = wire::make_envelope(ev);
  b.marker = wire::make_envelope(wire::feed_heartbeat{1, {}});
  return b;
}

// -- processes and pipes ------------------------------------------------------

/// A file descriptor closed on destruction.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    reset();
    fd_ = std::exchange(o.fd_, -1);
    return *this;
  }
  ~unique_fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

bool write_byte(int fd, char c) {
  while (true) {
    auto n = ::write(fd, &c, 1);
    if (n == 1)
      return true;
    if (n < 0 && errno == EINTR)
      continue;
    return false;
  }
}

bool write_all(int fd, const void* data, std::size_t size) {
  auto p = static_cast<const char*>(data);
  while (size > 0) {
    auto n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

/// CPU time and context switches of every thread of one process.
struct proc_usage {
  uint64_t cpu_us = 0;
  uint64_t switches = 0;  ///< voluntary + involuntary

  static proc_usage self() {
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    auto us = [](const timeval& tv) {
      return static_cast<uint64_t>(tv.tv_sec) * 1000000u + static_cast<uint64_t>(tv.tv_usec);
    };
    return {us(ru.ru_utime) + us(ru.ru_stime), static_cast<uint64_t>(ru.ru_nvcsw + ru.ru_nivcsw)};
  }
  proc_usage operator-(const proc_usage& o) const {
    return {cpu_us - o.cpu_us, switches - o.switches};
  }
  proc_usage operator+(const proc_usage& o) const {
    return {cpu_us + o.cpu_us, switches + o.switches};
  }
};

/// A server's answer to 'u': its own usage, so that the parent can charge
/// each phase with the CPU time of both processes.
void answer_usage(int out) {
  auto u = proc_usage::self();
  uint64_t v[2] = {u.cpu_us, u.switches};
  write_all(out, v, sizeof v);
}

enum class wait_status { byte, eof, timeout };

/// Waits up to `timeout` for one byte on `fd`.
wait_status read_byte(int fd, std::chrono::milliseconds timeout, char* out = nullptr) {
  auto deadline = clock_type::now() + timeout;
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0)
      return wait_status::timeout;
    char c = 0;
    auto n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n == 1) {
      if (out)
        *out = c;
      return wait_status::byte;
    }
    return wait_status::eof;
  }
}

/// Reads exactly `size` bytes within `timeout`.
bool read_exact(int fd, void* data, std::size_t size, std::chrono::milliseconds timeout) {
  auto p = static_cast<char*>(data);
  for (std::size_t i = 0; i < size; ++i)
    if (read_byte(fd, timeout, p + i) != wait_status::byte)
      return false;
  return true;
}

/// The server side of one scenario, run in a forked process. `in` is readable
/// when the parent has something to say (EOF: stop); `out` goes to the parent.
using child_main = std::function<int(int in, int out)>;

/// A forked child; the destructor closes its input (its cue to exit), waits a
/// bounded time and kills it if it has not gone.
class child_process {
 public:
  static std::optional<child_process> spawn(const child_main& fn) {
    int to_child[2], to_parent[2];
    if (::pipe2(to_child, O_CLOEXEC) != 0)
      return std::nullopt;
    if (::pipe2(to_parent, O_CLOEXEC) != 0) {
      ::close(to_child[0]);
      ::close(to_child[1]);
      return std::nullopt;
    }
    std::fflush(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      for (int fd : {to_child[0], to_child[1], to_parent[0], to_parent[1]})
        ::close(fd);
      return std::nullopt;
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent)
        ::_exit(1);
      ::close(to_child[1]);
      ::close(to_parent[0]);
      int rc = 2;
      try {
        rc = fn(to_child[0], to_parent[1]);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_bus child: %s\n", e.what());
      }
      std::fflush(nullptr);
      ::_exit(rc);
    }
    ::close(to_child[0]);
    ::close(to_parent[1]);
    child_process c;
    c.pid_ = pid;
    c.to_child_ = unique_fd{to_child[1]};
    c.from_child_ = unique_fd{to_parent[0]};
    return c;
  }

  child_process() = default;
  child_process(child_process&& o) noexcept
      : pid_(std::exchange(o.pid_, -1)),
        to_child_(std::move(o.to_child_)),
        from_child_(std::move(o.from_child_)) {}
  ~child_process() { finish(); }

  int to_child() const { return to_child_.get(); }
  int from_child() const { return from_child_.get(); }

  /// Waits for the child's "ready" byte.
  bool wait_ready() {
    char c = 0;
    return read_byte(from_child(), std::chrono::seconds(10), &c) == wait_status::byte && c == 'r';
  }

  /// The child's CPU time and context switches so far (zero if it does not answer).
  proc_usage query_usage() {
    uint64_t v[2] = {0, 0};
    if (!write_byte(to_child(), 'u') ||
        !read_exact(from_child(), v, sizeof v, std::chrono::seconds(5)))
      return {};
    return {v[0], v[1]};
  }

  /// Closes the child's input and reaps it; returns its exit code (-1: killed).
  int finish() {
    if (pid_ < 0)
      return -1;
    to_child_.reset();
    int status = 0;
    auto deadline = clock_type::now() + std::chrono::seconds(10);
    while (true) {
      auto r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_)
        break;
      if (r < 0 && errno != EINTR) {
        pid_ = -1;
        return -1;
      }
      if (clock_type::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    pid_ = -1;
    from_child_.reset();
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  unique_fd to_child_;
  unique_fd from_child_;
};

/// Every endpoint name the scenarios use, so that an interrupted run can
/// remove its socket files without allocating.
constexpr const char* endpoint_names[] = {"rr-bare", "rr-bridge", "ps-bare", "ps-bridge"};

/// The temporary directory, for the signal handler.
char interrupted_dir[128] = "";

/// SIGINT/SIGTERM: remove the sockets and the directory, then exit. The
/// children follow through PR_SET_PDEATHSIG.
extern "C" void on_interrupt(int) {
  if (interrupted_dir[0]) {
    for (const char* name : endpoint_names) {
      char path[192] = "";
      std::strcat(path, interrupted_dir);
      std::strcat(path, "/");
      std::strcat(path, name);
      std::strcat(path, ".sock");
      ::unlink(path);
    }
    ::rmdir(interrupted_dir);
  }
  ::_exit(130);
}

/// A directory from mkdtemp, removed with its content on destruction.
class temp_dir {
 public:
  temp_dir() {
    char tmpl[] = "/tmp/deckhand-bench-XXXXXX";
    if (::mkdtemp(tmpl)) {
      path_ = tmpl;
      std::strncpy(interrupted_dir, tmpl, sizeof interrupted_dir - 1);
    }
  }
  ~temp_dir() {
    interrupted_dir[0] = '\0';
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  bool ok() const { return !path_.empty(); }
  std::string endpoint(const std::string& name) const {
    return "ipc://" + path_ + "/" + name + ".sock";
  }

 private:
  std::string path_;
};

// -- figures --------------------------------------------------------------------

struct latency {
  double p50_us = 0;
  double p99_us = 0;
  double mean_us = 0;
  uint64_t errors = 0;
};

latency summarize(std::vector<double> us, uint64_t errors) {
  latency l;
  l.errors = errors;
  if (us.empty())
    return l;
  std::sort(us.begin(), us.end());
  auto at = [&](double q) {
    auto i = static_cast<std::size_t>(q * static_cast<double>(us.size()));
    return us[std::min(i, us.size() - 1)];
  };
  l.p50_us = at(0.50);
  l.p99_us = at(0.99);
  double sum = 0;
  for (double v : us)
    sum += v;
  l.mean_us = sum / static_cast<double>(us.size());
  return l;
}

double micros(clock_type::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

/// Per-request cost of a phase, both processes together.
struct phase_cost {
  double cpu_us = 0;
  double switches = 0;
};

/// What one request/reply run (one transport) measured.
struct rr_figures {
  latency small, pod;
  double small_rps = 0, pod_rps = 0;  ///< medians of `throughput_runs` runs
  std::vector<double> small_rps_runs, pod_rps_runs;
  phase_cost small_latency_cost, small_rps_cost;  ///< the latter of the median run
  uint64_t rps_errors = 0;
  bool ok = false;
};

/// What one PUB/SUB run measured.
struct pubsub_figures {
  double delivered_per_s = 0;
  double published_per_s = 0;
  uint64_t received = 0;
  uint64_t sent = 0;
  bool ok = false;
};

// -- bare cppzmq ----------------------------------------------------------------

/// Receives one multipart message; false when nothing is waiting (dontwait).
bool recv_multipart(zmq::socket_t& s, std::vector<zmq::message_t>& parts,
                    zmq::recv_flags first = zmq::recv_flags::none) {
  parts.clear();
  zmq::message_t part;
  if (!s.recv(part, first))
    return false;
  parts.push_back(std::move(part));
  while (parts.back().more()) {
    zmq::message_t next;
    (void)s.recv(next, zmq::recv_flags::none);
    parts.push_back(std::move(next));
  }
  return true;
}

/// Bare ROUTER server: echoes each request's header with the reply flag set,
/// followed by the pre-encoded reply body for the request's type.
int serve_bare_rr(const std::string& ep, const bodies& b, int in, int out) {
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  router.set(zmq::sockopt::linger, 0);
  router.bind(ep);
  write_byte(out, 'r');
  zmq::pollitem_t items[] = {{router.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, in, ZMQ_POLLIN, 0}};
  std::vector<zmq::message_t> parts;
  while (true) {
    zmq::poll(items, 2, std::chrono::milliseconds{-1});
    if (items[1].revents) {
      char c = 0;
      if (read_byte(in, std::chrono::milliseconds(0), &c) != wait_status::byte)
        return 0;
      if (c == 'u')
        answer_usage(out);
    }
    while (recv_multipart(router, parts, zmq::recv_flags::dontwait)) {
      if (parts.size() != 3 || parts[1].size() != wire::header_size)
        continue;
      auto h = parts[1].data<uint8_t>();
      uint16_t type = static_cast<uint16_t>((h[4] << 8) | h[5]);
      h[7] |= wire::flag_reply;
      const auto& body = b.reply_for(type).body;
      router.send(parts[0], zmq::send_flags::sndmore);
      router.send(parts[1], zmq::send_flags::sndmore);
      router.send(zmq::buffer(body), zmq::send_flags::none);
    }
  }
}

struct bare_frames {
  std::array<uint8_t, wire::header_size> hdr;
  const std::string* body;
};

bare_frames frames_of(const envelope& env) { return {wire::encode_header(env.hdr), &env.body}; }

void bare_send(zmq::socket_t& s, const bare_frames& f) {
  s.send(zmq::buffer(f.hdr), zmq::send_flags::sndmore);
  s.send(zmq::buffer(*f.body), zmq::send_flags::none);
}

bool bare_reply_ok(const std::vector<zmq::message_t>& parts) {
  return parts.size() == 2 && parts[0].size() == wire::header_size;
}

latency bare_latency(zmq::socket_t& dealer, const envelope& env, const options& opt) {
  auto f = frames_of(env);
  std::vector<zmq::message_t> parts;
  std::vector<double> us;
  us.reserve(opt.requests);
  uint64_t errors = 0;
  for (std::size_t i = 0; i < opt.warmup + opt.requests; ++i) {
    auto t0 = clock_type::now();
    bare_send(dealer, f);
    recv_multipart(dealer, parts);
    auto t1 = clock_type::now();
    if (!bare_reply_ok(parts))
      ++errors;
    if (i >= opt.warmup)
      us.push_back(micros(t1 - t0));
  }
  return summarize(std::move(us), errors);
}

double bare_throughput(zmq::socket_t& dealer, const envelope& env, const options& opt,
                       uint64_t& errors) {
  auto f = frames_of(env);
  std::vector<zmq::message_t> parts;
  std::size_t sent = 0, received = 0, total = opt.requests;
  auto t0 = clock_type::now();
  while (received < total) {
    while (sent < total && sent - received < opt.in_flight) {
      bare_send(dealer, f);
      ++sent;
    }
    recv_multipart(dealer, parts);
    if (!bare_reply_ok(parts))
      ++errors;
    ++received;
  }
  auto t1 = clock_type::now();
  return static_cast<double>(total) / std::chrono::duration<double>(t1 - t0).count();
}

/// Throughput figures are the median of this many runs: on 2 cores the
/// pipelined bridge settles either into a batched or a lockstep regime (see
/// README.md), and one run says little about which one is typical.
constexpr int throughput_runs = 3;

/// Runs `phase` and returns what it cost both processes per request.
template <class Phase>
phase_cost measure(child_process& server, std::size_t requests, Phase&& phase) {
  auto c0 = proc_usage::self();
  auto s0 = server.query_usage();
  phase();
  auto c1 = proc_usage::self();
  auto s1 = server.query_usage();
  auto total = (c1 - c0) + (s1 - s0);
  auto n = static_cast<double>(requests);
  return {static_cast<double>(total.cpu_us) / n, static_cast<double>(total.switches) / n};
}

/// Runs the throughput phase `run` (returns requests/s) `throughput_runs`
/// times; returns the median rate and the cost of the median run.
template <class Run>
std::pair<double, phase_cost> median_rate(child_process& server, std::size_t requests,
                                          std::vector<double>& rates, Run&& run) {
  std::vector<std::pair<double, phase_cost>> runs;
  for (int i = 0; i < throughput_runs; ++i) {
    double rate = 0;
    auto cost = measure(server, requests, [&] { rate = run(); });
    runs.emplace_back(rate, cost);
    rates.push_back(rate);
  }
  std::sort(runs.begin(), runs.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return runs[runs.size() / 2];
}

rr_figures run_bare_rr(const temp_dir& dir, const bodies& b, const options& opt) {
  rr_figures r;
  auto ep = dir.endpoint("rr-bare");
  auto child = child_process::spawn([&](int in, int out) { return serve_bare_rr(ep, b, in, out); });
  if (!child || !child->wait_ready()) {
    std::fprintf(stderr, "bench_bus: bare server did not start\n");
    return r;
  }
  {
    zmq::context_t ctx{1};
    zmq::socket_t dealer{ctx, zmq::socket_type::dealer};
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(ep);
    r.small_latency_cost = measure(*child, opt.warmup + opt.requests,
                                   [&] { r.small = bare_latency(dealer, b.small_req, opt); });
    r.pod = bare_latency(dealer, b.pod_req, opt);
    std::tie(r.small_rps, r.small_rps_cost) =
        median_rate(*child, opt.requests, r.small_rps_runs,
                    [&] { return bare_throughput(dealer, b.small_req, opt, r.rps_errors); });
    r.pod_rps = median_rate(*child, opt.requests, r.pod_rps_runs, [&] {
                  return bare_throughput(dealer, b.pod_req, opt, r.rps_errors);
                }).first;
  }
  r.ok = child->finish() == 0;
  return r;
}

// -- deckhand's bridge -------------------------------------------------------------

transport::bridge_config bench_config(const char* name) {
  transport::bridge_config c;
  c.component = name;
  return c;
}

/// Bridge server: the ROUTER handler answers every request at once with the
/// pre-encoded reply for its type (no actor hop, no body decode: the figure is
/// the transport's own cost).
int serve_bridge_rr(const std::string& ep, const bodies& b, int in, int out) {
  bridge br{bench_config("bench-server")};
  auto router = br.bind_router(ep, [&br, &b](transport::inbound_request req) {
    br.reply(req, b.reply_for(req.env.hdr.type));
  });
  if (!router) {
    std::fprintf(stderr, "bench_bus: %s\n", router.err().message.c_str());
    return 3;
  }
  br.start();
  write_byte(out, 'r');
  char c = 0;
  while (read_byte(in, std::chrono::hours(1), &c) == wait_status::byte)
    if (c == 'u')
      answer_usage(out);
  br.stop();
  return 0;
}

/// Waits until `counter` reaches `target` (the reply callbacks run on the
/// bridge thread and bump it).
void wait_for(std::atomic<uint32_t>& counter, uint32_t target) {
  uint32_t v;
  while ((v = counter.load(std::memory_order_acquire)) != target)
    counter.wait(v, std::memory_order_acquire);
}

bool bridge_reply_ok(const result<envelope>& r, uint16_t request_type) {
  if (!r)
    return false;
  return (r->hdr.flags & wire::flag_reply) && !(r->hdr.flags & wire::flag_error) &&
         r->hdr.correlation_id != 0 &&
         (request_type != wire::run_pod_request::type_id ||
          r->hdr.type == wire::run_pod_reply::type_id);
}

latency bridge_latency(bridge& br, int dealer, const envelope& env, const options& opt) {
  // Shared: the last callback may still be inside notify_one() when this
  // function has seen the final count and returned.
  auto done = std::make_shared<std::atomic<uint32_t>>(0);
  auto errors = std::make_shared<std::atomic<uint64_t>>(0);
  std::vector<double> us;
  us.reserve(opt.requests);
  for (std::size_t i = 0; i < opt.warmup + opt.requests; ++i) {
    envelope copy = env;  // the caller's own envelope, built before the clock starts
    auto t0 = clock_type::now();
    br.request(dealer, std::move(copy), std::chrono::seconds(10),
               [done, errors, type = env.hdr.type](result<envelope> r) {
                 if (!bridge_reply_ok(r, type))
                   errors->fetch_add(1, std::memory_order_relaxed);
                 done->fetch_add(1, std::memory_order_release);
                 done->notify_one();
               });
    wait_for(*done, static_cast<uint32_t>(i + 1));
    auto t1 = clock_type::now();
    if (i >= opt.warmup)
      us.push_back(micros(t1 - t0));
  }
  return summarize(std::move(us), errors->load());
}

double bridge_throughput(bridge& br, int dealer, const envelope& env, const options& opt,
                         uint64_t& errors) {
  struct shared {
    explicit shared(std::ptrdiff_t window) : slots(window) {}
    std::counting_semaphore<max_in_flight> slots;
    std::atomic<uint32_t> done{0};
    std::atomic<uint64_t> errors{0};
  };
  auto sh = std::make_shared<shared>(static_cast<std::ptrdiff_t>(opt.in_flight));
  auto total = static_cast<uint32_t>(opt.requests);
  auto t0 = clock_type::now();
  for (uint32_t i = 0; i < total; ++i) {
    sh->slots.acquire();
    envelope copy = env;
    br.request(dealer, std::move(copy), std::chrono::seconds(10),
               [sh, type = env.hdr.type](result<envelope> r) {
                 if (!bridge_reply_ok(r, type))
                   sh->errors.fetch_add(1, std::memory_order_relaxed);
                 sh->slots.release();
                 sh->done.fetch_add(1, std::memory_order_release);
                 sh->done.notify_one();
               });
  }
  wait_for(sh->done, total);
  auto t1 = clock_type::now();
  errors += sh->errors.load();
  return static_cast<double>(total) / std::chrono::duration<double>(t1 - t0).count();
}

rr_figures run_bridge_rr(const temp_dir& dir, const bodies& b, const options& opt) {
  rr_figures r;
  auto ep = dir.endpoint("rr-bridge");
  auto child =
      child_process::spawn([&](int in, int out) { return serve_bridge_rr(ep, b, in, out); });
  if (!child || !child->wait_ready()) {
    std::fprintf(stderr, "bench_bus: bridge server did not start\n");
    return r;
  }
  {
    bridge br{bench_config("bench-client")};
    auto dealer = br.connect_dealer(ep);
    if (!dealer) {
      std::fprintf(stderr, "bench_bus: %s\n", dealer.err().message.c_str());
      return r;
    }
    br.start();
    r.small_latency_cost = measure(*child, opt.warmup + opt.requests, [&] {
      r.small = bridge_latency(br, *dealer, b.small_req, opt);
    });
    r.pod = bridge_latency(br, *dealer, b.pod_req, opt);
    std::tie(r.small_rps, r.small_rps_cost) =
        median_rate(*child, opt.requests, r.small_rps_runs,
                    [&] { return bridge_throughput(br, *dealer, b.small_req, opt, r.rps_errors); });
    r.pod_rps = median_rate(*child, opt.requests, r.pod_rps_runs, [&] {
                  return bridge_throughput(br, *dealer, b.pod_req, opt, r.rps_errors);
                }).first;
    br.stop();
  }
  r.ok = child->finish() == 0;
  return r;
}

// -- PUB/SUB ----------------------------------------------------------------------
//
// The child publishes; the parent subscribes to "pods", "sync" and "end".
// Protocol: the child publishes "sync" every millisecond until the parent,
// having received one (its subscription is then in place), writes 'g'; the
// child then publishes `events` watch_events on "pods", writes the time that
// took (8 bytes, ns) and publishes "end" every millisecond until the parent
// writes 'd'. Everything the parent saw on "pods" before "end" counts.

/// The publisher loop around `publish(topic, env)`, shared by both transports.
int publisher_protocol(const std::function<void(const char*, const envelope&)>& publish,
                       const bodies& b, std::size_t events, int in, int out) {
  write_byte(out, 'r');
  char c = 0;
  auto give_up = clock_type::now() + std::chrono::seconds(20);
  while (true) {
    publish("sync", b.marker);
    auto st = read_byte(in, std::chrono::milliseconds(1), &c);
    if (st == wait_status::eof)
      return 4;
    if (st == wait_status::byte && c == 'g')
      break;
    if (clock_type::now() >= give_up)
      return 5;
  }
  auto t0 = clock_type::now();
  for (std::size_t i = 0; i < events; ++i)
    publish("pods", b.event);
  int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - t0).count();
  write_all(out, &ns, sizeof ns);
  give_up = clock_type::now() + std::chrono::seconds(60);
  while (clock_type::now() < give_up) {
    publish("end", b.marker);
    auto st = read_byte(in, std::chrono::milliseconds(1), &c);
    if (st == wait_status::eof || (st == wait_status::byte && c == 'd'))
      return 0;
  }
  return 6;
}

int serve_bare_pub(const std::string& ep, const bodies& b, std::size_t events, int in, int out) {
  zmq::context_t ctx{1};
  zmq::socket_t pub{ctx, zmq::socket_type::pub};
  pub.set(zmq::sockopt::linger, 0);
  pub.set(zmq::sockopt::sndhwm, 100000);  // as the bridge configures its PUB
  pub.bind(ep);
  auto hdr = wire::encode_header(b.event.hdr);
  auto marker_hdr = wire::encode_header(b.marker.hdr);
  return publisher_protocol(
      [&](const char* topic, const envelope& env) {
        bool is_event = &env == &b.event;
        pub.send(zmq::buffer(std::string_view{topic}), zmq::send_flags::sndmore);
        pub.send(zmq::buffer(is_event ? hdr : marker_hdr), zmq::send_flags::sndmore);
        pub.send(zmq::buffer(env.body), zmq::send_flags::none);
      },
      b, events, in, out);
}

int serve_bridge_pub(const std::string& ep, const bodies& b, std::size_t events, int in, int out) {
  bridge br{bench_config("bench-publisher")};
  auto pub = br.bind_pub(ep);
  if (!pub) {
    std::fprintf(stderr, "bench_bus: %s\n", pub.err().message.c_str());
    return 3;
  }
  br.start();
  int rc = publisher_protocol(
      [&](const char* topic, const envelope& env) { br.publish(*pub, topic, env); }, b, events, in,
      out);
  br.stop();
  return rc;
}

/// What the subscriber saw, filled in on whichever thread receives.
struct sub_state {
  std::mutex mtx;
  std::condition_variable cv;
  bool synced = false;
  bool counting = false;
  bool ended = false;
  uint64_t received = 0;
  uint64_t bad = 0;
  clock_type::time_point last;

  void on_message(std::string_view topic, bool well_formed) {
    std::lock_guard<std::mutex> guard{mtx};
    if (topic == "sync") {
      if (!synced) {
        synced = true;
        cv.notify_all();
      }
    } else if (topic == "pods") {
      if (counting && !ended) {
        ++received;
        if (!well_formed)
          ++bad;
        last = clock_type::now();
      }
    } else if (topic == "end") {
      if (counting && !ended) {
        ended = true;
        cv.notify_all();
      }
    }
  }
};

/// The parent's side of the protocol; `pump(deadline)` receives for the bare
/// subscriber (it has no thread of its own) and just waits for the bridge.
pubsub_figures subscriber_protocol(child_process& child, sub_state& st,
                                   const std::function<void(clock_type::time_point)>& pump,
                                   std::size_t events) {
  pubsub_figures f;
  f.sent = events;
  auto wait_until = [&](bool sub_state::*flag, std::chrono::seconds limit) {
    auto deadline = clock_type::now() + limit;
    while (clock_type::now() < deadline) {
      {
        std::lock_guard<std::mutex> guard{st.mtx};
        if (st.*flag)
          return true;
      }
      pump(std::min(deadline, clock_type::now() + std::chrono::milliseconds(100)));
    }
    std::lock_guard<std::mutex> guard{st.mtx};
    return st.*flag;
  };
  if (!wait_until(&sub_state::synced, std::chrono::seconds(10))) {
    std::fprintf(stderr, "bench_bus: no sync message from the publisher\n");
    return f;
  }
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.counting = true;
  }
  auto t0 = clock_type::now();
  write_byte(child.to_child(), 'g');
  if (!wait_until(&sub_state::ended, std::chrono::seconds(120))) {
    std::fprintf(stderr, "bench_bus: no end marker from the publisher\n");
    return f;
  }
  write_byte(child.to_child(), 'd');
  int64_t ns = 0;
  if (read_exact(child.from_child(), &ns, sizeof ns, std::chrono::seconds(5)) && ns > 0)
    f.published_per_s = static_cast<double>(events) / (static_cast<double>(ns) / 1e9);
  std::lock_guard<std::mutex> guard{st.mtx};
  f.received = st.received;
  if (st.received > 0)
    f.delivered_per_s =
        static_cast<double>(st.received) / std::chrono::duration<double>(st.last - t0).count();
  f.ok = st.bad == 0;
  if (st.bad)
    std::fprintf(stderr, "bench_bus: %" PRIu64 " malformed events\n", st.bad);
  return f;
}

pubsub_figures run_bare_pubsub(const temp_dir& dir, const bodies& b, const options& opt) {
  auto ep = dir.endpoint("ps-bare");
  auto child = child_process::spawn(
      [&](int in, int out) { return serve_bare_pub(ep, b, opt.events, in, out); });
  if (!child || !child->wait_ready()) {
    std::fprintf(stderr, "bench_bus: bare publisher did not start\n");
    return {};
  }
  pubsub_figures f;
  {
    zmq::context_t ctx{1};
    zmq::socket_t sub{ctx, zmq::socket_type::sub};
    sub.set(zmq::sockopt::linger, 0);
    for (const char* t : {"pods", "sync", "end"})
      sub.set(zmq::sockopt::subscribe, t);
    sub.connect(ep);
    sub_state st;
    std::vector<zmq::message_t> parts;
    auto pump = [&](clock_type::time_point until) {
      zmq::pollitem_t item{sub.handle(), 0, ZMQ_POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock_type::now());
      zmq::poll(&item, 1, std::max(left, std::chrono::milliseconds(0)));
      while (recv_multipart(sub, parts, zmq::recv_flags::dontwait))
        st.on_message(std::string_view{parts[0].data<char>(), parts[0].size()},
                      parts.size() == 3 && parts[1].size() == wire::header_size);
    };
    f = subscriber_protocol(*child, st, pump, opt.events);
  }
  f.ok = child->finish() == 0 && f.ok;
  return f;
}

pubsub_figures run_bridge_pubsub(const temp_dir& dir, const bodies& b, const options& opt) {
  auto ep = dir.endpoint("ps-bridge");
  auto child = child_process::spawn(
      [&](int in, int out) { return serve_bridge_pub(ep, b, opt.events, in, out); });
  if (!child || !child->wait_ready()) {
    std::fprintf(stderr, "bench_bus: bridge publisher did not start\n");
    return {};
  }
  pubsub_figures f;
  {
    sub_state st;
    bridge br{bench_config("bench-subscriber")};
    auto sub =
        br.connect_sub(ep, {"pods", "sync", "end"}, [&st](const std::string& topic, envelope env) {
          st.on_message(topic, env.hdr.type != 0);
        });
    if (!sub) {
      std::fprintf(stderr, "bench_bus: %s\n", sub.err().message.c_str());
      return f;
    }
    br.start();
    auto pump = [&](clock_type::time_point until) {
      std::unique_lock<std::mutex> lock{st.mtx};
      st.cv.wait_until(lock, until);
    };
    f = subscriber_protocol(*child, st, pump, opt.events);
    br.stop();
  }
  f.ok = child->finish() == 0 && f.ok;
  return f;
}

// -- codec, in process --------------------------------------------------------------

/// Mean microseconds to encode and decode one body, for reading the request
/// figures: the bridge itself never decodes bodies, its users do.
template <class T>
std::pair<double, double> codec_cost(const T& value, std::size_t n) {
  std::size_t sink = 0;
  auto t0 = clock_type::now();
  for (std::size_t i = 0; i < n; ++i)
    sink += wire::encode_body(value).size();
  auto t1 = clock_type::now();
  auto bytes = wire::encode_body(value);
  for (std::size_t i = 0; i < n; ++i)
    sink += wire::decode_body<T>(bytes).ok();
  auto t2 = clock_type::now();
  if (sink == 0)
    std::puts("");
  return {micros(t1 - t0) / static_cast<double>(n), micros(t2 - t1) / static_cast<double>(n)};
}

// -- report ------------------------------------------------------------------------

/// Columns of scenarios left out with --only print "-".
bool skipped_deckhand = false, skipped_baseline = false;

void row(const char* metric, double deckhand_v, double baseline_v, const char* fmt = "%.1f") {
  char a[32] = "-", b[32] = "-", r[32] = "-";
  if (!skipped_deckhand)
    std::snprintf(a, sizeof a, fmt, deckhand_v);
  if (!skipped_baseline)
    std::snprintf(b, sizeof b, fmt, baseline_v);
  if (baseline_v > 0 && !skipped_deckhand && !skipped_baseline)
    std::snprintf(r, sizeof r, "%.2f", deckhand_v / baseline_v);
  std::printf("%-44s %12s %12s %7s\n", metric, a, b, r);
}

std::string today() {
  char buf[32];
  std::time_t t = std::time(nullptr);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", std::localtime(&t));
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  auto opt = parse_options(argc, argv);
  if (!opt) {
    usage(argv[0]);
    return 2;
  }
  // A reply to a vanished child must not kill the benchmark.
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGINT, on_interrupt);
  ::signal(SIGTERM, on_interrupt);
  temp_dir dir;
  if (!dir.ok()) {
    std::perror("bench_bus: mkdtemp");
    return 1;
  }
  auto b = make_bodies();

  utsname u{};
  ::uname(&u);
  double load[3] = {0, 0, 0};
  ::getloadavg(load, 3);
  std::printf("bench_bus %s  host %s  kernel %s  cpus %u  load average %.2f %.2f %.2f\n",
              today().c_str(), u.nodename, u.release, std::thread::hardware_concurrency(), load[0],
              load[1], load[2]);
  std::printf("requests %zu (+%zu warm-up), in flight %zu, events %zu, transport ipc://\n",
              opt->requests, opt->warmup, opt->in_flight, opt->events);
  std::printf("bodies: remove_pod_request %zu B, ack %zu B, run_pod_request %zu B, "
              "run_pod_reply %zu B, watch_event %zu B (+ %zu B header each)\n\n",
              b.small_req.body.size(), b.small_rep.body.size(), b.pod_req.body.size(),
              b.pod_rep.body.size(), b.event.body.size(), wire::header_size);
  std::fflush(stdout);

  // Baseline first, then the bridge, each against its own fresh server process.
  auto wanted = [&](const char* name) { return opt->only.empty() || opt->only == name; };
  rr_figures bare, dh;
  pubsub_figures bare_ps, dh_ps;
  if (wanted("rr-bare"))
    bare = run_bare_rr(dir, b, *opt);
  if (wanted("rr-bridge"))
    dh = run_bridge_rr(dir, b, *opt);
  if (wanted("ps-bare"))
    bare_ps = run_bare_pubsub(dir, b, *opt);
  if (wanted("ps-bridge"))
    dh_ps = run_bridge_pubsub(dir, b, *opt);

  std::printf("%-44s %12s %12s %7s\n", "metric", "deckhand", "baseline", "ratio");
  std::printf("%s\n", std::string(78, '-').c_str());
  skipped_deckhand = !wanted("rr-bridge");
  skipped_baseline = !wanted("rr-bare");
  row("rtt remove_pod_request p50 (us)", dh.small.p50_us, bare.small.p50_us);
  row("rtt remove_pod_request p99 (us)", dh.small.p99_us, bare.small.p99_us);
  row("rtt remove_pod_request mean (us)", dh.small.mean_us, bare.small.mean_us);
  row("rtt run_pod_request p50 (us)", dh.pod.p50_us, bare.pod.p50_us);
  row("rtt run_pod_request p99 (us)", dh.pod.p99_us, bare.pod.p99_us);
  row("rtt run_pod_request mean (us)", dh.pod.mean_us, bare.pod.mean_us);
  char label[64];
  std::snprintf(label, sizeof label, "remove_pod_request/s, %zu in flight", opt->in_flight);
  row(label, dh.small_rps, bare.small_rps, "%.0f");
  std::snprintf(label, sizeof label, "run_pod_request/s, %zu in flight", opt->in_flight);
  row(label, dh.pod_rps, bare.pod_rps, "%.0f");
  row("cpu us/request, sequential (both procs)", dh.small_latency_cost.cpu_us,
      bare.small_latency_cost.cpu_us);
  row("context switches/request, sequential", dh.small_latency_cost.switches,
      bare.small_latency_cost.switches);
  std::snprintf(label, sizeof label, "cpu us/request, %zu in flight", opt->in_flight);
  row(label, dh.small_rps_cost.cpu_us, bare.small_rps_cost.cpu_us);
  std::snprintf(label, sizeof label, "context switches/request, %zu in flight", opt->in_flight);
  row(label, dh.small_rps_cost.switches, bare.small_rps_cost.switches);
  skipped_deckhand = !wanted("ps-bridge");
  skipped_baseline = !wanted("ps-bare");
  row("pub/sub watch_event delivered/s", dh_ps.delivered_per_s, bare_ps.delivered_per_s, "%.0f");
  row("pub/sub watch_event publish calls/s", dh_ps.published_per_s, bare_ps.published_per_s,
      "%.0f");
  auto loss = [](const pubsub_figures& f) {
    return static_cast<double>(f.sent > f.received ? f.sent - f.received : 0);
  };
  row("pub/sub watch_events lost", loss(dh_ps), loss(bare_ps), "%.0f");
  std::printf("%s\n", std::string(78, '-').c_str());
  std::printf("ratio = deckhand / baseline (latency: >1 is slower; rates: <1 is slower)\n");
  auto list = [](const std::vector<double>& v) {
    std::string out;
    for (double x : v)
      out += (out.empty() ? "" : " ") + std::to_string(static_cast<long>(x));
    return out.empty() ? std::string("-") : out;
  };
  std::printf("in-flight rates are medians of %d runs; all runs (req/s):\n"
              "  remove_pod_request  deckhand %s | baseline %s\n"
              "  run_pod_request     deckhand %s | baseline %s\n",
              throughput_runs, list(dh.small_rps_runs).c_str(), list(bare.small_rps_runs).c_str(),
              list(dh.pod_rps_runs).c_str(), list(bare.pod_rps_runs).c_str());

  auto n = std::min<std::size_t>(opt->requests, 20000);
  auto [rm_enc, rm_dec] = codec_cost(wire::remove_pod_request{"3f1c2a7e"}, n);
  auto [pod_enc, pod_dec] = codec_cost(wire::run_pod_request{make_pod()}, n);
  std::printf("\ncodec in process (not in the figures above; the bridge does not "
              "decode bodies):\n"
              "  remove_pod_request encode %.2f us, decode %.2f us\n"
              "  run_pod_request    encode %.2f us, decode %.2f us\n",
              rm_enc, rm_dec, pod_enc, pod_dec);

  uint64_t errors = dh.small.errors + dh.pod.errors + dh.rps_errors + bare.small.errors +
                    bare.pod.errors + bare.rps_errors;
  bool ok = (bare.ok || !wanted("rr-bare")) && (dh.ok || !wanted("rr-bridge")) &&
            (bare_ps.ok || !wanted("ps-bare")) && (dh_ps.ok || !wanted("ps-bridge")) && errors == 0;
  if (errors)
    std::printf("\n%" PRIu64 " requests failed or got a wrong reply\n", errors);
  if (!ok)
    std::printf("\nSOME SCENARIOS FAILED: figures above are incomplete\n");
  return ok ? 0 : 1;
}

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <boost/test/unit_test.hpp>

#include "deckhand/supervisor/handlers.hpp"

using namespace deckhand;
using namespace deckhand::supervisor;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// Waits for one completion.
struct waiter {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<handler_result> got;

  handler_executor::completion callback() {
    return [this](handler_result r) {
      std::lock_guard<std::mutex> lock(mu);
      got = std::move(r);
      cv.notify_all();
    };
  }
  handler_result wait(std::chrono::milliseconds limit = 10s) {
    std::unique_lock<std::mutex> lock(mu);
    BOOST_REQUIRE(cv.wait_for(lock, limit, [&] { return got.has_value(); }));
    return *got;
  }
};

/// A listening TCP socket on 127.0.0.1, port chosen by the kernel.
struct listener {
  int fd = -1;
  int port = 0;
  listener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    BOOST_REQUIRE(::listen(fd, 8) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~listener() { close(); }
  void close() {
    if (fd >= 0)
      ::close(fd);
    fd = -1;
  }
};

/// Answers one HTTP request with `response`, remembering the request.
struct one_shot_http {
  listener l;
  std::string request;
  std::thread t;
  explicit one_shot_http(std::string response) {
    t = std::thread([this, response] {
      int c = ::accept(l.fd, nullptr, nullptr);
      if (c < 0)
        return;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0)
          break;
        request.append(buf, static_cast<std::size_t>(n));
      }
      (void)!::write(c, response.data(), response.size());
      ::close(c);
    });
  }
  ~one_shot_http() {
    if (t.joinable())
      t.join();
  }
};

handler_target local_target() {
  handler_target t;
  t.container = "app";
  t.runtime_id = "uid-app";
  t.pod_ip = "127.0.0.1";
  return t;
}

handler_action tcp(int port) {
  handler_action a;
  wire::tcp_socket_action s;
  s.port.value = std::to_string(port);
  a.tcp_socket = s;
  return a;
}

handler_action http(const std::string& port, const std::string& path = {}) {
  handler_action a;
  wire::http_get_action h;
  h.port.value = port;
  h.path = path;
  a.http_get = h;
  return a;
}

/// A stand-in OCI runtime: `fake --root R exec ID CMD...` runs CMD.
struct fake_runtime {
  fs::path dir;
  fs::path bin;
  fake_runtime() {
    char tmpl[] = "/tmp/handlers-test-XXXXXX";
    dir = ::mkdtemp(tmpl);
    bin = dir / "fake-runc";
    std::ofstream(bin) << "#!/bin/sh\nshift 4\nexec \"$@\"\n";
    fs::permissions(bin, fs::perms::owner_all);
  }
  ~fake_runtime() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  handler_executor::options options() const { return {dir / "root", bin.string(), "test=1"}; }
};

handler_action exec(std::vector<std::string> cmd) {
  handler_action a;
  wire::exec_action e;
  e.command = std::move(cmd);
  a.exec = e;
  return a;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(handler_executor_suite)

// Kubernetes: tcpSocket succeeds when the connection is established and
// fails with Go's dial error otherwise.
BOOST_AUTO_TEST_CASE(tcp_socket) {
  handler_executor ex({});
  listener l;
  waiter w;
  ex.run(tcp(l.port), local_target(), 1s, w.callback());
  BOOST_TEST((w.wait().outcome == handler_outcome::success));

  listener gone;
  int port = gone.port;
  gone.close();
  waiter w2;
  ex.run(tcp(port), local_target(), 1s, w2.callback());
  auto r = w2.wait();
  BOOST_TEST((r.outcome == handler_outcome::failure));
  BOOST_TEST(r.message ==
             "dial tcp 127.0.0.1:" + std::to_string(port) + ": connect: connection refused");
}

// Kubernetes: httpGet: 200-399 is success, anything else a failure
// "HTTP probe failed with statuscode: N"; path defaults to "/"; headers,
// User-Agent kube-probe.
BOOST_AUTO_TEST_CASE(http_get_status_codes) {
  handler_executor ex({});
  {
    one_shot_http srv("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    waiter w;
    auto a = http(std::to_string(srv.l.port));
    a.http_get->http_headers.push_back({"X-Probe", "yes"});
    ex.run(a, local_target(), 2s, w.callback());
    auto r = w.wait();
    BOOST_TEST((r.outcome == handler_outcome::success));
    srv.t.join();
    BOOST_TEST(srv.request.rfind("GET / HTTP/1.1\r\n", 0) == 0);
    BOOST_TEST(srv.request.find("X-Probe: yes\r\n") != std::string::npos);
    BOOST_TEST(srv.request.find("User-Agent: kube-probe/") != std::string::npos);
  }
  {
    one_shot_http srv("HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n");
    waiter w;
    ex.run(http(std::to_string(srv.l.port), "/healthz"), local_target(), 2s, w.callback());
    BOOST_TEST((w.wait().outcome == handler_outcome::success));
    srv.t.join();
    BOOST_TEST(srv.request.rfind("GET /healthz HTTP/1.1\r\n", 0) == 0);
  }
  {
    one_shot_http srv("HTTP/1.1 500 Internal Server Error\r\n\r\n");
    waiter w;
    ex.run(http(std::to_string(srv.l.port)), local_target(), 2s, w.callback());
    auto r = w.wait();
    BOOST_TEST((r.outcome == handler_outcome::failure));
    BOOST_TEST(r.message == "HTTP probe failed with statuscode: 500");
  }
}

// Kubernetes: a named port is the container port of that name; an unknown
// name is a probe error (not counted).
BOOST_AUTO_TEST_CASE(named_ports) {
  handler_executor ex({});
  one_shot_http srv("HTTP/1.1 204 No Content\r\n\r\n");
  auto target = local_target();
  target.ports.push_back({"web", srv.l.port, "TCP", 0});
  waiter w;
  ex.run(http("web"), target, 2s, w.callback());
  BOOST_TEST((w.wait().outcome == handler_outcome::success));
  waiter w2;
  ex.run(http("nope"), target, 2s, w2.callback());
  BOOST_TEST((w2.wait().outcome == handler_outcome::unknown));
}

// Kubernetes: an httpGet that gets no answer within timeoutSeconds fails.
BOOST_AUTO_TEST_CASE(http_timeout) {
  handler_executor ex({});
  listener silent;  // accepts (backlog) but never answers
  waiter w;
  auto start = std::chrono::steady_clock::now();
  ex.run(http(std::to_string(silent.port)), local_target(), 300ms, w.callback());
  auto r = w.wait();
  BOOST_TEST((r.outcome == handler_outcome::failure));
  BOOST_TEST(r.timed_out);
  BOOST_TEST(r.message.find("context deadline exceeded") != std::string::npos);
  BOOST_TEST((std::chrono::steady_clock::now() - start < 3s));
}

// Kubernetes: exec succeeds on exit 0; otherwise fails with the command's
// output; a command past its timeout fails with `command "..." timed out`.
BOOST_AUTO_TEST_CASE(exec_actions) {
  fake_runtime rt;
  handler_executor ex(rt.options());
  waiter ok;
  ex.run(exec({"true"}), local_target(), 5s, ok.callback());
  BOOST_TEST((ok.wait().outcome == handler_outcome::success));

  waiter bad;
  ex.run(exec({"sh", "-c", "echo unhealthy; exit 3"}), local_target(), 5s, bad.callback());
  auto r = bad.wait();
  BOOST_TEST((r.outcome == handler_outcome::failure));
  BOOST_TEST(r.exit_code == 3);
  BOOST_TEST(r.message == "unhealthy\n");

  waiter slow;
  auto start = std::chrono::steady_clock::now();
  ex.run(exec({"sleep", "30"}), local_target(), 300ms, slow.callback());
  r = slow.wait();
  BOOST_TEST((r.outcome == handler_outcome::failure));
  BOOST_TEST(r.timed_out);
  BOOST_TEST(r.message == "command \"sleep 30\" timed out");
  BOOST_TEST((std::chrono::steady_clock::now() - start < 5s));
}

// The runner reaps every SIGCHLD child with waitpid(-1) (it is the pod's
// subreaper). The process the executor waits on must stay invisible to it
// even after the runtime has exec'd (execve resets a clone child's exit
// signal to SIGCHLD); otherwise the status is stolen and every exec probe
// "times out". Deterministic: the executor's thread is held inside another
// action's completion while the exec ends, so only this thread can reap.
BOOST_AUTO_TEST_CASE(exec_status_survives_a_waitpid_any_reaper) {
  fake_runtime rt;
  const fs::path fifo = rt.dir / "go";
  BOOST_REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  handler_executor ex(rt.options());

  // The exec: runs until this test writes to the FIFO.
  waiter w;
  ex.run(exec({"sh", "-c", "read x < " + fifo.string() + "; exit 0"}), local_target(), 10s,
         w.callback());
  // Holds the executor's thread in its completion until released.
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false, released = false;
  handler_action zero;
  zero.sleep = wire::sleep_action{};
  ex.run(zero, local_target(), 1s, [&](handler_result) {
    std::unique_lock<std::mutex> lock(mu);
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return released; });
  });
  struct release_on_exit {
    std::mutex& mu;
    std::condition_variable& cv;
    bool& released;
    void operator()() {
      std::lock_guard<std::mutex> lock(mu);
      released = true;
      cv.notify_all();
    }
    ~release_on_exit() { (*this)(); }
  } release{mu, cv, released};
  {
    std::unique_lock<std::mutex> lock(mu);
    BOOST_REQUIRE(cv.wait_for(lock, 10s, [&] { return entered; }));
  }
  // Opening the FIFO succeeds once the command (exec'd by now) reads it.
  int fd = -1;
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while ((fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0 && errno == ENXIO &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  BOOST_REQUIRE(fd >= 0);
  (void)!::write(fd, "\n", 1);
  ::close(fd);
  // What the runner does: with the executor's child not eligible there is
  // nothing to wait for (ECHILD at once); before the fix this reaped it.
  int st = 0;
  pid_t got;
  while ((got = ::waitpid(-1, &st, 0)) < 0 && errno == EINTR) {
  }
  BOOST_TEST(got == -1, "waitpid(-1) reaped pid " << got);
  release();
  auto r = w.wait();
  BOOST_TEST((r.outcome == handler_outcome::success), r.message);
  BOOST_TEST(!r.timed_out);
  BOOST_TEST(r.exit_code == 0);
}

// Kubernetes: scheme HTTPS does not verify the server's certificate (here a
// throwaway self-signed one served by `openssl s_server -www`).
BOOST_AUTO_TEST_CASE(https_without_verification) {
  if (::system("command -v openssl >/dev/null 2>&1") != 0)
    return;  // nothing to talk TLS with
  fake_runtime tmp;
  auto key = (tmp.dir / "k.pem").string(), cert = (tmp.dir / "c.pem").string();
  BOOST_REQUIRE(::system(("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=probe -days 1 "
                          "-keyout " +
                          key + " -out " + cert + " >/dev/null 2>&1")
                             .c_str()) == 0);
  listener pick;
  int port = pick.port;
  pick.close();
  pid_t server = ::fork();
  if (server == 0) {
    ::execlp("openssl", "openssl", "s_server", "-quiet", "-www", "-accept",
             std::to_string(port).c_str(), "-key", key.c_str(), "-cert", cert.c_str(),
             static_cast<char*>(nullptr));
    ::_exit(127);
  }
  struct reap_server {
    pid_t pid;
    ~reap_server() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } cleanup{server};
  handler_executor ex({});
  auto a = http(std::to_string(port));
  a.http_get->scheme = "HTTPS";
  handler_result r;
  // Until s_server listens, connections are refused: try for a while.
  auto until = std::chrono::steady_clock::now() + 10s;
  do {
    waiter w;
    ex.run(a, local_target(), 2s, w.callback());
    r = w.wait();
    if (r.outcome == handler_outcome::success)
      break;
    std::this_thread::sleep_for(100ms);
  } while (std::chrono::steady_clock::now() < until);
  BOOST_TEST((r.outcome == handler_outcome::success), r.message);
}

// Sleep (lifecycle hooks) and cancel().
BOOST_AUTO_TEST_CASE(sleep_and_cancel) {
  handler_executor ex({});
  handler_action a;
  a.sleep = wire::sleep_action{0};
  waiter w;
  ex.run(a, local_target(), 1s, w.callback());
  BOOST_TEST((w.wait().outcome == handler_outcome::success));

  a.sleep = wire::sleep_action{30};
  bool called = false;
  auto id = ex.run(a, local_target(), 1s, [&](handler_result) { called = true; });
  ex.cancel(id);
  auto until = std::chrono::steady_clock::now() + 5s;
  while (ex.in_flight() != 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  BOOST_TEST(ex.in_flight() == 0u);
  BOOST_TEST(!called);
}

BOOST_AUTO_TEST_SUITE_END()

// Runs the real deckhand-pod-supervisor binary against real runc containers
// in a temporary data directory prepared the way the runtime prepares it.

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "deckhand/testing/skip.hpp"

#include "deckhand/cli/commands.hpp"
#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/common/process.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/messages/wire.hpp"
#include "deckhand/oci/bundle.hpp"
#include "deckhand/oci/cgroups.hpp"
#include "deckhand/oci/runc.hpp"
#include "deckhand/runtime/exec.hpp"
#include "deckhand/supervisor/status_file.hpp"

using namespace deckhand;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

fs::path supervisor_binary() {
  const char* dir = std::getenv("DECKHAND_BIN_DIR");
  return fs::path(dir ? dir : "") / "deckhand-pod-supervisor";
}

/// Where the pod supervisor cannot run here: what is missing, or empty.
std::string missing_for_supervisor() {
  if (auto why = deckhand::testing::containers()(); !why.empty())
    return why;
  if (!std::getenv("DECKHAND_BIN_DIR") || !fs::exists(supervisor_binary()))
    return "needs deckhand-pod-supervisor in DECKHAND_BIN_DIR";
  return {};
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A CRI log file's text as `kubectl logs` prints it.
std::string log_text(const fs::path& p) {
  std::string partial;
  return cli::decode_log_chunk(read_text(p), partial, true);
}

const std::regex
    cri_line(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z (stdout|stderr) [PF] .*$)");

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    out.push_back(line);
  return out;
}

/// Polls `pred` until it holds or `timeout` passes (waiting on real processes).
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred())
      return true;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(20ms);
  }
}

/// A node's data directory with one pod in it, and everything started for it.
struct pod_fixture {
  fs::path data;
  std::string uid;
  wire::pod pod;
  oci::runc rt;
  pid_t supervisor = 0;

  pod_fixture() : data(make_temp_dir()), uid(new_uid()), rt(paths::runc_root(data)) {
    pod.metadata.name = "web";
    pod.metadata.namespace_ = "default";
    pod.metadata.uid = uid;
  }

  ~pod_fixture() {
    kill_supervisor();
    for (const auto& c : pod.spec.containers)
      if (auto r = rt.remove(pod_dir::runtime_id(uid, c.name), true); !r)
        BOOST_TEST_MESSAGE("cleanup: " << r.err().message);
    if (auto err = oci::remove_pod_cgroups(uid))
      BOOST_TEST_MESSAGE("cleanup: " << err.message);
    std::error_code ec;
    fs::remove_all(data, ec);
  }

  static fs::path make_temp_dir() {
    // Short: the supervisor's ipc:// socket path lives under it.
    std::string tmpl = "/tmp/dhsup-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      throw std::runtime_error("mkdtemp failed");
    return tmpl;
  }

  static std::string new_uid() {
    static int counter = 0;
    return "it" + std::to_string(::getpid()) + "x" + std::to_string(++counter);
  }

  fs::path dir() const { return pod_dir::root(data, uid); }
  std::string runtime_id(const std::string& name) const { return pod_dir::runtime_id(uid, name); }
  fs::path log_dir(const std::string& name) const {
    return paths::pod_log_dir(data, "default", "web", uid) / name;
  }
  fs::path log_file(const std::string& name, int n) const {
    return log_dir(name) / (std::to_string(n) + ".log");
  }

  /// A container running `script` under busybox sh, with its bundle ready.
  void add_container(const std::string& name, const std::string& script,
                     std::optional<int64_t> memory_limit = std::nullopt) {
    wire::container c;
    c.name = name;
    c.image = "busybox:test";
    pod.spec.containers.push_back(c);

    fs::path bundle = pod_dir::bundle(dir(), name);
    fs::path rootfs = bundle / "rootfs";
    fs::create_directories(rootfs / "bin");
    for (auto d : {"proc", "dev", "sys", "tmp", "etc"})
      fs::create_directories(rootfs / d);
    fs::copy_file("/bin/busybox", rootfs / "bin/busybox", fs::copy_options::overwrite_existing);
    for (auto applet : {"sh", "echo", "sleep", "true", "cat", "usleep"})
      fs::create_symlink("busybox", rootfs / "bin" / applet);
    oci::bundle_spec spec;
    spec.args = {"/bin/sh", "-c", script};
    spec.rootfs = rootfs;
    // Where the runtime puts it, so the supervisor finds its OOM counter.
    spec.cgroups_path = oci::container_cgroup_path(uid, name);
    if (memory_limit) {
      spec.resources.memory_limit_bytes = *memory_limit;
      spec.resources.memory_swap_bytes = *memory_limit;  // no swap to hide in
    }
    auto w = oci::write_bundle(bundle, spec);
    BOOST_REQUIRE_MESSAGE(w.ok(), (w.ok() ? "" : w.err().message));
  }

  void write_pod() {
    fs::create_directories(dir());
    auto err = fsutil::write_file_atomic(pod_dir::pod_json(dir()), wire::to_json(pod).dump());
    BOOST_REQUIRE(!err);
  }

  void start_supervisor(const std::vector<std::string>& extra = {"--backoff-initial-ms", "50"}) {
    std::vector<std::string> argv{supervisor_binary().string(),
                                  "--data-dir",
                                  data.string(),
                                  "--pod-uid",
                                  uid,
                                  "--log-level",
                                  "debug"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto log = common::open_fd(pod_dir::supervisor_log(dir()), O_WRONLY | O_CREAT | O_APPEND);
    BOOST_REQUIRE(log.ok());
    common::spawn_options so;
    so.new_process_group = true;
    common::stdio_fds stdio{-1, log->get(), log->get()};
    auto pid = common::spawn(argv, stdio, std::nullopt, so);
    BOOST_REQUIRE_MESSAGE(pid.ok(), (pid.ok() ? "" : pid.err().message));
    supervisor = *pid;
  }

  void kill_supervisor() {
    if (supervisor > 0)
      common::kill_and_reap(supervisor, false);
    supervisor = 0;
  }

  std::optional<supervisor::status_document> status() const {
    auto text = fsutil::read_file(pod_dir::status_json(dir()));
    if (!text)
      return std::nullopt;
    auto doc = supervisor::decode_status(*text);
    if (!doc)
      return std::nullopt;
    return *doc;
  }

  std::optional<wire::container_status> container(const std::string& name) const {
    auto doc = status();
    if (!doc)
      return std::nullopt;
    for (const auto& c : doc->sandbox.containers)
      if (c.name == name)
        return c.status;
    return std::nullopt;
  }

  bool wait_for(const std::string& name,
                const std::function<bool(const wire::container_status&)>& pred,
                std::chrono::milliseconds timeout = 15s) {
    return eventually(
        [&] {
          auto c = container(name);
          return c && pred(*c);
        },
        timeout);
  }

  pid_t runc_pid(const std::string& name) {
    auto st = rt.state(runtime_id(name));
    return st && st->status == oci::container_status::running ? st->pid : 0;
  }

  std::string supervisor_log() const { return read_text(pod_dir::supervisor_log(dir())); }
};

/// A client of the supervisor's ROUTER.
struct client {
  transport::bridge bus{transport::bridge_config{}};
  int dealer = -1;

  explicit client(const pod_fixture& f) {
    bus.start();
    auto d = bus.connect_dealer(pod_dir::supervisor_endpoint(f.data, f.uid));
    BOOST_REQUIRE(d.ok());
    dealer = *d;
  }
  ~client() { bus.stop(); }

  template <class Req>
  result<wire::envelope> call(const Req& req, std::chrono::milliseconds deadline) {
    std::promise<result<wire::envelope>> p;
    auto fut = p.get_future();
    bus.request(dealer, wire::make_envelope(req), deadline,
                [&p](result<wire::envelope> r) { p.set_value(std::move(r)); });
    return fut.get();
  }
};

bool running(const wire::container_status& c) { return c.state.is_running(); }

}  // namespace

BOOST_AUTO_TEST_SUITE(supervisor_process, *deckhand::testing::skip_unless(missing_for_supervisor))

BOOST_AUTO_TEST_CASE(on_failure_restarts_with_back_off_and_logs_land_in_files) {
  pod_fixture f;
  f.pod.spec.restart_policy = "OnFailure";
  f.add_container("app", "echo out-line; echo err-line >&2; exit 1");
  f.write_pod();
  f.start_supervisor();

  bool restarted = f.wait_for("app", [](const wire::container_status& c) {
    return c.restart_count >= 1 && c.last_state.is_terminated();
  });
  BOOST_REQUIRE_MESSAGE(restarted, "no restart; supervisor log:\n" << f.supervisor_log());
  auto c = *f.container("app");
  BOOST_TEST(c.last_state.terminated.exit_code == 1);
  BOOST_TEST(c.last_state.terminated.reason == "Error");
  BOOST_TEST(c.container_id == "deckhand://" + f.runtime_id("app"));
  BOOST_TEST(c.image == "busybox:test");

  auto log0 = read_text(f.log_file("app", 0));
  BOOST_TEST(log0.find(" stdout F out-line\n") != std::string::npos);
  BOOST_TEST(log0.find(" stderr F err-line\n") != std::string::npos);
  for (const auto& line : lines_of(log0))
    BOOST_TEST(std::regex_match(line, cri_line), line);
  BOOST_TEST(eventually(
      [&] { return read_text(f.log_file("app", 1)).find("out-line") != std::string::npos; }, 15s));

  auto doc = f.status();
  BOOST_REQUIRE(doc);
  BOOST_TEST(doc->sandbox.uid == f.uid);
  BOOST_TEST(doc->sandbox.namespace_ == "default");
  BOOST_TEST(doc->sandbox.supervisor_pid == f.supervisor);
  BOOST_TEST(doc->sandbox.supervisor_incarnation != 0u);
}

BOOST_AUTO_TEST_CASE(never_leaves_the_container_terminated) {
  pod_fixture f;
  f.pod.spec.restart_policy = "Never";
  f.add_container("app", "exit 3");
  f.write_pod();
  f.start_supervisor();

  BOOST_REQUIRE_MESSAGE(f.wait_for("app", [](const auto& c) { return c.state.is_terminated(); }),
                        "not terminated; supervisor log:\n"
                            << f.supervisor_log());
  client cl(f);
  auto rep = cl.call(wire::supervisor_status_request{}, 5s);
  BOOST_REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? "" : rep.err().message));
  auto st = wire::decode_as<wire::sandbox_status_reply>(*rep);
  BOOST_REQUIRE(st.ok());
  BOOST_REQUIRE(st->sandbox.containers.size() == 1u);
  const auto& c = st->sandbox.containers[0].status;
  BOOST_TEST(c.state.terminated.exit_code == 3);
  BOOST_TEST(c.state.terminated.reason == "Error");
  BOOST_TEST(c.restart_count == 0);
  BOOST_TEST(st->sandbox.state == "ready");
  // Deleted from runc once reaped.
  BOOST_TEST(eventually([&] { return !f.rt.state(f.runtime_id("app")).ok(); }, 5s));

  // Anything but the two supervisor requests gets an error reply.
  auto bad = cl.call(wire::list_sandboxes_request{}, 5s);
  BOOST_REQUIRE(bad.ok());
  auto decoded = wire::decode_as<wire::sandbox_status_reply>(*bad);
  BOOST_REQUIRE(!decoded.ok());
  BOOST_TEST(static_cast<int>(decoded.err().code) == static_cast<int>(errc::invalid));
}

BOOST_AUTO_TEST_CASE(killed_supervisor_leaves_container_running_and_readopts_it) {
  pod_fixture f;
  f.pod.spec.restart_policy = "Always";
  f.add_container("app", "echo started; exec sleep 1000");
  f.write_pod();
  f.start_supervisor();

  BOOST_REQUIRE_MESSAGE(f.wait_for("app", running), "not running; log:\n" << f.supervisor_log());
  pid_t pid = f.runc_pid("app");
  BOOST_REQUIRE(pid > 0);

  ::kill(f.supervisor, SIGKILL);
  f.kill_supervisor();
  BOOST_TEST(f.runc_pid("app") == pid);

  f.start_supervisor();
  pid_t second = f.supervisor;
  BOOST_REQUIRE(f.wait_for("app", [&](const wire::container_status&) {
    auto doc = f.status();
    return doc && doc->sandbox.supervisor_pid == second;
  }));
  // Give the new supervisor its probe; the container must be the same one.
  BOOST_REQUIRE(eventually(
      [&] { return f.supervisor_log().find("adopted running container") != std::string::npos; },
      10s));
  auto c = *f.container("app");
  BOOST_TEST(c.state.is_running());
  BOOST_TEST(c.restart_count == 0);
  BOOST_TEST(f.runc_pid("app") == pid);
  BOOST_TEST(log_text(f.log_file("app", 0)) == "started\n");

  // The adopted container dies: its exit code cannot be known, and the
  // policy still applies.
  BOOST_REQUIRE(f.rt.kill(f.runtime_id("app"), SIGKILL).ok());
  BOOST_REQUIRE_MESSAGE(f.wait_for("app",
                                   [](const auto& s) {
                                     return s.restart_count == 1 && s.state.is_running();
                                   }),
                        "not restarted; log:\n"
                            << f.supervisor_log());
  c = *f.container("app");
  BOOST_TEST(c.last_state.terminated.reason == "ContainerStatusUnknown");
  BOOST_TEST(c.last_state.terminated.exit_code == 137);
  BOOST_TEST(f.runc_pid("app") != pid);
}

/// Sends a stop request with a one-second grace period; checks the reply came
/// after the deadline (a container ignores SIGTERM) but not much later.
wire::sandbox_status stop_pod(pod_fixture& f) {
  client cl(f);
  wire::supervisor_stop_request stop;
  stop.grace_period_seconds = 1;
  auto t0 = std::chrono::steady_clock::now();
  auto rep = cl.call(stop, 20s);
  auto took = std::chrono::steady_clock::now() - t0;
  BOOST_REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? "" : rep.err().message) << "\n"
                                                                      << f.supervisor_log());
  auto reply = wire::decode_as<wire::sandbox_status_reply>(*rep);
  BOOST_REQUIRE(reply.ok());
  BOOST_TEST(reply->sandbox.state == "stopped");
  BOOST_TEST(took >= 1s);
  BOOST_TEST(took < 8s);
  for (const auto& c : reply->sandbox.containers) {
    BOOST_TEST_CONTEXT(c.name) {
      BOOST_TEST(c.status.state.is_terminated());
      BOOST_TEST(c.status.restart_count == 0);
    }
  }
  BOOST_TEST(fs::exists(pod_dir::stopping_marker(f.dir())));
  // Never restarted; removed from runc.
  BOOST_TEST(eventually(
      [&] {
        for (const auto& c : f.pod.spec.containers)
          if (f.rt.state(f.runtime_id(c.name)).ok())
            return false;
        return true;
      },
      5s));
  return reply->sandbox;
}

BOOST_AUTO_TEST_CASE(stop_request_kills_at_the_deadline) {
  pod_fixture f;
  f.pod.spec.restart_policy = "Always";
  f.add_container("stubborn", "trap '' TERM; sleep 1000");
  f.add_container("polite", "trap 'exit 0' TERM; sleep 1000 & wait");
  f.write_pod();
  f.start_supervisor();
  BOOST_REQUIRE_MESSAGE(f.wait_for("stubborn", running) && f.wait_for("polite", running),
                        "not running; log:\n"
                            << f.supervisor_log());

  stop_pod(f);
  auto stubborn = *f.container("stubborn");
  BOOST_TEST(stubborn.state.terminated.exit_code == 137);
  BOOST_TEST(stubborn.state.terminated.signal == SIGKILL);
  BOOST_TEST(stubborn.state.terminated.reason == "Error");
  auto polite = *f.container("polite");
  BOOST_TEST(polite.state.terminated.exit_code == 0);
  BOOST_TEST(polite.state.terminated.reason == "Completed");

  // A restarted supervisor finds the marker and starts nothing.
  f.kill_supervisor();
  f.start_supervisor();
  client cl(f);
  auto again = cl.call(wire::supervisor_stop_request{}, 10s);
  BOOST_REQUIRE(again.ok());
  auto r2 = wire::decode_as<wire::sandbox_status_reply>(*again);
  BOOST_REQUIRE(r2.ok());
  BOOST_TEST(r2->sandbox.state == "stopped");
  BOOST_TEST(f.runc_pid("stubborn") == 0);
  BOOST_TEST(f.container("stubborn")->restart_count == 0);
  BOOST_TEST(f.container("stubborn")->state.terminated.exit_code == 137);
}

BOOST_AUTO_TEST_CASE(sigterm_to_supervisor_leaves_containers_running) {
  pod_fixture f;
  f.pod.spec.restart_policy = "Always";
  f.add_container("stubborn", "trap '' TERM; sleep 1000");
  f.write_pod();
  f.start_supervisor();
  BOOST_REQUIRE_MESSAGE(f.wait_for("stubborn", running), "not running; log:\n"
                                                             << f.supervisor_log());
  pid_t pid = f.runc_pid("stubborn");

  ::kill(f.supervisor, SIGTERM);
  auto st = common::wait_with_deadline(f.supervisor, 5s);
  BOOST_REQUIRE_MESSAGE(st.ok(), "supervisor ignored SIGTERM");
  f.supervisor = 0;
  BOOST_TEST(st->exited());
  BOOST_TEST(st->code() == 0);
  BOOST_TEST(f.runc_pid("stubborn") == pid);

  // The next supervisor adopts it, and can still stop it: it is not the
  // parent, so the exit status is unknown.
  f.start_supervisor();
  BOOST_REQUIRE(eventually(
      [&] { return f.supervisor_log().find("adopted running container") != std::string::npos; },
      10s));
  BOOST_TEST(f.runc_pid("stubborn") == pid);
  auto s = stop_pod(f);
  BOOST_REQUIRE(s.containers.size() == 1u);
  BOOST_TEST(s.containers[0].status.state.terminated.reason == "ContainerStatusUnknown");
  BOOST_TEST(s.containers[0].status.state.terminated.exit_code == 137);
}

BOOST_AUTO_TEST_CASE(logs_rotate_by_size_and_keep_max_files) {
  pod_fixture f;
  f.pod.spec.restart_policy = "Always";
  f.add_container("app", "i=0; while [ $i -lt 300 ]; do echo \"out $i\"; echo \"err $i\" >&2; "
                         "i=$((i+1)); done; usleep 300000; echo done >&2; "
                         "echo -n tail-without-newline; exec sleep 1000");
  f.write_pod();
  f.start_supervisor({"--container-log-max-size", "2Ki", "--container-log-max-files", "3"});
  // The streams are read independently and either may be rotated out
  // entirely; a last line written well after the rest marks the end.
  auto everything = [&] {
    std::string all;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(f.log_dir("app"), ec))
      all += read_text(e.path());
    return all;
  };
  BOOST_REQUIRE_MESSAGE(eventually(
                            [&] {
                              auto all = everything();
                              return all.find(" stderr F done\n") != std::string::npos;
                            },
                            15s),
                        "no output; log:\n"
                            << f.supervisor_log());

  // Rotated files sort by age; the live one comes last.
  std::vector<std::string> names;
  bool live = false;
  for (const auto& e : fs::directory_iterator(f.log_dir("app"))) {
    auto n = e.path().filename().string();
    if (n == "0.log")
      live = true;
    else
      names.push_back(n);
  }
  std::sort(names.begin(), names.end());
  BOOST_TEST(live);
  names.push_back("0.log");
  BOOST_TEST(names.size() == 3u);
  std::string all;
  for (const auto& n : names) {
    BOOST_TEST_CONTEXT(n) {
      if (n != "0.log")
        BOOST_TEST(n.rfind("0.log.", 0) == 0u);
      BOOST_TEST(fs::file_size(f.log_dir("app") / n) <= 2048u);
    }
  }
  // The kept files, oldest first, are an unbroken tail of each stream.
  for (const auto& n : names)
    all += read_text(f.log_dir("app") / n);
  int next_out = -1, next_err = -1;
  for (const auto& line : lines_of(all)) {
    BOOST_REQUIRE_MESSAGE(std::regex_match(line, cri_line), line);
    std::smatch m;
    static const std::regex numbered(R"( (stdout|stderr) F (out|err) (\d+)$)");
    if (!std::regex_search(line, m, numbered))
      continue;
    int n = std::stoi(m[3]);
    int& next = m[2] == "out" ? next_out : next_err;
    if (next >= 0)
      BOOST_TEST(n == next, line);
    next = n + 1;
  }
  // Each stream kept ends at its last line; one of them may have been
  // rotated out entirely (6 KiB kept, 27 KiB written).
  BOOST_TEST((next_out == 300 || next_out == -1));
  BOOST_TEST((next_err == 300 || next_err == -1));
  BOOST_TEST((next_out == 300 || next_err == 300));
  BOOST_TEST(f.container("app")->restart_count == 0);

  // An unterminated last line is written when the instance ends, as P.
  BOOST_REQUIRE(f.rt.kill(f.runtime_id("app"), SIGKILL).ok());
  BOOST_REQUIRE(f.wait_for("app", [](const auto& c) { return c.restart_count == 1; }));
  BOOST_TEST(eventually(
      [&] {
        return read_text(f.log_file("app", 0)).find(" stdout P tail-without-newline\n") !=
               std::string::npos;
      },
      10s));
}

BOOST_AUTO_TEST_CASE(previous_instance_log_is_kept_after_a_restart) {
  pod_fixture f;
  f.pod.spec.restart_policy = "Always";
  f.add_container("app", "n=$(cat /count 2>/dev/null || echo 0); echo $((n+1)) > /count; "
                         "echo \"instance $n\"; echo \"instance $n err\" >&2; "
                         "[ $n -ge 1 ] && exec sleep 1000; exit 1");
  f.write_pod();
  // Default back-off: the first restart must not wait for it.
  auto t0 = std::chrono::steady_clock::now();
  f.start_supervisor({});
  BOOST_REQUIRE_MESSAGE(f.wait_for("app",
                                   [](const auto& c) {
                                     return c.restart_count == 1 && c.state.is_running();
                                   }),
                        "not restarted; log:\n"
                            << f.supervisor_log());
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 8s));
  BOOST_TEST(f.container("app")->last_state.terminated.exit_code == 1);
  BOOST_TEST(eventually(
      [&] { return log_text(f.log_file("app", 1)).find("instance 1\n") != std::string::npos; },
      10s));
  // What `deckhand logs --previous` prints: the previous restartCount's file.
  auto previous = log_text(f.log_file("app", 0));
  BOOST_TEST(
      (previous == "instance 0\ninstance 0 err\n" || previous == "instance 0 err\ninstance 0\n"),
      previous);
  BOOST_TEST(log_text(f.log_file("app", 1)).find("instance 0") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(killed_supervisor_loses_no_line_and_keeps_the_container) {
  pod_fixture f;
  f.pod.spec.restart_policy = "Always";
  f.add_container("app", "i=0; while true; do echo \"line $i\"; i=$((i+1)); usleep 5000; done");
  f.write_pod();
  f.start_supervisor();
  BOOST_REQUIRE_MESSAGE(eventually(
                            [&] {
                              return read_text(f.log_file("app", 0)).find(" F line 20\n") !=
                                     std::string::npos;
                            },
                            15s),
                        "no output; log:\n"
                            << f.supervisor_log());
  pid_t pid = f.runc_pid("app");
  BOOST_REQUIRE(pid > 0);

  ::kill(f.supervisor, SIGKILL);
  f.kill_supervisor();
  // The container keeps writing into the FIFO with no supervisor reading it.
  std::this_thread::sleep_for(300ms);
  BOOST_TEST(f.runc_pid("app") == pid);
  auto numbers = [&] {
    std::vector<int> out;
    static const std::regex numbered(R"( stdout F line (\d+)$)");
    for (const auto& line : lines_of(read_text(f.log_file("app", 0)))) {
      std::smatch m;
      if (std::regex_search(line, m, numbered))
        out.push_back(std::stoi(m[1]));
    }
    return out;
  };
  auto before = numbers();
  BOOST_REQUIRE(!before.empty());
  int last_before = before.back();

  f.start_supervisor();
  BOOST_REQUIRE(eventually(
      [&] { return f.supervisor_log().find("adopted running container") != std::string::npos; },
      10s));
  BOOST_REQUIRE(eventually(
      [&] {
        auto n = numbers();
        return !n.empty() && n.back() > last_before + 100;
      },
      15s));
  auto after = numbers();
  // Everything from the last line the killed supervisor wrote on is there,
  // in order, including what waited in the pipe while no supervisor ran.
  auto it = std::find(after.begin(), after.end(), last_before);
  BOOST_REQUIRE(it != after.end());
  int gaps = 0;
  for (auto j = it; j + 1 != after.end(); ++j)
    if (*(j + 1) != *j + 1)
      ++gaps;
  BOOST_TEST(gaps == 0);
  BOOST_TEST(f.runc_pid("app") == pid);
  BOOST_TEST(f.container("app")->restart_count == 0);
}

BOOST_AUTO_TEST_CASE(oom_kill_is_reported_as_oom_killed) {
  pod_fixture f;
  f.pod.spec.restart_policy = "Never";
  // Doubles a shell string until the 32 MiB limit is hit.
  f.add_container("hog", "x=0123456789abcdef; while true; do x=\"$x$x\"; done", 32ll << 20);
  f.write_pod();
  f.start_supervisor();
  BOOST_REQUIRE_MESSAGE(f.wait_for(
                            "hog", [](const auto& c) { return c.state.is_terminated(); }, 30s),
                        "not terminated; log:\n"
                            << f.supervisor_log());
  auto c = *f.container("hog");
  BOOST_TEST(c.state.terminated.exit_code == 137);
  BOOST_TEST(c.state.terminated.reason == "OOMKilled");
}

BOOST_AUTO_TEST_CASE(exec_passes_output_and_exit_code_through) {
  pod_fixture f;
  f.pod.spec.restart_policy = "Never";
  f.add_container("app", "exec sleep 1000");
  f.add_container("done", "exit 0");
  f.write_pod();
  f.start_supervisor();
  BOOST_REQUIRE_MESSAGE(f.wait_for("app", running) &&
                            f.wait_for("done",
                                       [](const auto& c) { return c.state.is_terminated(); }),
                        "not running; log:\n"
                            << f.supervisor_log());

  // The OCI layer.
  oci::exec_options eo;
  eo.args = {"/bin/sh", "-c", "echo out; echo err >&2; exit 3"};
  auto r = f.rt.exec(f.runtime_id("app"), eo);
  BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.err().message));
  BOOST_TEST(r->exit_code == 3);
  BOOST_TEST(r->out == "out\n");
  BOOST_TEST(r->err == "err\n");
  BOOST_TEST(!r->timed_out);

  eo.args = {"cat"};
  eo.stdin_data = "from stdin";
  r = f.rt.exec(f.runtime_id("app"), eo);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->exit_code == 0);
  BOOST_TEST(r->out == "from stdin");

  eo = {};
  eo.args = {"/bin/sh", "-c", "i=0; while [ $i -lt 100 ]; do echo 0123456789; i=$((i+1)); done"};
  eo.output_limit = 25;
  r = f.rt.exec(f.runtime_id("app"), eo);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->out.size() == 25u);
  BOOST_TEST(r->truncated);

  eo = {};
  eo.args = {"sleep", "1000"};
  eo.timeout = 300ms;
  auto t0 = std::chrono::steady_clock::now();
  r = f.rt.exec(f.runtime_id("app"), eo);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->timed_out);
  BOOST_TEST(r->exit_code == 137);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 8s));

  eo = {};
  eo.args = {"/no/such/program"};
  r = f.rt.exec(f.runtime_id("app"), eo);
  BOOST_TEST(!r.ok());

  // The runtime's handler: the pod by namespace/name, its first container.
  runtime::runtime_options ro;
  ro.data_dir = f.data;
  wire::exec_request req;
  req.namespace_ = "default";
  req.name = "web";
  req.command = {"/bin/sh", "-c", "echo hi; exit 7"};
  auto rep = runtime::exec_in_container(ro, req);
  BOOST_REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? "" : rep.err().message));
  BOOST_TEST(rep->exit_code == 7);
  BOOST_TEST(rep->stdout_data == "hi\n");

  req.uid = f.uid;
  req.name.clear();
  req.container = "done";
  rep = runtime::exec_in_container(ro, req);
  BOOST_REQUIRE(!rep.ok());
  BOOST_TEST(static_cast<int>(rep.err().code) == static_cast<int>(errc::conflict));
  BOOST_TEST(rep.err().message.find("is not running") != std::string::npos, rep.err().message);

  req.container = "nope";
  rep = runtime::exec_in_container(ro, req);
  BOOST_REQUIRE(!rep.ok());
  BOOST_TEST(static_cast<int>(rep.err().code) == static_cast<int>(errc::not_found));

  req.uid.clear();
  req.name = "other";
  req.container.clear();
  rep = runtime::exec_in_container(ro, req);
  BOOST_REQUIRE(!rep.ok());
  BOOST_TEST(static_cast<int>(rep.err().code) == static_cast<int>(errc::not_found));
}

BOOST_AUTO_TEST_SUITE_END()

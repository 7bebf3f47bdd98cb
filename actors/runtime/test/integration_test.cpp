#define BOOST_TEST_MODULE deckhand_runtime_integration
#include <boost/test/unit_test.hpp>

#include "deckhand/testing/skip.hpp"

// Runs the real deckhand-runtime (and deckhand-pod-supervisor) from
// $DECKHAND_BIN_DIR on a temporary data dir, with runc. Needs root.

#include <signal.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "deckhand/common/paths.hpp"
#include "deckhand/common/process.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/image/builder.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/net/netlink.hpp"
#include "deckhand/oci/runc.hpp"
#include "deckhand/runtime/ipam.hpp"
#include "deckhand/runtime/network.hpp"
#include "deckhand/runtime/supervisor_process.hpp"

using namespace deckhand;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

fs::path bin_dir() {
  const char* d = std::getenv("DECKHAND_BIN_DIR");
  return d ? fs::path(d) : fs::path();
}

/// Why the tests cannot run here, or empty.
std::string missing_prerequisite() {
  if (::geteuid() != 0)
    return "not root";
  if (!common::find_program("runc"))
    return "no runc";
  if (!fs::exists("/bin/busybox"))
    return "no /bin/busybox (busybox-static)";
  if (bin_dir().empty() || !fs::exists(bin_dir() / "deckhand-runtime"))
    return "DECKHAND_BIN_DIR does not hold deckhand-runtime";
  if (!fs::exists(bin_dir() / "deckhand-pod-supervisor"))
    return "DECKHAND_BIN_DIR does not hold deckhand-pod-supervisor";
  return {};
}

/// A busybox OCI layout, built once for the whole module.
struct busybox_layout {
  fs::path dir;
  busybox_layout() {
    if (!missing_prerequisite().empty())
      return;
    char tmpl[] = "/tmp/deckhand-rt-image-XXXXXX";
    dir = mkdtemp(tmpl);
    auto err = image::make_busybox_rootfs(dir / "rootfs");
    BOOST_REQUIRE_MESSAGE(!err, (err.message));
    image::image_config cfg;
    cfg.cmd = {"sh"};
    cfg.env = {"PATH=/bin"};
    auto digest = image::build_layout(dir / "rootfs", dir / "layout", "busybox:test", cfg);
    BOOST_REQUIRE_MESSAGE(digest.ok(), (digest.ok() ? std::string() : digest.err().message));
  }
  ~busybox_layout() {
    if (!dir.empty())
      fs::remove_all(dir);
  }
  static busybox_layout* instance;
};
busybox_layout* busybox_layout::instance = nullptr;

struct layout_holder {
  busybox_layout layout;
  layout_holder() { busybox_layout::instance = &layout; }
  ~layout_holder() { busybox_layout::instance = nullptr; }
};

BOOST_TEST_GLOBAL_FIXTURE(layout_holder);

/// One runtime process on a temporary data dir, with a DEALER to it.
/// Everything is torn down in the destructor, also when a check failed.
struct runtime_fixture {
  fs::path data;
  pid_t runtime_pid = 0;
  std::unique_ptr<transport::bridge> bus;
  int dealer = -1;

  runtime_fixture() {
    if (!missing_prerequisite().empty())
      return;
    char tmpl[] = "/tmp/deckhand-rt-it-XXXXXX";
    data = mkdtemp(tmpl);
    transport::bridge_config bc;
    bc.component = "runtime-test";
    bus = std::make_unique<transport::bridge>(bc);
    bus->start();
    auto d = bus->connect_dealer(paths::ipc_endpoint(data, "runtime"));
    BOOST_REQUIRE(d);
    dealer = *d;
  }

  ~runtime_fixture() {
    if (data.empty())
      return;
    kill_runtime();
    bus.reset();
    // The runtime's own --cleanup-all removes supervisors, containers,
    // mounts and netns; anything it left is taken down by hand so that a
    // failed test leaves nothing either.
    cleanup_all();
    oci::runc rc(paths::runc_root(data));
    if (auto list = rc.list())
      for (const auto& c : *list)
        rc.remove(c.id, true);
    for (const auto& m : mounts())
      ::umount2(m.c_str(), MNT_DETACH);
    if (auto nl = net::rtnl::open()) {
      for (const auto& v : veths())
        (void)nl->delete_link(v);
      (void)nl->delete_link(bridge);
    }
    std::error_code ec;
    fs::remove_all(data, ec);
  }

  /// When set, the runtime runs this instead of deckhand-pod-supervisor.
  fs::path supervisor_bin;
  /// More runtime flags (e.g. --backend).
  std::vector<std::string> extra_args;

  /// Polls the runtime's list until container `name` of `uid` runs.
  wire::sandbox_status wait_listed_running(const std::string& uid,
                                           const std::string& name = "main") {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto sb = find_sandbox(uid))
        for (const auto& c : sb->containers)
          if (c.name == name && !c.status.state.running.started_at.empty())
            return *sb;
      std::this_thread::sleep_for(20ms);
    }
    BOOST_FAIL("container " << uid << "/" << name << " is not listed running; runtime log:\n"
                            << read(data / "runtime.log"));
    return {};
  }

  /// A bridge and pod CIDR of this test process only, removed at the end.
  const std::string bridge = "dhit" + std::to_string(::getpid());
  const net::ipv4_cidr cidr =
      *net::ipv4_cidr::parse("10.202." + std::to_string(::getpid() % 250) + ".0/24");

  /// Host veths of pods of this test's CIDR.
  std::vector<std::string> veths() const {
    std::vector<std::string> out;
    auto nl = net::rtnl::open();
    if (!nl)
      return out;
    if (auto links = nl->links())
      for (const auto& l : *links)
        if (auto a = runtime::parse_host_veth_name(l.name); a && cidr.contains(*a))
          out.push_back(l.name);
    return out;
  }

  /// Address allocations left in the runtime's allocator.
  std::size_t allocations() const {
    auto a = runtime::ip_allocator::open(runtime::ipam_dir(data, cidr), cidr);
    return a ? a->allocations().size() : 0;
  }

  std::vector<std::string> runtime_argv(bool cleanup) const {
    std::vector<std::string> argv{(bin_dir() / "deckhand-runtime").string(),
                                  "--data-dir",
                                  data.string(),
                                  "--supervisor-arg=--backoff-initial-ms=100",
                                  "--bridge=" + bridge,
                                  "--pod-cidr=" + cidr.to_string()};
    if (!supervisor_bin.empty())
      argv.push_back("--supervisor-bin=" + supervisor_bin.string());
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    if (cleanup)
      argv.push_back("--cleanup-all");
    return argv;
  }

  common::unique_fd log_fd() const {
    auto fd = common::open_fd(data / "runtime.log", O_WRONLY | O_CREAT | O_APPEND);
    BOOST_REQUIRE(fd);
    return std::move(*fd);
  }

  void start_runtime() {
    auto log = log_fd();
    auto pid = common::spawn(runtime_argv(false), {-1, log.get(), log.get()});
    BOOST_REQUIRE_MESSAGE(pid.ok(), (pid.ok() ? std::string() : pid.err().message));
    runtime_pid = *pid;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (call<wire::pong>(wire::ping{}, 500ms))
        return;
    }
    BOOST_FAIL("deckhand-runtime did not answer ping");
  }

  void kill_runtime(int sig = SIGKILL) {
    if (runtime_pid <= 0)
      return;
    ::kill(runtime_pid, sig);
    auto st = common::wait_with_deadline(runtime_pid, 15s);
    if (!st)
      common::kill_and_reap(runtime_pid, false);
    runtime_pid = 0;
  }

  int cleanup_all() {
    auto log = log_fd();
    auto pid = common::spawn(runtime_argv(true), {-1, log.get(), log.get()});
    if (!pid)
      return -1;
    auto st = common::wait_with_deadline(*pid, 60s);
    if (!st) {
      common::kill_and_reap(*pid, false);
      return -1;
    }
    return st->code();
  }

  template <class Rep, class Req>
  result<Rep> call(const Req& req, std::chrono::milliseconds deadline = 30s) {
    std::promise<result<wire::envelope>> p;
    auto f = p.get_future();
    bus->request(dealer, wire::make_envelope(req), deadline,
                 [&p](result<wire::envelope> r) { p.set_value(std::move(r)); });
    auto r = f.get();
    if (!r)
      return std::move(r).err();
    return wire::decode_as<Rep>(*r);
  }

  void import_busybox() {
    wire::image_import_request req;
    req.path = (busybox_layout::instance->dir / "layout").string();
    auto rep = call<wire::image_import_reply>(req, 60s);
    BOOST_REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? std::string() : rep.err().message));
    BOOST_TEST(!rep->image.names.empty());
  }

  static wire::pod sleeper(const std::string& uid) {
    wire::pod p;
    p.metadata.uid = uid;
    p.metadata.name = "sleeper";
    p.metadata.namespace_ = "default";
    wire::container c;
    c.name = "main";
    c.image = "busybox:test";
    c.command = {"sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"};
    p.spec.containers.push_back(c);
    p.spec.termination_grace_period_seconds = 5;
    return p;
  }

  oci::runc runc() const { return oci::runc(paths::runc_root(data)); }

  /// Polls `runc state` until the container runs; its init pid.
  pid_t wait_running(const std::string& uid, const std::string& name = "main") {
    auto rc = runc();
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto st = rc.state(pod_dir::runtime_id(uid, name));
      if (st && st->status == oci::container_status::running)
        return st->pid;
      std::this_thread::sleep_for(50ms);
    }
    BOOST_FAIL("container " << uid << "/" << name << " did not start; runtime log:\n"
                            << read(data / "runtime.log") << "\nsupervisor log:\n"
                            << read(pod_dir::supervisor_log(pod_dir::root(data, uid))));
    return 0;
  }

  static std::string read(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }

  /// Mount points under the data dir, from /proc/self/mountinfo.
  std::vector<std::string> mounts() const {
    std::vector<std::string> out;
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream f(line);
      std::string a, b, c, root, point;
      f >> a >> b >> c >> root >> point;
      if (point.rfind(data.string(), 0) == 0)
        out.push_back(point);
    }
    return out;
  }

  std::optional<wire::sandbox_status> find_sandbox(const std::string& uid) {
    auto rep = call<wire::list_sandboxes_reply>(wire::list_sandboxes_request{});
    BOOST_REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? std::string() : rep.err().message));
    for (auto& s : rep->sandboxes)
      if (s.uid == uid)
        return s;
    return std::nullopt;
  }

  /// Checks that pod `uid` left nothing behind.
  void check_gone(const std::string& uid, pid_t supervisor_pid) {
    BOOST_TEST(mounts().empty());
    BOOST_TEST(!fs::exists(pod_dir::root(data, uid)));
    BOOST_TEST(!fs::exists(pod_dir::netns(pod_dir::root(data, uid))));
    auto list = runc().list();
    BOOST_REQUIRE(list);
    BOOST_TEST(list->empty());
    if (supervisor_pid > 0)
      BOOST_TEST(!runtime::is_supervisor_of(supervisor_pid, uid));
    BOOST_TEST(!fs::exists(paths::pod_log_dir(data, "default", "sleeper", uid)));
    BOOST_TEST(veths().empty());
    BOOST_TEST(allocations() == 0u);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(runtime_integration, *deckhand::testing::skip_unless(missing_prerequisite))

BOOST_FIXTURE_TEST_CASE(missing_image_is_not_found, runtime_fixture) {
  start_runtime();
  wire::run_pod_request req;
  req.pod_ = sleeper("uid-missing");
  req.pod_.spec.containers[0].image = "nothere:1.0";
  auto rep = call<wire::run_pod_reply>(req);
  BOOST_REQUIRE(!rep);
  BOOST_TEST(static_cast<int>(rep.err().code) == static_cast<int>(errc::not_found));
  BOOST_TEST(rep.err().message.find("image \"nothere:1.0\" is not present on the node") !=
             std::string::npos);
  BOOST_TEST(!fs::exists(pod_dir::root(data, "uid-missing")));

  // Undecodable and unknown requests get errc::invalid.
  auto bad = call<wire::ack>(wire::pod_finalize{});
  BOOST_REQUIRE(!bad);
  BOOST_TEST(static_cast<int>(bad.err().code) == static_cast<int>(errc::invalid));
}

BOOST_FIXTURE_TEST_CASE(run_stop_remove_leaves_nothing, runtime_fixture) {
  start_runtime();
  import_busybox();
  auto images = call<wire::image_list_reply>(wire::image_list_request{});
  BOOST_REQUIRE(images);
  BOOST_TEST(images->images.size() == 1u);

  const std::string uid = "uid-lifecycle";
  wire::run_pod_request req;
  req.pod_ = sleeper(uid);
  auto rep = call<wire::run_pod_reply>(req, 60s);
  BOOST_REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? std::string() : rep.err().message));
  BOOST_TEST(rep->sandbox.uid == uid);
  BOOST_TEST(rep->sandbox.state == "ready");
  BOOST_TEST(rep->sandbox.supervisor_pid > 0);
  auto pod_ip = net::ipv4::parse(rep->sandbox.pod_ip_);
  BOOST_REQUIRE_MESSAGE(pod_ip, "podIP \"" << rep->sandbox.pod_ip_ << "\"");
  BOOST_TEST(cidr.contains(*pod_ip));
  auto sup = static_cast<pid_t>(rep->sandbox.supervisor_pid);
  auto init = wait_running(uid);
  BOOST_TEST(init > 0);
  BOOST_TEST(fs::exists(pod_dir::netns(pod_dir::root(data, uid))));

  // Idempotent by uid: the same supervisor, nothing restarted.
  auto again = call<wire::run_pod_reply>(req, 60s);
  BOOST_REQUIRE(again);
  BOOST_TEST(again->sandbox.supervisor_pid == rep->sandbox.supervisor_pid);
  BOOST_TEST(runc().state(pod_dir::runtime_id(uid, "main"))->pid == init);

  auto listed = find_sandbox(uid);
  BOOST_REQUIRE(listed);
  BOOST_TEST(listed->supervisor_alive);
  BOOST_TEST(listed->name == "sleeper");

  wire::stop_pod_request stop;
  stop.uid = uid;
  stop.grace_period_seconds = 5;
  auto stopped = call<wire::sandbox_status_reply>(stop, 60s);
  BOOST_REQUIRE_MESSAGE(stopped.ok(), (stopped.ok() ? std::string() : stopped.err().message));
  BOOST_TEST(stopped->sandbox.state == "stopped");
  auto st = runc().state(pod_dir::runtime_id(uid, "main"));
  BOOST_TEST((!st || st->status == oci::container_status::stopped));

  wire::remove_pod_request rm;
  rm.uid = uid;
  auto removed = call<wire::ack>(rm, 60s);
  BOOST_REQUIRE_MESSAGE(removed.ok(), (removed.ok() ? std::string() : removed.err().message));
  check_gone(uid, sup);
  BOOST_TEST(call<wire::ack>(rm, 60s).ok());  // idempotent

  // Unknown uid: stopped.
  stop.uid = "never-seen";
  auto unknown = call<wire::sandbox_status_reply>(stop);
  BOOST_REQUIRE(unknown);
  BOOST_TEST(unknown->sandbox.state == "stopped");
}

BOOST_FIXTURE_TEST_CASE(killing_runtime_or_supervisor_keeps_containers, runtime_fixture) {
  start_runtime();
  import_busybox();
  const std::string uid = "uid-survivor";
  wire::run_pod_request req;
  req.pod_ = sleeper(uid);
  auto rep = call<wire::run_pod_reply>(req, 60s);
  BOOST_REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? std::string() : rep.err().message));
  auto sup = static_cast<pid_t>(rep->sandbox.supervisor_pid);
  auto init = wait_running(uid);

  kill_runtime(SIGKILL);
  BOOST_TEST(runtime::is_supervisor_of(sup, uid));
  start_runtime();
  auto listed = find_sandbox(uid);
  BOOST_REQUIRE(listed);
  BOOST_TEST(listed->supervisor_pid == sup);  // re-adopted, not restarted
  BOOST_TEST(listed->supervisor_alive);
  auto st = runc().state(pod_dir::runtime_id(uid, "main"));
  BOOST_REQUIRE(st);
  BOOST_TEST((st->status == oci::container_status::running));
  BOOST_TEST(st->pid == init);

  // A supervisor killed with SIGKILL is replaced; the container stays.
  ::kill(sup, SIGKILL);
  pid_t replacement = 0;
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto s = find_sandbox(uid);
    if (s && s->supervisor_alive && s->supervisor_pid != sup) {
      replacement = static_cast<pid_t>(s->supervisor_pid);
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  BOOST_TEST(replacement > 0);
  st = runc().state(pod_dir::runtime_id(uid, "main"));
  BOOST_REQUIRE(st);
  BOOST_TEST((st->status == oci::container_status::running));
  BOOST_TEST(st->pid == init);

  wire::remove_pod_request rm;
  rm.uid = uid;
  BOOST_TEST(call<wire::ack>(rm, 60s).ok());
  check_gone(uid, replacement);
}

// A supervisor that never answers on its socket: it only starts the
// containers with runc. The runtime must still complete a stop on its own.
BOOST_FIXTURE_TEST_CASE(stop_completes_without_a_working_supervisor, runtime_fixture) {
  supervisor_bin = data / "mute-supervisor";
  {
    std::ofstream out(supervisor_bin);
    out << "#!/bin/sh\n"
           "# --data-dir D --pod-uid U --oci-runtime R ...\n"
           "D=$2; U=$4\n"
           "for b in \"$D/runtime/pods/$U/containers/\"*; do\n"
           "  runc --root \"$D/runtime/runc\" run -d --bundle \"$b\" \"$U-$(basename \"$b\")\" "
           "</dev/null >/dev/null 2>&1\n"
           "done\n"
           "trap 'exit 0' TERM\n"
           "while :; do sleep 1; done\n";
  }
  fs::permissions(supervisor_bin, fs::perms::owner_all);
  start_runtime();
  import_busybox();
  const std::string uid = "uid-mute";
  wire::run_pod_request req;
  req.pod_ = sleeper(uid);
  auto rep = call<wire::run_pod_reply>(req, 60s);
  BOOST_REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? std::string() : rep.err().message));
  auto sup = static_cast<pid_t>(rep->sandbox.supervisor_pid);
  wait_running(uid);

  wire::stop_pod_request stop;
  stop.uid = uid;
  stop.grace_period_seconds = 5;
  auto began = std::chrono::steady_clock::now();
  auto stopped = call<wire::sandbox_status_reply>(stop, 60s);
  BOOST_REQUIRE_MESSAGE(stopped.ok(), (stopped.ok() ? std::string() : stopped.err().message));
  BOOST_TEST(stopped->sandbox.state == "stopped");
  // SIGTERM was enough: no wait for the grace period or a request deadline.
  BOOST_TEST((std::chrono::steady_clock::now() - began < 5s));
  BOOST_REQUIRE_EQUAL(stopped->sandbox.containers.size(), 1u);
  BOOST_TEST(stopped->sandbox.containers[0].status.state.is_terminated());
  BOOST_TEST(!runc().state(pod_dir::runtime_id(uid, "main")));
  BOOST_TEST(fs::exists(pod_dir::stopping_marker(pod_dir::root(data, uid))));
  BOOST_TEST(!runtime::is_supervisor_of(sup, uid));
  // Stopped pods are not handed a new supervisor.
  auto listed = find_sandbox(uid);
  BOOST_REQUIRE(listed);
  BOOST_TEST(listed->state == "stopped");

  wire::remove_pod_request rm;
  rm.uid = uid;
  BOOST_TEST(call<wire::ack>(rm, 60s).ok());
  check_gone(uid, sup);
}

namespace {

ino_t ns_inode(pid_t pid, const char* ns) {
  struct stat st {};
  ::stat(("/proc/" + std::to_string(pid) + "/ns/" + ns).c_str(), &st);
  return st.st_ino;
}

std::string in_container(pid_t pid, const std::string& path) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/root" + path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(pods_get_addresses_and_share_namespaces, runtime_fixture) {
  start_runtime();
  import_busybox();
  const std::string loop = "while true; do sleep 1; done";

  // Pod one: a TCP listener and a sidecar.
  wire::run_pod_request one;
  one.pod_ = sleeper("uid-net-1");
  auto side = one.pod_.spec.containers[0];
  side.name = "side";
  one.pod_.spec.containers[0].command = {"sh", "-c",
                                         "trap 'exit 0' TERM; nc -l -p 8080 > /tmp/got & " + loop};
  one.pod_.spec.containers.push_back(side);
  auto r1 = call<wire::run_pod_reply>(one, 60s);
  BOOST_REQUIRE_MESSAGE(r1.ok(), (r1.ok() ? std::string() : r1.err().message));
  auto ip1 = net::ipv4::parse(r1->sandbox.pod_ip_);
  BOOST_REQUIRE(ip1);
  BOOST_TEST(cidr.contains(*ip1));
  auto main1 = wait_running("uid-net-1");
  auto side1 = wait_running("uid-net-1", "side");
  for (auto ns : {"net", "uts", "ipc"})
    BOOST_TEST(ns_inode(main1, ns) == ns_inode(side1, ns), ns);
  BOOST_TEST(ns_inode(main1, "net") != ns_inode(::getpid(), "net"));
  struct stat uts {};
  ::stat((pod_dir::root(data, "uid-net-1") / "utsns").c_str(), &uts);
  BOOST_TEST(uts.st_ino == ns_inode(main1, "uts"));
  BOOST_TEST(in_container(main1, "/etc/hostname") == "sleeper\n");
  BOOST_TEST(in_container(side1, "/etc/hosts").find("\n" + ip1->to_string() + "\tsleeper\n") !=
             std::string::npos);
  BOOST_TEST(fs::exists("/proc/" + std::to_string(main1) + "/root/etc/resolv.conf"));
  // One /dev/shm for the whole pod.
  { std::ofstream(("/proc/" + std::to_string(main1) + "/root/dev/shm/marker")) << "x"; }
  BOOST_TEST(in_container(side1, "/dev/shm/marker") == "x");

  // Pod two gets another address and reaches pod one over TCP.
  wire::run_pod_request two;
  two.pod_ = sleeper("uid-net-2");
  two.pod_.spec.containers[0].command = {
      "sh", "-c",
      "trap 'exit 0' TERM; for i in $(seq 1 100); do echo hello-from-two | nc -w 1 " +
          ip1->to_string() + " 8080 && break; sleep 0.1; done; " + loop};
  auto r2 = call<wire::run_pod_reply>(two, 60s);
  BOOST_REQUIRE_MESSAGE(r2.ok(), (r2.ok() ? std::string() : r2.err().message));
  BOOST_TEST(r2->sandbox.pod_ip_ != r1->sandbox.pod_ip_);
  BOOST_TEST(cidr.contains(*net::ipv4::parse(r2->sandbox.pod_ip_)));
  wait_running("uid-net-2");
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    got = in_container(main1, "/tmp/got");
    if (got.find("hello-from-two") != std::string::npos)
      break;
    std::this_thread::sleep_for(50ms);
  }
  BOOST_TEST(got == "hello-from-two\n");
  BOOST_TEST(veths().size() == 2u);
  BOOST_TEST(allocations() == 2u);

  // hostNetwork: the node's address and network, no veth.
  wire::run_pod_request host;
  host.pod_ = sleeper("uid-net-host");
  host.pod_.spec.host_network = true;
  auto r3 = call<wire::run_pod_reply>(host, 60s);
  BOOST_REQUIRE_MESSAGE(r3.ok(), (r3.ok() ? std::string() : r3.err().message));
  auto node = runtime::node_address(bridge);
  BOOST_REQUIRE(node);
  BOOST_TEST(r3->sandbox.pod_ip_ == node->to_string());
  auto init3 = wait_running("uid-net-host");
  BOOST_TEST(ns_inode(init3, "net") == ns_inode(::getpid(), "net"));
  BOOST_TEST(ns_inode(init3, "uts") != ns_inode(::getpid(), "uts"));
  char hn[256] = {};
  ::gethostname(hn, sizeof hn - 1);
  BOOST_TEST(in_container(init3, "/etc/hostname") == std::string(hn) + "\n");
  BOOST_TEST(veths().size() == 2u);
  BOOST_TEST(allocations() == 2u);

  // The runtime restarted keeps every address where it is.
  kill_runtime(SIGKILL);
  start_runtime();
  BOOST_TEST(veths().size() == 2u);
  BOOST_TEST(allocations() == 2u);
  auto again = find_sandbox("uid-net-1");
  BOOST_REQUIRE(again);
  BOOST_TEST(again->pod_ip_ == r1->sandbox.pod_ip_);

  std::vector<std::pair<std::string, pid_t>> pods;
  for (auto uid : {"uid-net-1", "uid-net-2", "uid-net-host"}) {
    auto s = find_sandbox(uid);
    pods.emplace_back(uid, s ? static_cast<pid_t>(s->supervisor_pid) : 0);
    wire::remove_pod_request rm;
    rm.uid = uid;
    BOOST_TEST(call<wire::ack>(rm, 60s).ok());
  }
  for (const auto& [uid, sup] : pods)
    check_gone(uid, sup);
}

BOOST_FIXTURE_TEST_CASE(startup_sweeps_half_created_sandboxes, runtime_fixture) {
  auto half = pod_dir::root(data, "uid-half");
  auto rootfs = pod_dir::bundle(half, "main") / "rootfs";
  fs::create_directories(rootfs);
  BOOST_REQUIRE(::mount("tmpfs", rootfs.c_str(), "tmpfs", 0, nullptr) == 0);
  BOOST_TEST(mounts().size() == 1u);
  start_runtime();
  BOOST_TEST(!fs::exists(half));
  BOOST_TEST(mounts().empty());
}

BOOST_FIXTURE_TEST_CASE(cleanup_all_leaves_nothing, runtime_fixture) {
  start_runtime();
  import_busybox();
  std::vector<pid_t> sups;
  for (auto uid : {"uid-c1", "uid-c2"}) {
    wire::run_pod_request req;
    req.pod_ = sleeper(uid);
    auto rep = call<wire::run_pod_reply>(req, 60s);
    BOOST_REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? std::string() : rep.err().message));
    sups.push_back(static_cast<pid_t>(rep->sandbox.supervisor_pid));
    wait_running(uid);
  }
  kill_runtime(SIGTERM);
  BOOST_TEST(cleanup_all() == 0);
  check_gone("uid-c1", sups[0]);
  check_gone("uid-c2", sups[1]);
}

// The process back-end: the same runtime and supervisor, with
// deckhand-process-oci instead of runc; nothing mounted, no namespace.
BOOST_FIXTURE_TEST_CASE(process_backend_runs_host_processes, runtime_fixture) {
  extra_args = {"--backend=process"};
  start_runtime();
  import_busybox();
  auto p = sleeper("uid-proc");
  p.spec.containers[0].command = {
      "/bin/sh", "-c", "echo started; trap 'exit 0' TERM; while true; do sleep 0.1; done"};
  wire::run_pod_request req;
  req.pod_ = p;
  auto rep = call<wire::run_pod_reply>(req, 60s);
  BOOST_REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? std::string() : rep.err().message));
  auto sb = wait_listed_running("uid-proc");
  BOOST_TEST(!sb.pod_ip_.empty());
  BOOST_TEST(mounts().empty());  // no overlay, no netns, no shm
  BOOST_TEST(veths().empty());
  wire::stop_pod_request stop;
  stop.uid = "uid-proc";
  stop.grace_period_seconds = 5;
  auto st = call<wire::sandbox_status_reply>(stop, 30s);
  BOOST_REQUIRE_MESSAGE(st.ok(), (st.ok() ? std::string() : st.err().message));
  BOOST_REQUIRE(!st->sandbox.containers.empty());
  BOOST_TEST(st->sandbox.containers[0].status.state.terminated.exit_code == 0);
  wire::remove_pod_request rm;
  rm.uid = "uid-proc";
  BOOST_TEST(call<wire::ack>(rm).ok());
  BOOST_TEST(!fs::exists(pod_dir::root(data, "uid-proc")));
}

// The sim back-end through the real process: no supervisor, no container,
// and a runtime killed with SIGKILL takes its simulated pods back unchanged.
BOOST_FIXTURE_TEST_CASE(sim_backend_survives_a_runtime_kill, runtime_fixture) {
  extra_args = {"--backend=sim"};
  start_runtime();
  import_busybox();
  wire::run_pod_request req;
  req.pod_ = sleeper("uid-sim");
  auto rep = call<wire::run_pod_reply>(req, 60s);
  BOOST_REQUIRE_MESSAGE(rep.ok(), (rep.ok() ? std::string() : rep.err().message));
  auto before = wait_listed_running("uid-sim");
  BOOST_TEST(!before.pod_ip_.empty());
  BOOST_TEST(!fs::exists(pod_dir::supervisor_pid(pod_dir::root(data, "uid-sim"))));
  BOOST_TEST(mounts().empty());
  kill_runtime(SIGKILL);
  start_runtime();
  auto after = wait_listed_running("uid-sim");
  BOOST_TEST(after.pod_ip_ == before.pod_ip_);
  BOOST_TEST(after.containers[0].status.restart_count == 0);
  BOOST_TEST(after.containers[0].status.state.running.started_at ==
             before.containers[0].status.state.running.started_at);
  wire::stop_pod_request stop;
  stop.uid = "uid-sim";
  auto st = call<wire::sandbox_status_reply>(stop, 30s);
  BOOST_REQUIRE(st.ok());
  BOOST_TEST(st->sandbox.state == "stopped");
  wire::remove_pod_request rm;
  rm.uid = "uid-sim";
  BOOST_TEST(call<wire::ack>(rm).ok());
}

BOOST_AUTO_TEST_SUITE_END()

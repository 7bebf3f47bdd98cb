#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <boost/test/unit_test.hpp>

#include "fixture.hpp"

using namespace deckhand;
using namespace deckhand::oci;
using namespace deckhand::net;
using namespace deckhand::oci::test;
using namespace std::chrono_literals;
namespace utf = boost::unit_test;

namespace {

std::string ns_link(pid_t pid, const std::string& ns) {
  return fs::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + ns).string();
}

bool listed(runc& rt, const std::string& id, container_status* status = nullptr) {
  auto all = rt.list();
  BOOST_REQUIRE_MESSAGE(all.ok(), (all ? "" : all.err().message));
  for (auto& c : *all)
    if (c.id == id) {
      if (status)
        *status = c.status;
      return true;
    }
  return false;
}

#define REQUIRE_OK(expr)                                                                           \
  do {                                                                                             \
    auto&& r_ = (expr);                                                                            \
    BOOST_REQUIRE_MESSAGE(r_.ok(), #expr << ": " << (r_ ? std::string() : r_.err().message));      \
  } while (0)

}  // namespace

BOOST_AUTO_TEST_SUITE(runc_driver, *deckhand::testing::skip_unless(deckhand::testing::containers()))

BOOST_AUTO_TEST_CASE(run_detached_exit_code_comes_back_through_subreaper) {
  sandbox sb;
  REQUIRE_OK(common::set_child_subreaper());
  auto rootfs = sb.make_rootfs(sb.dir / "rootfs");
  auto bundle = sb.dir / "bundle";
  REQUIRE_OK(write_bundle(bundle, sb.spec_for(rootfs, {"sh", "-c", "echo hi; exit 42"})));
  auto out = sb.open_output(sb.dir / "stdout");
  auto id = sb.new_id();
  REQUIRE_OK(
      sb.rt.run_detached(id, bundle, common::stdio_fds{-1, out.get(), out.get()}, sb.dir / "pid"));
  pid_t pid = read_pid(sb.dir / "pid");
  auto st = common::wait_with_deadline(pid, 20s);
  BOOST_REQUIRE_MESSAGE(st.ok(), (st ? "" : st.err().message));
  BOOST_TEST(st->exited());
  BOOST_TEST(st->code() == 42);
  BOOST_TEST(read_file(sb.dir / "stdout") == "hi\n");

  auto state = sb.rt.state(id);
  REQUIRE_OK(state);
  BOOST_TEST(state->status == container_status::stopped);
  BOOST_TEST(state->bundle == bundle);
  REQUIRE_OK(sb.rt.remove(id));
  BOOST_TEST(!listed(sb.rt, id));
}

BOOST_AUTO_TEST_CASE(create_start_in_own_namespaces) {
  sandbox sb;
  REQUIRE_OK(common::set_child_subreaper());
  auto rootfs = sb.make_rootfs(sb.dir / "rootfs");
  auto bundle = sb.dir / "bundle";
  auto spec = sb.spec_for(rootfs, {"sh", "-c", "hostname; echo pid=$$"});
  spec.readonly_rootfs = true;
  REQUIRE_OK(write_bundle(bundle, spec));
  auto out = sb.open_output(sb.dir / "stdout");
  auto id = sb.new_id();
  REQUIRE_OK(sb.rt.create(id, bundle, common::stdio_fds{-1, out.get(), out.get()}, sb.dir / "pid"));

  auto state = sb.rt.state(id);
  REQUIRE_OK(state);
  BOOST_TEST(state->id == id);
  BOOST_TEST(state->status == container_status::created);
  pid_t pid = read_pid(sb.dir / "pid");
  BOOST_TEST(state->pid == pid);
  container_status listed_status{};
  BOOST_TEST(listed(sb.rt, id, &listed_status));
  BOOST_TEST(listed_status == container_status::created);
  // The init waiting for start() already lives in the new namespaces.
  for (auto ns : {"pid", "mnt", "uts", "ipc", "net"})
    BOOST_TEST(ns_link(pid, ns) != ns_link(::getpid(), ns), ns);

  REQUIRE_OK(sb.rt.start(id));
  auto st = common::wait_with_deadline(pid, 20s);
  REQUIRE_OK(st);
  BOOST_TEST(st->code() == 0);
  BOOST_TEST(read_file(sb.dir / "stdout") == "deckhand-test\npid=1\n");

  REQUIRE_OK(sb.rt.remove(id));
  BOOST_TEST(!listed(sb.rt, id));
  auto gone = sb.rt.state(id);
  BOOST_REQUIRE(!gone.ok());
  BOOST_TEST(gone.err().code == errc::not_found);
  REQUIRE_OK(sb.rt.remove(id));  // idempotent
}

BOOST_AUTO_TEST_CASE(kill_delivers_sigterm_and_sigkill) {
  sandbox sb;
  REQUIRE_OK(common::set_child_subreaper());
  auto rootfs = sb.make_rootfs(sb.dir / "rootfs");

  // A pid-namespace init only receives signals it handles: trap TERM, and say
  // so only once the trap is in place.
  auto bundle = sb.dir / "bundle-term";
  REQUIRE_OK(write_bundle(
      bundle,
      sb.spec_for(rootfs, {"sh", "-c", "trap 'exit 143' TERM; echo ready; sleep 1000 & wait"})));
  auto out = sb.open_output(sb.dir / "term.out");
  auto id = sb.new_id();
  REQUIRE_OK(sb.rt.run_detached(id, bundle, common::stdio_fds{-1, out.get(), out.get()},
                                sb.dir / "term.pid"));
  pid_t pid = read_pid(sb.dir / "term.pid");
  BOOST_REQUIRE(eventually([&] { return read_file(sb.dir / "term.out") == "ready\n"; }));
  auto state = sb.rt.state(id);
  REQUIRE_OK(state);
  BOOST_TEST(state->status == container_status::running);
  REQUIRE_OK(sb.rt.kill(id, SIGTERM));
  auto st = common::wait_with_deadline(pid, 20s);
  REQUIRE_OK(st);
  BOOST_TEST(st->code() == 143);

  auto bundle2 = sb.dir / "bundle-kill";
  REQUIRE_OK(write_bundle(bundle2, sb.spec_for(rootfs, {"sleep", "1000"})));
  auto id2 = sb.new_id();
  REQUIRE_OK(sb.rt.run_detached(id2, bundle2, {}, sb.dir / "kill.pid"));
  pid_t pid2 = read_pid(sb.dir / "kill.pid");
  REQUIRE_OK(sb.rt.kill(id2, SIGKILL));
  auto st2 = common::wait_with_deadline(pid2, 20s);
  REQUIRE_OK(st2);
  BOOST_TEST(st2->signaled());
  BOOST_TEST(st2->code() == 137);
  auto state2 = sb.rt.state(id2);
  REQUIRE_OK(state2);
  BOOST_TEST(state2->status == container_status::stopped);
  auto again = sb.rt.kill(id2, SIGKILL);
  BOOST_TEST(!again.ok());
}

BOOST_AUTO_TEST_CASE(force_remove_stops_a_running_container) {
  sandbox sb;
  REQUIRE_OK(common::set_child_subreaper());
  auto rootfs = sb.make_rootfs(sb.dir / "rootfs");
  REQUIRE_OK(write_bundle(sb.dir / "bundle", sb.spec_for(rootfs, {"sleep", "1000"})));
  auto id = sb.new_id();
  REQUIRE_OK(sb.rt.run_detached(id, sb.dir / "bundle", {}, sb.dir / "pid"));
  pid_t pid = read_pid(sb.dir / "pid");
  BOOST_TEST(!sb.rt.remove(id, false).ok());  // running: plain delete refuses
  REQUIRE_OK(sb.rt.remove(id, true));
  auto st = common::wait_with_deadline(pid, 20s);
  REQUIRE_OK(st);
  BOOST_TEST(st->code() == 137);
  BOOST_TEST(!listed(sb.rt, id));
}

BOOST_AUTO_TEST_CASE(netns_container_sees_only_loopback) {
  sandbox sb;
  REQUIRE_OK(common::set_child_subreaper());
  auto rootfs = sb.make_rootfs(sb.dir / "rootfs");
  auto nsfile = sb.dir / "netns" / "pod-a";
  sb.netns_files.push_back(nsfile);
  REQUIRE_OK(create_netns(nsfile));
  BOOST_TEST(is_netns_mount(nsfile));
  BOOST_TEST(is_mountpoint(nsfile));
  auto ino = fs::read_symlink("/proc/self/ns/net");
  REQUIRE_OK(create_netns(nsfile));  // idempotent: same namespace kept
  BOOST_TEST(mounts_under(nsfile).size() == 1u);

  auto spec = sb.spec_for(rootfs, {"sh", "-c",
                                   "cat /proc/net/dev; echo ---; ip -o link; echo ---; "
                                   "readlink /proc/self/ns/net"});
  spec.netns_path = nsfile;
  REQUIRE_OK(write_bundle(sb.dir / "bundle", spec));
  auto out = sb.open_output(sb.dir / "stdout");
  auto id = sb.new_id();
  REQUIRE_OK(sb.rt.run_detached(id, sb.dir / "bundle", common::stdio_fds{-1, out.get(), out.get()},
                                sb.dir / "pid"));
  auto st = common::wait_with_deadline(read_pid(sb.dir / "pid"), 20s);
  REQUIRE_OK(st);
  BOOST_TEST(st->code() == 0);
  std::string text = read_file(sb.dir / "stdout");
  BOOST_TEST_MESSAGE(text);
  std::istringstream in(text);
  std::string line;
  std::vector<std::string> dev_lines, link_lines;
  std::string ns_seen;
  int section = 0;
  int n = 0;
  while (std::getline(in, line)) {
    if (line == "---") {
      ++section;
      continue;
    }
    if (section == 0 && n++ >= 2)
      dev_lines.push_back(line);
    else if (section == 1)
      link_lines.push_back(line);
    else if (section == 2)
      ns_seen = line;
  }
  BOOST_REQUIRE(dev_lines.size() == 1u);
  BOOST_TEST(dev_lines[0].find("lo:") != std::string::npos);
  BOOST_REQUIRE(link_lines.size() == 1u);
  BOOST_TEST(link_lines[0].find("lo:") != std::string::npos);
  BOOST_TEST(link_lines[0].find("UP") != std::string::npos);
  BOOST_TEST(ns_seen != ino.string());
  REQUIRE_OK(sb.rt.remove(sb.ids.back()));

  REQUIRE_OK(remove_netns(nsfile));
  BOOST_TEST(!fs::exists(nsfile));
  BOOST_TEST(mounts_under(nsfile).empty());
  REQUIRE_OK(remove_netns(nsfile));  // idempotent
}

BOOST_AUTO_TEST_CASE(host_network_shares_the_callers_namespace) {
  sandbox sb;
  REQUIRE_OK(common::set_child_subreaper());
  auto rootfs = sb.make_rootfs(sb.dir / "rootfs");
  auto spec = sb.spec_for(rootfs, {"readlink", "/proc/self/ns/net"});
  spec.host_network = true;
  REQUIRE_OK(write_bundle(sb.dir / "bundle", spec));
  auto out = sb.open_output(sb.dir / "stdout");
  auto id = sb.new_id();
  REQUIRE_OK(sb.rt.run_detached(id, sb.dir / "bundle", common::stdio_fds{-1, out.get(), out.get()},
                                sb.dir / "pid"));
  auto st = common::wait_with_deadline(read_pid(sb.dir / "pid"), 20s);
  REQUIRE_OK(st);
  BOOST_TEST(st->code() == 0);
  BOOST_TEST(read_file(sb.dir / "stdout") == fs::read_symlink("/proc/self/ns/net").string() + "\n");
}

BOOST_AUTO_TEST_CASE(overlay_writes_land_in_upper_only) {
  sandbox sb;
  REQUIRE_OK(common::set_child_subreaper());
  auto lower = sb.make_rootfs(sb.dir / "lower");
  auto upper = sb.dir / "snap" / "upper";
  auto work = sb.dir / "snap" / "work";
  auto merged = sb.dir / "snap" / "merged";
  REQUIRE_OK(mount_overlay({lower}, upper, work, merged));
  BOOST_TEST(is_mountpoint(merged));
  BOOST_TEST(fs::exists(merged / "bin" / "busybox"));
  auto again = mount_overlay({lower}, upper, work, merged);
  BOOST_REQUIRE(!again.ok());
  BOOST_TEST(again.err().code == errc::already_exists);

  REQUIRE_OK(
      write_bundle(sb.dir / "bundle", sb.spec_for(merged, {"sh", "-c", "echo data > /written"})));
  auto id = sb.new_id();
  REQUIRE_OK(sb.rt.run_detached(id, sb.dir / "bundle", {}, sb.dir / "pid"));
  auto st = common::wait_with_deadline(read_pid(sb.dir / "pid"), 20s);
  REQUIRE_OK(st);
  BOOST_TEST(st->code() == 0);
  REQUIRE_OK(sb.rt.remove(id));
  BOOST_TEST(read_file(upper / "written") == "data\n");
  BOOST_TEST(!fs::exists(lower / "written"));

  REQUIRE_OK(unmount(merged));
  BOOST_TEST(!is_mountpoint(merged));
  BOOST_TEST(mounts_under(merged).empty());
  REQUIRE_OK(unmount(merged));  // idempotent
}

BOOST_AUTO_TEST_CASE(runc_failure_carries_runcs_words) {
  sandbox sb;
  // No config.json at all.
  fs::create_directories(sb.dir / "empty-bundle");
  auto id = sb.new_id();
  auto r = sb.rt.run_detached(id, sb.dir / "empty-bundle", {});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST_MESSAGE(r.err().message);
  BOOST_TEST(r.err().message.find("config.json") != std::string::npos);

  // A rootfs that does not exist.
  REQUIRE_OK(write_bundle(sb.dir / "bad-root", sb.spec_for(sb.dir / "missing", {"true"})));
  auto id2 = sb.new_id();
  auto r2 = sb.rt.create(id2, sb.dir / "bad-root", {});
  BOOST_REQUIRE(!r2.ok());
  BOOST_TEST_MESSAGE(r2.err().message);
  BOOST_TEST(r2.err().message.find("missing") != std::string::npos);

  auto s = sb.rt.state("deckhand-no-such-container");
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.err().code == errc::not_found);
  BOOST_TEST(s.err().message.find("does not exist") != std::string::npos);
  auto k = sb.rt.kill("deckhand-no-such-container", SIGTERM);
  BOOST_REQUIRE(!k.ok());
  BOOST_TEST(k.err().code == errc::not_found);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(runc_deadlines)

BOOST_AUTO_TEST_CASE(hung_runtime_is_killed_after_the_deadline) {
  sandbox sb;
  // A stand-in runtime that never answers and leaves a grandchild behind.
  auto fake = sb.dir / "hung-runc";
  write_file(fake,
             "#!/bin/sh\nsleep 1000 &\necho $! > " + (sb.dir / "bg.pid").string() + "\nwait\n");
  fs::permissions(fake, fs::perms::owner_all);
  runc rt(sb.dir / "root", fake.string(), 300ms);

  auto t0 = std::chrono::steady_clock::now();
  auto s = rt.state("x");
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.err().code == errc::unavailable);
  auto c = rt.create("x", sb.dir, {});
  BOOST_REQUIRE(!c.ok());
  BOOST_TEST(c.err().code == errc::unavailable);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 10s));

  // The whole process group went, not just the runtime itself.
  pid_t bg = read_pid(sb.dir / "bg.pid");
  BOOST_TEST(eventually([&] {
    int st;
    ::waitpid(bg, &st, WNOHANG);  // if it was re-parented to us
    return ::kill(bg, 0) != 0;
  }));
}

BOOST_AUTO_TEST_CASE(missing_runtime_binary_is_an_error) {
  sandbox sb;
  runc rt(sb.dir / "root", "deckhand-no-such-runtime");
  auto s = rt.list();
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.err().code == errc::not_found);
}

BOOST_AUTO_TEST_SUITE_END()

// The sim back-end on virtual time: the same state machine as a real pod
// supervisor (restart policy, back-off, grace period), no processes.

#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <filesystem>
#include <set>

#include "deckhand/host/pod_dir.hpp"
#include "deckhand/runtime/sim_backend.hpp"

using namespace deckhand;
using namespace deckhand::runtime;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct sim_fixture {
  runtime_options opts;
  supervisor::backoff_config backoff{1000ms, 4000ms, 60000ms};
  supervisor::time_point t0 = supervisor::wall_clock::now();

  sim_fixture() {
    char tmpl[] = "/tmp/deckhand-rt-sim-XXXXXX";
    opts.data_dir = mkdtemp(tmpl);
    opts.backend = "sim";
    opts.pod_cidr = "10.77.0.0/29";  // six hosts: gateway + five pods
  }
  ~sim_fixture() { fs::remove_all(opts.data_dir); }

  wire::pod make_pod(const std::string& uid, const std::string& policy = "Always") {
    wire::pod p;
    p.metadata.uid = uid;
    p.metadata.name = "p-" + uid;
    p.metadata.namespace_ = "default";
    p.spec.restart_policy = policy;
    p.spec.termination_grace_period_seconds = 2;
    wire::container c;
    c.name = "main";
    c.image = "busybox";
    p.spec.containers.push_back(c);
    return p;
  }

  static const wire::container_status& main_of(const wire::sandbox_status& st) {
    BOOST_REQUIRE(!st.containers.empty());
    return st.containers.front().status;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(sim_backend, sim_fixture)

BOOST_AUTO_TEST_CASE(pods_run_with_distinct_ips_and_run_is_idempotent) {
  sim_node node(opts, nullptr, backoff);
  std::set<std::string> ips;
  for (int i = 0; i < 5; ++i) {
    auto st = node.run(make_pod("u" + std::to_string(i)), t0);
    BOOST_REQUIRE_MESSAGE(st.ok(), (st.ok() ? std::string() : st.err().message));
    BOOST_TEST(st->state == "ready");
    BOOST_TEST(!main_of(*st).state.running.started_at.empty());
    BOOST_TEST(st->pod_ip_.rfind("10.77.0.", 0) == 0);
    BOOST_TEST(st->pod_ip_ != "10.77.0.1");  // the gateway is the node's
    ips.insert(st->pod_ip_);
  }
  BOOST_TEST(ips.size() == 5u);
  // The CIDR is full now.
  auto full = node.run(make_pod("u9"), t0);
  BOOST_REQUIRE(!full.ok());
  BOOST_TEST(full.err().code == errc::unavailable);
  // Same uid again: the same pod, not a second one.
  auto again = node.run(make_pod("u0"), t0 + 5s);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST(node.size() == 5u);
  // Removing frees the address.
  BOOST_TEST(!node.remove("u3"));
  BOOST_TEST(!fs::exists(pod_dir::root(opts.data_dir, "u3")));
  BOOST_TEST(node.run(make_pod("u9"), t0).ok());
}

BOOST_AUTO_TEST_CASE(a_finished_container_follows_the_restart_policy) {
  sim_node node(opts, nullptr, backoff);
  auto never = make_pod("n", "Never");
  never.metadata.annotations["sim.deckhand.io/run-ms"] = "100";
  never.metadata.annotations["sim.deckhand.io/exit-code"] = "3";
  BOOST_REQUIRE(node.run(never, t0).ok());
  BOOST_REQUIRE(node.next_wakeup());
  BOOST_TEST((*node.next_wakeup() - t0 == 100ms));
  node.tick(t0 + 100ms);
  auto st = *node.status("n");
  BOOST_TEST(main_of(st).state.terminated.exit_code == 3);
  BOOST_TEST(main_of(st).state.terminated.reason == "Error");
  BOOST_TEST(main_of(st).restart_count == 0);

  auto always = make_pod("a", "Always");
  always.metadata.annotations["sim.deckhand.io/run-ms"] = "0";
  BOOST_REQUIRE(node.run(always, t0).ok());
  // It exits at once and ends up waiting in back-off.
  node.tick(t0 + 1ms);
  st = *node.status("a");
  BOOST_TEST(main_of(st).state.waiting.reason == "CrashLoopBackOff");
  BOOST_TEST(main_of(st).last_state.terminated.reason == "Completed");
  auto before = main_of(st).restart_count;
  // Nothing happens before the back-off is over...
  node.tick(t0 + 500ms);
  BOOST_TEST(main_of(*node.status("a")).restart_count == before);
  // ...and the next restart comes within the back-off's maximum.
  for (auto t = t0 + 1ms; t < t0 + 5s; t += 50ms)
    node.tick(t);
  BOOST_TEST(main_of(*node.status("a")).restart_count > before);
}

BOOST_AUTO_TEST_CASE(stop_waits_for_sigterm_and_kills_at_the_deadline) {
  sim_node node(opts, nullptr, backoff);
  auto quick = make_pod("q");
  BOOST_REQUIRE(node.run(quick, t0).ok());
  // Exits on SIGTERM at once: 128 + 15.
  auto done = node.stop("q", 2, 7, t0 + 1s);
  std::vector<std::pair<uint64_t, wire::sandbox_status>> finished;
  if (done) {
    finished.emplace_back(7, *done);
  } else {
    finished = node.take_finished_stops();
  }
  BOOST_REQUIRE_EQUAL(finished.size(), 1u);
  BOOST_TEST(finished[0].first == 7u);
  BOOST_TEST(finished[0].second.state == "stopped");
  BOOST_TEST(main_of(finished[0].second).state.terminated.exit_code == 143);

  auto slow = make_pod("s");
  slow.metadata.annotations["sim.deckhand.io/term-ms"] = "60000";
  BOOST_REQUIRE(node.run(slow, t0).ok());
  BOOST_TEST(!node.stop("s", 2, 8, t0 + 1s).has_value());
  BOOST_TEST(node.take_finished_stops().empty());
  node.tick(t0 + 2s);
  BOOST_TEST(node.take_finished_stops().empty());
  // The grace period (2 s) ends: SIGKILL, 137.
  node.tick(t0 + 3s + 1ms);
  auto f = node.take_finished_stops();
  BOOST_REQUIRE_EQUAL(f.size(), 1u);
  BOOST_TEST(f[0].first == 8u);
  BOOST_TEST(main_of(f[0].second).state.terminated.exit_code == 137);
  // A stopped pod is never restarted, and a repeated stop answers at once.
  node.tick(t0 + 60s);
  BOOST_TEST(main_of(*node.status("s")).restart_count == 0);
  BOOST_TEST(node.stop("s", 2, 9, t0 + 61s).has_value());
  // An unknown pod is stopped already.
  auto unknown = node.stop("nope", 2, 10, t0);
  BOOST_REQUIRE(unknown.has_value());
  BOOST_TEST(unknown->state == "stopped");
}

BOOST_AUTO_TEST_CASE(a_restarted_runtime_takes_its_simulated_pods_back) {
  std::string ip;
  int32_t c_restarts = -1;
  {
    sim_node node(opts, nullptr, backoff);
    auto st = node.run(make_pod("r"), t0);
    BOOST_REQUIRE(st.ok());
    ip = st->pod_ip_;
    auto crash = make_pod("c", "Always");
    crash.metadata.annotations["sim.deckhand.io/run-ms"] = "10";
    BOOST_REQUIRE(node.run(crash, t0).ok());
    for (auto t = t0; t < t0 + 3s; t += 10ms)
      node.tick(t);
    c_restarts = main_of(*node.status("c")).restart_count;
    BOOST_TEST(c_restarts >= 1);
  }
  sim_node node(opts, nullptr, backoff);
  node.recover(t0 + 1s);
  BOOST_TEST(node.size() == 2u);
  auto st = node.status("r");
  BOOST_REQUIRE(st.has_value());
  // Still running, never restarted, same address.
  BOOST_TEST(!main_of(*st).state.running.started_at.empty());
  BOOST_TEST(main_of(*st).restart_count == 0);
  BOOST_TEST(st->pod_ip_ == ip);
  auto c = node.status("c");
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(main_of(*c).restart_count >= c_restarts);
  // A new pod does not get a recovered pod's address.
  auto other = node.run(make_pod("o"), t0 + 2s);
  BOOST_REQUIRE(other.ok());
  BOOST_TEST(other->pod_ip_ != ip);
  BOOST_TEST(other->pod_ip_ != c->pod_ip_);
}

BOOST_AUTO_TEST_CASE(backoff_comes_from_the_supervisor_flags) {
  auto b = backoff_from_args({"--backoff-initial-ms=50", "--backoff-max-ms", "200"});
  BOOST_REQUIRE(b.ok());
  BOOST_TEST(b->initial.count() == 50);
  BOOST_TEST(b->max.count() == 200);
  BOOST_TEST(!backoff_from_args({"--backoff-initial-ms=0"}).ok());
  BOOST_TEST(!backoff_from_args({"--backoff-initial-ms=abc"}).ok());
}

BOOST_AUTO_TEST_SUITE_END()

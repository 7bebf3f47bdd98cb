#define BOOST_TEST_MODULE deckhand_kubelet_node
#include <boost/test/unit_test.hpp>

/// The kubelet's node: allocatable and node conditions (node_status), pod
/// admission (admission), the eviction manager's signals, ranking and
/// messages (eviction), and the node status and eviction actors under CAF's
/// test coordinator (virtual time; fake API server / runtime request hooks).

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "deckhand/host/caf_glue.hpp"
#include "deckhand/kubelet/admission.hpp"
#include "deckhand/kubelet/event_recorder.hpp"
#include "deckhand/kubelet/eviction.hpp"
#include "deckhand/kubelet/node_status.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/wire.hpp"

using namespace deckhand;
using namespace deckhand::kubelet;
using namespace std::chrono_literals;

namespace {

constexpr int64_t Ki = 1024, Mi = 1024 * Ki, Gi = 1024 * Mi;

wire::container container(const std::string& name, wire::string_map requests = {},
                          wire::string_map limits = {}) {
  wire::container c;
  c.name = name;
  c.image = "busybox";
  c.resources.requests = std::move(requests);
  c.resources.limits = std::move(limits);
  return c;
}

wire::pod pod(const std::string& name, std::vector<wire::container> cs) {
  wire::pod p;
  p.metadata.name = name;
  p.metadata.namespace_ = "default";
  p.metadata.uid = "uid-" + name;
  p.spec.containers = std::move(cs);
  return p;
}

resource_amounts alloc(int64_t cpu_milli, int64_t memory, int64_t pods = 110) {
  resource_amounts a;
  a.cpu_milli = cpu_milli;
  a.memory = memory;
  a.ephemeral_storage = 100 * Gi;
  a.pods = pods;
  return a;
}

}  // namespace

// -- node_status: parsing, allocatable, conditions ---------------------------------

BOOST_AUTO_TEST_CASE(eviction_thresholds_parse_like_kubernetes) {
  auto d = default_eviction_thresholds();
  BOOST_REQUIRE_EQUAL(d.size(), 2u);
  BOOST_TEST(d[0].signal == "memory.available");
  BOOST_TEST(d[0].quantity == 100 * Mi);
  BOOST_TEST(d[1].signal == "nodefs.available");
  BOOST_TEST(d[1].percentage == 0.10);
  BOOST_TEST(d[1].value_for(1000) == 100);

  auto t = parse_eviction_thresholds(" memory.available<1000Ti , pid.available<5% ");
  BOOST_REQUIRE(t.ok());
  BOOST_TEST(t->at(0).quantity == int64_t{1000} * 1024 * Gi);
  BOOST_TEST(t->at(0).text == "1000Ti");
  BOOST_TEST(t->at(1).signal == "pid.available");
  BOOST_TEST(parse_eviction_thresholds("").ok());
  BOOST_TEST(parse_eviction_thresholds("").value().empty());
  BOOST_TEST(!parse_eviction_thresholds("memory.available>1Gi").ok());
  BOOST_TEST(!parse_eviction_thresholds("memory.free<1Gi").ok());
  BOOST_TEST(!parse_eviction_thresholds("nodefs.available<150%").ok());
  BOOST_TEST(!parse_eviction_thresholds("memory.available<lots").ok());
  BOOST_TEST(!parse_eviction_thresholds("memory.available<1Gi,memory.available<2Gi").ok());
}

BOOST_AUTO_TEST_CASE(allocatable_is_capacity_minus_reservations_and_hard_thresholds) {
  node_status_config cfg;
  cfg.capacity_override = resource_amounts{4000, 8 * Gi, 100 * Gi, 0};
  cfg.kube_reserved = *parse_reserved("cpu=100m,memory=256Mi");
  cfg.system_reserved = *parse_reserved("cpu=0.2,ephemeral-storage=1Gi,pid=100");
  cfg.max_pods = 20;
  auto cap = node_capacity(cfg, {});
  BOOST_TEST(cap.pods == 20);
  auto a = node_allocatable(cfg, cap);
  BOOST_TEST(a.cpu_milli == 3700);
  BOOST_TEST(a.memory == 8 * Gi - 256 * Mi - 100 * Mi);
  BOOST_TEST(a.ephemeral_storage == 100 * Gi - 1 * Gi - 10 * Gi);
  BOOST_TEST(a.pods == 20);
  BOOST_TEST(!parse_reserved("gpu=1").ok());
  BOOST_TEST(!parse_reserved("cpu").ok());

  auto n = make_node({"node-a", "10.0.0.5"}, cap, a);
  BOOST_TEST(n.metadata.name == "node-a");
  BOOST_TEST(n.status.capacity["cpu"] == "4");
  BOOST_TEST(n.status.capacity["memory"] == "8388608Ki");
  BOOST_TEST(n.status.capacity["ephemeral-storage"] == "104857600Ki");
  BOOST_TEST(n.status.capacity["pods"] == "20");
  BOOST_TEST(n.status.allocatable["cpu"] == "3700m");
  BOOST_TEST(n.status.allocatable["memory"] == std::to_string((8 * Gi - 356 * Mi) / Ki) + "Ki");
  BOOST_REQUIRE_EQUAL(n.status.addresses.size(), 2u);
  BOOST_TEST(n.status.addresses[0].type == "InternalIP");
  BOOST_TEST(n.status.addresses[0].address == "10.0.0.5");
  BOOST_TEST(n.status.addresses[1].type == "Hostname");
  BOOST_TEST(!n.status.node_info.kernel_version.empty());
  BOOST_TEST(n.status.node_info.operating_system == "linux");
}

BOOST_AUTO_TEST_CASE(quantities_print_as_kubernetes_does) {
  BOOST_TEST(format_binary_si(100 * Mi) == "100Mi");
  BOOST_TEST(format_binary_si(51200 * Ki) == "50Mi");
  BOOST_TEST(format_binary_si(51201 * Ki) == "51201Ki");
  BOOST_TEST(format_binary_si(int64_t{1000} * 1024 * Gi) == "1000Ti");
  BOOST_TEST(format_binary_si(1000) == "1000");
  BOOST_TEST(format_binary_si(0) == "0");
  BOOST_TEST(format_cpu(2000) == "2");
  BOOST_TEST(format_cpu(1500) == "1500m");
  BOOST_TEST(format_bytes(1536) == "1536");
  BOOST_TEST(format_bytes(2048) == "2Ki");
}

BOOST_AUTO_TEST_CASE(node_conditions_keep_transition_times_until_they_flip) {
  wire::node_status st;
  set_node_conditions(st, {}, {}, "2024-05-01T12:00:00Z");
  BOOST_REQUIRE_EQUAL(st.conditions.size(), 4u);
  std::vector<std::string> types;
  for (const auto& c : st.conditions)
    types.push_back(c.type);
  BOOST_TEST(
      types == (std::vector<std::string>{"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"}),
      boost::test_tools::per_element());
  BOOST_TEST(st.conditions[0].status == "False");
  BOOST_TEST(st.conditions[0].reason == "KubeletHasSufficientMemory");
  BOOST_TEST(st.conditions[0].message == "kubelet has sufficient memory available");
  BOOST_TEST(st.conditions[1].reason == "KubeletHasNoDiskPressure");
  BOOST_TEST(st.conditions[2].reason == "KubeletHasSufficientPID");
  BOOST_TEST(st.conditions[3].status == "True");
  BOOST_TEST(st.conditions[3].reason == "KubeletReady");
  BOOST_TEST(st.conditions[3].message == "kubelet is posting ready status");

  wire::node_status later;
  set_node_conditions(later, st.conditions, {}, "2024-05-01T12:00:10Z");
  BOOST_TEST(later.conditions[0].last_transition_time == "2024-05-01T12:00:00Z");
  BOOST_TEST(later.conditions[0].last_heartbeat_time == "2024-05-01T12:00:10Z");
  BOOST_TEST(!node_status_changed(st, later));  // only heartbeats moved

  wire::node_status pressed;
  set_node_conditions(pressed, later.conditions, {"MemoryPressure"}, "2024-05-01T12:00:20Z");
  BOOST_TEST(pressed.conditions[0].status == "True");
  BOOST_TEST(pressed.conditions[0].reason == "KubeletHasInsufficientMemory");
  BOOST_TEST(pressed.conditions[0].message == "kubelet has insufficient memory available");
  BOOST_TEST(pressed.conditions[0].last_transition_time == "2024-05-01T12:00:20Z");
  BOOST_TEST(pressed.conditions[3].last_transition_time == "2024-05-01T12:00:00Z");
  BOOST_TEST(node_status_changed(later, pressed));

  wire::node_status disk;
  set_node_conditions(disk, pressed.conditions, {"DiskPressure", "PIDPressure"},
                      "2024-05-01T12:00:30Z");
  BOOST_TEST(disk.conditions[0].status == "False");
  BOOST_TEST(disk.conditions[0].last_transition_time == "2024-05-01T12:00:30Z");
  BOOST_TEST(disk.conditions[1].reason == "KubeletHasDiskPressure");
  BOOST_TEST(disk.conditions[2].reason == "KubeletHasInsufficientPID");
}

// -- admission ------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(pod_requests_follow_kubernetes_init_and_sidecar_rules) {
  wire::pod_spec spec;
  spec.containers = {container("a", {{"cpu", "100m"}, {"memory", "64Mi"}}),
                     container("b", {}, {{"cpu", "200m"}})};  // limit only: request = limit
  auto r = pod_requests(spec);
  BOOST_TEST(r.cpu_milli == 300);
  BOOST_TEST(r.memory == 64 * Mi);
  // A big init container dominates.
  spec.init_containers = {container("init", {{"cpu", "1"}, {"memory", "8Mi"}})};
  r = pod_requests(spec);
  BOOST_TEST(r.cpu_milli == 1000);
  BOOST_TEST(r.memory == 64 * Mi);
  // A sidecar adds to the app containers and to later init containers.
  auto sidecar = container("sidecar", {{"cpu", "50m"}, {"memory", "10Mi"}});
  sidecar.restart_policy = "Always";
  spec.init_containers = {sidecar, container("init", {{"cpu", "1"}})};
  r = pod_requests(spec);
  BOOST_TEST(r.cpu_milli == 1050);
  BOOST_TEST(r.memory == 74 * Mi);
  BOOST_TEST(!is_best_effort(spec));
  wire::pod_spec empty;
  empty.containers = {container("x")};
  BOOST_TEST(is_best_effort(empty));
}

BOOST_AUTO_TEST_CASE(admission_rejects_what_does_not_fit_with_kubernetes_reasons) {
  auto running = pod("running", {container("app", {{"cpu", "500m"}, {"memory", "100Mi"}})});
  std::vector<const wire::pod*> active = {&running};
  auto node = alloc(1000, 1 * Gi, 3);

  auto big_cpu = pod("big", {container("app", {{"cpu", "2"}})});
  auto r = admit_pod(big_cpu, active, node, {});
  BOOST_TEST(!r.admit);
  BOOST_TEST(r.reason == "OutOfcpu");
  BOOST_TEST(r.message ==
             "Node didn't have enough resource: cpu, requested: 2000, used: 500, capacity: 1000");
  auto st = rejected_status(r);
  BOOST_TEST(st.phase == "Failed");
  BOOST_TEST(st.reason == "OutOfcpu");
  BOOST_TEST(st.message == "Pod was rejected: " + r.message);
  BOOST_TEST(rejected_by_kubelet(st));

  auto big_mem = pod("mem", {container("app", {{"memory", "1Gi"}})});
  r = admit_pod(big_mem, active, node, {});
  BOOST_TEST(r.reason == "OutOfmemory");
  BOOST_TEST(r.message == "Node didn't have enough resource: memory, requested: 1073741824, "
                          "used: 104857600, capacity: 1073741824");

  auto fits = pod("fits", {container("app", {{"cpu", "500m"}, {"memory", "900Mi"}})});
  BOOST_TEST(admit_pod(fits, active, node, {}).admit);
  BOOST_TEST(admit_pod(pod("be", {container("app")}), active, node, {}).admit);

  auto second = pod("second", {container("app")});
  std::vector<const wire::pod*> full = {&running, &second, &fits};
  r = admit_pod(pod("one-more", {container("app")}), full, node, {});
  BOOST_TEST(r.reason == "OutOfpods");
  BOOST_TEST(r.message ==
             "Node didn't have enough resource: pods, requested: 1, used: 3, capacity: 3");
}

BOOST_AUTO_TEST_CASE(admission_under_pressure_follows_the_eviction_admit_handler) {
  auto node = alloc(4000, 4 * Gi);
  auto be = pod("be", {container("app")});
  auto burstable = pod("bu", {container("app", {{"memory", "10Mi"}})});
  auto r = admit_pod(be, {}, node, {"MemoryPressure"});
  BOOST_TEST(!r.admit);
  BOOST_TEST(r.reason == "Evicted");
  BOOST_TEST(r.message == "The node had condition: [MemoryPressure]. ");
  BOOST_TEST(rejected_status(r).message ==
             "Pod was rejected: The node had condition: [MemoryPressure]. ");
  BOOST_TEST(admit_pod(burstable, {}, node, {"MemoryPressure"}).admit);
  r = admit_pod(burstable, {}, node, {"DiskPressure"});
  BOOST_TEST(!r.admit);
  BOOST_TEST(r.message == "The node had condition: [DiskPressure]. ");
  r = admit_pod(burstable, {}, node, {"DiskPressure", "MemoryPressure"});
  BOOST_TEST(r.message == "The node had condition: [DiskPressure MemoryPressure]. ");
}

// -- eviction: signals, ranking, messages -------------------------------------------

BOOST_AUTO_TEST_CASE(memory_available_uses_the_working_set) {
  node_stats s;
  BOOST_TEST(memory_from_meminfo("MemTotal:       1000 kB\nMemFree:         200 kB\n"
                                 "MemAvailable:    700 kB\nInactive(file):  300 kB\n",
                                 s));
  BOOST_TEST(s.memory_capacity == 1000 * 1024);
  // usage 800 kB, working set 500 kB, available 500 kB.
  BOOST_TEST(s.memory_available == 500 * 1024);
  BOOST_TEST(!memory_from_meminfo("garbage", s));
  auto real = read_node_stats("/");
  BOOST_TEST(real.memory_capacity > 0);
  BOOST_TEST(real.memory_available > 0);
  BOOST_TEST(real.nodefs_capacity > 0);
}

BOOST_AUTO_TEST_CASE(thresholds_are_met_below_their_quantity_or_percentage) {
  auto hard =
      *parse_eviction_thresholds("memory.available<100Mi,nodefs.available<10%,pid.available<1000");
  node_stats s;
  s.memory_capacity = 8 * Gi;
  s.memory_available = 50 * Mi;
  s.nodefs_capacity = 100 * Gi;
  s.nodefs_available = 20 * Gi;
  s.pid_capacity = 4096;
  s.pid_available = 100;
  auto met = thresholds_met(hard, s);
  BOOST_REQUIRE_EQUAL(met.size(), 2u);
  BOOST_TEST(met[0].condition == "MemoryPressure");
  BOOST_TEST(met[0].resource == "memory");
  BOOST_TEST(met[0].quantity == 100 * Mi);
  BOOST_TEST(met[1].condition == "PIDPressure");
  s.nodefs_available = 5 * Gi;
  met = thresholds_met(hard, s);
  BOOST_REQUIRE_EQUAL(met.size(), 3u);
  BOOST_TEST(met[1].condition == "DiskPressure");
  BOOST_TEST(met[1].quantity == 10 * Gi);
  // Unknown signals never count.
  BOOST_TEST(thresholds_met(hard, node_stats{}).empty());
}

BOOST_AUTO_TEST_CASE(pods_are_ranked_and_described_as_kubernetes_does) {
  auto guaranteed = pod("g", {container("app", {{"cpu", "1"}, {"memory", "64Mi"}},
                                        {{"cpu", "1"}, {"memory", "64Mi"}})});
  auto burstable = pod("b", {container("app", {{"memory", "64Mi"}})});
  auto best_effort = pod("e", {container("app")});
  std::vector<const wire::pod*> pods = {&guaranteed, &burstable, &best_effort};

  // Without usage: BestEffort, Burstable, Guaranteed.
  auto ranked = rank_for_eviction("memory", pods, {});
  BOOST_TEST(ranked[0]->metadata.name == "e");
  BOOST_TEST(ranked[1]->metadata.name == "b");
  BOOST_TEST(ranked[2]->metadata.name == "g");

  // With usage: above-request first, then by usage above request.
  pod_usages usage;
  usage["uid-g"] = {10 * Mi, {{"app", 10 * Mi}}};
  usage["uid-b"] = {100 * Mi, {{"app", 100 * Mi}}};  // 36Mi above its request
  usage["uid-e"] = {5 * Mi, {{"app", 5 * Mi}}};      // 5Mi above
  ranked = rank_for_eviction("memory", pods, usage);
  BOOST_TEST(ranked[0]->metadata.name == "b");
  BOOST_TEST(ranked[1]->metadata.name == "e");
  BOOST_TEST(ranked[2]->metadata.name == "g");
  // A pod without stats goes first.
  usage.erase("uid-g");
  ranked = rank_for_eviction("memory", pods, usage);
  BOOST_TEST(ranked[0]->metadata.name == "g");

  threshold_met met;
  met.threshold = parse_eviction_thresholds("memory.available<100Mi")->front();
  met.quantity = 100 * Mi;
  met.available = 50 * Mi;
  met.resource = "memory";
  met.condition = "MemoryPressure";
  BOOST_TEST(eviction_message(met, guaranteed, usage) ==
             "The node was low on resource: memory. Threshold quantity: 100Mi, available: "
             "50Mi. ");
  BOOST_TEST(eviction_message(met, best_effort, usage) ==
             "The node was low on resource: memory. Threshold quantity: 100Mi, available: "
             "50Mi. Container app was using 5Mi, request is 0, has larger consumption of "
             "memory. ");

  threshold_met disk;
  disk.threshold = parse_eviction_thresholds("nodefs.available<10%")->front();
  disk.quantity = 10 * Gi;
  disk.available = 5 * Gi;
  disk.resource = "ephemeral-storage";
  BOOST_TEST(eviction_message(disk, best_effort, usage) ==
             "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, "
             "available: 5Gi. ");

  wire::pod_status st;
  st.phase = "Running";
  mark_evicted(st, "low", "2024-05-01T12:00:00Z");
  BOOST_TEST(st.phase == "Failed");
  BOOST_TEST(st.reason == "Evicted");
  BOOST_TEST(st.message == "low");
  BOOST_REQUIRE_EQUAL(st.conditions.size(), 1u);
  BOOST_TEST(st.conditions[0].type == "DisruptionTarget");
  BOOST_TEST(st.conditions[0].reason == "TerminationByKubelet");
}

// -- actors under virtual time -------------------------------------------------------

namespace {

/// What the fake peers saw, shared with the actors' callbacks (test thread only).
struct recorded {
  std::vector<std::vector<std::string>> pressure;              // to listeners
  std::vector<std::pair<std::string, std::string>> evictions;  // uid, message
  std::vector<wire::event> events;
};

caf::behavior sink_actor(caf::event_based_actor*, std::shared_ptr<recorded> rec,
                         std::shared_ptr<std::vector<wire::pod>> pods) {
  return {
      [=](pods_atom) { return *pods; },
      [=](pressure_atom, const std::vector<std::string>& p) { rec->pressure.push_back(p); },
      [=](evict_atom, const std::string& uid, const std::string& message) {
        rec->evictions.emplace_back(uid, message);
        // The evicted pod leaves the active set once its worker finishes.
        std::erase_if(*pods, [&](const wire::pod& p) { return p.metadata.uid == uid; });
      },
      [=](record_atom, const wire::event& ev) { rec->events.push_back(ev); },
  };
}

struct sent_request {
  wire::envelope env;
  transport::reply_handler reply;
};

struct actor_fixture {
  actor_fixture() {
    sys_cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(sys_cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
  }

  ~actor_fixture() {
    for (auto& a : actors)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    actors.clear();
    sched->run();
  }

  void advance(std::chrono::milliseconds d) {
    // Step in small pieces so that timers set by handlers fire in order.
    for (auto done = 0ms; done < d; done += 100ms) {
      sched->advance_time(std::min(100ms, d - done));
      sched->run();
    }
  }

  auto request_hook() {
    return [this](int, wire::envelope env, std::chrono::milliseconds,
                  transport::reply_handler on_reply) {
      requests.push_back({std::move(env), std::move(on_reply)});
    };
  }

  /// Answers every pending request of `type` with `reply` (an ack if unset).
  template <class Reply = wire::ack>
  size_t answer_all(uint16_t type, Reply reply = {}) {
    size_t n = 0;
    std::deque<sent_request> rest;
    auto pending = std::move(requests);
    requests.clear();
    for (auto& r : pending) {
      if (r.env.hdr.type == type) {
        r.reply(wire::make_envelope(reply));
        ++n;
      } else {
        rest.push_back(std::move(r));
      }
    }
    for (auto& r : rest)
      requests.push_back(std::move(r));
    sched->run();
    return n;
  }

  size_t fail_all(uint16_t type, error e) {
    size_t n = 0;
    std::deque<sent_request> rest;
    auto pending = std::move(requests);
    requests.clear();
    for (auto& r : pending) {
      if (r.env.hdr.type == type) {
        r.reply(e);
        ++n;
      } else {
        rest.push_back(std::move(r));
      }
    }
    for (auto& r : rest)
      requests.push_back(std::move(r));
    sched->run();
    return n;
  }

  size_t pending(uint16_t type) const {
    size_t n = 0;
    for (const auto& r : requests)
      n += r.env.hdr.type == type;
    return n;
  }

  /// The node of the last pending heartbeat.
  wire::node last_heartbeat() const {
    for (auto it = requests.rbegin(); it != requests.rend(); ++it)
      if (it->env.hdr.type == wire::node_heartbeat::type_id)
        return wire::decode_as<wire::node_heartbeat>(it->env)->node_;
    BOOST_FAIL("no heartbeat pending");
    return {};
  }

  caf::actor_system_config sys_cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::vector<caf::actor> actors;
  std::deque<sent_request> requests;
};

const wire::node_condition& condition(const wire::node& n, const std::string& type) {
  for (const auto& c : n.status.conditions)
    if (c.type == type)
      return c;
  static wire::node_condition none;
  BOOST_FAIL("no condition " + type);
  return none;
}

}  // namespace

BOOST_FIXTURE_TEST_CASE(node_status_is_sent_when_changed_and_the_lease_every_period,
                        actor_fixture) {
  node_status_config cfg;
  cfg.capacity_override = resource_amounts{2000, 4 * Gi, 50 * Gi, 0};
  cfg.lease_renew_period = 10s;
  cfg.status_report_frequency = 60s;
  auto wall = std::make_shared<std::chrono::system_clock::time_point>(
      std::chrono::system_clock::from_time_t(1714564800));  // 2024-05-01T12:00:00Z
  cfg.wall_clock = [wall] { return *wall; };
  node_status_sink sink{make_api_client(request_hook(), 3), 5s};
  auto node = spawn_node_status(*sys, sink, {"node-a", "10.0.0.5"}, cfg, {}, 10s);
  actors.push_back(node);
  sched->run();
  // Registration and the first lease renewal at once.
  BOOST_REQUIRE_EQUAL(pending(wire::node_heartbeat::type_id), 1u);
  BOOST_REQUIRE_EQUAL(pending(wire::lease_renew::type_id), 1u);
  auto first = last_heartbeat();
  BOOST_TEST(first.status.allocatable["memory"] == std::to_string((4 * Gi - 100 * Mi) / Ki) + "Ki");
  BOOST_TEST(condition(first, "Ready").status == "True");
  BOOST_TEST(condition(first, "Ready").last_transition_time == "2024-05-01T12:00:00Z");
  for (const auto& r : requests)
    if (r.env.hdr.type == wire::lease_renew::type_id) {
      auto l = wire::decode_as<wire::lease_renew>(r.env);
      BOOST_TEST(l->node_name == "node-a");
      BOOST_TEST(l->holder_identity == "node-a");
      BOOST_TEST(l->lease_duration_seconds == 40);
    }
  answer_all(wire::node_heartbeat::type_id);
  answer_all(wire::lease_renew::type_id);

  // Nothing changed: no status for the next periods, but the lease is renewed.
  *wall += 30s;
  advance(30s);
  BOOST_TEST(pending(wire::node_heartbeat::type_id) == 0u);
  BOOST_TEST(answer_all(wire::lease_renew::type_id) == 1u);
  advance(10s);
  BOOST_TEST(answer_all(wire::lease_renew::type_id) == 1u);

  // Pressure: sent at once, with a new transition time for MemoryPressure only.
  *wall += 5s;
  caf::anon_send(node, pressure_atom::value, std::vector<std::string>{"MemoryPressure"});
  sched->run();
  BOOST_REQUIRE_EQUAL(pending(wire::node_heartbeat::type_id), 1u);
  auto pressed = last_heartbeat();
  BOOST_TEST(condition(pressed, "MemoryPressure").status == "True");
  BOOST_TEST(condition(pressed, "MemoryPressure").reason == "KubeletHasInsufficientMemory");
  BOOST_TEST(condition(pressed, "MemoryPressure").last_transition_time == "2024-05-01T12:00:35Z");
  BOOST_TEST(condition(pressed, "Ready").last_transition_time == "2024-05-01T12:00:00Z");
  BOOST_TEST(condition(pressed, "Ready").last_heartbeat_time == "2024-05-01T12:00:35Z");
  answer_all(wire::node_heartbeat::type_id);

  // Unchanged again: the report frequency (60 s) forces one.
  advance(50s);
  BOOST_TEST(pending(wire::node_heartbeat::type_id) == 0u);
  advance(20s);
  BOOST_TEST(pending(wire::node_heartbeat::type_id) == 1u);
  answer_all(wire::node_heartbeat::type_id);

  // A failed status update is retried within a second.
  caf::anon_send(node, pressure_atom::value, std::vector<std::string>{});
  sched->run();
  BOOST_TEST(fail_all(wire::node_heartbeat::type_id, error{errc::unavailable, "down"}) == 1u);
  advance(1s);
  BOOST_TEST(pending(wire::node_heartbeat::type_id) == 1u);
}

BOOST_FIXTURE_TEST_CASE(an_api_server_without_leases_gets_node_status_every_period, actor_fixture) {
  node_status_config cfg;
  cfg.capacity_override = resource_amounts{2000, 4 * Gi, 50 * Gi, 0};
  node_status_sink sink{make_api_client(request_hook(), 3), 5s};
  actors.push_back(spawn_node_status(*sys, sink, {"node-a", ""}, cfg, {}, 10s));
  sched->run();
  answer_all(wire::node_heartbeat::type_id);
  BOOST_TEST(fail_all(wire::lease_renew::type_id,
                      error{errc::invalid, "message type 18 is not served by the API server"}) ==
             1u);
  for (int i = 0; i < 3; ++i) {
    advance(10s);
    BOOST_TEST(answer_all(wire::node_heartbeat::type_id) == 1u);
    BOOST_TEST(pending(wire::lease_renew::type_id) == 0u);
  }
}

BOOST_FIXTURE_TEST_CASE(the_eviction_manager_evicts_one_pod_per_period_best_effort_first,
                        actor_fixture) {
  auto rec = std::make_shared<recorded>();
  auto pods = std::make_shared<std::vector<wire::pod>>();
  pods->push_back(pod("guaranteed", {container("app", {{"cpu", "1"}, {"memory", "64Mi"}},
                                               {{"cpu", "1"}, {"memory", "64Mi"}})}));
  pods->push_back(pod("burstable", {container("app", {{"memory", "64Mi"}})}));
  pods->push_back(pod("besteffort", {container("app")}));
  auto sink = sys->spawn(sink_actor, rec, pods);
  actors.push_back(sink);

  auto stats = std::make_shared<node_stats>();
  stats->memory_capacity = 4 * Gi;
  stats->memory_available = 2 * Gi;
  eviction_deps deps;
  deps.read_stats = [stats] { return *stats; };
  deps.runtime = make_runtime_client(request_hook(), -1);
  deps.pod_source = sink;
  deps.evict_target = sink;
  deps.recorder = sink;
  deps.pressure_listeners = {sink};
  eviction_config cfg;
  cfg.hard = *parse_eviction_thresholds("memory.available<100Mi");
  cfg.monitoring_period = 10s;
  cfg.pressure_transition_period = 30s;
  actors.push_back(spawn_eviction_manager(*sys, deps, cfg));
  sched->run();

  // Plenty of memory: nothing happens, no pressure reported.
  advance(20s);
  BOOST_TEST(rec->pressure.empty());
  BOOST_TEST(rec->evictions.empty());
  BOOST_TEST(requests.empty());

  // Low memory: at the next observation MemoryPressure, then one eviction
  // once the runtime's stats are in.
  stats->memory_available = 50 * Mi;
  advance(10s);
  BOOST_REQUIRE_EQUAL(rec->pressure.size(), 1u);
  BOOST_TEST(rec->pressure[0] == std::vector<std::string>{"MemoryPressure"},
             boost::test_tools::per_element());
  BOOST_REQUIRE_EQUAL(pending(wire::container_stats_request::type_id), 1u);
  wire::container_stats_reply usage;
  for (const auto& [name, ws] : std::vector<std::pair<std::string, int64_t>>{
           {"guaranteed", 10 * Mi}, {"burstable", 20 * Mi}, {"besteffort", 1 * Mi}}) {
    wire::container_stats s;
    s.uid = "uid-" + name;
    s.container = "app";
    s.memory_working_set_bytes = static_cast<uint64_t>(ws);
    usage.stats.push_back(s);
  }
  answer_all(wire::container_stats_request::type_id, usage);
  BOOST_REQUIRE_EQUAL(rec->evictions.size(), 1u);
  BOOST_TEST(rec->evictions[0].first == "uid-besteffort");
  BOOST_TEST(rec->evictions[0].second ==
             "The node was low on resource: memory. Threshold quantity: 100Mi, available: "
             "50Mi. Container app was using 1Mi, request is 0, has larger consumption of "
             "memory. ");
  BOOST_REQUIRE_EQUAL(rec->events.size(), 1u);
  BOOST_TEST(rec->events[0].reason == "Evicted");
  BOOST_TEST(rec->events[0].type == "Warning");
  BOOST_TEST(rec->events[0].involved_object.name == "besteffort");

  // Nothing more until the next period.
  advance(9s);
  BOOST_TEST(pending(wire::container_stats_request::type_id) == 0u);
  advance(1s);
  answer_all(wire::container_stats_request::type_id, usage);
  BOOST_REQUIRE_EQUAL(rec->evictions.size(), 2u);
  BOOST_TEST(rec->evictions[1].first == "uid-burstable");  // Burstable before Guaranteed

  // Memory recovers: no more evictions; the condition stays for the
  // transition period (30 s), then goes.
  stats->memory_available = 2 * Gi;
  advance(10s);
  BOOST_TEST(pending(wire::container_stats_request::type_id) == 0u);
  BOOST_TEST(rec->evictions.size() == 2u);
  BOOST_TEST(rec->pressure.size() == 1u);
  advance(10s);  // 20 s since last met
  BOOST_TEST(rec->pressure.size() == 1u);
  advance(10s);  // 30 s: the transition period is over
  BOOST_REQUIRE_EQUAL(rec->pressure.size(), 2u);
  BOOST_TEST(rec->pressure[1].empty());
}

BOOST_FIXTURE_TEST_CASE(the_eviction_manager_ranks_without_stats_when_the_runtime_fails,
                        actor_fixture) {
  auto rec = std::make_shared<recorded>();
  auto pods = std::make_shared<std::vector<wire::pod>>();
  pods->push_back(pod("burstable", {container("app", {{"memory", "64Mi"}})}));
  pods->push_back(pod("besteffort", {container("app")}));
  auto sink = sys->spawn(sink_actor, rec, pods);
  actors.push_back(sink);
  eviction_deps deps;
  deps.read_stats = [] {
    node_stats s;
    s.nodefs_capacity = 100 * Gi;
    s.nodefs_available = 1 * Gi;
    return s;
  };
  deps.runtime = make_runtime_client(request_hook(), -1);
  deps.pod_source = sink;
  deps.evict_target = sink;
  deps.pressure_listeners = {sink};
  eviction_config cfg;  // defaults: nodefs.available<10%
  cfg.monitoring_period = 1s;
  actors.push_back(spawn_eviction_manager(*sys, deps, cfg));
  sched->run();
  advance(1s);
  BOOST_REQUIRE_EQUAL(rec->pressure.size(), 1u);
  BOOST_TEST(rec->pressure[0] == std::vector<std::string>{"DiskPressure"},
             boost::test_tools::per_element());
  fail_all(wire::container_stats_request::type_id, error{errc::unavailable, "runtime down"});
  BOOST_REQUIRE_EQUAL(rec->evictions.size(), 1u);
  BOOST_TEST(rec->evictions[0].first == "uid-besteffort");
  BOOST_TEST(rec->evictions[0].second ==
             "The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, "
             "available: 1Gi. ");
}

// Conformance: the kubelet's node on a real node (deckhand up, runc
// containers): the Node object and its conditions, the node Lease, pod
// admission (OutOfcpu, OutOfmemory, OutOfpods) and node-pressure eviction,
// read through the API server with the real kubectl where it is installed
// (plain HTTP otherwise). Each case names the Kubernetes behaviour it checks.
//
// Two nodes: one with --max-pods=3 for the node, lease and admission cases,
// and one whose memory threshold is always crossed for eviction.
#define BOOST_TEST_MODULE conformance_node
#include <boost/test/unit_test.hpp>

#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "conformance.hpp"
#include "deckhand/common/paths.hpp"

using namespace deckhand::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

/// The fixture's kubelet arguments plus `extra` (a second `kubelet:` entry
/// under components replaces the first one's args).
std::string kubelet_args(const std::string& extra) {
  return "  kubelet:\n    args: [\"--relist-period-ms=200\", \"--node-status-period-ms=1000\", "
         "\"--feed-silence-ms=1000\", \"--node-name=test-node\", "
         "\"--lease-renew-period-ms=1000\"" +
         extra + "]\n";
}

/// The node of the node/lease/admission cases: at most 3 pods.
node& small_node() { return the_node(kubelet_args(", \"--max-pods=3\"")); }

/// `kubectl ARGS` against the node's API server (empty kubeconfig), or
/// nullopt-like exit code 127 when kubectl is not installed.
command_result kubectl(node& n, std::vector<std::string> args) {
  std::ifstream in(deckhand::paths::apiserver_url_file(n.data()));
  std::string url;
  std::getline(in, url);
  // Inside the data dir, which the fixture removes.
  auto dir = n.data() / "kubectl";
  std::filesystem::create_directories(dir);
  auto kubeconfig = (dir / "kubeconfig").string();
  std::ofstream(kubeconfig) << "";
  std::vector<std::string> argv = {"env",
                                   "KUBECONFIG=" + kubeconfig,
                                   "kubectl",
                                   "--server=" + url,
                                   "--cache-dir=" + (dir / "cache").string(),
                                   "--request-timeout=20s"};
  argv.insert(argv.end(), args.begin(), args.end());
  auto r = run_program(argv, 60s);
  BOOST_TEST_MESSAGE("kubectl ... -> " << r.exit_code << "\n" << r.out << r.err);
  return r;
}

/// GET of an API path as JSON (through kubectl get --raw).
json get_raw(node& n, const std::string& path) {
  auto r = kubectl(n, {"get", "--raw", path});
  if (r.exit_code != 0)
    return nullptr;
  try {
    return json::parse(r.out);
  } catch (...) {
    return nullptr;
  }
}

std::string pod_yaml(const std::string& name, const std::string& resources = {}) {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name +
         "}\nspec:\n  containers:\n  - name: app\n    image: " + image +
         "\n    command: [\"sleep\", \"100000\"]\n" + resources;
}

/// The events about a pod (all namespaces' events, filtered).
std::vector<json> pod_events(node& n, const std::string& pod) {
  std::vector<json> out;
  auto list = get_raw(n, "/api/v1/namespaces/default/events");
  if (list.is_null())
    return out;
  for (const auto& ev : list.value("items", json::array()))
    if (ev.value("/involvedObject/name"_json_pointer, "") == pod)
      out.push_back(ev);
  return out;
}

bool has_event(node& n, const std::string& pod, const std::string& reason) {
  for (const auto& ev : pod_events(n, pod))
    if (ev.value("reason", "") == reason)
      return true;
  return false;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(node_suite,
                      *deckhand::testing::skip_unless(deckhand::testing::containers(),
                                                      deckhand::testing::program("kubectl")))

// Kubernetes: the kubelet registers its Node with capacity (cpu, memory,
// pods = maxPods, ephemeral-storage), allocatable = capacity minus
// reservations and the hard eviction threshold, addresses (InternalIP or at
// least Hostname), nodeInfo, and the conditions MemoryPressure, DiskPressure,
// PIDPressure (False) and Ready (True, KubeletReady), as kubectl reads them.
BOOST_AUTO_TEST_CASE(node_has_capacity_allocatable_addresses_and_conditions) {
  auto& n = small_node();
  json node;
  BOOST_REQUIRE(eventually(
      [&] {
        auto r = kubectl(n, {"get", "node", "test-node", "-o", "json"});
        if (r.exit_code != 0)
          return false;
        node = json::parse(r.out);
        return condition(node, "Ready").value("status", "") == "True";
      },
      30s));
  const auto& cap = node["status"]["capacity"];
  const auto& alloc = node["status"]["allocatable"];
  BOOST_TEST(cap.value("pods", "") == "3");
  BOOST_TEST(alloc.value("pods", "") == "3");
  BOOST_TEST(!cap.value("cpu", "").empty());
  BOOST_TEST(!cap.value("ephemeral-storage", "").empty());
  auto ki = [](const std::string& q) { return std::stoll(q.substr(0, q.size() - 2)); };
  BOOST_REQUIRE(cap.value("memory", "").ends_with("Ki"));
  BOOST_REQUIRE(alloc.value("memory", "").ends_with("Ki"));
  // Allocatable memory: capacity minus the 100Mi hard eviction threshold.
  BOOST_TEST(ki(cap["memory"]) - ki(alloc["memory"]) == 100 * 1024);
  bool hostname = false;
  for (const auto& a : node["status"]["addresses"])
    if (a.value("type", "") == "Hostname")
      hostname = a.value("address", "") == "test-node";
  BOOST_TEST(hostname);
  BOOST_TEST(node["status"]["nodeInfo"].value("operatingSystem", "") == "linux");
  BOOST_TEST(!node["status"]["nodeInfo"].value("kernelVersion", "").empty());
  auto ready = condition(node, "Ready");
  BOOST_TEST(ready.value("reason", "") == "KubeletReady");
  BOOST_TEST(ready.value("message", "") == "kubelet is posting ready status");
  BOOST_TEST(!ready.value("lastHeartbeatTime", "").empty());
  BOOST_TEST(!ready.value("lastTransitionTime", "").empty());
  for (const auto& [type, reason] : std::vector<std::pair<std::string, std::string>>{
           {"MemoryPressure", "KubeletHasSufficientMemory"},
           {"DiskPressure", "KubeletHasNoDiskPressure"},
           {"PIDPressure", "KubeletHasSufficientPID"}}) {
    auto c = condition(node, type);
    BOOST_TEST(c.value("status", "") == "False", type);
    BOOST_TEST(c.value("reason", "") == reason, type);
  }
  auto table = kubectl(n, {"get", "nodes"});
  BOOST_TEST(table.exit_code == 0);
  BOOST_TEST(table.out.find("test-node") != std::string::npos);
}

// Kubernetes: the kubelet keeps a Lease kube-node-lease/NODE
// (coordination.k8s.io/v1) with holderIdentity = the node name and renews it
// (renewTime advances), and kubectl lists it.
BOOST_AUTO_TEST_CASE(node_lease_exists_and_is_renewed) {
  auto& n = small_node();
  json lease;
  BOOST_REQUIRE(eventually(
      [&] {
        auto r = kubectl(n, {"get", "lease", "test-node", "-n", "kube-node-lease", "-o", "json"});
        if (r.exit_code != 0)
          return false;
        lease = json::parse(r.out);
        return true;
      },
      30s));
  BOOST_TEST(lease.value("apiVersion", "") == "coordination.k8s.io/v1");
  BOOST_TEST(lease.value("kind", "") == "Lease");
  BOOST_TEST(lease["spec"].value("holderIdentity", "") == "test-node");
  BOOST_TEST(lease["spec"].value("leaseDurationSeconds", 0) == 40);
  auto first = lease["spec"].value("renewTime", "");
  BOOST_TEST(first.size() == std::string("2024-05-01T12:00:00.123456Z").size());
  std::string later;
  BOOST_TEST(eventually(
      [&] {
        auto r = kubectl(n, {"get", "lease", "test-node", "-n", "kube-node-lease", "-o",
                             "jsonpath={.spec.renewTime}"});
        later = r.out;
        return r.exit_code == 0 && !later.empty() && later > first;
      },
      20s));
  auto list = kubectl(n, {"get", "leases", "-n", "kube-node-lease"});
  BOOST_TEST(list.exit_code == 0);
  BOOST_TEST(list.out.find("HOLDER") != std::string::npos);
  BOOST_TEST(list.out.find("test-node") != std::string::npos);
  auto yaml = kubectl(n, {"get", "lease", "test-node", "-n", "kube-node-lease", "-o", "yaml"});
  BOOST_TEST(yaml.exit_code == 0);
  BOOST_TEST(yaml.out.find("holderIdentity: test-node") != std::string::npos);
}

// Kubernetes: a pod whose CPU request exceeds what is left of the node's
// allocatable CPU is rejected by the kubelet: phase Failed, reason OutOfcpu,
// "Pod was rejected: Node didn't have enough resource: cpu, requested: ...",
// no container started, and a Warning event OutOfcpu.
BOOST_AUTO_TEST_CASE(pod_requesting_too_much_cpu_fails_with_OutOfcpu) {
  auto& n = small_node();
  n.apply(pod_yaml("too-much-cpu", "    resources: {requests: {cpu: \"100\"}}\n"));
  auto p = n.wait_phase("too-much-cpu", "Failed", 30s);
  BOOST_TEST(p.value("/status/reason"_json_pointer, "") == "OutOfcpu");
  auto msg = p.value("/status/message"_json_pointer, "");
  BOOST_TEST(
      msg.starts_with("Pod was rejected: Node didn't have enough resource: cpu, requested: 100000, "
                      "used: "),
      msg);
  BOOST_TEST(msg.find(", capacity: ") != std::string::npos);
  BOOST_TEST(p.value("/status/containerStatuses"_json_pointer, json::array()).empty());
  BOOST_TEST(eventually([&] { return has_event(n, "too-much-cpu", "OutOfcpu"); }, 20s));
  remove_now(n, "too-much-cpu");
}

// Kubernetes: the same for memory: reason OutOfmemory.
BOOST_AUTO_TEST_CASE(pod_requesting_too_much_memory_fails_with_OutOfmemory) {
  auto& n = small_node();
  n.apply(pod_yaml("too-much-memory", "    resources: {requests: {memory: 100Ti}}\n"));
  auto p = n.wait_phase("too-much-memory", "Failed", 30s);
  BOOST_TEST(p.value("/status/reason"_json_pointer, "") == "OutOfmemory");
  auto msg = p.value("/status/message"_json_pointer, "");
  BOOST_TEST(msg.starts_with("Pod was rejected: Node didn't have enough resource: memory, "
                             "requested: 109951162777600, used: "),
             msg);
  BOOST_TEST(eventually([&] { return has_event(n, "too-much-memory", "OutOfmemory"); }, 20s));
  remove_now(n, "too-much-memory");
}

// Kubernetes: a pod beyond maxPods is rejected with OutOfpods ("Node didn't
// have enough resource: pods, requested: 1, used: 3, capacity: 3").
BOOST_AUTO_TEST_CASE(pod_beyond_max_pods_fails_with_OutOfpods) {
  auto& n = small_node();
  for (const char* name : {"fill-1", "fill-2", "fill-3"})
    n.apply(pod_yaml(name));
  for (const char* name : {"fill-1", "fill-2", "fill-3"})
    n.wait_phase(name, "Running", 90s);
  n.apply(pod_yaml("one-too-many"));
  auto p = n.wait_phase("one-too-many", "Failed", 30s);
  BOOST_TEST(p.value("/status/reason"_json_pointer, "") == "OutOfpods");
  BOOST_TEST(p.value("/status/message"_json_pointer, "") ==
             "Pod was rejected: Node didn't have enough resource: pods, requested: 1, used: "
             "3, capacity: 3");
  BOOST_TEST(eventually([&] { return has_event(n, "one-too-many", "OutOfpods"); }, 20s));
  for (const char* name : {"fill-1", "fill-2", "fill-3", "one-too-many"})
    remove_now(n, name);
}

// Kubernetes: when a hard eviction threshold is crossed (here
// memory.available<1000Ti, always crossed) the node reports MemoryPressure
// True (KubeletHasInsufficientMemory), and the eviction manager evicts one
// pod per monitoring period, the BestEffort pod (using more memory above
// its request) before the Burstable one: phase Failed, reason Evicted, "The node was
// low on resource: memory. Threshold quantity: 1000Ti, available: ...", an
// Evicted event. Under MemoryPressure a new BestEffort pod is rejected
// (reason Evicted, "The node had condition: [MemoryPressure]. ").
BOOST_AUTO_TEST_CASE(eviction_under_memory_pressure_evicts_best_effort_first) {
  shared_node_slot().reset();  // one node at a time
  // A pod the runtime has no stats for ranks first (as in Kubernetes), so
  // pressure comes only once both pods run with their memory held: the
  // pods start on a node without pressure that keeps them across a restart,
  // and the restarted kubelet has a threshold that is always met. Its first
  // observation is one period after it starts.
  node n(kubelet_args(""));
  n.stop(SIGTERM);
  n.restart_up({"--keep-pods"});
  n.import_busybox();
  // (Allocatable memory is 0 with the threshold, so the Burstable pod
  // requests CPU only; the BestEffort one holds 20 MB to use more memory,
  // and is ready once it holds it.)
  n.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: besteffort}\nspec:\n  containers:\n"
          "  - name: app\n    image: " +
          std::string(image) +
          "\n    command: [\"sh\", \"-c\", "
          "\"x=$(head -c 20000000 /dev/zero | tr '\\\\000' a); touch /tmp/held; sleep 100000\"]\n"
          "    readinessProbe:\n      exec: {command: [\"test\", \"-f\", \"/tmp/held\"]}\n"
          "      periodSeconds: 1\n---\n" +
          pod_yaml("burstable", "    resources: {requests: {cpu: 10m}}\n"));
  // The runtime reports stats for the running containers of ready sandboxes.
  for (const char* name : {"besteffort", "burstable"}) {
    auto running = wait_pod(
        n, name,
        [](const json& p) {
          return p.value("/status/phase"_json_pointer, "") == "Running" &&
                 condition(p, "Ready").value("status", "") == "True";
        },
        60s);
    auto uid = running.value("/metadata/uid"_json_pointer, "");
    BOOST_REQUIRE(
        eventually([&] { return n.container_state(uid, "app").value("status", "") == "running"; }));
  }
  n.stop(SIGTERM);
  n.reconfigure(kubelet_args(", \"--eviction-hard=memory.available<1000Ti\", "
                             "\"--eviction-monitoring-period-ms=12000\""));
  n.restart_up({});
  auto evicted = wait_pod(
      n, "besteffort",
      [](const json& p) { return p.value("/status/reason"_json_pointer, "") == "Evicted"; }, 60s);
  BOOST_TEST(evicted.value("/status/phase"_json_pointer, "") == "Failed");
  auto msg = evicted.value("/status/message"_json_pointer, "");
  BOOST_TEST(msg.starts_with("The node was low on resource: memory. Threshold quantity: 1000Ti, "
                             "available: "),
             msg);
  BOOST_TEST(eventually([&] { return has_event(n, "besteffort", "Evicted"); }, 20s));

  json node;
  BOOST_TEST(eventually(
      [&] {
        auto r = kubectl(n, {"get", "node", "test-node", "-o", "json"});
        if (r.exit_code != 0)
          return false;
        node = json::parse(r.out);
        return condition(node, "MemoryPressure").value("status", "") == "True";
      },
      20s));
  BOOST_TEST(condition(node, "MemoryPressure").value("reason", "") ==
             "KubeletHasInsufficientMemory");

  n.apply(pod_yaml("late-besteffort"));
  auto rejected = n.wait_phase("late-besteffort", "Failed", 30s);
  BOOST_TEST(rejected.value("/status/reason"_json_pointer, "") == "Evicted");
  BOOST_TEST(rejected.value("/status/message"_json_pointer, "") ==
             "Pod was rejected: The node had condition: [MemoryPressure]. ");

  // The next period takes the Burstable pod.
  auto second = wait_pod(
      n, "burstable",
      [](const json& p) { return p.value("/status/reason"_json_pointer, "") == "Evicted"; }, 40s);
  BOOST_TEST(second.value("/status/phase"_json_pointer, "") == "Failed");
  // One per period, BestEffort first: the DisruptionTarget conditions say when.
  auto first_at = condition(evicted, "DisruptionTarget").value("lastTransitionTime", "");
  auto second_at = condition(second, "DisruptionTarget").value("lastTransitionTime", "");
  BOOST_TEST(!first_at.empty());
  BOOST_TEST(first_at < second_at);
}

BOOST_AUTO_TEST_SUITE_END()

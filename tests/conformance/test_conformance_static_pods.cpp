// Conformance: static pods (Kubernetes' staticPodPath / --static-pod-path) and
// their mirror pods, on a real node. Each case starts with the Kubernetes
// behaviour it checks.
#define BOOST_TEST_MODULE conformance_static_pods
#include <boost/test/unit_test.hpp>

#include <signal.h>
#include <stdlib.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "conformance.hpp"

using namespace deckhand::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

/// A static pod manifest: one container `main` running `command`.
std::string manifest(const std::string& name, const std::string& command) {
  return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name +
         "\n  labels: {tier: static}\nspec:\n  terminationGracePeriodSeconds: 1\n"
         "  containers:\n  - name: main\n    image: deckhand.local/busybox:test\n"
         "    imagePullPolicy: IfNotPresent\n    command: [\"sh\", \"-c\", \"" +
         command + "\"]\n";
}

/// The static pod directory of one node, handed to `deckhand up` through
/// the launcher config (staticPodPath), removed at the end.
struct static_node {
  fs::path dir;
  std::unique_ptr<node> n;

  static_node() {
    char tmpl[] = "/tmp/dh-manifests-XXXXXX";
    dir = ::mkdtemp(tmpl);
    n = std::make_unique<node>("staticPodPath: " + dir.string() + "\n");
    n->import_busybox();
  }
  ~static_node() {
    n.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  /// Writes a manifest atomically (a dot file renamed into place: the kubelet
  /// ignores dot files, so it never sees half a file).
  void write(const std::string& file, const std::string& content) {
    auto tmp = dir / ("." + file + ".tmp");
    std::ofstream(tmp) << content;
    fs::rename(tmp, dir / file);
  }

  json mirror(const std::string& name) { return n->pod(name + "-test-node"); }

  static std::string hash_of(const json& mirror) {
    return mirror.value("/metadata/annotations/kubernetes.io~1config.mirror"_json_pointer, "");
  }

  /// PID of the running container `main` of the static pod with config hash
  /// `hash` (the static pod's uid), 0 if it does not run.
  pid_t container_pid(const std::string& hash) {
    auto st = n->container_state(hash, "main");
    if (st.is_null() || st.value("status", "") != "running")
      return 0;
    return st.value("pid", 0);
  }

  /// Waits for a running mirror pod of `name` and returns it.
  json wait_mirror_running(const std::string& name, std::chrono::milliseconds d = 30s) {
    json m;
    eventually(
        [&] {
          m = mirror(name);
          return !m.is_null() && m.value("/status/phase"_json_pointer, "") == "Running";
        },
        d);
    return m;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(static_pods, *deckhand::testing::skip_unless(deckhand::testing::containers()))

// Kubernetes: a manifest dropped into staticPodPath runs within seconds as pod
// <name>-<nodeName> with a mirror pod in the API server (annotations
// config.mirror/config.hash/config.source); editing the file replaces the pod;
// removing the file stops it and removes the mirror; a bad manifest is
// reported and harms neither the kubelet nor the other static pods.
BOOST_AUTO_TEST_CASE(manifest_runs_is_mirrored_replaced_and_removed) {
  static_node s;
  auto kubelet = s.n->component_pid("kubelet");
  s.write("broken.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: broken}\nspec: [\n");
  s.write("web.yaml", manifest("web", "exec sleep 100000"));
  auto m = s.wait_mirror_running("web");
  BOOST_REQUIRE_MESSAGE(!m.is_null(), "no running mirror pod web-test-node");
  auto hash = static_node::hash_of(m);
  BOOST_TEST(hash.size() == 32u);
  BOOST_TEST(m.value("/metadata/annotations/kubernetes.io~1config.hash"_json_pointer, "") == hash);
  BOOST_TEST(m.value("/metadata/annotations/kubernetes.io~1config.source"_json_pointer, "") ==
             "file");
  BOOST_TEST(m.value("/spec/nodeName"_json_pointer, "") == "test-node");
  BOOST_TEST(m.value("/metadata/labels/tier"_json_pointer, "") == "static");
  BOOST_TEST(s.container_pid(hash) > 0);
  BOOST_TEST(s.n->pod("broken-test-node").is_null());
  BOOST_TEST(s.n->component_pid("kubelet") == kubelet, "the kubelet restarted");

  // Edit: the old pod stops, the new one runs under a new hash.
  s.write("web.yaml", manifest("web", "echo v2; exec sleep 100000"));
  json m2;
  BOOST_REQUIRE(eventually([&] {
    m2 = s.mirror("web");
    return !m2.is_null() && static_node::hash_of(m2) != hash &&
           m2.value("/status/phase"_json_pointer, "") == "Running";
  }));
  auto hash2 = static_node::hash_of(m2);
  BOOST_TEST(s.container_pid(hash2) > 0);
  BOOST_TEST(eventually([&] { return s.n->container_state(hash, "main").is_null(); }));

  // Remove: the pod stops and its mirror goes.
  fs::remove(s.dir / "web.yaml");
  BOOST_TEST(eventually([&] { return s.mirror("web").is_null(); }));
  BOOST_TEST(eventually([&] { return s.n->container_state(hash2, "main").is_null(); }));
  BOOST_TEST(s.n->component_pid("kubelet") == kubelet, "the kubelet restarted");
}

// Kubernetes: deleting a mirror pod (kubectl delete) does not stop the static
// pod; the kubelet creates the mirror again, and the container keeps running
// (restartCount unchanged).
BOOST_AUTO_TEST_CASE(deleted_mirror_comes_back_without_a_restart) {
  static_node s;
  s.write("web.yaml", manifest("web", "exec sleep 100000"));
  auto m = s.wait_mirror_running("web");
  BOOST_REQUIRE(!m.is_null());
  auto hash = static_node::hash_of(m);
  auto old_uid = m.value("/metadata/uid"_json_pointer, "");
  pid_t pid = s.container_pid(hash);
  BOOST_REQUIRE(pid > 0);
  auto del = s.n->cli({"delete", "pod", "web-test-node"}, {}, 30s);
  BOOST_TEST(del.exit_code == 0, del.out << del.err);
  json back;
  BOOST_REQUIRE(eventually([&] {
    back = s.mirror("web");
    return !back.is_null() && back.value("/metadata/uid"_json_pointer, "") != old_uid &&
           back.value("/status/phase"_json_pointer, "") == "Running";
  }));
  BOOST_TEST(static_node::hash_of(back) == hash);
  BOOST_TEST(s.container_pid(hash) == pid);
  BOOST_TEST(back.value("/status/containerStatuses/0/restartCount"_json_pointer, -1) == 0);
}

// Kubernetes: static pods need no API server: one is started while the API
// server is unreachable (stopped), and a running one survives the API server
// being SIGKILLed; the mirror pod catches up when the server is back.
BOOST_AUTO_TEST_CASE(static_pods_run_without_the_api_server) {
  static_node s;
  s.write("first.yaml", manifest("first", "exec sleep 100000"));
  auto m = s.wait_mirror_running("first");
  BOOST_REQUIRE(!m.is_null());
  auto hash = static_node::hash_of(m);
  pid_t pid = s.container_pid(hash);
  BOOST_REQUIRE(pid > 0);

  pid_t api = s.n->component_pid("apiserver");
  BOOST_REQUIRE(api > 0);
  ::kill(api, SIGSTOP);
  s.write("second.yaml", manifest("second", "exec sleep 100000"));
  // Its uid is the config hash of the file: find its container by listing.
  auto second_running = [&] {
    auto r = run_program(
        {"runc", "--root", (s.n->data() / "runtime" / "runc").string(), "list", "-q"}, 10s);
    int running = 0;
    std::istringstream ids(r.out);
    std::string id;
    while (std::getline(ids, id))
      if (id.size() > 5 && id.substr(id.size() - 5) == "-main" && id.rfind(hash, 0) != 0 &&
          s.container_pid(id.substr(0, id.size() - 5)) > 0)
        ++running;
    return running == 1;
  };
  bool started = eventually(second_running, 20s);
  ::kill(api, SIGCONT);
  BOOST_TEST(started, "a static pod did not start while the API server was stopped");
  BOOST_TEST(!s.wait_mirror_running("second").is_null());

  ::kill(s.n->component_pid("apiserver"), SIGKILL);
  BOOST_TEST(eventually([&] {
    auto now = s.n->component_pid("apiserver");
    return now > 0 && now != api && s.n->cli({"status"}, {}, 5s).exit_code == 0;
  }));
  BOOST_TEST(s.container_pid(hash) == pid);
  auto again = s.wait_mirror_running("first");
  BOOST_TEST(static_node::hash_of(again) == hash);
  BOOST_TEST(again.value("/status/containerStatuses/0/restartCount"_json_pointer, -1) == 0);
}

// Kubernetes: after a kubelet restart, static pods from unchanged files are
// adopted (same uid, container not restarted), and pods and mirror pods
// whose files went away meanwhile are removed.
BOOST_AUTO_TEST_CASE(kubelet_restart_adopts_static_pods) {
  static_node s;
  s.write("keep.yaml", manifest("keep", "exec sleep 100000"));
  s.write("gone.yaml", manifest("gone", "exec sleep 100000"));
  auto keep = s.wait_mirror_running("keep");
  auto gone = s.wait_mirror_running("gone");
  BOOST_REQUIRE(!keep.is_null() && !gone.is_null());
  auto keep_hash = static_node::hash_of(keep), gone_hash = static_node::hash_of(gone);
  pid_t pid = s.container_pid(keep_hash);
  BOOST_REQUIRE(pid > 0);
  pid_t kubelet = s.n->component_pid("kubelet");
  BOOST_REQUIRE(kubelet > 0);
  // Freeze the kubelet, remove a file behind its back, then kill it.
  ::kill(kubelet, SIGSTOP);
  fs::remove(s.dir / "gone.yaml");
  ::kill(kubelet, SIGKILL);
  BOOST_TEST(eventually([&] {
    auto now = s.n->component_pid("kubelet");
    return now > 0 && now != kubelet;
  }));
  BOOST_TEST(eventually([&] { return s.mirror("gone").is_null(); }));
  BOOST_TEST(eventually([&] { return s.n->container_state(gone_hash, "main").is_null(); }));
  BOOST_TEST(s.container_pid(keep_hash) == pid);
  auto after = s.mirror("keep");
  BOOST_TEST(static_node::hash_of(after) == keep_hash);
  BOOST_TEST(after.value("/status/containerStatuses/0/restartCount"_json_pointer, -1) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

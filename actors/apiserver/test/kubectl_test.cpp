// Drives the API server with the real kubectl (1.32, on PATH on these
// machines): the client that users will point at deckhand.

#include <stdio.h>
#include <sys/wait.h>

#include <fstream>

#include <boost/test/unit_test.hpp>

#include "deckhand/apiserver/http_api.hpp"
#include "support.hpp"

using namespace deckhand::apiserver;
using deckhand::apiserver::test::temp_dir;
using nlohmann::json;

namespace {

bool have_kubectl() { return std::system("command -v kubectl >/dev/null 2>&1") == 0; }

struct kubectl_fixture {
  temp_dir tmp;
  store st = store::open(tmp.path() / "apiserver").value();
  registry reg{st};
  http_api api{reg};

  kubectl_fixture() {
    auto port = api.start();
    BOOST_REQUIRE(port.ok());
    // An empty kubeconfig keeps any user's config out of the test.
    std::ofstream(tmp.path() / "kubeconfig") << "";
  }
  ~kubectl_fixture() { api.stop(); }

  /// Runs kubectl with `args`; returns exit code and combined output.
  std::pair<int, std::string> kubectl(const std::string& args) {
    std::string cmd = "KUBECONFIG=" + (tmp.path() / "kubeconfig").string() +
                      " timeout 60 kubectl --server=" + api.url() +
                      " --cache-dir=" + (tmp.path() / "cache").string() +
                      " --request-timeout=20s " + args + " 2>&1 </dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    BOOST_REQUIRE(p);
    std::string out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p))
      out.append(buf, n);
    int status = ::pclose(p);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    BOOST_TEST_MESSAGE("kubectl " << args << " -> " << code << "\n" << out);
    return {code, out};
  }

  std::string write_manifest(const std::string& name, const std::string& text) {
    auto path = tmp.path() / name;
    std::ofstream(path) << text;
    return path.string();
  }
};

const char* pod_manifest = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: app
    image: busybox:1.36
    command: ["sleep", "3600"]
)";

}  // namespace

BOOST_FIXTURE_TEST_SUITE(kubectl_suite, kubectl_fixture)

BOOST_AUTO_TEST_CASE(create_get_and_delete_a_pod) {
  if (!have_kubectl()) {
    BOOST_TEST_MESSAGE("kubectl not on PATH: skipped");
    return;
  }
  auto [c0, empty] = kubectl("get pods -o json");
  BOOST_REQUIRE_MESSAGE(c0 == 0, empty);
  json list = json::parse(empty);
  BOOST_TEST(list["items"].empty());

  auto [c1, created] = kubectl("create -f " + write_manifest("pod.yaml", pod_manifest));
  BOOST_REQUIRE_MESSAGE(c1 == 0, created);
  BOOST_TEST(created.find("pod/web created") != std::string::npos);

  auto [c2, got] = kubectl("get pods -o json");
  BOOST_REQUIRE_MESSAGE(c2 == 0, got);
  json pods = json::parse(got);
  BOOST_REQUIRE(pods["items"].size() == 1u);
  BOOST_TEST(pods["items"][0]["metadata"]["name"] == "web");
  BOOST_TEST(pods["items"][0]["spec"]["restartPolicy"] == "Always");
  BOOST_TEST(pods["items"][0]["status"]["phase"] == "Pending");

  // The server's Table gives kubectl its own columns.
  auto [c2t, table] = kubectl("get pods");
  BOOST_REQUIRE_MESSAGE(c2t == 0, table);
  BOOST_TEST(table.find("READY") != std::string::npos);
  BOOST_TEST(table.find("STATUS") != std::string::npos);
  BOOST_TEST(table.find("RESTARTS") != std::string::npos);
  BOOST_TEST(table.find("0/1") != std::string::npos);
  BOOST_TEST(table.find("Pending") != std::string::npos);

  auto [c3, one] = kubectl("get pod web -o jsonpath={.spec.containers[0].imagePullPolicy}");
  BOOST_REQUIRE_MESSAGE(c3 == 0, one);
  BOOST_TEST(one == "IfNotPresent");

  auto [c4, dup] = kubectl("create -f " + (tmp.path() / "pod.yaml").string());
  BOOST_TEST(c4 != 0);
  BOOST_TEST(dup.find("AlreadyExists") != std::string::npos);

  auto [c5, sel] = kubectl("get pods -l app=web -o name");
  BOOST_REQUIRE_MESSAGE(c5 == 0, sel);
  BOOST_TEST(sel == "pod/web\n");

  auto [c6, deleted] = kubectl("delete pod web");
  BOOST_REQUIRE_MESSAGE(c6 == 0, deleted);
  BOOST_TEST(deleted.find("pod \"web\" deleted") != std::string::npos);
  BOOST_TEST(reg.get("Pod", "default", "web").err().code == deckhand::errc::not_found);
}

BOOST_AUTO_TEST_CASE(invalid_manifest_is_reported) {
  if (!have_kubectl())
    return;
  std::string bad = pod_manifest;
  bad.replace(bad.find("    image: busybox:1.36\n"), 24, "");
  auto [code, out] = kubectl("create -f " + write_manifest("bad.yaml", bad));
  BOOST_TEST(code != 0);
  BOOST_TEST(out.find("spec.containers[0].image: Required value") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(discovery_and_nodes) {
  if (!have_kubectl())
    return;
  auto [c1, res] = kubectl("api-resources --api-group= -o name");
  BOOST_REQUIRE_MESSAGE(c1 == 0, res);
  BOOST_TEST(res.find("pods") != std::string::npos);
  BOOST_TEST(res.find("services") != std::string::npos);
  json node = {{"metadata", {{"name", "node-1"}}}};
  BOOST_REQUIRE(reg.create("Node", "", node).ok());
  auto [c2, nodes] = kubectl("get no -o name");
  BOOST_REQUIRE_MESSAGE(c2 == 0, nodes);
  BOOST_TEST(nodes == "node/node-1\n");
  auto [c3, version] = kubectl("version -o json");
  BOOST_REQUIRE_MESSAGE(c3 == 0, version);
  BOOST_TEST(version.find("v1.32") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

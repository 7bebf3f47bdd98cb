// Drives the API server with the real kubectl (1.32, on PATH on these
// machines): the client that users will point at deckhand.

#include <boost/test/unit_test.hpp>

#include "server_fixture.hpp"

using namespace deckhand::apiserver;
using deckhand::apiserver::test::kubectl_fixture;
using nlohmann::json;

namespace {

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

BOOST_FIXTURE_TEST_SUITE(kubectl_suite, kubectl_fixture,
                         *deckhand::testing::skip_unless(deckhand::testing::program("kubectl")))

BOOST_AUTO_TEST_CASE(create_get_and_delete_a_pod) {
  auto [c0, empty] = kubectl("get pods -o json");
  BOOST_REQUIRE_MESSAGE(c0 == 0, empty);
  json list = json::parse(empty);
  BOOST_TEST(list["items"].empty());

  auto [c1, created] = kubectl("create -f " + write_file("pod.yaml", pod_manifest));
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
  std::string bad = pod_manifest;
  bad.replace(bad.find("    image: busybox:1.36\n"), 24, "");
  auto [code, out] = kubectl("create -f " + write_file("bad.yaml", bad));
  BOOST_TEST(code != 0);
  BOOST_TEST(out.find("spec.containers[0].image: Required value") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(discovery_and_nodes) {
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

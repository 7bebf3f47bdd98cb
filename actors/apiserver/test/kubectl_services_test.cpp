// kubectl get svc / ep / endpointslices against the API server with the
// allocator and the endpoints controller wired as deckhand-apiserver wires
// them: discovery of discovery.k8s.io/v1 and the Table columns.

#include <boost/test/unit_test.hpp>

#include "server_fixture.hpp"

using namespace deckhand::apiserver;
using deckhand::apiserver::test::squeeze;
using nlohmann::json;

namespace {

struct kubectl_services_fixture : deckhand::apiserver::test::kubectl_fixture {
  kubectl_services_fixture() : kubectl_fixture(true) {}
};

const char* manifests = R"(apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector:
    app: web
  sessionAffinity: ClientIP
  ports:
  - name: http
    port: 80
    targetPort: http
    nodePort: 30080
---
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  ports:
  - port: 5432
---
apiVersion: v1
kind: Endpoints
metadata:
  name: db
subsets:
- addresses:
  - ip: 192.168.1.10
  ports:
  - port: 5432
)";

/// The line of `out` that starts with `name` and a space.
std::string row(const std::string& out, const std::string& name) {
  std::size_t pos = 0;
  while (pos < out.size()) {
    auto end = out.find('\n', pos);
    std::string line = out.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (line.rfind(name + " ", 0) == 0)
      return line;
    if (end == std::string::npos)
      break;
    pos = end + 1;
  }
  return {};
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(kubectl_services_suite, kubectl_services_fixture,
                         *deckhand::testing::skip_unless(deckhand::testing::program("kubectl")))

BOOST_AUTO_TEST_CASE(get_svc_ep_and_endpointslices) {
  auto [c0, applied] = kubectl("apply -f " + write_file("svc.yaml", manifests));
  BOOST_REQUIRE_MESSAGE(c0 == 0, applied);
  BOOST_TEST(applied.find("service/web created") != std::string::npos);
  BOOST_TEST(applied.find("endpoints/db created") != std::string::npos);
  run_pod("web-1", "10.244.0.2", json::array({json{{"name", "http"}, {"containerPort", 8080}}}));
  ctl->sync_pending();
  json web = *reg.get("Service", "default", "web");
  std::string ip = web["spec"]["clusterIP"];

  auto [c1, svc] = kubectl("get svc");
  BOOST_REQUIRE_MESSAGE(c1 == 0, svc);
  BOOST_TEST(squeeze(svc).find("NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE") == 0u);
  BOOST_TEST(squeeze(row(svc, "web")).rfind("web NodePort " + ip + " <none> 80:30080/TCP ", 0) ==
             0u);

  auto [c2, wide] = kubectl("get svc web -o wide");
  BOOST_REQUIRE_MESSAGE(c2 == 0, wide);
  BOOST_TEST(squeeze(row(wide, "web")).find(" app=web") != std::string::npos);

  auto [c3, ep] = kubectl("get ep");
  BOOST_REQUIRE_MESSAGE(c3 == 0, ep);
  BOOST_TEST(squeeze(ep).find("NAME ENDPOINTS AGE") == 0u);
  BOOST_TEST(squeeze(row(ep, "web")).rfind("web 10.244.0.2:8080 ", 0) == 0u);
  BOOST_TEST(squeeze(row(ep, "db")).rfind("db 192.168.1.10:5432 ", 0) == 0u);

  auto [c4, slices] = kubectl("get endpointslices");
  BOOST_REQUIRE_MESSAGE(c4 == 0, slices);
  BOOST_TEST(squeeze(slices).find("NAME ADDRESSTYPE PORTS ENDPOINTS AGE") == 0u);
  BOOST_TEST(squeeze(slices).find(" IPv4 8080 10.244.0.2 ") != std::string::npos);
  BOOST_TEST(squeeze(slices).find(" IPv4 5432 192.168.1.10 ") != std::string::npos);

  auto [c5, js] = kubectl("get endpointslices -l kubernetes.io/service-name=web -o json");
  BOOST_REQUIRE_MESSAGE(c5 == 0, js);
  json list = json::parse(js);
  BOOST_REQUIRE(list["items"].size() == 1u);
  BOOST_TEST(list["items"][0]["apiVersion"] == "discovery.k8s.io/v1");
  BOOST_TEST(list["items"][0]["endpoints"][0]["conditions"]["ready"] == true);

  auto [c6, affinity] =
      kubectl("get svc web -o jsonpath={.spec.sessionAffinityConfig.clientIP.timeoutSeconds}");
  BOOST_REQUIRE_MESSAGE(c6 == 0, affinity);
  BOOST_TEST(affinity == "10800");

  // A requested node port that is taken is refused with Kubernetes' words.
  std::string clash = manifests;
  clash = clash.substr(0, clash.find("---"));
  clash.replace(clash.find("name: web"), 9, "name: web2");
  auto [c7, refused] = kubectl("create -f " + write_file("clash.yaml", clash));
  BOOST_TEST(c7 != 0);
  BOOST_TEST(refused.find("spec.ports[0].nodePort: Invalid value: 30080: provided port is already "
                          "allocated") != std::string::npos);

  auto [c8, deleted] = kubectl("delete svc web");
  BOOST_REQUIRE_MESSAGE(c8 == 0, deleted);
  ctl->sync_pending();
  auto [c9, after] = kubectl("get ep,endpointslices -o name");
  BOOST_REQUIRE_MESSAGE(c9 == 0, after);
  BOOST_TEST(after.find("web") == std::string::npos);
  BOOST_TEST(after.find("endpoints/db") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

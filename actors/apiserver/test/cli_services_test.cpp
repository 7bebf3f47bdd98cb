// `deckhand apply/get/delete` of Services, Endpoints and EndpointSlices
// against the real API server (registry, allocator, endpoints controller and
// HTTP front, as deckhand-apiserver wires them).

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

#include "deckhand/cli/commands.hpp"
#include "deckhand/common/paths.hpp"
#include "server_fixture.hpp"

using namespace deckhand;
using namespace deckhand::apiserver;
using deckhand::apiserver::test::squeeze;
using nlohmann::json;

namespace {

struct cli_fixture : deckhand::apiserver::test::server_fixture {
  std::ostringstream out, err;
  std::istringstream in;

  cli_fixture() : server_fixture(true) {
    std::filesystem::create_directories(paths::run_dir(tmp.path()));
    std::ofstream(paths::apiserver_url_file(tmp.path())) << api.url() << "\n";
  }

  int cli(std::vector<std::string> args) {
    out.str("");
    err.str("");
    args.push_back("--data-dir");
    args.push_back(tmp.path().string());
    int rc = cli::run(args, {out, err, in});
    BOOST_TEST_MESSAGE("deckhand " << args[0] << " -> " << rc << "\n" << out.str() << err.str());
    return rc;
  }
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
  sessionAffinityConfig:
    clientIP:
      timeoutSeconds: 600
  externalTrafficPolicy: Local
  ports:
  - port: 80
    targetPort: 8080
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

}  // namespace

BOOST_FIXTURE_TEST_SUITE(cli_services_suite, cli_fixture)

BOOST_AUTO_TEST_CASE(apply_get_and_delete_services) {
  BOOST_REQUIRE_EQUAL(cli({"apply", "-f", write_file("svc.yaml", manifests)}), 0);
  BOOST_TEST(out.str() == "service/web created\nservice/db created\nendpoints/db created\n");
  json web = *reg.get("Service", "default", "web");
  BOOST_TEST(web["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 600);
  BOOST_TEST(web["spec"]["externalTrafficPolicy"] == "Local");
  BOOST_TEST(web["spec"]["ports"][0]["nodePort"] == 30080);
  std::string web_ip = web["spec"]["clusterIP"];
  std::string db_ip = (*reg.get("Service", "default", "db"))["spec"]["clusterIP"];
  run_pod("web-1", "10.244.0.2");
  ctl->sync_pending();

  // Applying the same manifests again changes nothing (allocated values kept).
  BOOST_REQUIRE_EQUAL(cli({"apply", "-f", (tmp.path() / "svc.yaml").string()}), 0);
  BOOST_TEST(out.str() == "service/web unchanged\nservice/db unchanged\nendpoints/db unchanged\n");

  BOOST_REQUIRE_EQUAL(cli({"get", "svc"}), 0);
  std::string svc = squeeze(out.str());
  BOOST_TEST(svc.find("NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE\n") == 0u);
  BOOST_TEST(svc.find("\ndb ClusterIP " + db_ip + " <none> 5432/TCP ") != std::string::npos);
  BOOST_TEST(svc.find("\nweb NodePort " + web_ip + " <none> 80:30080/TCP ") != std::string::npos);

  BOOST_REQUIRE_EQUAL(cli({"get", "ep"}), 0);
  std::string ep = squeeze(out.str());
  BOOST_TEST(ep.find("NAME ENDPOINTS AGE\n") == 0u);
  BOOST_TEST(ep.find("\ndb 192.168.1.10:5432 ") != std::string::npos);
  BOOST_TEST(ep.find("\nweb 10.244.0.2:8080 ") != std::string::npos);

  BOOST_REQUIRE_EQUAL(cli({"get", "services,endpoints"}), 0);
  std::string both = squeeze(out.str());
  BOOST_TEST(both.find("NAME TYPE CLUSTER-IP") == 0u);
  BOOST_TEST(both.find("\nservice/web NodePort ") != std::string::npos);
  BOOST_TEST(both.find("\n\nNAME ENDPOINTS AGE\n") != std::string::npos);
  BOOST_TEST(both.find("\nendpoints/db 192.168.1.10:5432 ") != std::string::npos);

  BOOST_REQUIRE_EQUAL(cli({"get", "svc,ep", "web", "-o", "name"}), 0);
  BOOST_TEST(out.str() == "service/web\nendpoints/web\n");

  BOOST_REQUIRE_EQUAL(cli({"get", "endpointslices"}), 0);
  std::string slices = squeeze(out.str());
  BOOST_TEST(slices.find("NAME ADDRESSTYPE PORTS ENDPOINTS AGE\n") == 0u);
  BOOST_TEST(slices.find(" IPv4 8080 10.244.0.2 ") != std::string::npos);
  BOOST_TEST(slices.find(" IPv4 5432 192.168.1.10 ") != std::string::npos);

  BOOST_REQUIRE_EQUAL(cli({"get", "endpointslices", "-o", "json"}), 0);
  json list = json::parse(out.str());
  BOOST_REQUIRE(list["items"].size() == 2u);
  BOOST_TEST(list["items"][0]["apiVersion"] == "discovery.k8s.io/v1");

  BOOST_REQUIRE_EQUAL(cli({"get", "svc", "web", "-o", "json"}), 0);
  BOOST_TEST(json::parse(out.str())["spec"]["clusterIP"] == web_ip);

  BOOST_REQUIRE_EQUAL(cli({"delete", "svc", "web"}), 0);
  BOOST_TEST(out.str() == "service \"web\" deleted\n");
  ctl->sync_pending();
  BOOST_TEST(reg.get("Endpoints", "default", "web").err().code == errc::not_found);
  BOOST_REQUIRE_EQUAL(cli({"delete", "ep", "db"}), 0);
  BOOST_TEST(out.str() == "endpoints \"db\" deleted\n");
  ctl->sync_pending();
  BOOST_REQUIRE_EQUAL(cli({"get", "ep,endpointslices"}), 0);
  BOOST_TEST(err.str() == "No resources found in default namespace.\n");

  BOOST_TEST(cli({"get", "svc,nope"}) != 0);
  BOOST_TEST(err.str() == "error: the server doesn't have a resource type \"nope\"\n");
}

BOOST_AUTO_TEST_SUITE_END()

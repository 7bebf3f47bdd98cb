// coordination.k8s.io/v1 Leases: node lease renewal as kubelets send it,
// REST with discovery and the Table kubectl prints, liveness from renewTime.
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>

#include <httplib.h>

#include "deckhand/apiserver/http_api.hpp"
#include "deckhand/apiserver/leases.hpp"
#include "deckhand/apiserver/registry.hpp"
#include "deckhand/apiserver/store.hpp"
#include "support.hpp"

using namespace deckhand;
using namespace deckhand::apiserver;
using json = nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct lease_fixture {
  test::temp_dir tmp;
  store st = store::open(tmp.path() / "apiserver").value();
  registry reg{st};
  std::chrono::system_clock::time_point t0 =
      std::chrono::system_clock::from_time_t(1714564800) + 123456us;  // 2024-05-01T12:00:00.123456Z
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(leases, lease_fixture)

BOOST_AUTO_TEST_CASE(micro_time_round_trips) {
  BOOST_TEST(format_micro_time(t0) == "2024-05-01T12:00:00.123456Z");
  BOOST_TEST((parse_micro_time("2024-05-01T12:00:00.123456Z") == t0));
  BOOST_TEST((parse_micro_time("2024-05-01T12:00:00.1234567Z") == t0));
  BOOST_TEST((parse_micro_time("2024-05-01T12:00:00Z") == t0 - 123456us));
  BOOST_TEST(!parse_micro_time("yesterday"));
  BOOST_TEST(!parse_micro_time("2024-05-01T12:00:00+02:00"));
}

BOOST_AUTO_TEST_CASE(renewal_creates_then_renews_the_node_lease) {
  json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", "node-a"}}}};
  auto created_node = reg.create("nodes", "", node);
  BOOST_REQUIRE(created_node.ok());
  auto l = renew_node_lease(reg, "node-a", "node-a", 40, t0);
  BOOST_REQUIRE(l.ok());
  BOOST_TEST((*l)["apiVersion"] == "coordination.k8s.io/v1");
  BOOST_TEST((*l)["kind"] == "Lease");
  BOOST_TEST((*l)["metadata"]["namespace"] == "kube-node-lease");
  BOOST_TEST((*l)["metadata"]["name"] == "node-a");
  BOOST_TEST((*l)["metadata"]["ownerReferences"][0]["kind"] == "Node");
  BOOST_TEST((*l)["metadata"]["ownerReferences"][0]["uid"] == (*created_node)["metadata"]["uid"]);
  BOOST_TEST((*l)["spec"]["holderIdentity"] == "node-a");
  BOOST_TEST((*l)["spec"]["leaseDurationSeconds"] == 40);
  BOOST_TEST((*l)["spec"]["renewTime"] == "2024-05-01T12:00:00.123456Z");
  BOOST_TEST(node_lease_fresh(reg, "node-a", t0 + 39s));
  BOOST_TEST(!node_lease_fresh(reg, "node-a", t0 + 40s));
  BOOST_TEST(!node_lease_fresh(reg, "node-b", t0));

  auto again = renew_node_lease(reg, "node-a", "node-a", 40, t0 + 10s);
  BOOST_REQUIRE(again.ok());
  BOOST_TEST((*again)["spec"]["renewTime"] == "2024-05-01T12:00:10.123456Z");
  BOOST_TEST((*again)["metadata"]["uid"] == (*l)["metadata"]["uid"]);
  BOOST_TEST(node_lease_fresh(reg, "node-a", t0 + 45s));
  auto list = reg.list("leases", "kube-node-lease");
  BOOST_REQUIRE(list.ok());
  BOOST_TEST(list->items.size() == 1u);

  BOOST_TEST(!renew_node_lease(reg, "", "x", 40, t0).ok());
  BOOST_TEST(!renew_node_lease(reg, "node-a", "x", 0, t0).ok());
  // Invalid leases from users are refused with Kubernetes' field paths.
  json bad = {{"apiVersion", "coordination.k8s.io/v1"},
              {"kind", "Lease"},
              {"metadata", {{"name", "x"}}},
              {"spec", {{"leaseDurationSeconds", -1}}}};
  field_errors causes;
  BOOST_TEST(!reg.create("leases", "default", bad, &causes).ok());
  BOOST_REQUIRE(!causes.empty());
  BOOST_TEST(causes[0].field == "spec.leaseDurationSeconds");
}

BOOST_AUTO_TEST_CASE(leases_are_served_with_discovery_and_a_table) {
  BOOST_REQUIRE(
      renew_node_lease(reg, "node-a", "node-a", 40, std::chrono::system_clock::now()).ok());
  http_api api{reg};
  auto port = api.start();
  BOOST_REQUIRE(port.ok());
  httplib::Client cli("127.0.0.1", *port);
  auto groups = cli.Get("/apis");
  BOOST_REQUIRE(groups);
  BOOST_TEST(groups->body.find("coordination.k8s.io") != std::string::npos);
  auto disc = cli.Get("/apis/coordination.k8s.io/v1");
  BOOST_REQUIRE(disc);
  BOOST_TEST(disc->status == 200);
  auto dj = json::parse(disc->body);
  BOOST_TEST(dj["resources"][0]["name"] == "leases");
  BOOST_TEST(dj["resources"][0]["kind"] == "Lease");
  BOOST_TEST(dj["resources"][0]["namespaced"] == true);
  auto one = cli.Get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a");
  BOOST_REQUIRE(one);
  BOOST_TEST(one->status == 200);
  BOOST_TEST(json::parse(one->body)["spec"]["holderIdentity"] == "node-a");
  httplib::Headers h = {{"Accept", "application/json;as=Table;v=v1;g=meta.k8s.io"}};
  auto table = cli.Get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", h);
  BOOST_REQUIRE(table);
  auto tj = json::parse(table->body);
  BOOST_TEST(tj["kind"] == "Table");
  BOOST_TEST(tj["columnDefinitions"][1]["name"] == "Holder");
  BOOST_TEST(tj["rows"][0]["cells"][0] == "node-a");
  BOOST_TEST(tj["rows"][0]["cells"][1] == "node-a");

  if (std::system("command -v kubectl >/dev/null 2>&1") == 0) {
    std::ofstream(tmp.path() / "kubeconfig") << "";
    auto run = [&](const std::string& args) {
      std::string cmd = "KUBECONFIG=" + (tmp.path() / "kubeconfig").string() +
                        " timeout 60 kubectl --server=" + api.url() +
                        " --cache-dir=" + (tmp.path() / "cache").string() +
                        " --request-timeout=20s " + args + " 2>&1 </dev/null";
      FILE* p = ::popen(cmd.c_str(), "r");
      std::string out;
      char buf[4096];
      while (std::size_t n = std::fread(buf, 1, sizeof buf, p))
        out.append(buf, n);
      int status = ::pclose(p);
      BOOST_TEST_MESSAGE("kubectl " << args << " ->\n" << out);
      return std::make_pair(WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
    };
    auto [c1, list] = run("get leases -n kube-node-lease");
    BOOST_TEST(c1 == 0);
    BOOST_TEST(list.find("HOLDER") != std::string::npos);
    BOOST_TEST(list.find("node-a") != std::string::npos);
    auto [c2, yaml] = run("get lease node-a -n kube-node-lease -o yaml");
    BOOST_TEST(c2 == 0);
    BOOST_TEST(yaml.find("holderIdentity: node-a") != std::string::npos);
    BOOST_TEST(yaml.find("leaseDurationSeconds: 40") != std::string::npos);
    BOOST_TEST(yaml.find("renewTime:") != std::string::npos);
  }
  api.stop();
}

BOOST_AUTO_TEST_SUITE_END()

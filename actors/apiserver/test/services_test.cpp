// Services in the registry: cluster IP and node port allocation (unique,
// released, rebuilt after a restart, requested values honoured or refused with
// Kubernetes' messages) and the defaults Kubernetes applies.

#include <boost/test/unit_test.hpp>

#include <set>

#include "deckhand/apiserver/registry.hpp"
#include "support.hpp"

using namespace deckhand::apiserver;
using deckhand::errc;
using deckhand::apiserver::test::temp_dir;
using nlohmann::json;

namespace {

std::shared_ptr<service_allocator> make_allocator(const std::string& cidr, int port_min = 30000,
                                                  int port_max = 32767) {
  service_allocator_options o;
  o.service_cidr = cidr;
  o.node_port_min = port_min;
  o.node_port_max = port_max;
  auto a = service_allocator::create(o);
  BOOST_REQUIRE_MESSAGE(a.ok(), (a.ok() ? "" : a.err().message));
  return std::shared_ptr<service_allocator>(std::move(*a));
}

json service(const std::string& name, json spec) {
  if (!spec.contains("ports"))
    spec["ports"] = json::array({{{"port", 80}}});
  return {
      {"apiVersion", "v1"}, {"kind", "Service"}, {"metadata", {{"name", name}}}, {"spec", spec}};
}

struct services_fixture {
  temp_dir tmp;
  std::optional<store> st{store::open(tmp.path() / "apiserver").value()};
  std::shared_ptr<service_allocator> alloc = make_allocator("10.96.0.0/28", 30000, 30009);
  std::unique_ptr<registry> reg = make_registry();

  std::unique_ptr<registry> make_registry() {
    registry_options o;
    o.allocator = alloc;
    return std::make_unique<registry>(*st, o);
  }

  /// A new API server process on the same data directory.
  void restart(std::shared_ptr<service_allocator> fresh) {
    reg.reset();
    auto dir = st->dir();
    st.reset();
    st.emplace(store::open(dir).value());
    alloc = std::move(fresh);
    reg = make_registry();
  }

  json create(const std::string& name, json spec) {
    auto r = reg->create("Service", "default", service(name, std::move(spec)));
    BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.err().message));
    return *r;
  }

  std::string create_error(const std::string& name, json spec) {
    auto r = reg->create("Service", "default", service(name, std::move(spec)));
    BOOST_REQUIRE(!r.ok());
    return r.err().message;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(service_allocator_suite)

BOOST_AUTO_TEST_CASE(options_are_checked) {
  service_allocator_options o;
  o.service_cidr = "10.96.0.1/12";
  BOOST_TEST(!service_allocator::create(o).ok());
  o.service_cidr = "not-a-cidr";
  BOOST_TEST(!service_allocator::create(o).ok());
  o.service_cidr = "10.0.0.0/24";
  o.node_port_min = 40000;
  o.node_port_max = 30000;
  BOOST_TEST(!service_allocator::create(o).ok());
  auto r = parse_port_range("30000-32767");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->first == 30000);
  BOOST_TEST(r->second == 32767);
  BOOST_TEST(!parse_port_range("32767-30000").ok());
  BOOST_TEST(!parse_port_range("1-70000").ok());
  BOOST_TEST(!parse_port_range("x").ok());
}

BOOST_FIXTURE_TEST_CASE(cluster_ips_are_unique_until_released, services_fixture) {
  // /28: 14 usable addresses, the first kept for the `kubernetes` Service.
  std::set<std::string> ips;
  for (int i = 0; i < 13; ++i) {
    json s = create("svc-" + std::to_string(i), json::object());
    std::string ip = s["spec"]["clusterIP"];
    BOOST_TEST(ip != "10.96.0.1");
    BOOST_TEST(ip.rfind("10.96.0.", 0) == 0u);
    BOOST_TEST(ips.insert(ip).second, "handed out twice: " << ip);
    BOOST_TEST(s["spec"]["clusterIPs"] == json::array({ip}));
    BOOST_TEST(s["spec"]["ipFamilies"] == json::array({"IPv4"}));
  }
  auto full = reg->create("Service", "default", service("one-too-many", json::object()));
  BOOST_REQUIRE(!full.ok());
  BOOST_TEST(full.err().code == errc::internal);
  BOOST_TEST(full.err().message ==
             "Internal error occurred: failed to allocate a serviceIP: range is full");
  // A failed create leaves nothing behind.
  BOOST_TEST(alloc->ips_in_use() == 13u);

  std::string freed = (*reg->get("Service", "default", "svc-4"))["spec"]["clusterIP"];
  BOOST_REQUIRE(reg->remove("Service", "default", "svc-4").ok());
  BOOST_TEST(!alloc->ip_in_use(freed));
  json again = create("svc-again", json::object());
  BOOST_TEST(again["spec"]["clusterIP"] == freed);
}

BOOST_FIXTURE_TEST_CASE(requested_cluster_ip, services_fixture) {
  json s = create("fixed", {{"clusterIP", "10.96.0.10"}});
  BOOST_TEST(s["spec"]["clusterIP"] == "10.96.0.10");
  BOOST_TEST(alloc->ip_in_use("10.96.0.10"));
  BOOST_TEST(create_error("dup", {{"clusterIP", "10.96.0.10"}}) ==
             "Service \"dup\" is invalid: spec.clusterIPs: Invalid value: "
             "[]string{\"10.96.0.10\"}: failed to allocate IP 10.96.0.10: provided IP is "
             "already allocated");
  BOOST_TEST(create_error("far", {{"clusterIP", "10.0.0.1"}}) ==
             "Service \"far\" is invalid: spec.clusterIPs: Invalid value: "
             "[]string{\"10.0.0.1\"}: failed to allocate IP 10.0.0.1: the provided IP "
             "(10.0.0.1) is not in the valid range. The range of valid IPs is 10.96.0.0/28");
  // The broadcast address is not in the usable range either.
  BOOST_TEST(create_error("bcast", {{"clusterIP", "10.96.0.15"}}).find("not in the valid range") !=
             std::string::npos);
  // The reserved first address may be asked for.
  BOOST_TEST(create("kubernetes", {{"clusterIP", "10.96.0.1"}})["spec"]["clusterIP"] ==
             "10.96.0.1");
  // Headless and ExternalName Services get none.
  json headless = create("headless", {{"clusterIP", "None"}});
  BOOST_TEST(headless["spec"]["clusterIP"] == "None");
  json ext = create("ext", {{"type", "ExternalName"}, {"externalName", "example.com"}});
  BOOST_TEST(!ext["spec"].contains("clusterIP"));
  BOOST_TEST(alloc->ips_in_use() == 2u);
  // The IP may not change, and an update that leaves it out keeps it.
  json upd = s;
  upd["spec"].erase("clusterIP");
  upd["spec"].erase("clusterIPs");
  auto kept = reg->update("Service", "default", "fixed", upd);
  BOOST_REQUIRE(kept.ok());
  BOOST_TEST((*kept)["spec"]["clusterIP"] == "10.96.0.10");
  BOOST_REQUIRE(reg->remove("Service", "default", "fixed").ok());
  BOOST_TEST(create("dup", {{"clusterIP", "10.96.0.10"}})["spec"]["clusterIP"] == "10.96.0.10");
}

BOOST_FIXTURE_TEST_CASE(node_ports, services_fixture) {
  json np = create("np", {{"type", "NodePort"},
                          {"ports",
                           {{{"name", "http"}, {"port", 80}},
                            {{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}}}}});
  int p0 = np["spec"]["ports"][0]["nodePort"];
  int p1 = np["spec"]["ports"][1]["nodePort"];
  BOOST_TEST(p0 >= 30000);
  BOOST_TEST(p0 <= 30009);
  BOOST_TEST(p1 >= 30000);
  BOOST_TEST(p1 <= 30009);
  BOOST_TEST(p0 != p1);
  BOOST_TEST(np["spec"]["externalTrafficPolicy"] == "Cluster");
  BOOST_TEST(alloc->node_ports_in_use() == 2u);

  // A requested port is honoured if free, refused otherwise.
  int want = p0 == 30005 || p1 == 30005 ? 30006 : 30005;
  json fixed =
      create("fixed", {{"type", "NodePort"}, {"ports", {{{"port", 80}, {"nodePort", want}}}}});
  BOOST_TEST(fixed["spec"]["ports"][0]["nodePort"] == want);
  BOOST_TEST(create_error("taken", {{"type", "NodePort"},
                                    {"ports", {{{"port", 80}, {"nodePort", want}}}}}) ==
             "Service \"taken\" is invalid: spec.ports[0].nodePort: Invalid value: " +
                 std::to_string(want) + ": provided port is already allocated");
  BOOST_TEST(create_error(
                 "low", {{"type", "NodePort"}, {"ports", {{{"port", 80}, {"nodePort", 8080}}}}}) ==
             "Service \"low\" is invalid: spec.ports[0].nodePort: Invalid value: 8080: provided "
             "port is not in the valid range. The range of valid ports is 30000-30009");
  BOOST_TEST(create_error("cip", {{"ports", {{{"port", 80}, {"nodePort", 30001}}}}}) ==
             "Service \"cip\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used "
             "when `type` is 'ClusterIP'");
  BOOST_TEST(alloc->node_ports_in_use() == 3u);

  // LoadBalancer is treated like NodePort.
  json lb = create("lb", {{"type", "LoadBalancer"}});
  BOOST_TEST(lb["spec"]["ports"][0]["nodePort"].get<int>() >= 30000);
  BOOST_TEST(alloc->node_ports_in_use() == 4u);

  // An update that leaves nodePort out (kubectl apply of the same manifest) keeps it.
  json upd = service("np", {{"type", "NodePort"},
                            {"ports",
                             {{{"name", "http"}, {"port", 80}},
                              {{"name", "dns"}, {"port", 53}, {"protocol", "UDP"}}}}});
  auto same = reg->update("Service", "default", "np", upd);
  BOOST_REQUIRE_MESSAGE(same.ok(), (same.ok() ? "" : same.err().message));
  BOOST_TEST((*same)["spec"]["ports"][0]["nodePort"] == p0);
  BOOST_TEST((*same)["spec"]["ports"][1]["nodePort"] == p1);
  BOOST_TEST(alloc->node_ports_in_use() == 4u);

  // A failed update keeps what the Service had and takes nothing.
  json clash = *same;
  clash["spec"]["ports"][0]["nodePort"] = want;
  BOOST_TEST(!reg->update("Service", "default", "np", clash).ok());
  BOOST_TEST(alloc->node_port_in_use(p0));
  BOOST_TEST(alloc->node_ports_in_use() == 4u);

  // Changing one port's nodePort frees the old one.
  int free_port = 30000;
  while (alloc->node_port_in_use(free_port))
    ++free_port;
  json moved = *same;
  moved["spec"]["ports"][0]["nodePort"] = free_port;
  auto m = reg->update("Service", "default", "np", moved);
  BOOST_REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.err().message));
  BOOST_TEST(!alloc->node_port_in_use(p0));
  BOOST_TEST(alloc->node_port_in_use(free_port));

  // Changing the type away from NodePort releases its ports, even when the
  // request still carries them (kubectl apply keeps fields it did not set).
  json to_cip = *m;
  to_cip["spec"]["type"] = "ClusterIP";
  auto c = reg->update("Service", "default", "np", to_cip);
  BOOST_REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.err().message));
  BOOST_TEST(!(*c)["spec"]["ports"][0].contains("nodePort"));
  BOOST_TEST(!(*c)["spec"].contains("externalTrafficPolicy"));
  BOOST_TEST(!alloc->node_port_in_use(free_port));
  BOOST_TEST(!alloc->node_port_in_use(p1));
  BOOST_TEST(alloc->node_ports_in_use() == 2u);

  // Deleting releases the rest.
  BOOST_REQUIRE(reg->remove("Service", "default", "lb").ok());
  BOOST_REQUIRE(reg->remove("Service", "default", "fixed").ok());
  BOOST_TEST(alloc->node_ports_in_use() == 0u);
}

BOOST_FIXTURE_TEST_CASE(node_port_range_full, services_fixture) {
  json ports = json::array();
  for (int i = 0; i < 10; ++i)
    ports.push_back({{"name", "p" + std::to_string(i)}, {"port", 1000 + i}});
  create("all", {{"type", "NodePort"}, {"ports", ports}});
  BOOST_TEST(alloc->node_ports_in_use() == 10u);
  auto r = reg->create("Service", "default", service("more", {{"type", "NodePort"}}));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().message ==
             "Internal error occurred: failed to allocate a nodePort: range is full");
  // The cluster IP taken before the node port failed went back.
  BOOST_TEST(alloc->ips_in_use() == 1u);
}

BOOST_FIXTURE_TEST_CASE(allocations_are_rebuilt_after_a_restart, services_fixture) {
  json a = create("a", {{"type", "NodePort"}});
  json b = create("b", json::object());
  create("gone", json::object());
  BOOST_REQUIRE(reg->remove("Service", "default", "gone").ok());
  std::string ip_a = a["spec"]["clusterIP"], ip_b = b["spec"]["clusterIP"];
  int port_a = a["spec"]["ports"][0]["nodePort"];

  restart(make_allocator("10.96.0.0/28", 30000, 30009));
  BOOST_TEST(alloc->ips_in_use() == 2u);
  BOOST_TEST(alloc->ip_in_use(ip_a));
  BOOST_TEST(alloc->ip_in_use(ip_b));
  BOOST_TEST(alloc->node_port_in_use(port_a));
  BOOST_TEST(alloc->node_ports_in_use() == 1u);
  BOOST_TEST(create_error("c", {{"clusterIP", ip_a}}).find("provided IP is already allocated") !=
             std::string::npos);
  BOOST_TEST(
      create_error("d", {{"type", "NodePort"}, {"ports", {{{"port", 80}, {"nodePort", port_a}}}}})
          .find("provided port is already allocated") != std::string::npos);
  // Filling the range never repeats an address held from before the restart.
  std::set<std::string> seen = {ip_a, ip_b};
  for (int i = 0; i < 11; ++i) {
    std::string ip = create("n" + std::to_string(i), json::object())["spec"]["clusterIP"];
    BOOST_TEST(seen.insert(ip).second, "handed out twice: " << ip);
  }
  // And deleting after the restart frees what was allocated before it.
  BOOST_REQUIRE(reg->remove("Service", "default", "a").ok());
  BOOST_TEST(!alloc->ip_in_use(ip_a));
  BOOST_TEST(!alloc->node_port_in_use(port_a));
}

BOOST_FIXTURE_TEST_CASE(kubernetes_defaults, services_fixture) {
  json s = create("web", {{"ports", {{{"port", 80}}}}, {"selector", {{"app", "web"}}}});
  BOOST_TEST(s["spec"]["type"] == "ClusterIP");
  BOOST_TEST(s["spec"]["sessionAffinity"] == "None");
  BOOST_TEST(!s["spec"].contains("sessionAffinityConfig"));
  BOOST_TEST(!s["spec"].contains("externalTrafficPolicy"));
  BOOST_TEST(s["spec"]["ports"][0]["protocol"] == "TCP");
  BOOST_TEST(s["spec"]["ports"][0]["targetPort"] == 80);

  json aff = create("aff", {{"sessionAffinity", "ClientIP"}});
  BOOST_TEST(aff["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 10800);
  json aff2 = create("aff2", {{"sessionAffinity", "ClientIP"},
                              {"sessionAffinityConfig", {{"clientIP", {{"timeoutSeconds", 60}}}}}});
  BOOST_TEST(aff2["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 60);
  BOOST_TEST(
      create_error("aff3", {{"sessionAffinity", "ClientIP"},
                            {"sessionAffinityConfig", {{"clientIP", {{"timeoutSeconds", 0}}}}}}) ==
      "Service \"aff3\" is invalid: spec.sessionAffinityConfig.clientIP.timeoutSeconds: "
      "Invalid value: 0: must be greater than 0 and less than 86400");
  BOOST_TEST(
      create_error("aff4", {{"sessionAffinityConfig", {{"clientIP", {{"timeoutSeconds", 5}}}}}}) ==
      "Service \"aff4\" is invalid: spec.sessionAffinityConfig: Forbidden: must not be set "
      "when `sessionAffinity` is None");
  // Turning affinity off drops the config it carried.
  json off = aff;
  off["spec"]["sessionAffinity"] = "None";
  auto o = reg->update("Service", "default", "aff", off);
  BOOST_REQUIRE_MESSAGE(o.ok(), (o.ok() ? "" : o.err().message));
  BOOST_TEST(!(*o)["spec"].contains("sessionAffinityConfig"));

  json local = create("local", {{"type", "NodePort"}, {"externalTrafficPolicy", "Local"}});
  BOOST_TEST(local["spec"]["externalTrafficPolicy"] == "Local");
  BOOST_TEST(create_error("etp", {{"externalTrafficPolicy", "Local"}})
                 .find("spec.externalTrafficPolicy") != std::string::npos);

  json named = create("named", {{"ports", {{{"port", 80}, {"targetPort", "http"}}}}});
  BOOST_TEST(named["spec"]["ports"][0]["targetPort"] == "http");
}

BOOST_AUTO_TEST_SUITE_END()

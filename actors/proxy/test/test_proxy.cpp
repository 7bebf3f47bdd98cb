#define BOOST_TEST_MODULE deckhand_proxy
#include <boost/test/unit_test.hpp>

#include "deckhand/proxy/proxy.hpp"

using namespace deckhand;

BOOST_AUTO_TEST_SUITE(rules_suite)

BOOST_AUTO_TEST_CASE(one_rule_per_service_port) {
  wire::service s;
  s.metadata.namespace_ = "default";
  s.metadata.name = "web";
  s.spec.cluster_ip = "10.96.0.10";
  wire::service_port http;
  http.port = 80;
  http.target_port.value = "8080";
  wire::service_port named;
  named.port = 443;
  named.target_port.value = "https";
  named.node_port = 30443;
  s.spec.ports = {http, named};
  std::map<std::string, wire::service> m{{"default/web", s}};
  auto rules = proxy::describe_rules(m);
  BOOST_REQUIRE_EQUAL(rules.size(), 2u);
  BOOST_TEST(rules[0] ==
             "service=default/web type=ClusterIP clusterIP=10.96.0.10 port=80/TCP targetPort=8080");
  BOOST_TEST(rules[1].find("targetPort=https nodePort=30443") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(no_services_no_rules) { BOOST_TEST(proxy::describe_rules({}).empty()); }

BOOST_AUTO_TEST_SUITE_END()

#include "deckhand/proxy/service_map.hpp"

BOOST_AUTO_TEST_SUITE(service_map_suite)

namespace {

wire::endpoint_slice slice(const std::string& name, const std::string& svc,
                           std::vector<std::pair<std::string, bool>> ips,
                           std::vector<wire::endpoint_port> ports) {
  wire::endpoint_slice es;
  es.metadata.namespace_ = "default";
  es.metadata.name = name;
  es.metadata.labels["kubernetes.io/service-name"] = svc;
  for (auto& [ip, ready] : ips) {
    wire::endpoint e;
    e.addresses = {ip};
    e.conditions.ready = ready;
    es.endpoints.push_back(e);
  }
  es.ports = std::move(ports);
  return es;
}

wire::endpoint_port eport(const std::string& name, int32_t port, const std::string& proto = "TCP") {
  wire::endpoint_port p;
  p.name = name;
  p.port = port;
  p.protocol = proto;
  return p;
}

}  // namespace

BOOST_AUTO_TEST_CASE(entries_per_port_with_backends_from_matching_slices) {
  wire::service s;
  s.metadata.namespace_ = "default";
  s.metadata.name = "web";
  s.spec.cluster_ip = "10.96.0.10";
  s.spec.session_affinity = "ClientIP";
  wire::service_port http;
  http.name = "http";
  http.port = 80;
  wire::service_port dns;
  dns.name = "dns";
  dns.port = 53;
  dns.protocol = "UDP";
  dns.node_port = 30053;
  s.spec.ports = {http, dns};
  std::map<std::string, wire::service> svcs{{"default/web", s}};
  // Two slices: pods with different numbers for the named port.
  std::map<std::string, wire::endpoint_slice> slices{
      {"default/web-a", slice("web-a", "web", {{"10.88.0.6", true}, {"10.88.0.5", false}},
                              {eport("http", 8080), eport("dns", 5353, "UDP")})},
      {"default/web-b", slice("web-b", "web", {{"10.88.0.7", true}}, {eport("http", 9090)})},
      {"default/other", slice("other", "other", {{"10.88.0.9", true}}, {eport("http", 1)})},
  };
  auto m = proxy::build_service_map(svcs, slices);
  BOOST_REQUIRE_EQUAL(m.entries.size(), 2u);
  const auto& d = m.entries[0];  // "default/web:dns" sorts first
  BOOST_TEST(d.key() == "default/web:dns");
  BOOST_TEST(d.protocol == "UDP");
  BOOST_TEST(d.node_port == 30053);
  BOOST_REQUIRE_EQUAL(d.backends.size(), 2u);
  BOOST_TEST(d.backends[0].port == 5353);
  const auto& h = m.entries[1];
  BOOST_TEST(h.affinity_client_ip);
  BOOST_TEST(h.affinity_timeout_seconds == 10800);
  BOOST_REQUIRE_EQUAL(h.backends.size(), 3u);
  BOOST_TEST(h.backends[0].ip == "10.88.0.5");
  BOOST_TEST(!h.backends[0].ready);
  BOOST_TEST(h.backends[2].port == 9090);
  auto usable = h.usable_backends();
  BOOST_REQUIRE_EQUAL(usable.size(), 2u);
  BOOST_TEST(usable[0].ip == "10.88.0.6");
}

BOOST_AUTO_TEST_CASE(terminating_backends_only_when_nothing_is_ready_and_headless_is_skipped) {
  proxy::service_port_entry e;
  proxy::backend b;
  b.ip = "10.0.0.1";
  b.ready = false;
  b.serving = true;
  b.terminating = true;
  e.backends = {b};
  BOOST_REQUIRE_EQUAL(e.usable_backends().size(), 1u);
  e.backends[0].serving = false;
  BOOST_TEST(e.usable_backends().empty());

  wire::service headless;
  headless.metadata.namespace_ = "default";
  headless.metadata.name = "h";
  headless.spec.cluster_ip = "None";
  wire::service_port p;
  p.port = 80;
  headless.spec.ports = {p};
  BOOST_TEST(proxy::build_service_map({{"default/h", headless}}, {}).entries.empty());
}

BOOST_AUTO_TEST_SUITE_END()

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
  BOOST_TEST(rules[0] == "service=default/web type=ClusterIP clusterIP=10.96.0.10 port=80/TCP targetPort=8080");
  BOOST_TEST(rules[1].find("targetPort=https nodePort=30443") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(no_services_no_rules) {
  BOOST_TEST(proxy::describe_rules({}).empty());
}

BOOST_AUTO_TEST_SUITE_END()

#include <boost/test/unit_test.hpp>

#include "deckhand/api/defaults.hpp"
#include "deckhand/api/validation.hpp"

using namespace deckhand::api;
using nlohmann::json;

BOOST_AUTO_TEST_SUITE(validation)

BOOST_AUTO_TEST_CASE(pod_errors_use_kubernetes_wording) {
  auto pod = json::parse(R"({"metadata":{"name":"p","namespace":"default"},
    "spec":{"containers":[{"name":"c"}]}})");
  auto errs = default_and_validate_pod(pod);
  BOOST_REQUIRE_EQUAL(errs.size(), 1u);
  BOOST_TEST(invalid_message("Pod", "p", errs) ==
             "Pod \"p\" is invalid: spec.containers[0].image: Required value");
}

BOOST_AUTO_TEST_CASE(a_valid_pod_is_defaulted_with_phase_and_qos) {
  auto pod = json::parse(R"({"metadata":{"name":"p","namespace":"default"},
    "spec":{"containers":[{"name":"c","image":"busybox","ports":[{"containerPort":80}],
      "resources":{"requests":{"cpu":"1","memory":"1Gi"},
                   "limits":{"cpu":"1000m","memory":"1024Mi"}}}]}})");
  auto errs = default_and_validate_pod(pod);
  BOOST_REQUIRE(errs.empty());
  BOOST_TEST(pod["spec"]["restartPolicy"] == "Always");
  BOOST_TEST(pod["spec"]["containers"][0]["imagePullPolicy"] == "Always");
  BOOST_TEST(pod["spec"]["containers"][0]["ports"][0]["protocol"] == "TCP");
  BOOST_TEST(pod["status"]["phase"] == "Pending");
  BOOST_TEST(pod["status"]["qosClass"] == "Guaranteed");
}

BOOST_AUTO_TEST_CASE(requests_above_limits_compare_by_value) {
  auto pod = json::parse(R"({"metadata":{"name":"p","namespace":"default"},
    "spec":{"containers":[{"name":"c","image":"busybox:1.36",
      "resources":{"requests":{"memory":"1025Mi"},"limits":{"memory":"1Gi"}}}]}})");
  auto errs = default_and_validate_pod(pod);
  BOOST_REQUIRE_EQUAL(errs.size(), 1u);
  BOOST_TEST(errs[0].to_string() ==
             "spec.containers[0].resources.requests: Invalid value: "
             "\"1025Mi\": must be less than or equal to memory limit of 1Gi");
  auto bad = json::parse(R"({"metadata":{"name":"p","namespace":"default"},
    "spec":{"containers":[{"name":"c","image":"b","resources":{"limits":{"cpu":"x"}}}]}})");
  errs = default_and_validate_pod(bad);
  BOOST_REQUIRE(!errs.empty());
  BOOST_TEST(errs[0].to_string().find("quantities must match the regular expression") !=
             std::string::npos);
}

BOOST_AUTO_TEST_CASE(services_are_defaulted_then_validated) {
  auto svc = json::parse(R"({"metadata":{"name":"web","namespace":"default"},
    "spec":{"type":"NodePort","sessionAffinity":"ClientIP","ports":[{"port":80}]}})");
  auto errs = default_and_validate_service(svc);
  BOOST_REQUIRE(errs.empty());
  const auto& spec = svc["spec"];
  BOOST_TEST(spec["ports"][0]["protocol"] == "TCP");
  BOOST_TEST(spec["ports"][0]["targetPort"] == 80);
  BOOST_TEST(spec["externalTrafficPolicy"] == "Cluster");
  BOOST_TEST(spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"] == 10800);
  auto two = json::parse(R"({"metadata":{"name":"web","namespace":"default"},
    "spec":{"ports":[{"port":80},{"port":81,"nodePort":30001}]}})");
  errs = default_and_validate_service(two);
  BOOST_REQUIRE_EQUAL(errs.size(), 3u);
  BOOST_TEST(errs[0].to_string() == "spec.ports[0].name: Required value");
  BOOST_TEST(errs[1].to_string() ==
             "spec.ports[1].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'");
  BOOST_TEST(errs[2].to_string() == "spec.ports[1].name: Required value");
}

BOOST_AUTO_TEST_CASE(endpoints_slices_nodes_events_and_leases) {
  auto ep = json::parse(R"({"metadata":{"name":"web","namespace":"default"},
    "subsets":[{"addresses":[{"ip":"10.0.0.1"}],"ports":[{"port":80}]}]})");
  BOOST_TEST(default_and_validate_endpoints(ep).empty());
  BOOST_TEST(ep["subsets"][0]["ports"][0]["protocol"] == "TCP");
  auto slice = json::parse(R"({"metadata":{"name":"web-1","namespace":"default"},
    "addressType":"IPv4","endpoints":[{"addresses":["10.0.0.300"]}]})");
  auto errs = default_and_validate_endpoint_slice(slice);
  BOOST_REQUIRE_EQUAL(errs.size(), 1u);
  BOOST_TEST(
      errs[0].to_string() ==
      "endpoints[0].addresses[0]: Invalid value: \"10.0.0.300\": must be a valid IP address");
  auto node = json::parse(R"({"metadata":{"name":"node-1"}})");
  BOOST_TEST(default_and_validate_node(node).empty());
  BOOST_TEST(node["spec"].is_object());
  auto event = json::parse(R"({"metadata":{"name":"e","namespace":"a"},
    "involvedObject":{"namespace":"b"},"type":"Odd"})");
  BOOST_TEST(validate_event(event).size() == 2u);
  auto lease = json::parse(R"({"metadata":{"name":"node-1"},
    "spec":{"renewTime":"2024-05-01T12:00:00.000000Z","leaseDurationSeconds":0}})");
  errs = default_and_validate_lease(lease);
  BOOST_REQUIRE_EQUAL(errs.size(), 1u);
  BOOST_TEST(errs[0].to_string() ==
             "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0");
}

BOOST_AUTO_TEST_CASE(names_follow_dns_rules) {
  BOOST_TEST(check_dns1123_label("web-1").empty());
  BOOST_TEST(!check_dns1123_label("Web").empty());
  BOOST_TEST(check_dns1123_subdomain("a.b-c").empty());
  BOOST_TEST(!check_dns1035_label("1abc").empty());
  BOOST_TEST(default_pull_policy("busybox") == "Always");
  BOOST_TEST(default_pull_policy("busybox:1.36") == "IfNotPresent");
  BOOST_TEST(default_pull_policy("localhost:5000/busybox") == "Always");
}

BOOST_AUTO_TEST_SUITE_END()

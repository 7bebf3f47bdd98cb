#include <boost/test/unit_test.hpp>

#include "deckhand/api/qos.hpp"

using namespace deckhand::api;
using nlohmann::json;

BOOST_AUTO_TEST_SUITE(qos)

BOOST_AUTO_TEST_CASE(equal_requests_and_limits_by_value_are_guaranteed) {
  // 1Gi and 1024Mi are the same amount: Guaranteed, not Burstable.
  container_resources c;
  c.requests = {{"cpu", "500m"}, {"memory", "1Gi"}};
  c.limits = {{"cpu", "0.5"}, {"memory", "1024Mi"}};
  BOOST_TEST(to_string(pod_qos(std::vector<container_resources>{c})) == "Guaranteed");

  auto spec = json::parse(R"({"containers":[{"name":"c","resources":{
      "requests":{"cpu":"500m","memory":"1Gi"},"limits":{"cpu":"0.5","memory":"1024Mi"}}}]})");
  BOOST_TEST(to_string(pod_qos(spec)) == "Guaranteed");
}

BOOST_AUTO_TEST_CASE(requests_default_to_limits) {
  container_resources c;
  c.limits = {{"cpu", "1"}, {"memory", "64Mi"}};
  BOOST_TEST(to_string(pod_qos(std::vector<container_resources>{c})) == "Guaranteed");
}

BOOST_AUTO_TEST_CASE(unequal_or_missing_limits_are_burstable) {
  container_resources c;
  c.requests = {{"cpu", "100m"}, {"memory", "1Gi"}};
  c.limits = {{"cpu", "200m"}, {"memory", "1Gi"}};
  BOOST_TEST(to_string(pod_qos(std::vector<container_resources>{c})) == "Burstable");
  container_resources only_cpu;
  only_cpu.limits = {{"cpu", "1"}};
  BOOST_TEST(to_string(pod_qos(std::vector<container_resources>{only_cpu})) == "Burstable");
}

BOOST_AUTO_TEST_CASE(init_containers_count) {
  auto spec = json::parse(R"({
    "initContainers":[{"name":"i","resources":{"requests":{"cpu":"100m"}}}],
    "containers":[{"name":"c","resources":{"limits":{"cpu":"1","memory":"1Gi"}}}]})");
  BOOST_TEST(to_string(pod_qos(spec)) == "Burstable");
  auto best = json::parse(R"({
    "initContainers":[{"name":"i","resources":{"requests":{"memory":"1Mi"}}}],
    "containers":[{"name":"c"}]})");
  BOOST_TEST(to_string(pod_qos(best)) == "Burstable");
}

BOOST_AUTO_TEST_CASE(nothing_requested_is_best_effort) {
  BOOST_TEST(to_string(pod_qos(json::parse(R"({"containers":[{"name":"c"}]})"))) == "BestEffort");
  // Zero amounts and other resources do not count.
  container_resources c;
  c.requests = {{"cpu", "0"}, {"ephemeral-storage", "1Gi"}};
  BOOST_TEST(to_string(pod_qos(std::vector<container_resources>{c})) == "BestEffort");
}

BOOST_AUTO_TEST_SUITE_END()

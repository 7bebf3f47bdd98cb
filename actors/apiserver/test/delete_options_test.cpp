#include <boost/test/unit_test.hpp>

/// DeleteOptions of a DELETE (query and body, as kubectl and curl send them)
/// and the graceful deletion they lead to.

#include <chrono>

#include "deckhand/apiserver/delete_options.hpp"
#include "deckhand/apiserver/registry.hpp"
#include "support.hpp"

using namespace deckhand::apiserver;
using deckhand::errc;
using nlohmann::json;

namespace {

std::chrono::system_clock::time_point delete_clock =
    std::chrono::system_clock::from_time_t(1714564800);  // 2024-05-01T12:00:00Z

}  // namespace

BOOST_AUTO_TEST_SUITE(delete_options_suite)

// Kubernetes: kubectl's body, curl's query parameter; the body wins.
BOOST_AUTO_TEST_CASE(grace_period_from_body_or_query) {
  auto none = parse_delete_options("", "");
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(!none->options.grace_period_seconds);
  BOOST_TEST(!none->dry_run);

  auto kubectl = parse_delete_options(
      R"({"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0,"propagationPolicy":"Background"})",
      "");
  BOOST_REQUIRE(kubectl.ok());
  BOOST_TEST(*kubectl->options.grace_period_seconds == 0);

  auto query = parse_delete_options("", "7");
  BOOST_TEST(*query->options.grace_period_seconds == 7);
  auto both = parse_delete_options(R"({"gracePeriodSeconds":3})", "7");
  BOOST_TEST(*both->options.grace_period_seconds == 3);
  auto null_grace = parse_delete_options(R"({"gracePeriodSeconds":null})", "7");
  BOOST_TEST(*null_grace->options.grace_period_seconds == 7);

  auto pre = parse_delete_options(R"({"preconditions":{"uid":"u1","resourceVersion":"5"}})", "");
  BOOST_TEST(pre->options.uid_precondition == "u1");
  BOOST_TEST(pre->options.resource_version_precondition == "5");

  BOOST_TEST(parse_delete_options(R"({"dryRun":["All"]})", "")->dry_run);
  BOOST_TEST(parse_delete_options("", "", "All")->dry_run);
}

// Kubernetes answers 400 BadRequest for options it cannot decode.
BOOST_AUTO_TEST_CASE(malformed_options_are_rejected) {
  BOOST_TEST(parse_delete_options("", "soon").err().code == errc::invalid);
  BOOST_TEST(parse_delete_options("", "5s").err().code == errc::invalid);
  BOOST_TEST(parse_delete_options("[1]", "").err().code == errc::invalid);
  BOOST_TEST(parse_delete_options("{", "").err().code == errc::invalid);
  BOOST_TEST(parse_delete_options(R"({"gracePeriodSeconds":"5"})", "").err().code == errc::invalid);
  BOOST_TEST(parse_delete_options(R"({"gracePeriodSeconds":1.5})", "").err().code == errc::invalid);
  BOOST_TEST(parse_delete_options(R"({"dryRun":["Some"]})", "").err().code == errc::invalid);
  BOOST_TEST(parse_delete_options("", "", "true").err().code == errc::invalid);
}

// Kubernetes (BeforeDelete): a later, shorter grace period moves the
// deletion deadline earlier by the difference; a negative one counts as 1;
// 0 removes the object at once.
BOOST_AUTO_TEST_CASE(shorter_grace_moves_the_deadline) {
  test::temp_dir tmp;
  auto st = store::open(tmp.path() / "apiserver").value();
  registry_options o;
  o.clock = [] { return delete_clock; };
  registry reg{st, o};
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "web"}}},
              {"spec", {{"containers", json::array({{{"name", "app"}, {"image", "busybox"}}})}}}};
  BOOST_REQUIRE(reg.create("Pod", "default", pod).ok());
  BOOST_REQUIRE(reg.bind("default", "web", "node-1").ok());
  auto first = reg.remove("Pod", "default", "web", {std::int64_t{30}, {}, {}});
  BOOST_REQUIRE(first.ok());
  BOOST_TEST(first->object["metadata"]["deletionTimestamp"] == "2024-05-01T12:00:30Z");
  delete_clock += std::chrono::seconds(10);
  auto shorter = reg.remove("Pod", "default", "web", {std::int64_t{5}, {}, {}});
  BOOST_REQUIRE(shorter.ok());
  BOOST_TEST(!shorter->removed);
  BOOST_TEST(shorter->object["metadata"]["deletionGracePeriodSeconds"] == 5);
  BOOST_TEST(shorter->object["metadata"]["deletionTimestamp"] == "2024-05-01T12:00:05Z");
  auto negative = reg.remove("Pod", "default", "web", {std::int64_t{-3}, {}, {}});
  BOOST_TEST(negative->object["metadata"]["deletionGracePeriodSeconds"] == 1);
  auto force = reg.remove("Pod", "default", "web", {std::int64_t{0}, {}, {}});
  BOOST_REQUIRE(force.ok());
  BOOST_TEST(force->removed);
  BOOST_TEST(reg.get("Pod", "default", "web").err().code == errc::not_found);
}

BOOST_AUTO_TEST_SUITE_END()

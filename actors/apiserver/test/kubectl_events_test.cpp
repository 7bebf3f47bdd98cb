// kubectl get events and kubectl describe pod against the API server: the
// real client's field selectors and printing.

#include <boost/test/unit_test.hpp>

#include "deckhand/apiserver/events.hpp"
#include "server_fixture.hpp"

using namespace deckhand::apiserver;
using nlohmann::json;

namespace {

struct kubectl_events_fixture : deckhand::apiserver::test::kubectl_fixture {
  json pod_event(const json& pod, const std::string& name, const std::string& reason,
                 const std::string& message, int count) {
    auto now = format_rfc3339(std::chrono::system_clock::now());
    return {{"metadata", {{"name", name}, {"namespace", "default"}}},
            {"involvedObject",
             {{"kind", "Pod"},
              {"namespace", "default"},
              {"name", pod["metadata"]["name"]},
              {"uid", pod["metadata"]["uid"]},
              {"apiVersion", "v1"},
              {"fieldPath", "spec.containers{app}"}}},
            {"reason", reason},
            {"message", message},
            {"type", "Normal"},
            {"source", {{"component", "kubelet"}, {"host", "node-a"}}},
            {"firstTimestamp", now},
            {"lastTimestamp", now},
            {"count", count}};
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(kubectl_events_suite, kubectl_events_fixture,
                         *deckhand::testing::skip_unless(deckhand::testing::program("kubectl")))

BOOST_AUTO_TEST_CASE(get_events_and_describe_pod) {
  json pod = {{"metadata", {{"name", "web"}}},
              {"spec", {{"containers", {{{"name", "app"}, {"image", "busybox:1.36"}}}}}}};
  auto created = reg.create("Pod", "default", pod);
  BOOST_REQUIRE(created.ok());
  BOOST_REQUIRE(reg.bind("default", "web", "node-a").ok());
  json other = {{"metadata", {{"name", "other"}}},
                {"spec", {{"containers", {{{"name", "app"}, {"image", "busybox:1.36"}}}}}}};
  auto other_created = reg.create("Pod", "default", other);
  BOOST_REQUIRE(other_created.ok());
  auto s = record_events(
      reg, {scheduled_event(*created, "node-a", std::chrono::system_clock::now()),
            pod_event(*created, "web.1", "Pulled",
                      "Container image \"busybox:1.36\" already present on machine", 1),
            pod_event(*created, "web.2", "Started", "Started container app", 3),
            pod_event(*other_created, "other.1", "Started", "Started container other-app", 1)});
  BOOST_REQUIRE_EQUAL(s.created, 4u);

  auto [c1, list] = kubectl("get events");
  BOOST_REQUIRE_MESSAGE(c1 == 0, list);
  // The server's Event Table: kubectl's LAST SEEN TYPE REASON OBJECT MESSAGE.
  BOOST_TEST(list.find("REASON") != std::string::npos);
  BOOST_TEST(list.find("OBJECT") != std::string::npos);
  BOOST_TEST(list.find("pod/web") != std::string::npos);
  BOOST_TEST(list.find("Started container app") != std::string::npos);
  auto [c2, names] = kubectl("get ev -o name");
  BOOST_REQUIRE_MESSAGE(c2 == 0, names);
  BOOST_TEST(names.find("event/web.2") != std::string::npos);
  auto [c3, sel] = kubectl("get events --field-selector involvedObject.name=other -o name");
  BOOST_REQUIRE_MESSAGE(c3 == 0, sel);
  BOOST_TEST(sel == "event/other.1\n");

  auto [c4, desc] = kubectl("describe pod web");
  BOOST_REQUIRE_MESSAGE(c4 == 0, desc);
  BOOST_TEST(desc.find("Name:") != std::string::npos);
  BOOST_TEST(desc.find("Events:") != std::string::npos);
  BOOST_TEST(desc.find("Scheduled") != std::string::npos);
  BOOST_TEST(desc.find("default-scheduler  Successfully assigned default/web to node-a") !=
             std::string::npos);
  BOOST_TEST(desc.find("(x3 over") != std::string::npos);
  BOOST_TEST(desc.find("other-app") == std::string::npos);  // another pod's events
}

BOOST_AUTO_TEST_SUITE_END()

// kubectl get events and kubectl describe pod against the API server: the
// real client's field selectors and printing.

#include <stdio.h>
#include <sys/wait.h>

#include <fstream>

#include <boost/test/unit_test.hpp>

#include "deckhand/apiserver/events.hpp"
#include "deckhand/apiserver/http_api.hpp"
#include "support.hpp"

using namespace deckhand::apiserver;
using deckhand::apiserver::test::temp_dir;
using nlohmann::json;

namespace {

bool have_kubectl() { return std::system("command -v kubectl >/dev/null 2>&1") == 0; }

struct kubectl_events_fixture {
  temp_dir tmp;
  store st = store::open(tmp.path() / "apiserver").value();
  registry reg{st};
  http_api api{reg};

  kubectl_events_fixture() {
    BOOST_REQUIRE(api.start().ok());
    std::ofstream(tmp.path() / "kubeconfig") << "";
  }
  ~kubectl_events_fixture() { api.stop(); }

  std::pair<int, std::string> kubectl(const std::string& args) {
    std::string cmd = "KUBECONFIG=" + (tmp.path() / "kubeconfig").string() +
                      " timeout 60 kubectl --server=" + api.url() +
                      " --cache-dir=" + (tmp.path() / "cache").string() +
                      " --request-timeout=20s " + args + " 2>&1 </dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    BOOST_REQUIRE(p);
    std::string out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p))
      out.append(buf, n);
    int status = ::pclose(p);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    BOOST_TEST_MESSAGE("kubectl " << args << " -> " << code << "\n" << out);
    return {code, out};
  }

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

BOOST_FIXTURE_TEST_SUITE(kubectl_events_suite, kubectl_events_fixture)

BOOST_AUTO_TEST_CASE(get_events_and_describe_pod) {
  if (!have_kubectl())
    return;
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

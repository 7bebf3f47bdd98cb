#include <httplib.h>

#include <sstream>

#include <boost/test/unit_test.hpp>

#include "deckhand/apiserver/http_api.hpp"
#include "support.hpp"

using namespace deckhand::apiserver;
using deckhand::apiserver::test::temp_dir;
using nlohmann::json;

namespace {

struct http_fixture {
  temp_dir tmp;
  store st = store::open(tmp.path()).value();
  registry reg{st};
  http_api api{reg};
  std::unique_ptr<httplib::Client> cli;

  http_fixture() {
    auto port = api.start();
    BOOST_REQUIRE_MESSAGE(port.ok(), (port.ok() ? "" : port.err().message));
    BOOST_REQUIRE(*port > 0);
    cli = std::make_unique<httplib::Client>("127.0.0.1", *port);
    cli->set_read_timeout(10, 0);
  }
  ~http_fixture() { api.stop(); }

  static std::string pod_body(const std::string& name, const std::string& image = "busybox:1.36") {
    return json{{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"labels", {{"app", name}}}}},
                {"spec", {{"containers", {{{"name", "c"}, {"image", image}}}}}}}
        .dump();
  }

  /// Status, parsed body.
  std::pair<int, json> call(const std::string& method, const std::string& path,
                            const std::string& body = {}) {
    httplib::Result r = method == "GET"    ? cli->Get(path.c_str())
                        : method == "POST" ? cli->Post(path.c_str(), body, "application/json")
                        : method == "PUT"  ? cli->Put(path.c_str(), body, "application/json")
                        : body.empty()     ? cli->Delete(path.c_str())
                                           : cli->Delete(path.c_str(), body, "application/json");
    BOOST_REQUIRE_MESSAGE(r, method + " " + path + " failed: " + httplib::to_string(r.error()));
    json j;
    try {
      j = json::parse(r->body);
    } catch (const json::exception&) {
      j = r->body;
    }
    return {r->status, j};
  }

  static void check_status(const json& s, int code, const std::string& reason) {
    BOOST_TEST(s["kind"] == "Status");
    BOOST_TEST(s["apiVersion"] == "v1");
    BOOST_TEST(s["status"] == "Failure");
    BOOST_TEST(s["code"] == code);
    BOOST_TEST(s["reason"] == reason);
    BOOST_TEST(s["message"].is_string());
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(http_suite, http_fixture)

BOOST_AUTO_TEST_CASE(health_and_version) {
  for (const char* p : {"/healthz", "/readyz", "/livez"}) {
    auto r = cli->Get(p);
    BOOST_REQUIRE(r);
    BOOST_TEST(r->status == 200);
    BOOST_TEST(r->body == "ok");
  }
  auto [code, v] = call("GET", "/version");
  BOOST_TEST(code == 200);
  BOOST_TEST(v["major"] == "1");
  BOOST_TEST(v["gitVersion"].get<std::string>().rfind("v1.32", 0) == 0u);
}

BOOST_AUTO_TEST_CASE(discovery) {
  auto [c1, versions] = call("GET", "/api");
  BOOST_TEST(c1 == 200);
  BOOST_TEST(versions["kind"] == "APIVersions");
  BOOST_TEST(versions["versions"] == json::array({"v1"}));
  auto [c2, v1] = call("GET", "/api/v1");
  BOOST_TEST(c2 == 200);
  BOOST_TEST(v1["kind"] == "APIResourceList");
  BOOST_TEST(v1["groupVersion"] == "v1");
  std::map<std::string, json> by_name;
  for (const auto& r : v1["resources"])
    by_name[r["name"]] = r;
  BOOST_TEST(by_name["pods"]["shortNames"] == json::array({"po"}));
  BOOST_TEST(by_name["pods"]["namespaced"] == true);
  BOOST_TEST(by_name["pods"]["kind"] == "Pod");
  BOOST_TEST(by_name["services"]["shortNames"] == json::array({"svc"}));
  BOOST_TEST(by_name["nodes"]["namespaced"] == false);
  BOOST_TEST(by_name["nodes"]["shortNames"] == json::array({"no"}));
  BOOST_TEST(by_name.count("namespaces") == 1u);
  BOOST_TEST(by_name.count("pods/status") == 1u);
  auto verbs = by_name["pods"]["verbs"];
  BOOST_TEST((std::find(verbs.begin(), verbs.end(), "list") != verbs.end()));
  auto [c3, apis] = call("GET", "/apis");
  BOOST_TEST(c3 == 200);
  BOOST_TEST(apis["kind"] == "APIGroupList");
  std::map<std::string, json> groups;
  for (const auto& g : apis["groups"])
    groups[g["name"].get<std::string>()] = g;
  BOOST_REQUIRE(groups.size() == 2u);
  BOOST_TEST(groups["discovery.k8s.io"]["preferredVersion"]["groupVersion"] ==
             "discovery.k8s.io/v1");
  BOOST_TEST(groups["coordination.k8s.io"]["preferredVersion"]["groupVersion"] ==
             "coordination.k8s.io/v1");
  auto [c4, group] = call("GET", "/apis/discovery.k8s.io/v1");
  BOOST_TEST(c4 == 200);
  BOOST_TEST(group["groupVersion"] == "discovery.k8s.io/v1");
  BOOST_REQUIRE(group["resources"].size() == 1u);
  BOOST_TEST(group["resources"][0]["name"] == "endpointslices");
  BOOST_TEST(group["resources"][0]["kind"] == "EndpointSlice");
  // Core kinds are not served under the group, nor the group's under /api/v1.
  BOOST_TEST(by_name.count("endpointslices") == 0u);
  BOOST_TEST(by_name["endpoints"]["shortNames"] == json::array({"ep"}));
  BOOST_TEST(std::get<0>(call("GET", "/apis/discovery.k8s.io/v1/namespaces/default/pods")) == 404);
  BOOST_TEST(std::get<0>(call("GET", "/api/v1/namespaces/default/endpointslices")) == 404);
  BOOST_TEST(std::get<0>(call("GET", "/apis/apps/v1/namespaces/default/deployments")) == 404);
}

BOOST_AUTO_TEST_CASE(endpoint_slice_crud_under_its_group) {
  json slice = {{"apiVersion", "discovery.k8s.io/v1"},
                {"kind", "EndpointSlice"},
                {"metadata", {{"name", "manual"}}},
                {"addressType", "IPv4"},
                {"endpoints", {{{"addresses", {"10.0.0.1"}}}}},
                {"ports", {{{"name", "http"}, {"port", 80}}}}};
  auto [c1, created] =
      call("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", slice.dump());
  BOOST_TEST(c1 == 201);
  BOOST_TEST(created["apiVersion"] == "discovery.k8s.io/v1");
  BOOST_TEST(created["ports"][0]["protocol"] == "TCP");
  auto [c2, list] = call("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices");
  BOOST_TEST(c2 == 200);
  BOOST_TEST(list["kind"] == "EndpointSliceList");
  BOOST_TEST(list["apiVersion"] == "discovery.k8s.io/v1");
  BOOST_TEST(list["items"].size() == 1u);
  json wrong = slice;
  wrong["apiVersion"] = "v1";
  auto [c3, bad] =
      call("POST", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", wrong.dump());
  BOOST_TEST(c3 == 400);
  BOOST_TEST(bad["message"] == "the API version in the data (v1) does not match the expected API "
                               "version (discovery.k8s.io/v1)");
  auto [c4, deleted] =
      call("DELETE", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/manual");
  BOOST_TEST(c4 == 200);
}

BOOST_AUTO_TEST_CASE(pod_crud) {
  auto [c1, created] = call("POST", "/api/v1/namespaces/default/pods", pod_body("web"));
  BOOST_TEST(c1 == 201);
  BOOST_TEST(created["metadata"]["namespace"] == "default");
  BOOST_TEST(created["status"]["phase"] == "Pending");

  auto [c2, got] = call("GET", "/api/v1/namespaces/default/pods/web");
  BOOST_TEST(c2 == 200);
  BOOST_TEST(got == created);

  auto [c3, list] = call("GET", "/api/v1/namespaces/default/pods");
  BOOST_TEST(c3 == 200);
  BOOST_TEST(list["kind"] == "PodList");
  BOOST_TEST(list["apiVersion"] == "v1");
  BOOST_TEST(list["metadata"]["resourceVersion"] == "1");
  BOOST_TEST(list["items"].size() == 1u);

  json upd = got;
  upd["spec"]["containers"][0]["image"] = "busybox:1.37";
  auto [c4, updated] = call("PUT", "/api/v1/namespaces/default/pods/web", upd.dump());
  BOOST_TEST(c4 == 200);
  BOOST_TEST(updated["spec"]["containers"][0]["image"] == "busybox:1.37");

  json status = updated;
  status["status"]["phase"] = "Running";
  auto [c5, running] = call("PUT", "/api/v1/namespaces/default/pods/web/status", status.dump());
  BOOST_TEST(c5 == 200);
  BOOST_TEST(running["status"]["phase"] == "Running");

  auto [c6, all] = call("GET", "/api/v1/pods");
  BOOST_TEST(c6 == 200);
  BOOST_TEST(all["items"].size() == 1u);

  auto [c7, del] = call("DELETE", "/api/v1/namespaces/default/pods/web");
  BOOST_TEST(c7 == 200);
  BOOST_TEST(del["metadata"]["name"] == "web");
  auto [c8, gone] = call("GET", "/api/v1/namespaces/default/pods/web");
  BOOST_TEST(c8 == 404);
  check_status(gone, 404, "NotFound");
  BOOST_TEST(gone["message"] == "pods \"web\" not found");
  BOOST_TEST(gone["details"]["name"] == "web");
  BOOST_TEST(gone["details"]["kind"] == "pods");
}

BOOST_AUTO_TEST_CASE(error_statuses) {
  BOOST_TEST(call("POST", "/api/v1/namespaces/default/pods", pod_body("web")).first == 201);
  auto [c1, exists] = call("POST", "/api/v1/namespaces/default/pods", pod_body("web"));
  BOOST_TEST(c1 == 409);
  check_status(exists, 409, "AlreadyExists");

  auto [c2, invalid] = call("POST", "/api/v1/namespaces/default/pods", pod_body("bad", ""));
  BOOST_TEST(c2 == 422);
  check_status(invalid, 422, "Invalid");
  BOOST_TEST(invalid["message"] ==
             "Pod \"bad\" is invalid: spec.containers[0].image: Required value");
  BOOST_TEST(invalid["details"]["kind"] == "Pod");
  BOOST_TEST(invalid["details"]["causes"][0]["field"] == "spec.containers[0].image");
  BOOST_TEST(invalid["details"]["causes"][0]["reason"] == "FieldValueRequired");

  json stale = json::parse(pod_body("web"));
  stale["metadata"]["resourceVersion"] = "999";
  auto [c3, conflict] = call("PUT", "/api/v1/namespaces/default/pods/web", stale.dump());
  BOOST_TEST(c3 == 409);
  check_status(conflict, 409, "Conflict");

  auto [c4, bad_json] = call("POST", "/api/v1/namespaces/default/pods", "{not json");
  BOOST_TEST(c4 == 400);
  check_status(bad_json, 400, "BadRequest");

  auto [c6, sel] = call("GET", "/api/v1/pods?fieldSelector=spec.bogus%3Dx");
  BOOST_TEST(c6 == 400);
  check_status(sel, 400, "BadRequest");

  auto [c7, nopath] = call("GET", "/api/v1/widgets");
  BOOST_TEST(c7 == 404);
  check_status(nopath, 404, "NotFound");

  std::string huge = pod_body("big", std::string(4u << 20, 'x'));
  auto [c8, too_big] = call("POST", "/api/v1/namespaces/default/pods", huge);
  BOOST_TEST(c8 == 413);
  check_status(too_big, 413, "RequestEntityTooLarge");
}

BOOST_AUTO_TEST_CASE(namespace_mismatch_is_bad_request) {
  json p = json::parse(pod_body("x"));
  p["metadata"]["namespace"] = "default";
  auto [code, body] = call("POST", "/api/v1/namespaces/other/pods", p.dump());
  BOOST_TEST(code == 400);
  check_status(body, 400, "BadRequest");
}

BOOST_AUTO_TEST_CASE(selectors_over_http) {
  BOOST_TEST(call("POST", "/api/v1/namespaces/default/pods", pod_body("a")).first == 201);
  BOOST_TEST(call("POST", "/api/v1/namespaces/default/pods", pod_body("b")).first == 201);
  auto [code, l] = call("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Db");
  BOOST_TEST(code == 200);
  BOOST_REQUIRE(l["items"].size() == 1u);
  BOOST_TEST(l["items"][0]["metadata"]["name"] == "b");
  auto [c2, f] = call("GET", "/api/v1/pods?fieldSelector=metadata.name%3Da");
  BOOST_TEST(c2 == 200);
  BOOST_TEST(f["items"].size() == 1u);
}

BOOST_AUTO_TEST_CASE(graceful_delete_and_binding) {
  BOOST_TEST(call("POST", "/api/v1/namespaces/default/pods", pod_body("web")).first == 201);
  auto [c1, bound] = call(
      "POST", "/api/v1/namespaces/default/pods/web/binding",
      R"({"apiVersion":"v1","kind":"Binding","metadata":{"name":"web"},"target":{"name":"node-1"}})");
  BOOST_TEST(c1 == 201);
  auto [c2, again] = call("POST", "/api/v1/namespaces/default/pods/web/binding",
                          R"({"target":{"name":"node-2"}})");
  BOOST_TEST(c2 == 409);
  check_status(again, 409, "Conflict");

  auto [c3, del] = call("DELETE", "/api/v1/namespaces/default/pods/web",
                        R"({"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":10})");
  BOOST_TEST(c3 == 200);  // Kubernetes: 200 with the object, deletion pending
  BOOST_TEST(del["metadata"]["deletionGracePeriodSeconds"] == 10);
  BOOST_TEST(del["metadata"].contains("deletionTimestamp"));
  BOOST_TEST(call("GET", "/api/v1/namespaces/default/pods/web").first == 200);
  auto [c4, forced] = call("DELETE", "/api/v1/namespaces/default/pods/web?gracePeriodSeconds=0");
  BOOST_TEST(c4 == 200);
  BOOST_TEST(call("GET", "/api/v1/namespaces/default/pods/web").first == 404);
}

BOOST_AUTO_TEST_CASE(services_and_nodes) {
  auto [c1, svc] = call("POST", "/api/v1/namespaces/default/services",
                        R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},
                            "spec":{"selector":{"app":"web"},"ports":[{"port":80}]}})");
  BOOST_TEST(c1 == 201);
  BOOST_TEST(svc["spec"]["type"] == "ClusterIP");
  auto [c2, svcs] = call("GET", "/api/v1/services");
  BOOST_TEST(c2 == 200);
  BOOST_TEST(svcs["kind"] == "ServiceList");

  auto [c3, node] = call("POST", "/api/v1/nodes",
                         R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1"}})");
  BOOST_TEST(c3 == 201);
  auto [c4, nodes] = call("GET", "/api/v1/nodes");
  BOOST_TEST(nodes["kind"] == "NodeList");
  BOOST_TEST(nodes["items"].size() == 1u);
  json ready = node;
  ready["status"] = {{"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}};
  auto [c5, updated] = call("PUT", "/api/v1/nodes/node-1/status", ready.dump());
  BOOST_TEST(c5 == 200);
  BOOST_TEST(updated["status"]["conditions"][0]["type"] == "Ready");
  BOOST_TEST(call("DELETE", "/api/v1/nodes/node-1").first == 200);
  BOOST_TEST(call("GET", "/api/v1/nodes/node-1").first == 404);
  // Nodes are not namespaced.
  BOOST_TEST(call("GET", "/api/v1/namespaces/default/nodes").first == 404);

  auto [c6, nss] = call("GET", "/api/v1/namespaces");
  BOOST_TEST(c6 == 200);
  BOOST_TEST(nss["kind"] == "NamespaceList");
  auto [c7, ns] = call("GET", "/api/v1/namespaces/default");
  BOOST_TEST(c7 == 200);
  BOOST_TEST(ns["status"]["phase"] == "Active");
}

BOOST_AUTO_TEST_CASE(watch_streams_changes_from_a_resource_version) {
  BOOST_TEST(call("POST", "/api/v1/namespaces/default/pods", pod_body("a")).first == 201);
  auto [c, list] = call("GET", "/api/v1/namespaces/default/pods");
  std::string rv = list["metadata"]["resourceVersion"];
  BOOST_TEST(call("POST", "/api/v1/namespaces/default/pods", pod_body("b")).first == 201);
  BOOST_TEST(call("POST", "/api/v1/namespaces/other/pods", pod_body("c")).first == 201);
  BOOST_TEST(call("DELETE", "/api/v1/namespaces/default/pods/a").first == 200);

  // The stream ends by itself after timeoutSeconds, so reading it to the end is bounded.
  httplib::Client w("127.0.0.1", api.port());
  w.set_read_timeout(10, 0);
  std::string body;
  auto r = w.Get(
      ("/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=1&resourceVersion=" + rv).c_str(),
      [&](const char* data, size_t n) {
        body.append(data, n);
        return true;
      });
  BOOST_REQUIRE(r);
  BOOST_TEST(r->status == 200);
  std::vector<std::pair<std::string, std::string>> got;
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    json ev = json::parse(line);
    got.emplace_back(ev["type"], ev["object"]["metadata"]["name"]);
  }
  std::vector<std::pair<std::string, std::string>> want = {{"ADDED", "b"}, {"DELETED", "a"}};
  BOOST_TEST((got == want));
}

BOOST_AUTO_TEST_CASE(watch_without_resource_version_starts_with_current_objects) {
  BOOST_TEST(call("POST", "/api/v1/namespaces/default/pods", pod_body("a")).first == 201);
  httplib::Client w("127.0.0.1", api.port());
  w.set_read_timeout(10, 0);
  std::string body;
  auto r = w.Get("/api/v1/pods?watch=1&timeoutSeconds=1", [&](const char* data, size_t n) {
    body.append(data, n);
    return true;
  });
  BOOST_REQUIRE(r);
  json ev = json::parse(body.substr(0, body.find('\n')));
  BOOST_TEST(ev["type"] == "ADDED");
  BOOST_TEST(ev["object"]["metadata"]["name"] == "a");
}

BOOST_AUTO_TEST_SUITE_END()

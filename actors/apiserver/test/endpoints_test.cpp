// The endpoints controller: Endpoints and EndpointSlices computed from
// Services and Pods, driven synchronously (sync_pending) so each step is
// deterministic.

#include <boost/test/unit_test.hpp>

#include "deckhand/apiserver/endpoints_controller.hpp"
#include "support.hpp"

using namespace deckhand::apiserver;
using deckhand::errc;
using deckhand::apiserver::test::temp_dir;
using nlohmann::json;

namespace {

struct endpoints_fixture {
  temp_dir tmp;
  store st = store::open(tmp.path() / "apiserver").value();
  registry reg{st, options()};
  endpoints_controller ctl{reg, controller_options()};
  std::vector<watch_event> events;

  endpoints_fixture() {
    reg.subscribe([this](const watch_event& ev) {
      if (ev.kind == "Endpoints" || ev.kind == "EndpointSlice")
        events.push_back(ev);
    });
    ctl.attach();
  }

  static registry_options options() {
    registry_options o;
    o.allocator = std::shared_ptr<service_allocator>(service_allocator::create({}).value());
    return o;
  }

  static endpoints_controller_options controller_options() {
    endpoints_controller_options o;
    o.max_endpoints_per_slice = 3;
    return o;
  }

  endpoints_sync_stats sync() {
    auto s = ctl.sync_pending();
    BOOST_TEST(s.failures == 0u);
    BOOST_TEST(ctl.queued() == 0u);
    return s;
  }

  json create_service(const std::string& name, json spec) {
    json svc = {{"metadata", {{"name", name}, {"labels", {{"tier", "front"}}}}}, {"spec", spec}};
    auto r = reg.create("Service", "default", svc);
    BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.err().message));
    return *r;
  }

  /// A pod with `labels`, container ports `ports`, bound to node-1 with `ip`
  /// (unless empty) and the Ready condition `ready`.
  json run_pod(const std::string& name, json labels, const std::string& ip, bool ready,
               json ports = json::array()) {
    json c = {{"name", "app"}, {"image", "busybox:1.36"}};
    if (!ports.empty())
      c["ports"] = ports;
    json pod = {{"metadata", {{"name", name}, {"labels", labels}}},
                {"spec", {{"containers", json::array({c})}}}};
    auto p = reg.create("Pod", "default", pod);
    BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.err().message));
    BOOST_REQUIRE(reg.bind("default", name, "node-1").ok());
    if (!ip.empty())
      set_ready(name, ip, ready);
    return *reg.get("Pod", "default", name);
  }

  void set_ready(const std::string& name, const std::string& ip, bool ready) {
    json status = {
        {"phase", "Running"},
        {"podIP", ip},
        {"podIPs", json::array({{{"ip", ip}}})},
        {"conditions", json::array({{{"type", "Ready"}, {"status", ready ? "True" : "False"}}})}};
    auto r = reg.update_status("Pod", "default", name, status, "");
    BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.err().message));
  }

  json endpoints(const std::string& name) {
    auto e = reg.get("Endpoints", "default", name);
    BOOST_REQUIRE_MESSAGE(e.ok(), (e.ok() ? "" : e.err().message));
    return *e;
  }

  std::vector<json> slices(const std::string& service) {
    auto l = reg.list("endpointslices", "default", "kubernetes.io/service-name=" + service);
    BOOST_REQUIRE(l.ok());
    return l->items;
  }

  static std::vector<std::string> ips(const json& addresses) {
    std::vector<std::string> out;
    for (const auto& a : addresses)
      out.push_back(a["ip"]);
    return out;
  }
};

using strings = std::vector<std::string>;

}  // namespace

BOOST_FIXTURE_TEST_SUITE(endpoints_controller_suite, endpoints_fixture)

BOOST_AUTO_TEST_CASE(selected_pods_by_readiness) {
  json svc = create_service(
      "web", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}, {"targetPort", 8080}}}}});
  run_pod("a", {{"app", "web"}}, "10.244.0.2", true);
  run_pod("b", {{"app", "web"}}, "10.244.0.3", false);
  run_pod("no-ip", {{"app", "web"}}, "", false);
  run_pod("other", {{"app", "db"}}, "10.244.0.9", true);
  auto unbound = reg.create("Pod", "default",
                            {{"metadata", {{"name", "unbound"}, {"labels", {{"app", "web"}}}}},
                             {"spec", {{"containers", {{{"name", "c"}, {"image", "x:1"}}}}}}});
  BOOST_REQUIRE(unbound.ok());
  sync();

  json ep = endpoints("web");
  BOOST_TEST(ep["metadata"]["labels"]["tier"] == "front");
  BOOST_TEST(ep["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"] == "true");
  BOOST_REQUIRE(ep["subsets"].size() == 1u);
  const json& ss = ep["subsets"][0];
  BOOST_TEST(ips(ss["addresses"]) == strings{"10.244.0.2"});
  BOOST_TEST(ips(ss["notReadyAddresses"]) == strings{"10.244.0.3"});
  BOOST_TEST(ss["addresses"][0]["nodeName"] == "node-1");
  BOOST_TEST(ss["addresses"][0]["targetRef"]["kind"] == "Pod");
  BOOST_TEST(ss["addresses"][0]["targetRef"]["name"] == "a");
  BOOST_TEST(ss["ports"] == json::parse(R"([{"port":8080,"protocol":"TCP"}])"));

  auto sl = slices("web");
  BOOST_REQUIRE(sl.size() == 1u);
  const json& s = sl[0];
  BOOST_TEST(s["apiVersion"] == "discovery.k8s.io/v1");
  BOOST_TEST(s["addressType"] == "IPv4");
  BOOST_TEST(s["metadata"]["name"].get<std::string>().rfind("web-", 0) == 0u);
  BOOST_TEST(s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] ==
             "endpointslice-controller.k8s.io");
  BOOST_TEST(s["metadata"]["labels"]["tier"] == "front");
  BOOST_TEST(s["metadata"]["ownerReferences"][0]["kind"] == "Service");
  BOOST_TEST(s["metadata"]["ownerReferences"][0]["uid"] == svc["metadata"]["uid"]);
  BOOST_TEST(s["metadata"]["ownerReferences"][0]["controller"] == true);
  BOOST_TEST(s["ports"] == json::parse(R"([{"name":"","port":8080,"protocol":"TCP"}])"));
  BOOST_REQUIRE(s["endpoints"].size() == 2u);
  BOOST_TEST(s["endpoints"][0]["addresses"] == json::array({"10.244.0.2"}));
  BOOST_TEST(s["endpoints"][0]["conditions"] ==
             json::parse(R"({"ready":true,"serving":true,"terminating":false})"));
  BOOST_TEST(s["endpoints"][1]["conditions"] ==
             json::parse(R"({"ready":false,"serving":false,"terminating":false})"));
  BOOST_TEST(s["endpoints"][1]["targetRef"]["name"] == "b");

  // b turns ready: the same slice is updated, not replaced.
  std::string slice_name = s["metadata"]["name"];
  set_ready("b", "10.244.0.3", true);
  auto stats = sync();
  BOOST_TEST(stats.writes == 2u);  // Endpoints and the slice
  BOOST_TEST(ips(endpoints("web")["subsets"][0]["addresses"]) ==
             (strings{"10.244.0.2", "10.244.0.3"}));
  BOOST_TEST(!endpoints("web")["subsets"][0].contains("notReadyAddresses"));
  sl = slices("web");
  BOOST_REQUIRE(sl.size() == 1u);
  BOOST_TEST(sl[0]["metadata"]["name"] == slice_name);
  BOOST_TEST(sl[0]["endpoints"][1]["conditions"]["ready"] == true);

  // a loses readiness again; then its label changes and it leaves.
  set_ready("a", "10.244.0.2", false);
  sync();
  BOOST_TEST(ips(endpoints("web")["subsets"][0]["notReadyAddresses"]) == strings{"10.244.0.2"});
  json a = *reg.get("Pod", "default", "a");
  a["metadata"]["labels"]["app"] = "old";
  BOOST_REQUIRE(reg.update("Pod", "default", "a", a).ok());
  sync();
  BOOST_TEST(ips(endpoints("web")["subsets"][0]["addresses"]) == strings{"10.244.0.3"});
  BOOST_TEST(!endpoints("web")["subsets"][0].contains("notReadyAddresses"));
  BOOST_TEST(slices("web")[0]["endpoints"].size() == 1u);
}

BOOST_AUTO_TEST_CASE(written_only_when_changed) {
  create_service("web", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}}}});
  run_pod("a", {{"app", "web"}}, "10.244.0.2", true);
  sync();
  events.clear();
  // A status change that does not touch readiness or the IP queues nothing.
  json status = (*reg.get("Pod", "default", "a"))["status"];
  status["containerStatuses"] = json::array({{{"name", "app"}, {"restartCount", 1}}});
  BOOST_REQUIRE(reg.update_status("Pod", "default", "a", status, "").ok());
  BOOST_TEST(ctl.queued() == 0u);
  // A Service change that leaves endpoints alone writes nothing.
  json svc = *reg.get("Service", "default", "web");
  svc["metadata"]["annotations"] = {{"note", "x"}};
  BOOST_REQUIRE(reg.update("Service", "default", "web", svc).ok());
  auto stats = sync();
  BOOST_TEST(stats.services == 1u);
  BOOST_TEST(stats.writes == 0u);
  BOOST_TEST(events.empty());
  // Someone else's edit of a managed slice is put right.
  auto sl = slices("web");
  json tampered = sl[0];
  tampered["endpoints"] = json::array();
  BOOST_REQUIRE(
      reg.update("endpointslices", "default", tampered["metadata"]["name"], tampered).ok());
  sync();
  BOOST_TEST(slices("web")[0]["endpoints"].size() == 1u);
}

BOOST_AUTO_TEST_CASE(named_target_ports_per_pod) {
  create_service("web", {{"selector", {{"app", "web"}}},
                         {"ports",
                          {{{"name", "http"}, {"port", 80}, {"targetPort", "http"}},
                           {{"name", "metrics"}, {"port", 9100}, {"targetPort", 9100}}}}});
  run_pod("a", {{"app", "web"}}, "10.244.0.2", true, {{{"name", "http"}, {"containerPort", 8080}}});
  run_pod("b", {{"app", "web"}}, "10.244.0.3", true, {{{"name", "http"}, {"containerPort", 9090}}});
  run_pod("c", {{"app", "web"}}, "10.244.0.4", true, {{{"name", "http"}, {"containerPort", 8080}}});
  // A UDP port of the same name does not count for a TCP Service port.
  run_pod("d", {{"app", "web"}}, "10.244.0.5", true,
          {{{"name", "http"}, {"containerPort", 8080}, {"protocol", "UDP"}}});
  sync();

  json ep = endpoints("web");
  BOOST_REQUIRE(ep["subsets"].size() == 3u);
  std::map<json, strings> by_ports;
  for (const auto& ss : ep["subsets"])
    by_ports[ss["ports"]] = ips(ss["addresses"]);
  json p8080 = json::parse(
      R"([{"name":"http","port":8080,"protocol":"TCP"},{"name":"metrics","port":9100,"protocol":"TCP"}])");
  json p9090 = json::parse(
      R"([{"name":"http","port":9090,"protocol":"TCP"},{"name":"metrics","port":9100,"protocol":"TCP"}])");
  json only_metrics = json::parse(R"([{"name":"metrics","port":9100,"protocol":"TCP"}])");
  BOOST_TEST(by_ports[p8080] == (strings{"10.244.0.2", "10.244.0.4"}));
  BOOST_TEST(by_ports[p9090] == strings{"10.244.0.3"});
  BOOST_TEST(by_ports[only_metrics] == strings{"10.244.0.5"});

  auto sl = slices("web");
  BOOST_REQUIRE(sl.size() == 3u);
  std::size_t total = 0;
  for (const auto& s : sl) {
    total += s["endpoints"].size();
    for (const auto& p : s["ports"])
      if (p["name"] == "http" && p["port"] == 9090)
        BOOST_TEST(s["endpoints"][0]["addresses"][0] == "10.244.0.3");
  }
  BOOST_TEST(total == 4u);
}

BOOST_AUTO_TEST_CASE(large_services_span_slices) {
  create_service("web", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}}}});
  for (int i = 0; i < 7; ++i)
    run_pod("p" + std::to_string(i), {{"app", "web"}}, "10.244.0." + std::to_string(10 + i), true);
  sync();
  auto sl = slices("web");
  BOOST_REQUIRE(sl.size() == 3u);  // at most 3 per slice in this fixture
  std::size_t total = 0;
  for (const auto& s : sl)
    total += s["endpoints"].size();
  BOOST_TEST(total == 7u);
  BOOST_TEST(endpoints("web")["subsets"][0]["addresses"].size() == 7u);
}

BOOST_AUTO_TEST_CASE(terminating_pods) {
  create_service("web", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}}}});
  run_pod("a", {{"app", "web"}}, "10.244.0.2", true);
  run_pod("b", {{"app", "web"}}, "10.244.0.3", true);
  sync();
  // Graceful delete of a bound pod: it stays, with deletionTimestamp set.
  auto d = reg.remove("Pod", "default", "a");
  BOOST_REQUIRE(d.ok());
  BOOST_REQUIRE(!d->removed);
  sync();
  BOOST_TEST(ips(endpoints("web")["subsets"][0]["addresses"]) == strings{"10.244.0.3"});
  auto sl = slices("web");
  BOOST_REQUIRE(sl.size() == 1u);
  BOOST_REQUIRE(sl[0]["endpoints"].size() == 2u);
  BOOST_TEST(sl[0]["endpoints"][0]["targetRef"]["name"] == "a");
  BOOST_TEST(sl[0]["endpoints"][0]["conditions"] ==
             json::parse(R"({"ready":false,"serving":true,"terminating":true})"));
  // Its readiness goes as it shuts down; then the node finalizes it.
  set_ready("a", "10.244.0.2", false);
  sync();
  BOOST_TEST(slices("web")[0]["endpoints"][0]["conditions"]["serving"] == false);
  BOOST_REQUIRE(reg.finalize_pod_deletion("default", "a", d->object["metadata"]["uid"]).ok());
  sync();
  BOOST_TEST(slices("web")[0]["endpoints"].size() == 1u);
  // Finished pods are not endpoints.
  json status = (*reg.get("Pod", "default", "b"))["status"];
  status["phase"] = "Succeeded";
  BOOST_REQUIRE(reg.update_status("Pod", "default", "b", status, "").ok());
  sync();
  BOOST_TEST(!endpoints("web").contains("subsets"));
  sl = slices("web");
  BOOST_REQUIRE(sl.size() == 1u);  // one slice stays, with no endpoints (as Kubernetes)
  BOOST_TEST(sl[0]["endpoints"].empty());
}

BOOST_AUTO_TEST_CASE(service_deletion_takes_endpoints_along) {
  create_service("web", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}}}});
  run_pod("a", {{"app", "web"}}, "10.244.0.2", true);
  sync();
  BOOST_REQUIRE(reg.get("Endpoints", "default", "web").ok());
  BOOST_REQUIRE(slices("web").size() == 1u);
  BOOST_REQUIRE(reg.remove("Service", "default", "web").ok());
  sync();
  BOOST_TEST(reg.get("Endpoints", "default", "web").err().code == errc::not_found);
  BOOST_TEST(slices("web").empty());
}

BOOST_AUTO_TEST_CASE(selectorless_services_mirror_user_endpoints) {
  create_service("db", {{"ports", {{{"name", "pg"}, {"port", 5432}}}}});
  sync();
  // Not managed: no Endpoints, no slices of its own.
  BOOST_TEST(reg.get("Endpoints", "default", "db").err().code == errc::not_found);
  BOOST_TEST(slices("db").empty());

  json ep = {{"metadata", {{"name", "db"}, {"labels", {{"team", "data"}}}}},
             {"subsets",
              {{{"addresses", {{{"ip", "192.168.1.10"}}, {{"ip", "192.168.1.11"}}}},
                {"notReadyAddresses", {{{"ip", "192.168.1.12"}}}},
                {"ports", {{{"name", "pg"}, {"port", 5432}}}}}}}};
  auto created = reg.create("Endpoints", "default", ep);
  BOOST_REQUIRE_MESSAGE(created.ok(), (created.ok() ? "" : created.err().message));
  BOOST_TEST((*created)["subsets"][0]["ports"][0]["protocol"] == "TCP");
  sync();
  // The user's object is left as written.
  BOOST_TEST(endpoints("db")["subsets"] == (*created)["subsets"]);
  auto sl = slices("db");
  BOOST_REQUIRE(sl.size() == 1u);
  BOOST_TEST(sl[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] ==
             "endpointslicemirroring-controller.k8s.io");
  BOOST_TEST(sl[0]["metadata"]["labels"]["team"] == "data");
  BOOST_TEST(sl[0]["ports"] == json::parse(R"([{"name":"pg","port":5432,"protocol":"TCP"}])"));
  BOOST_REQUIRE(sl[0]["endpoints"].size() == 3u);
  BOOST_TEST(sl[0]["endpoints"][0]["conditions"]["ready"] == true);
  BOOST_TEST(sl[0]["endpoints"][2]["addresses"][0] == "192.168.1.12");
  BOOST_TEST(sl[0]["endpoints"][2]["conditions"]["ready"] == false);

  // An edit of the Endpoints is mirrored.
  json upd = endpoints("db");
  upd["subsets"][0].erase("notReadyAddresses");
  BOOST_REQUIRE(reg.update("Endpoints", "default", "db", upd).ok());
  sync();
  BOOST_TEST(slices("db")[0]["endpoints"].size() == 2u);

  // Deleting the Service takes both along.
  BOOST_REQUIRE(reg.remove("Service", "default", "db").ok());
  sync();
  BOOST_TEST(reg.get("Endpoints", "default", "db").err().code == errc::not_found);
  BOOST_TEST(slices("db").empty());

  // Endpoints written before their Service exists are kept and mirrored once it does.
  BOOST_REQUIRE(reg.create("Endpoints", "default", ep).ok());
  sync();
  BOOST_TEST(reg.get("Endpoints", "default", "db").ok());
  BOOST_TEST(slices("db").empty());
  create_service("db", {{"ports", {{{"name", "pg"}, {"port", 5432}}}}});
  sync();
  BOOST_TEST(slices("db").size() == 1u);
}

BOOST_AUTO_TEST_CASE(invalid_endpoints_are_refused) {
  json ep = {{"metadata", {{"name", "x"}}},
             {"subsets", {{{"addresses", {{{"ip", "not-an-ip"}}}}, {"ports", {{{"port", 0}}}}}}}};
  auto r = reg.create("Endpoints", "default", ep);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().message.find("subsets[0].addresses[0].ip: Invalid value: \"not-an-ip\"") !=
             std::string::npos);
  BOOST_TEST(r.err().message.find("subsets[0].ports[0].port") != std::string::npos);
  json slice = {{"apiVersion", "discovery.k8s.io/v1"},
                {"metadata", {{"name", "s"}}},
                {"endpoints", {{{"addresses", json::array()}}}}};
  auto s = reg.create("EndpointSlice", "default", slice);
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.err().message.find("addressType: Required value") != std::string::npos);
  BOOST_TEST(s.err().message.find("endpoints[0].addresses: Required value") != std::string::npos);
  json wrong_version = {{"apiVersion", "v1"},
                        {"kind", "EndpointSlice"},
                        {"metadata", {{"name", "s"}}},
                        {"addressType", "IPv4"}};
  BOOST_TEST(!reg.create("EndpointSlice", "default", wrong_version).ok());
}

BOOST_AUTO_TEST_CASE(a_restarted_controller_catches_up) {
  create_service("web", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}}}});
  run_pod("a", {{"app", "web"}}, "10.244.0.2", true);
  sync();
  // The controller goes away; meanwhile the Service is deleted and another
  // one appears.
  ctl.stop();
  BOOST_REQUIRE(reg.remove("Service", "default", "web").ok());
  create_service("api", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 81}}}}});
  endpoints_controller fresh(reg);
  fresh.attach();
  fresh.sync_pending();
  BOOST_TEST(reg.get("Endpoints", "default", "web").err().code == errc::not_found);
  BOOST_TEST(slices("web").empty());
  BOOST_TEST(ips(endpoints("api")["subsets"][0]["addresses"]) == strings{"10.244.0.2"});
  BOOST_TEST(slices("api").size() == 1u);
  fresh.stop();
}

BOOST_AUTO_TEST_CASE(worker_thread_follows_changes) {
  ctl.start();
  create_service("web", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}}}});
  run_pod("a", {{"app", "web"}}, "10.244.0.2", true);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool seen = false;
  while (!seen && std::chrono::steady_clock::now() < deadline) {
    auto e = reg.get("Endpoints", "default", "web");
    seen = e.ok() && e->contains("subsets") && (*e)["subsets"][0].contains("addresses");
    if (!seen)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  BOOST_TEST(seen);
  ctl.stop();
}

BOOST_AUTO_TEST_SUITE_END()

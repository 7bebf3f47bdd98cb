#include <boost/test/unit_test.hpp>

#include <regex>
#include <thread>

#include "deckhand/apiserver/registry.hpp"
#include "support.hpp"

using namespace deckhand::apiserver;
using deckhand::errc;
using deckhand::apiserver::test::temp_dir;
using nlohmann::json;

namespace {

/// 2024-05-01T12:00:00Z, advanced by tests that need time to pass.
std::chrono::system_clock::time_point fixed_now =
    std::chrono::system_clock::from_time_t(1714564800);

struct registry_fixture {
  temp_dir tmp;
  store st = store::open(tmp.path() / "apiserver").value();
  std::vector<watch_event> events;
  registry reg{st, make_options()};

  registry_fixture() {
    reg.subscribe([this](const watch_event& ev) { events.push_back(ev); });
  }

  static registry_options make_options() {
    registry_options o;
    o.clock = [] { return fixed_now; };
    return o;
  }

  static json pod(const std::string& name, json containers = nullptr) {
    if (containers.is_null())
      containers = json::array({{{"name", "app"}, {"image", "busybox:1.36"}}});
    return {{"apiVersion", "v1"},
            {"kind", "Pod"},
            {"metadata", {{"name", name}}},
            {"spec", {{"containers", containers}}}};
  }

  json create_pod(const std::string& name, const std::string& ns = "default") {
    auto r = reg.create("Pod", ns, pod(name));
    BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.err().message));
    return *r;
  }

  /// The error message of creating `p`, which must fail as invalid.
  std::string create_error(json p) {
    auto r = reg.create("Pod", "default", std::move(p));
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.err().code == errc::invalid);
    return r.err().message;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(registry_suite, registry_fixture)

BOOST_AUTO_TEST_CASE(create_sets_server_metadata_and_pod_defaults) {
  json p = create_pod("web");
  const json& md = p["metadata"];
  BOOST_TEST(md["namespace"] == "default");
  BOOST_TEST(std::regex_match(
      md["uid"].get<std::string>(),
      std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")));
  BOOST_TEST(md["creationTimestamp"] == "2024-05-01T12:00:00Z");
  BOOST_TEST(md["resourceVersion"] == "1");
  BOOST_TEST(md["generation"] == 1);
  const json& spec = p["spec"];
  BOOST_TEST(spec["restartPolicy"] == "Always");
  BOOST_TEST(spec["terminationGracePeriodSeconds"] == 30);
  BOOST_TEST(spec["dnsPolicy"] == "ClusterFirst");
  BOOST_TEST(spec["schedulerName"] == "default-scheduler");
  const json& c = spec["containers"][0];
  BOOST_TEST(c["imagePullPolicy"] == "IfNotPresent");
  BOOST_TEST(c["terminationMessagePath"] == "/dev/termination-log");
  BOOST_TEST(c["terminationMessagePolicy"] == "File");
  BOOST_TEST(p["status"]["phase"] == "Pending");
  BOOST_TEST(p["status"]["qosClass"] == "BestEffort");
  // What get returns is what create returned.
  BOOST_TEST(*reg.get("pods", "default", "web") == p);
}

BOOST_AUTO_TEST_CASE(image_pull_policy_follows_the_tag) {
  json containers =
      json::array({{{"name", "a"}, {"image", "busybox"}},
                   {{"name", "b"}, {"image", "busybox:latest"}},
                   {{"name", "c"}, {"image", "registry:5000/busybox"}},
                   {{"name", "d"}, {"image", "registry:5000/busybox:1.2"}},
                   {{"name", "e"}, {"image", "busybox@sha256:abcd"}},
                   {{"name", "f"}, {"image", "busybox"}, {"imagePullPolicy", "Never"}}});
  auto p = reg.create("Pod", "default", pod("pulls", containers));
  BOOST_REQUIRE(p.ok());
  std::vector<std::string> got;
  for (const auto& c : (*p)["spec"]["containers"])
    got.push_back(c["imagePullPolicy"]);
  std::vector<std::string> want = {"Always",       "Always",       "Always",
                                   "IfNotPresent", "IfNotPresent", "Never"};
  BOOST_TEST(got == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(qos_class_is_computed) {
  auto with_resources = [&](const std::string& name, json resources) {
    auto p = reg.create(
        "Pod", "default",
        pod(name, json::array({{{"name", "a"}, {"image", "x:1"}, {"resources", resources}}})));
    BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.err().message));
    return *p;
  };
  json g = with_resources("g", {{"limits", {{"cpu", "500m"}, {"memory", "64Mi"}}}});
  BOOST_TEST(g["status"]["qosClass"] == "Guaranteed");
  // Requests default from limits, as in Kubernetes.
  BOOST_TEST(g["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m");
  json g2 = with_resources("g2", {{"limits", {{"cpu", "0.5"}, {"memory", "64Mi"}}},
                                  {"requests", {{"cpu", "500m"}, {"memory", "64Mi"}}}});
  BOOST_TEST(g2["status"]["qosClass"] == "Guaranteed");
  json b = with_resources("b", {{"requests", {{"cpu", "100m"}}}});
  BOOST_TEST(b["status"]["qosClass"] == "Burstable");
  json b2 = with_resources(
      "b2", {{"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}, {"requests", {{"cpu", "100m"}}}});
  BOOST_TEST(b2["status"]["qosClass"] == "Burstable");
}

BOOST_AUTO_TEST_CASE(invalid_pods_name_the_field) {
  BOOST_TEST(create_error(pod("Bad_Name"))
                 .find("Pod \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a "
                       "lowercase RFC 1123 subdomain") == 0u);
  BOOST_TEST(
      create_error(pod("")) ==
      "Pod \"\" is invalid: metadata.name: Required value: name or generateName is required");
  BOOST_TEST(create_error(pod("p", json::array())) ==
             "Pod \"p\" is invalid: spec.containers: Required value");
  BOOST_TEST(create_error(pod("p", json::array({{{"name", "a"}}}))) ==
             "Pod \"p\" is invalid: spec.containers[0].image: Required value");
  BOOST_TEST(create_error(pod("p", json::array({{{"image", "x"}}}))) ==
             "Pod \"p\" is invalid: spec.containers[0].name: Required value");
  BOOST_TEST(create_error(pod("p", json::array({{{"name", "a"}, {"image", "x"}},
                                                {{"name", "a"}, {"image", "y"}}}))) ==
             "Pod \"p\" is invalid: spec.containers[1].name: Duplicate value: \"a\"");
  BOOST_TEST(
      create_error(pod("p", json::array({{{"name", "A"}, {"image", "x"}}})))
          .find("spec.containers[0].name: Invalid value: \"A\": a lowercase RFC 1123 label") !=
      std::string::npos);
  json bad_policy = pod("p");
  bad_policy["spec"]["restartPolicy"] = "Sometimes";
  BOOST_TEST(create_error(bad_policy) ==
             "Pod \"p\" is invalid: spec.restartPolicy: Unsupported value: \"Sometimes\": "
             "supported values: \"Always\", \"OnFailure\", \"Never\"");
  json bad_port = pod(
      "p", json::array({{{"name", "a"}, {"image", "x"}, {"ports", {{{"containerPort", 70000}}}}}}));
  BOOST_TEST(
      create_error(bad_port) ==
      "Pod \"p\" is invalid: spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
      "must be between 1 and 65535, inclusive");
  json over = pod(
      "p",
      json::array({{{"name", "a"},
                    {"image", "x"},
                    {"resources", {{"limits", {{"cpu", "1"}}}, {"requests", {{"cpu", "2"}}}}}}}));
  BOOST_TEST(create_error(over) ==
             "Pod \"p\" is invalid: spec.containers[0].resources.requests: Invalid value: \"2\": "
             "must be less than or equal to cpu limit of 1");
  // Several problems are listed together.
  BOOST_TEST(
      create_error(pod("p", json::array({{{"name", "a"}}, {{"name", "a"}, {"image", "x"}}}))) ==
      "Pod \"p\" is invalid: [spec.containers[0].image: Required value, "
      "spec.containers[1].name: Duplicate value: \"a\"]");
  json wrong_kind = pod("p");
  wrong_kind["kind"] = "Service";
  BOOST_TEST(reg.create("Pod", "default", wrong_kind).err().code == errc::invalid);
  // Nothing invalid was stored.
  BOOST_TEST(reg.list("Pod", "").value().items.empty());
  BOOST_TEST(events.empty());
}

BOOST_AUTO_TEST_CASE(pod_names_may_be_subdomains_service_names_must_be_labels) {
  BOOST_TEST(reg.create("Pod", "default", pod("web.v1")).ok());
  json svc = {{"metadata", {{"name", "web.v1"}}}, {"spec", {{"ports", {{{"port", 80}}}}}}};
  auto r = reg.create("Service", "default", svc);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().message.find("Service \"web.v1\" is invalid: metadata.name: Invalid value") ==
             0u);
}

BOOST_AUTO_TEST_CASE(duplicate_create_is_already_exists) {
  create_pod("web");
  auto again = reg.create("Pod", "default", pod("web"));
  BOOST_REQUIRE(!again.ok());
  BOOST_TEST(again.err().code == errc::already_exists);
  BOOST_TEST(again.err().message == "pods \"web\" already exists");
  // Same name in another namespace is another object.
  BOOST_TEST(reg.create("Pod", "other", pod("web")).ok());
}

BOOST_AUTO_TEST_CASE(generate_name_makes_a_unique_name) {
  json p = pod("");
  p["metadata"].erase("name");
  p["metadata"]["generateName"] = "job-";
  auto a = reg.create("Pod", "default", p);
  auto b = reg.create("Pod", "default", p);
  BOOST_REQUIRE(a.ok());
  BOOST_REQUIRE(b.ok());
  std::string an = (*a)["metadata"]["name"], bn = (*b)["metadata"]["name"];
  BOOST_TEST(an.rfind("job-", 0) == 0u);
  BOOST_TEST(an.size() == 9u);
  BOOST_TEST(an != bn);
}

BOOST_AUTO_TEST_CASE(update_checks_resource_version_and_pod_immutability) {
  json p = create_pod("web");
  json stale = p;
  p["spec"]["containers"][0]["image"] = "busybox:1.37";
  p["metadata"]["labels"] = {{"app", "web"}};
  auto up = reg.update("Pod", "default", "web", p);
  BOOST_REQUIRE_MESSAGE(up.ok(), (up.ok() ? "" : up.err().message));
  BOOST_TEST((*up)["spec"]["containers"][0]["image"] == "busybox:1.37");
  BOOST_TEST((*up)["metadata"]["resourceVersion"] == "2");
  BOOST_TEST((*up)["metadata"]["generation"] == 2);
  BOOST_TEST((*up)["metadata"]["uid"] == p["metadata"]["uid"]);

  stale["metadata"]["labels"] = {{"x", "y"}};
  auto conflict = reg.update("Pod", "default", "web", stale);
  BOOST_REQUIRE(!conflict.ok());
  BOOST_TEST(conflict.err().code == errc::conflict);
  BOOST_TEST(conflict.err().message ==
             "Operation cannot be fulfilled on pods \"web\": the object has been modified; please "
             "apply your changes to the latest version and try again");

  json forbidden = *up;
  forbidden["spec"]["restartPolicy"] = "Never";
  auto f = reg.update("Pod", "default", "web", forbidden);
  BOOST_REQUIRE(!f.ok());
  BOOST_TEST(f.err().code == errc::invalid);
  BOOST_TEST(f.err().message.find("Pod \"web\" is invalid: spec: Forbidden: pod updates may not "
                                  "change fields other than `spec.containers[*].image`") == 0u);

  // Adding a toleration and setting activeDeadlineSeconds are allowed.
  json ok = *up;
  ok["spec"]["tolerations"] = json::array({{{"key", "k"}, {"operator", "Exists"}}});
  ok["spec"]["activeDeadlineSeconds"] = 60;
  ok["metadata"].erase("resourceVersion");  // unconditional update
  BOOST_TEST(reg.update("Pod", "default", "web", ok).ok());

  // A PUT does not change status.
  json with_status = *reg.get("Pod", "default", "web");
  with_status["status"]["phase"] = "Running";
  auto kept = reg.update("Pod", "default", "web", with_status);
  BOOST_REQUIRE(kept.ok());
  BOOST_TEST((*kept)["status"]["phase"] == "Pending");
  BOOST_TEST(reg.update("Pod", "default", "nope", with_status).err().code == errc::not_found);
}

BOOST_AUTO_TEST_CASE(status_update_replaces_only_status) {
  json p = create_pod("web");
  std::string uid = p["metadata"]["uid"];
  auto up = reg.update_status("Pod", "default", "web",
                              {{"phase", "Running"}, {"podIP", "10.0.0.5"}}, uid);
  BOOST_REQUIRE(up.ok());
  BOOST_TEST((*up)["status"]["phase"] == "Running");
  BOOST_TEST((*up)["spec"] == p["spec"]);
  BOOST_TEST((*up)["metadata"]["generation"] == 1);
  auto wrong = reg.update_status("Pod", "default", "web", {{"phase", "Failed"}}, "other-uid");
  BOOST_REQUIRE(!wrong.ok());
  BOOST_TEST(wrong.err().code == errc::conflict);
  auto stale = reg.update_status("Pod", "default", "web", {{"phase", "Failed"}}, "", "1");
  BOOST_TEST(stale.err().code == errc::conflict);
}

BOOST_AUTO_TEST_CASE(bind_sets_node_once) {
  create_pod("web");
  auto b = reg.bind("default", "web", "node-1");
  BOOST_REQUIRE(b.ok());
  BOOST_TEST((*b)["spec"]["nodeName"] == "node-1");
  BOOST_TEST((*b)["status"]["conditions"][0]["type"] == "PodScheduled");
  auto again = reg.bind("default", "web", "node-2");
  BOOST_REQUIRE(!again.ok());
  BOOST_TEST(again.err().code == errc::conflict);
  BOOST_TEST(again.err().message.find("is already assigned to node \"node-1\"") !=
             std::string::npos);
  BOOST_TEST(reg.bind("default", "missing", "node-1").err().code == errc::not_found);
}

BOOST_AUTO_TEST_CASE(unbound_pod_is_deleted_immediately) {
  create_pod("web");
  auto d = reg.remove("Pod", "default", "web");
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(d->removed);
  BOOST_TEST(reg.get("Pod", "default", "web").err().code == errc::not_found);
  BOOST_TEST(reg.remove("Pod", "default", "web").err().code == errc::not_found);
}

BOOST_AUTO_TEST_CASE(bound_pod_is_deleted_gracefully_then_finalized) {
  create_pod("web");
  auto bound = reg.bind("default", "web", "node-1");
  std::string uid = (*bound)["metadata"]["uid"];
  auto d = reg.remove("Pod", "default", "web");
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(!d->removed);
  BOOST_TEST(d->object["metadata"]["deletionTimestamp"] == "2024-05-01T12:00:30Z");
  BOOST_TEST(d->object["metadata"]["deletionGracePeriodSeconds"] == 30);
  BOOST_TEST(reg.get("Pod", "default", "web").ok());

  // A longer grace period does not extend it; a shorter one shortens it.
  auto longer = reg.remove("Pod", "default", "web", {std::int64_t{60}, {}, {}});
  BOOST_TEST(longer->object["metadata"]["deletionGracePeriodSeconds"] == 30);
  auto shorter = reg.remove("Pod", "default", "web", {std::int64_t{5}, {}, {}});
  BOOST_TEST(shorter->object["metadata"]["deletionGracePeriodSeconds"] == 5);
  BOOST_TEST(shorter->object["metadata"]["deletionTimestamp"] == "2024-05-01T12:00:05Z");

  BOOST_TEST(reg.finalize_pod_deletion("default", "web", "wrong-uid").err().code == errc::conflict);
  auto fin = reg.finalize_pod_deletion("default", "web", uid);
  BOOST_REQUIRE(fin.ok());
  BOOST_TEST(reg.get("Pod", "default", "web").err().code == errc::not_found);
  BOOST_TEST(events.back().type == watch_event_type::deleted);
}

BOOST_AUTO_TEST_CASE(grace_zero_forces_immediate_delete) {
  create_pod("web");
  (void)reg.bind("default", "web", "node-1");
  auto d = reg.remove("Pod", "default", "web", {std::int64_t{0}, {}, {}});
  BOOST_REQUIRE(d.ok());
  BOOST_TEST(d->removed);
  BOOST_TEST(reg.get("Pod", "default", "web").err().code == errc::not_found);
}

BOOST_AUTO_TEST_CASE(selectors_filter_lists) {
  for (const auto& [name, app] :
       std::vector<std::pair<std::string, std::string>>{{"a", "web"}, {"b", "web"}, {"c", "db"}}) {
    json p = pod(name);
    p["metadata"]["labels"] = {{"app", app}};
    BOOST_REQUIRE(reg.create("Pod", "default", p).ok());
  }
  BOOST_REQUIRE(reg.create("Pod", "other", pod("d")).ok());
  (void)reg.bind("default", "a", "node-1");
  auto names = [](const object_list& l) {
    std::vector<std::string> out;
    for (const auto& i : l.items)
      out.push_back(i["metadata"]["name"]);
    return out;
  };
  auto all = reg.list("pods", "");
  BOOST_TEST(all->items.size() == 4u);
  BOOST_TEST(all->revision == 5u);
  BOOST_TEST(names(*reg.list("pods", "default", "app=web")) ==
             (std::vector<std::string>{"a", "b"}));
  BOOST_TEST(names(*reg.list("pods", "default", "app!=web")) == (std::vector<std::string>{"c"}));
  BOOST_TEST(names(*reg.list("pods", "default", "app in (db,x)")) ==
             (std::vector<std::string>{"c"}));
  BOOST_TEST(names(*reg.list("pods", "", "", "spec.nodeName=node-1")) ==
             (std::vector<std::string>{"a"}));
  BOOST_TEST(names(*reg.list("pods", "", "", "metadata.namespace=other")) ==
             (std::vector<std::string>{"d"}));
  BOOST_TEST(names(*reg.list("pods", "", "app=web", "metadata.name!=a")) ==
             (std::vector<std::string>{"b"}));
  BOOST_TEST(reg.list("pods", "", "", "status.phase=Pending")->items.size() == 4u);
  BOOST_TEST(reg.list("pods", "", "", "spec.bogus=1").err().code == errc::invalid);
}

BOOST_AUTO_TEST_CASE(watch_events_arrive_in_revision_order) {
  create_pod("a");
  create_pod("b");
  (void)reg.bind("default", "a", "node-1");
  (void)reg.remove("Pod", "default", "b");
  (void)reg.remove("Pod", "default", "a");
  BOOST_REQUIRE(events.size() == 5u);
  std::vector<watch_event_type> types;
  for (std::size_t i = 0; i < events.size(); ++i) {
    types.push_back(events[i].type);
    BOOST_TEST(events[i].revision == i + 1);
    BOOST_TEST(events[i].kind == "Pod");
    BOOST_TEST(events[i].object["metadata"]["resourceVersion"] == std::to_string(i + 1));
  }
  BOOST_TEST(
      (types == std::vector<watch_event_type>{watch_event_type::added, watch_event_type::added,
                                              watch_event_type::modified, watch_event_type::deleted,
                                              watch_event_type::modified}));
  BOOST_TEST(events[2].previous["spec"].value("nodeName", "") == "");
  BOOST_TEST(events[4].object["metadata"].contains("deletionTimestamp"));
}

BOOST_AUTO_TEST_CASE(concurrent_writers_keep_events_ordered) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([this, t] {
      for (int i = 0; i < 10; ++i)
        (void)reg.create("Pod", "default", pod("p" + std::to_string(t) + "-" + std::to_string(i)));
    });
  for (auto& th : threads)
    th.join();
  BOOST_REQUIRE(events.size() == 40u);
  for (std::size_t i = 0; i < events.size(); ++i)
    BOOST_TEST(events[i].revision == i + 1);
}

BOOST_AUTO_TEST_CASE(services_default_and_keep_cluster_ip) {
  json svc = {{"metadata", {{"name", "web"}}},
              {"spec", {{"selector", {{"app", "web"}}}, {"ports", {{{"port", 80}}}}}}};
  auto s = reg.create("services", "default", svc);
  BOOST_REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.err().message));
  BOOST_TEST((*s)["spec"]["type"] == "ClusterIP");
  BOOST_TEST((*s)["spec"]["ports"][0]["protocol"] == "TCP");
  BOOST_TEST((*s)["spec"]["ports"][0]["targetPort"] == 80);
  BOOST_TEST((*s)["spec"]["sessionAffinity"] == "None");
  BOOST_TEST(!(*s)["spec"].contains("clusterIP"));

  json fixed = svc;
  fixed["metadata"]["name"] = "fixed";
  fixed["spec"]["clusterIP"] = "10.96.0.10";
  auto f = reg.create("Service", "default", fixed);
  BOOST_REQUIRE(f.ok());
  BOOST_TEST((*f)["spec"]["clusterIP"] == "10.96.0.10");
  // An update without clusterIP keeps it; changing it is invalid.
  json upd = *f;
  upd["spec"].erase("clusterIP");
  upd["spec"].erase("clusterIPs");
  auto kept = reg.update("Service", "default", "fixed", upd);
  BOOST_REQUIRE_MESSAGE(kept.ok(), (kept.ok() ? "" : kept.err().message));
  BOOST_TEST((*kept)["spec"]["clusterIP"] == "10.96.0.10");
  upd = *kept;
  upd["spec"]["clusterIP"] = "10.96.0.11";
  BOOST_TEST(reg.update("Service", "default", "fixed", upd).err().code == errc::invalid);

  json noports = {{"metadata", {{"name", "noports"}}}, {"spec", json::object()}};
  BOOST_TEST(reg.create("Service", "default", noports).err().message ==
             "Service \"noports\" is invalid: spec.ports: Required value");
  json two = {{"metadata", {{"name", "two"}}},
              {"spec", {{"ports", {{{"port", 80}, {"name", "http"}}, {{"port", 443}}}}}}};
  BOOST_TEST(reg.create("Service", "default", two).err().message ==
             "Service \"two\" is invalid: spec.ports[1].name: Required value");
}

BOOST_AUTO_TEST_CASE(cluster_ip_allocation_hook) {
  temp_dir dir;
  auto s2 = store::open(dir.path()).value();
  registry_options o;
  service_allocator_options ao;
  ao.service_cidr = "10.96.0.40/30";  // usable: .41 (reserved for `kubernetes`) and .42
  auto alloc = service_allocator::create(ao);
  BOOST_REQUIRE(alloc.ok());
  o.allocator = std::move(*alloc);
  registry r2(s2, o);
  json svc = {{"metadata", {{"name", "web"}}}, {"spec", {{"ports", {{{"port", 80}}}}}}};
  auto s = r2.create("Service", "default", svc);
  BOOST_REQUIRE(s.ok());
  BOOST_TEST((*s)["spec"]["clusterIP"] == "10.96.0.42");
  BOOST_TEST((*s)["spec"]["clusterIPs"][0] == "10.96.0.42");
  BOOST_TEST(o.allocator->ip_in_use("10.96.0.42"));
  BOOST_REQUIRE(r2.remove("Service", "default", "web").ok());
  BOOST_TEST(!o.allocator->ip_in_use("10.96.0.42"));
}

BOOST_AUTO_TEST_CASE(nodes_are_cluster_scoped) {
  json node = {{"metadata", {{"name", "node-1"}, {"namespace", "ignored"}}},
               {"status", {{"capacity", {{"cpu", "2"}}}}}};
  auto n = reg.create("Node", "", node);
  BOOST_REQUIRE(n.ok());
  BOOST_TEST(!(*n)["metadata"].contains("namespace"));
  BOOST_TEST((*n)["status"]["capacity"]["cpu"] == "2");
  BOOST_TEST(reg.get("nodes", "", "node-1").ok());
  auto ready = reg.update_status(
      "Node", "", "node-1",
      {{"conditions", json::array({{{"type", "Ready"}, {"status", "True"}}})}}, "");
  BOOST_REQUIRE(ready.ok());
  BOOST_TEST(reg.list("nodes", "")->items.size() == 1u);
  BOOST_TEST(reg.remove("nodes", "", "node-1")->removed);
}

BOOST_AUTO_TEST_CASE(state_survives_reopen) {
  create_pod("web");
  (void)reg.bind("default", "web", "node-1");
  temp_dir other;
  // Reopen the same directory in a fresh store and registry.
  std::filesystem::path dir = st.dir();
  json before = *reg.get("Pod", "default", "web");
  st = store::open(other.path()).value();  // releases the lock on `dir`
  auto reopened = store::open(dir);
  BOOST_REQUIRE(reopened.ok());
  registry r2(*reopened, make_options());
  BOOST_TEST(*r2.get("Pod", "default", "web") == before);
  BOOST_TEST(r2.revision() == 2u);
}

BOOST_AUTO_TEST_SUITE_END()

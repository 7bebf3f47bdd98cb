#include <httplib.h>

#include <boost/test/unit_test.hpp>

#include "deckhand/apiserver/events.hpp"
#include "deckhand/apiserver/http_api.hpp"
#include "support.hpp"

using namespace deckhand::apiserver;
using deckhand::apiserver::test::temp_dir;
using nlohmann::json;

namespace {

using sys_clock = std::chrono::system_clock;

const sys_clock::time_point t0 = sys_clock::from_time_t(1714564800);  // 2024-05-01T12:00:00Z

json make_event(const std::string& name, const std::string& pod, const std::string& uid,
                const std::string& reason, int count, sys_clock::time_point last,
                const std::string& ns = "default") {
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"involvedObject",
           {{"kind", "Pod"},
            {"namespace", ns},
            {"name", pod},
            {"uid", uid},
            {"apiVersion", "v1"},
            {"fieldPath", "spec.containers{app}"}}},
          {"reason", reason},
          {"message", reason + " container app"},
          {"type", "Normal"},
          {"source", {{"component", "kubelet"}, {"host", "node-a"}}},
          {"firstTimestamp", format_rfc3339(t0)},
          {"lastTimestamp", format_rfc3339(last)},
          {"count", count}};
}

struct events_fixture {
  temp_dir tmp;
  store st = store::open(tmp.path()).value();
  registry reg{st};

  std::vector<std::string> names(const std::string& ns = "") {
    std::vector<std::string> out;
    auto list = reg.list("events", ns);
    BOOST_REQUIRE(list.ok());
    for (const auto& e : list->items)
      out.push_back(e["metadata"]["name"].get<std::string>());
    return out;
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(events_suite, events_fixture)

BOOST_AUTO_TEST_CASE(event_kind_is_registered_with_kubernetes_names) {
  const kind_info* k = reg.find_kind("events");
  BOOST_REQUIRE(k);
  BOOST_TEST(k->kind == "Event");
  BOOST_TEST(k->short_names == std::vector<std::string>{"ev"});
  BOOST_TEST(k->namespaced);
  BOOST_TEST(k->field_selectors.count("involvedObject.uid") == 1u);
}

BOOST_AUTO_TEST_CASE(record_creates_then_replaces_a_growing_series_and_keeps_newer_ones) {
  auto s = record_events(reg, {make_event("web-1.a", "web-1", "u1", "Started", 1, t0)});
  BOOST_TEST(s.created == 1u);
  s = record_events(
      reg, {make_event("web-1.a", "web-1", "u1", "Started", 3, t0 + std::chrono::seconds(30))});
  BOOST_TEST(s.updated == 1u);
  auto got = reg.get("events", "default", "web-1.a").value();
  BOOST_TEST(got["count"] == 3);
  BOOST_TEST(got["lastTimestamp"] == "2024-05-01T12:00:30Z");
  // A retried older batch does not move the series back.
  s = record_events(
      reg, {make_event("web-1.a", "web-1", "u1", "Started", 2, t0 + std::chrono::seconds(10))});
  BOOST_TEST(s.unchanged == 1u);
  BOOST_TEST(reg.get("events", "default", "web-1.a").value()["count"] == 3);
}

BOOST_AUTO_TEST_CASE(invalid_events_are_rejected_and_counted) {
  auto bad_type = make_event("web-1.b", "web-1", "u1", "Started", 1, t0);
  bad_type["type"] = "Sideways";
  auto other_ns = make_event("web-1.c", "web-1", "u1", "Started", 1, t0);
  other_ns["involvedObject"]["namespace"] = "kube-system";
  auto s = record_events(
      reg, {bad_type, other_ns, json(42), make_event("web-1.d", "web-1", "u1", "Started", 1, t0)});
  BOOST_TEST(s.rejected == 3u);
  BOOST_TEST(s.created == 1u);
}

BOOST_AUTO_TEST_CASE(collection_removes_expired_then_the_oldest_beyond_the_bound) {
  event_limits limits;
  limits.ttl = std::chrono::hours(1);
  limits.max_per_namespace = 3;
  std::vector<json> batch;
  for (int i = 0; i < 5; ++i)
    batch.push_back(make_event("p.e" + std::to_string(i), "p", "u", "R" + std::to_string(i), 1,
                               t0 + std::chrono::minutes(i)));
  batch.push_back(make_event("q.e0", "q", "u2", "R", 1, t0, "other"));
  record_events(reg, batch);
  // At t0+1h+30s, e0 (seen at t0) and q.e0 are expired.
  auto removed =
      collect_events(reg, limits, t0 + std::chrono::minutes(60) + std::chrono::seconds(30));
  BOOST_TEST(removed == 3u);  // e0, q.e0 by age; e1 by the bound of 3
  BOOST_TEST(names("default") == (std::vector<std::string>{"p.e2", "p.e3", "p.e4"}),
             boost::test_tools::per_element());
  BOOST_TEST(names("other").empty());
  BOOST_TEST(collect_events(reg, limits, t0 + std::chrono::minutes(61)) == 0u);
}

BOOST_AUTO_TEST_CASE(a_crash_loop_cannot_grow_events_beyond_the_bound) {
  event_limits limits;
  limits.max_per_namespace = 10;
  for (int i = 0; i < 50; ++i) {
    record_events(reg, {make_event("p." + std::to_string(1000 + i), "p", "u", "BackOff", 1,
                                   t0 + std::chrono::seconds(i))});
    collect_events(reg, limits, t0 + std::chrono::seconds(i));
  }
  auto left = names("default");
  BOOST_TEST(left.size() == 10u);
  BOOST_TEST(left.front() == "p.1040");
}

BOOST_AUTO_TEST_CASE(scheduled_event_reads_like_the_scheduler) {
  json pod = {{"metadata", {{"name", "web-1"}, {"namespace", "default"}, {"uid", "u1"}}}};
  auto ev = scheduled_event(pod, "node-a", t0);
  BOOST_TEST(ev["reason"] == "Scheduled");
  BOOST_TEST(ev["message"] == "Successfully assigned default/web-1 to node-a");
  BOOST_TEST(ev["source"]["component"] == "default-scheduler");
  BOOST_TEST(ev["involvedObject"]["uid"] == "u1");
  auto s = record_events(reg, {ev});
  BOOST_TEST(s.created == 1u);
}

BOOST_AUTO_TEST_CASE(rfc3339_parsing) {
  BOOST_TEST((parse_rfc3339("2024-05-01T12:00:00Z").value() == t0));
  BOOST_TEST((parse_rfc3339("2024-05-01T12:00:00.123456Z").value() == t0));
  BOOST_TEST(!parse_rfc3339("yesterday").ok());
  BOOST_TEST((event_last_seen(make_event("x", "p", "u", "R", 1, t0 + std::chrono::seconds(5))) ==
              t0 + std::chrono::seconds(5)));
}

BOOST_AUTO_TEST_CASE(kubectl_describe_field_selectors_over_http) {
  http_api api{reg};
  auto port = api.start();
  BOOST_REQUIRE(port.ok());
  httplib::Client cli("127.0.0.1", *port);
  record_events(reg, {make_event("web-1.a", "web-1", "u1", "Started", 1, t0),
                      make_event("web-1.b", "web-1", "u-old", "Started", 1, t0),
                      make_event("web-2.a", "web-2", "u2", "Started", 1, t0)});
  // What kubectl describe pod sends (GetFieldSelector), percent-encoded.
  auto r = cli.Get("/api/v1/namespaces/default/events?fieldSelector="
                   "involvedObject.name%3Dweb-1%2CinvolvedObject.namespace%3Ddefault%2C"
                   "involvedObject.kind%3DPod%2CinvolvedObject.uid%3Du1&limit=500");
  BOOST_REQUIRE(r);
  BOOST_TEST(r->status == 200);
  auto body = json::parse(r->body);
  BOOST_TEST(body["kind"] == "EventList");
  BOOST_REQUIRE(body["items"].size() == 1u);
  BOOST_TEST(body["items"][0]["metadata"]["name"] == "web-1.a");
  auto all = cli.Get("/api/v1/events");
  BOOST_REQUIRE(all);
  BOOST_TEST(json::parse(all->body)["items"].size() == 3u);
  auto bad = cli.Get("/api/v1/namespaces/default/events?fieldSelector=spec.nodeName%3Dx");
  BOOST_REQUIRE(bad);
  BOOST_TEST(bad->status == 400);
  // Discovery names the kind and its short name.
  auto disc = json::parse(cli.Get("/api/v1")->body);
  bool found = false;
  for (const auto& res : disc["resources"])
    if (res["name"] == "events")
      found = res["shortNames"] == json::array({"ev"});
  BOOST_TEST(found);
  api.stop();
}

BOOST_AUTO_TEST_SUITE_END()

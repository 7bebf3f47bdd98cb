#include <boost/test/unit_test.hpp>

#include <nlohmann/json.hpp>

#include "deckhand/messages/json.hpp"
#include "deckhand/supervisor/status_file.hpp"

using namespace deckhand;
using namespace deckhand::supervisor;

BOOST_AUTO_TEST_SUITE(status_file)

BOOST_AUTO_TEST_CASE(round_trip) {
  status_document doc;
  doc.sandbox.uid = "u-1";
  doc.sandbox.namespace_ = "default";
  doc.sandbox.name = "web";
  doc.sandbox.state = "ready";
  doc.sandbox.supervisor_pid = 4242;
  doc.sandbox.supervisor_incarnation = 0xfeedbeefcafe1234ull;
  wire::container_record rec;
  rec.name = "app";
  rec.runtime_id = "u-1-app";
  rec.status.name = "app";
  rec.status.image = "busybox";
  rec.status.restart_count = 3;
  rec.status.state.waiting.reason = "CrashLoopBackOff";
  rec.status.state.waiting.message =
      "back-off 40s restarting failed container=app pod=web_default(u-1)";
  rec.status.last_state.terminated.exit_code = 1;
  rec.status.last_state.terminated.reason = "Error";
  rec.status.last_state.terminated.finished_at = "2023-11-14T22:13:20Z";
  doc.sandbox.containers.push_back(rec);
  doc.backoff.push_back({"app", 3, 1'700'000'040'000});

  auto text = encode_status(doc);
  auto back = decode_status(text);
  BOOST_REQUIRE(back.ok());
  BOOST_TEST(back->sandbox.uid == "u-1");
  BOOST_TEST(back->sandbox.supervisor_pid == 4242);
  BOOST_TEST(back->sandbox.supervisor_incarnation == 0xfeedbeefcafe1234ull);
  BOOST_REQUIRE(back->sandbox.containers.size() == 1u);
  const auto& c = back->sandbox.containers[0];
  BOOST_TEST(c.runtime_id == "u-1-app");
  BOOST_TEST(c.status.restart_count == 3);
  BOOST_TEST(c.status.state.waiting.reason == "CrashLoopBackOff");
  BOOST_TEST(c.status.last_state.terminated.exit_code == 1);
  BOOST_TEST(c.status.last_state.is_terminated());
  const auto* b = back->find_backoff("app");
  BOOST_REQUIRE(b);
  BOOST_TEST(b->step == 3);
  BOOST_TEST(b->restart_at_ms == 1'700'000'040'000);
  BOOST_TEST(encode_status(*back) == text);
}

BOOST_AUTO_TEST_CASE(is_a_plain_sandbox_status_for_other_readers) {
  status_document doc;
  doc.sandbox.uid = "u-2";
  doc.backoff.push_back({"app", 1, 0});
  auto j = nlohmann::json::parse(encode_status(doc));
  auto s = wire::from_json<wire::sandbox_status>(j);
  BOOST_REQUIRE(s.ok());
  BOOST_TEST(s->uid == "u-2");
}

BOOST_AUTO_TEST_CASE(rejects_garbage) {
  BOOST_TEST(!decode_status("").ok());
  BOOST_TEST(!decode_status("[1,2]").ok());
  BOOST_TEST(!decode_status("{\"uid\": 5}").ok());
  BOOST_TEST(!decode_status("{\"deckhandSupervisor\": {\"backoff\": 3}}").ok());
  BOOST_TEST(decode_status("{}").ok());
}

BOOST_AUTO_TEST_CASE(stop_marker_round_trip_and_garbage) {
  stop_marker m{30, 1'700'000'030'000};
  auto back = decode_stop_marker(encode_stop_marker(m));
  BOOST_TEST(back.grace_period_seconds == 30);
  BOOST_TEST(back.deadline_ms == 1'700'000'030'000);
  // An unreadable marker still means "stopping", with the deadline passed.
  auto junk = decode_stop_marker("garbage");
  BOOST_TEST(junk.deadline_ms == 0);
}

BOOST_AUTO_TEST_SUITE_END()

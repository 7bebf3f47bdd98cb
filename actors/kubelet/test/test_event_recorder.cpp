#define BOOST_TEST_MODULE deckhand_kubelet_events
#include <boost/test/unit_test.hpp>

/// The event recorder under CAF's test coordinator (virtual time; the API
/// server is a fake request hook whose replies the test delivers), and the
/// container events derived from supervisor records.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "deckhand/kubelet/container_events.hpp"
#include "deckhand/kubelet/event_recorder.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/wire.hpp"

using namespace deckhand;
using namespace std::chrono_literals;

namespace {

wire::pod make_pod() {
  wire::pod p;
  p.metadata.name = "web-1";
  p.metadata.namespace_ = "default";
  p.metadata.uid = "u1";
  wire::container c;
  c.name = "app";
  c.image = "busybox:1.36";
  p.spec.containers.push_back(c);
  return p;
}

struct sent_batch {
  wire::event_report report;
  transport::reply_handler reply;
};

/// A recorder on the test coordinator and a fake API server that holds every
/// request until the test answers it.
struct fixture {
  fixture() { start(kubelet::event_recorder_config{}); }

  void start(kubelet::event_recorder_config cfg) {
    rec = caf::actor{};
    sys.reset();
    batches.clear();
    sys_cfg = std::make_unique<caf::actor_system_config>();
    sys_cfg->set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(*sys_cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    cfg.host = "node-a";
    cfg.wall_clock = [this] { return wall; };
    stats = std::make_shared<kubelet::event_recorder_stats>();
    kubelet::event_sink sink{kubelet::make_api_client(
        [this](int, wire::envelope env, std::chrono::milliseconds,
               transport::reply_handler on_reply) {
          auto rep = wire::decode_as<wire::event_report>(env);
          BOOST_REQUIRE(rep.ok());
          batches.push_back({std::move(*rep), std::move(on_reply)});
        },
        7)};
    rec = kubelet::spawn_event_recorder(*sys, sink, cfg, stats);
    sched->run();
  }

  ~fixture() {
    caf::anon_send_exit(rec, caf::exit_reason::user_shutdown);
    rec = caf::actor{};
    sched->run();
  }

  void record(const std::string& reason, const std::string& message,
              const std::string& type = "Normal") {
    caf::anon_send(rec, kubelet::record_atom::value,
                   kubelet::pod_event(make_pod(), kubelet::container_field_path("app"), type,
                                      reason, message));
    sched->run();
  }

  void advance(std::chrono::milliseconds d) {
    sched->advance_time(d);
    sched->run();
    wall += d;
  }

  /// Answers the oldest unanswered batch.
  void answer(bool ok) {
    BOOST_REQUIRE(next_answer < batches.size());
    auto& b = batches[next_answer++];
    if (ok)
      b.reply(wire::make_envelope(wire::ack{}));
    else
      b.reply(error{errc::unavailable, "connection refused"});
    sched->run();
  }

  std::unique_ptr<caf::actor_system_config> sys_cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  caf::actor rec;
  std::shared_ptr<kubelet::event_recorder_stats> stats;
  std::vector<sent_batch> batches;
  std::size_t next_answer = 0;
  std::chrono::system_clock::time_point wall =
      std::chrono::system_clock::from_time_t(1714564800);  // 2024-05-01T12:00:00Z
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(event_recorder_suite, fixture)

BOOST_AUTO_TEST_CASE(an_event_is_sent_after_the_batch_delay_with_kubernetes_fields) {
  record("Pulling", "Pulling image \"busybox:1.36\"");
  BOOST_TEST(batches.empty());
  advance(200ms);
  BOOST_REQUIRE_EQUAL(batches.size(), 1u);
  const auto& e = batches[0].report.events.at(0);
  BOOST_TEST(e.metadata.name.rfind("web-1.", 0) == 0u);
  BOOST_TEST(e.metadata.namespace_ == "default");
  BOOST_TEST(e.involved_object.kind == "Pod");
  BOOST_TEST(e.involved_object.uid == "u1");
  BOOST_TEST(e.involved_object.field_path == "spec.containers{app}");
  BOOST_TEST(e.source.component == "kubelet");
  BOOST_TEST(e.source.host == "node-a");
  BOOST_TEST(e.reporting_component == "kubelet");
  BOOST_TEST(e.reporting_instance == "node-a");
  BOOST_TEST(e.count == 1);
  BOOST_TEST(e.first_timestamp == "2024-05-01T12:00:00Z");
  BOOST_TEST(e.last_timestamp == "2024-05-01T12:00:00Z");
  answer(true);
  BOOST_TEST(stats->sent == 1u);
}

BOOST_AUTO_TEST_CASE(identical_events_in_the_window_aggregate_into_one_series) {
  record("BackOff", "Back-off restarting failed container app in pod web-1_default(u1)", "Warning");
  advance(200ms);
  answer(true);
  auto name = batches[0].report.events[0].metadata.name;
  advance(std::chrono::minutes(1));
  record("BackOff", "Back-off restarting failed container app in pod web-1_default(u1)", "Warning");
  advance(100ms);
  record("BackOff", "Back-off restarting failed container app in pod web-1_default(u1)", "Warning");
  advance(100ms);
  // Both repeats went out together, as one series with count 3.
  BOOST_REQUIRE_EQUAL(batches.size(), 2u);
  BOOST_REQUIRE_EQUAL(batches[1].report.events.size(), 1u);
  const auto& e = batches[1].report.events[0];
  BOOST_TEST(e.metadata.name == name);
  BOOST_TEST(e.count == 3);
  BOOST_TEST(e.first_timestamp == "2024-05-01T12:00:00Z");
  BOOST_TEST(e.last_timestamp == "2024-05-01T12:01:00Z");
  BOOST_TEST(stats->aggregated == 2u);
  // A different message is another series.
  answer(true);
  record("Started", "Started container app");
  advance(200ms);
  BOOST_REQUIRE_EQUAL(batches.size(), 3u);
  BOOST_TEST(batches[2].report.events[0].metadata.name != name);
  BOOST_TEST(batches[2].report.events[0].count == 1);
}

BOOST_AUTO_TEST_CASE(after_the_window_a_new_series_starts) {
  record("Pulled", "Container image \"busybox:1.36\" already present on machine");
  advance(200ms);
  answer(true);
  advance(std::chrono::minutes(11));
  record("Pulled", "Container image \"busybox:1.36\" already present on machine");
  advance(200ms);
  BOOST_REQUIRE_EQUAL(batches.size(), 2u);
  BOOST_TEST(batches[1].report.events[0].count == 1);
  BOOST_TEST(batches[1].report.events[0].metadata.name !=
             batches[0].report.events[0].metadata.name);
}

BOOST_AUTO_TEST_CASE(one_batch_in_flight_and_batches_are_bounded) {
  kubelet::event_recorder_config cfg;
  cfg.max_batch = 2;
  start(cfg);
  for (int i = 0; i < 5; ++i)
    record("Started", "Started container c" + std::to_string(i));
  advance(200ms);
  BOOST_REQUIRE_EQUAL(batches.size(), 1u);
  BOOST_TEST(batches[0].report.events.size() == 2u);
  advance(10s);  // nothing else goes out while a batch is unanswered
  BOOST_TEST(batches.size() == 1u);
  answer(true);
  BOOST_REQUIRE_EQUAL(batches.size(), 2u);
  answer(true);
  BOOST_REQUIRE_EQUAL(batches.size(), 3u);
  BOOST_TEST(batches[2].report.events.size() == 1u);
  answer(true);
  BOOST_TEST(stats->sent == 5u);
}

BOOST_AUTO_TEST_CASE(an_unreachable_api_server_means_retries_with_backoff_and_a_bounded_queue) {
  kubelet::event_recorder_config cfg;
  cfg.max_pending = 3;
  cfg.max_batch = 10;
  cfg.retry_initial = 500ms;
  cfg.retry_max = 2s;
  start(cfg);
  record("Started", "Started container a");
  advance(200ms);
  BOOST_REQUIRE_EQUAL(batches.size(), 1u);
  answer(false);
  // While down, more events arrive than the queue holds: the excess is dropped
  // and counted, and recording never waits.
  for (int i = 0; i < 5; ++i)
    record("Created", "Created container x" + std::to_string(i));
  BOOST_TEST(stats->dropped == 3u);  // a back in the queue + 2 new fit the bound of 3
  advance(499ms);
  BOOST_TEST(batches.size() == 1u);
  advance(1ms);
  BOOST_REQUIRE_EQUAL(batches.size(), 2u);
  BOOST_TEST(batches[1].report.events.size() == 3u);
  BOOST_TEST(batches[1].report.events[0].message == "Started container a");
  answer(false);
  advance(999ms);
  BOOST_TEST(batches.size() == 2u);  // back-off doubled to 1 s
  advance(1ms);
  BOOST_REQUIRE_EQUAL(batches.size(), 3u);
  answer(false);
  advance(2s);
  BOOST_REQUIRE_EQUAL(batches.size(), 4u);
  answer(false);
  advance(2s);  // capped at 2 s
  BOOST_REQUIRE_EQUAL(batches.size(), 5u);
  answer(true);
  BOOST_TEST(stats->sent == 3u);
  BOOST_TEST(stats->failed_batches == 4u);
  // Back to normal: no back-off for the next event.
  record("Started", "Started container b");
  advance(200ms);
  BOOST_TEST(batches.size() == 6u);
}

BOOST_AUTO_TEST_CASE(a_dropped_change_is_not_lost_for_its_series) {
  kubelet::event_recorder_config cfg;
  cfg.max_pending = 1;
  start(cfg);
  record("BackOff", "Back-off pulling image \"x\"");
  record("Started", "Started container a");  // queue full: dropped
  BOOST_TEST(stats->dropped == 1u);
  advance(200ms);
  answer(true);
  record("Started", "Started container a");  // the same series again: now it fits
  advance(200ms);
  BOOST_REQUIRE_EQUAL(batches.size(), 2u);
  BOOST_TEST(batches[1].report.events[0].message == "Started container a");
  BOOST_TEST(batches[1].report.events[0].count == 2);
}

BOOST_AUTO_TEST_CASE(remembered_series_are_bounded) {
  kubelet::event_recorder_config cfg;
  cfg.max_series = 2;
  start(cfg);
  record("Started", "Started container a");
  advance(1s);
  answer(true);
  record("Started", "Started container b");
  advance(1s);
  answer(true);
  record("Started", "Started container c");  // forgets a, the least recently seen
  advance(1s);
  answer(true);
  record("Started", "Started container a");
  advance(1s);
  BOOST_REQUIRE_EQUAL(batches.size(), 4u);
  BOOST_TEST(batches[3].report.events[0].count == 1);
  BOOST_TEST(batches[3].report.events[0].metadata.name !=
             batches[0].report.events[0].metadata.name);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(container_events_suite)

wire::sandbox_status sandbox_with(const wire::container_status& cs) {
  wire::sandbox_status sb;
  sb.uid = "u1";
  wire::container_record r;
  r.name = cs.name;
  r.status = cs;
  sb.containers.push_back(r);
  return sb;
}

std::vector<std::string> reasons(const std::vector<kubelet::pod_event_note>& v) {
  std::vector<std::string> out;
  for (const auto& n : v)
    out.push_back(n.reason);
  return out;
}

wire::container_status running(const std::string& started, int restarts = 0) {
  wire::container_status cs;
  cs.name = "app";
  cs.state.running.started_at = started;
  cs.restart_count = restarts;
  return cs;
}

BOOST_AUTO_TEST_CASE(a_new_container_is_created_and_started_once) {
  auto pod = make_pod();
  auto now = running("2024-05-01T12:00:01Z");
  auto ev = kubelet::container_events(pod, {}, sandbox_with(now));
  BOOST_TEST(reasons(ev) == (std::vector<std::string>{"Created", "Started"}),
             boost::test_tools::per_element());
  BOOST_TEST(ev[0].message == "Created container app");
  BOOST_TEST(ev[1].message == "Started container app");
  BOOST_TEST(ev[1].field_path == "spec.containers{app}");
  BOOST_TEST(kubelet::container_events(pod, {now}, sandbox_with(now)).empty());
}

BOOST_AUTO_TEST_CASE(an_exit_of_a_known_instance_is_no_new_start) {
  auto pod = make_pod();
  auto before = running("2024-05-01T12:00:01Z");
  wire::container_status after;
  after.name = "app";
  after.state.terminated.exit_code = 1;
  after.state.terminated.started_at = "2024-05-01T12:00:01Z";
  after.state.terminated.finished_at = "2024-05-01T12:00:05Z";
  BOOST_TEST(kubelet::container_events(pod, {before}, sandbox_with(after)).empty());
}

BOOST_AUTO_TEST_CASE(crash_loop_gives_back_off_once_per_restart) {
  auto pod = make_pod();
  wire::container_status waiting;
  waiting.name = "app";
  waiting.restart_count = 1;
  waiting.state.waiting.reason = "CrashLoopBackOff";
  waiting.last_state.terminated.started_at = "2024-05-01T12:00:01Z";
  waiting.last_state.terminated.finished_at = "2024-05-01T12:00:02Z";
  auto before = running("2024-05-01T12:00:01Z");
  auto ev = kubelet::container_events(pod, {before}, sandbox_with(waiting));
  BOOST_REQUIRE_EQUAL(ev.size(), 1u);
  BOOST_TEST(ev[0].reason == "BackOff");
  BOOST_TEST(ev[0].type == "Warning");
  BOOST_TEST(ev[0].message == "Back-off restarting failed container app in pod web-1_default(u1)");
  BOOST_TEST(kubelet::container_events(pod, {waiting}, sandbox_with(waiting)).empty());
  auto again = waiting;
  again.restart_count = 2;
  again.last_state.terminated.started_at = "2024-05-01T12:00:12Z";
  BOOST_TEST(reasons(kubelet::container_events(pod, {waiting}, sandbox_with(again))) ==
                 (std::vector<std::string>{"Created", "Started", "BackOff"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(restarts_while_the_kubelet_was_down_show_what_the_records_show) {
  // The API server's status says the first instance ran; the supervisor has
  // restarted the container three times since. The records show the last
  // two instances, and only those get events.
  auto pod = make_pod();
  auto reported = running("2024-05-01T12:00:01Z");
  auto now = running("2024-05-01T12:03:00Z", 3);
  now.last_state.terminated.started_at = "2024-05-01T12:02:00Z";
  now.last_state.terminated.finished_at = "2024-05-01T12:02:30Z";
  auto ev = kubelet::container_events(pod, {reported}, sandbox_with(now));
  BOOST_TEST(reasons(ev) == (std::vector<std::string>{"Created", "Started", "Created", "Started"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(go_durations_print_like_kubernetes) {
  BOOST_TEST(kubelet::go_duration(512ms) == "512ms");
  BOOST_TEST(kubelet::go_duration(1500ms) == "1.5s");
  BOOST_TEST(kubelet::go_duration(2000ms) == "2s");
  BOOST_TEST(kubelet::go_duration(123456ms) == "2m3.456s");
  BOOST_TEST(kubelet::go_duration(0ms) == "0s");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(supervisor_notes_suite)

wire::supervisor_note make_note(uint64_t seq, const std::string& at, const std::string& msg,
                                const std::string& reason = "Unhealthy",
                                const std::string& type = "Warning") {
  wire::supervisor_note n;
  n.seq = seq;
  n.type = type;
  n.reason = reason;
  n.message = msg;
  n.timestamp = at;
  return n;
}

wire::sandbox_status sandbox_notes(std::vector<wire::supervisor_note> notes,
                                   const std::string& uid = "u-notes") {
  wire::sandbox_status sb;
  sb.uid = uid;
  wire::container_record r;
  r.name = "app";
  r.status.name = "app";
  r.notes = std::move(notes);
  sb.containers.push_back(r);
  return sb;
}

// Kubernetes: each failed probe is an Unhealthy (Warning) event, the kill a
// Killing (Normal) event; each supervisor note becomes one event, once.
BOOST_AUTO_TEST_CASE(each_note_above_the_mark_is_one_event) {
  kubelet::note_marks marks;
  auto sb = sandbox_notes(
      {make_note(1, "2024-05-01T12:00:01Z", "Liveness probe failed: x"),
       make_note(2, "2024-05-01T12:00:02Z", "Liveness probe failed: x"),
       make_note(3, "2024-05-01T12:00:02Z",
                 "Container app failed liveness probe, will be restarted", "Killing", "Normal")});
  auto ev = kubelet::note_events(sb, marks, {});
  BOOST_REQUIRE_EQUAL(ev.size(), 3u);
  BOOST_TEST(ev[0].reason == "Unhealthy");
  BOOST_TEST(ev[0].type == "Warning");
  BOOST_TEST(ev[0].field_path == "spec.containers{app}");
  BOOST_TEST(ev[2].reason == "Killing");
  BOOST_TEST(ev[2].type == "Normal");
  BOOST_TEST(kubelet::note_events(sb, marks, {}).empty());
  sb.containers[0].notes.push_back(
      make_note(4, "2024-05-01T12:00:03Z", "Readiness probe failed: y"));
  ev = kubelet::note_events(sb, marks, {});
  BOOST_REQUIRE_EQUAL(ev.size(), 1u);
  BOOST_TEST(ev[0].message == "Readiness probe failed: y");
}

// After a kubelet restart (no marks), notes older than the kubelet's start
// were the previous kubelet's: no repeats; newer ones are reported.
BOOST_AUTO_TEST_CASE(no_repeats_after_a_kubelet_restart) {
  kubelet::note_marks marks;
  auto sb = sandbox_notes(
      {make_note(7, "2024-05-01T12:00:01Z", "old"), make_note(8, "2024-05-01T12:00:09Z", "new")});
  auto ev = kubelet::note_events(sb, marks, "2024-05-01T12:00:05Z");
  BOOST_REQUIRE_EQUAL(ev.size(), 1u);
  BOOST_TEST(ev[0].message == "new");
  BOOST_TEST(kubelet::note_events(sb, marks, "2024-05-01T12:00:05Z").empty());
}

// Init containers' notes name spec.initContainers; a container whose note
// numbering went backwards (status lost) starts over.
BOOST_AUTO_TEST_CASE(init_containers_and_numbering_restarts) {
  kubelet::note_marks marks;
  auto sb = sandbox_notes({make_note(5, "2024-05-01T12:00:01Z", "a")});
  wire::container_record init;
  init.name = "setup";
  init.notes.push_back(
      make_note(1, "2024-05-01T12:00:01Z", "PreStopHook failed", "FailedPreStopHook"));
  sb.init_containers.push_back(init);
  auto ev = kubelet::note_events(sb, marks, {});
  BOOST_REQUIRE_EQUAL(ev.size(), 2u);
  BOOST_TEST(ev[0].field_path == "spec.initContainers{setup}");
  sb.containers[0].notes = {make_note(1, "2024-05-01T12:01:00Z", "b")};
  ev = kubelet::note_events(sb, marks, {});
  BOOST_REQUIRE_EQUAL(ev.size(), 1u);
  BOOST_TEST(ev[0].message == "b");
}

// container_events() reports notes too, once per process.
BOOST_AUTO_TEST_CASE(container_events_include_notes_once) {
  auto pod = make_pod();
  auto sb = sandbox_notes({make_note(1, "2999-01-01T00:00:00Z", "Startup probe failed: z")},
                          "u-notes-once");
  auto ev = kubelet::container_events(pod, {sb.containers[0].status}, sb);
  BOOST_REQUIRE_EQUAL(ev.size(), 1u);
  BOOST_TEST(ev[0].message == "Startup probe failed: z");
  BOOST_TEST(kubelet::container_events(pod, {sb.containers[0].status}, sb).empty());
}

BOOST_AUTO_TEST_SUITE_END()

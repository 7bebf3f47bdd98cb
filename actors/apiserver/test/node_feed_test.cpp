// EndpointSlices over ZeroMQ, the way proxies see them: list_request of kind
// "endpointslices" and the numbered watch_event feed on topic "endpointslices".

#include <boost/test/unit_test.hpp>

#include <condition_variable>
#include <future>
#include <mutex>

#include <caf/all.hpp>

#include "deckhand/apiserver/endpoints_controller.hpp"
#include "deckhand/apiserver/node_service.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/wire.hpp"
#include "support.hpp"

using namespace deckhand;
using namespace deckhand::apiserver;
using deckhand::apiserver::test::temp_dir;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

struct feed_fixture {
  temp_dir tmp;
  store st = store::open(tmp.path() / "apiserver").value();
  registry reg{st};
  endpoints_controller ctl{reg};
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::unique_ptr<transport::bridge> server_bus;
  std::unique_ptr<transport::bridge> client_bus;
  caf::actor svc;
  int dealer = -1;

  std::mutex mu;
  std::condition_variable cv;
  std::vector<wire::watch_event> events;
  bool heartbeat_seen = false;

  feed_fixture() {
    ctl.attach();
    sys = std::make_unique<caf::actor_system>(cfg);
    std::string api_ep = "ipc://" + (tmp.path() / "api.sock").string();
    std::string feed_ep = "ipc://" + (tmp.path() / "feed.sock").string();
    server_bus = std::make_unique<transport::bridge>(transport::bridge_config{});
    auto pub = server_bus->bind_pub(feed_ep);
    BOOST_REQUIRE(pub.ok());
    node_service_options opts;
    opts.feed_heartbeat = 20ms;
    svc = spawn_node_service(*sys, reg, *server_bus, *pub, opts);
    BOOST_REQUIRE(server_bus->bind_router(api_ep, host::forward_to(svc)).ok());
    server_bus->start();

    client_bus = std::make_unique<transport::bridge>(transport::bridge_config{});
    auto d = client_bus->connect_dealer(api_ep);
    BOOST_REQUIRE(d.ok());
    dealer = *d;
    auto sub = client_bus->connect_sub(
        feed_ep, {"endpointslices", "hb"}, [this](const std::string& topic, wire::envelope env) {
          std::lock_guard lk(mu);
          if (topic == "hb") {
            heartbeat_seen = true;
          } else if (auto ev = wire::decode_as<wire::watch_event>(env)) {
            events.push_back(std::move(*ev));
          }
          cv.notify_all();
        });
    BOOST_REQUIRE(sub.ok());
    client_bus->start();
    // Once a heartbeat arrives the subscription is live (no slow-joiner loss).
    std::unique_lock lk(mu);
    BOOST_REQUIRE(cv.wait_for(lk, 10s, [this] { return heartbeat_seen; }));
  }

  ~feed_fixture() {
    client_bus->stop();
    caf::anon_send_exit(svc, caf::exit_reason::user_shutdown);
    svc = caf::actor{};
    server_bus->stop();
    sys.reset();
    ctl.stop();
  }

  result<wire::list_reply> list(const std::string& kind) {
    wire::list_request req;
    req.kind = kind;
    std::promise<result<wire::envelope>> done;
    auto fut = done.get_future();
    client_bus->request(dealer, wire::make_envelope(req), 5s,
                        [&done](result<wire::envelope> r) { done.set_value(std::move(r)); });
    auto env = fut.get();
    if (!env)
      return env.err();
    return wire::decode_as<wire::list_reply>(*env);
  }

  /// Waits for a feed event on which `pred` holds.
  std::optional<wire::watch_event>
  wait_event(const std::function<bool(const wire::watch_event&)>& pred) {
    std::unique_lock lk(mu);
    std::optional<wire::watch_event> out;
    cv.wait_for(lk, 10s, [&] {
      for (const auto& e : events)
        if (pred(e)) {
          out = e;
          return true;
        }
      return false;
    });
    return out;
  }

  void run_pod(const std::string& name, const std::string& ip, bool ready) {
    json pod = {{"metadata", {{"name", name}, {"labels", {{"app", "web"}}}}},
                {"spec", {{"containers", {{{"name", "c"}, {"image", "x:1"}}}}}}};
    BOOST_REQUIRE(reg.create("Pod", "default", pod).ok());
    BOOST_REQUIRE(reg.bind("default", name, "node-1").ok());
    set_ready(name, ip, ready);
  }

  void set_ready(const std::string& name, const std::string& ip, bool ready) {
    json status = {{"phase", "Running"},
                   {"podIP", ip},
                   {"conditions", {{{"type", "Ready"}, {"status", ready ? "True" : "False"}}}}};
    BOOST_REQUIRE(reg.update_status("Pod", "default", name, status, "").ok());
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(endpointslice_feed_suite, feed_fixture)

BOOST_AUTO_TEST_CASE(list_and_watch_endpointslices) {
  json web = {{"metadata", {{"name", "web"}}},
              {"spec",
               {{"selector", {{"app", "web"}}},
                {"sessionAffinity", "ClientIP"},
                {"ports", {{{"name", "http"}, {"port", 80}, {"targetPort", 8080}}}}}}};
  BOOST_REQUIRE(reg.create("Service", "default", web).ok());
  run_pod("a", "10.244.0.2", true);
  run_pod("b", "10.244.0.3", false);
  ctl.sync_pending();

  auto l = list("endpointslices");
  BOOST_REQUIRE_MESSAGE(l.ok(), (l.ok() ? "" : l.err().message));
  BOOST_TEST(l->kind == "endpointslices");
  BOOST_TEST(l->revision == reg.revision());
  BOOST_REQUIRE(l->endpoint_slices.size() == 1u);
  const auto& s = l->endpoint_slices[0];
  BOOST_TEST(s.metadata.labels.at("kubernetes.io/service-name") == "web");
  BOOST_TEST(s.address_type == "IPv4");
  BOOST_REQUIRE(s.ports.size() == 1u);
  BOOST_TEST(s.ports[0].name == "http");
  BOOST_TEST(s.ports[0].port == 8080);
  BOOST_REQUIRE(s.endpoints.size() == 2u);
  BOOST_TEST(s.endpoints[0].addresses[0] == "10.244.0.2");
  BOOST_TEST(s.endpoints[0].conditions.ready.value_or(false));
  BOOST_TEST(!s.endpoints[1].conditions.ready.value_or(true));
  BOOST_TEST(s.endpoints[1].target_ref.has_value());
  BOOST_TEST(s.endpoints[1].target_ref->name == "b");

  // The Service list carries the new fields too.
  auto services = list("services");
  BOOST_REQUIRE(services.ok());
  BOOST_REQUIRE(services->services.size() == 1u);
  const auto& spec = services->services[0].spec;
  BOOST_REQUIRE(spec.session_affinity_config_.has_value());
  BOOST_REQUIRE(spec.session_affinity_config_->client_ip.has_value());
  BOOST_TEST(spec.session_affinity_config_->client_ip->timeout_seconds.value_or(0) == 10800);

  // A readiness flip arrives as a MODIFIED event of the slice.
  set_ready("b", "10.244.0.3", true);
  ctl.sync_pending();
  auto ev = wait_event([](const wire::watch_event& e) {
    return e.type == "MODIFIED" && e.endpoint_slice_.endpoints.size() == 2 &&
           e.endpoint_slice_.endpoints[1].conditions.ready.value_or(false);
  });
  BOOST_REQUIRE(ev.has_value());
  BOOST_TEST(ev->kind == "endpointslices");
  BOOST_TEST(ev->endpoint_slice_.metadata.name == s.metadata.name);
  // Sequences are per topic: the pod update published in between (the
  // readiness flip) does not show up as a gap in the endpointslices feed.
  BOOST_TEST(ev->seq == l->feed_seq + 1);

  // Deleting the Service deletes its slices, which the feed reports.
  BOOST_REQUIRE(reg.remove("Service", "default", "web").ok());
  ctl.sync_pending();
  auto gone = wait_event([&](const wire::watch_event& e) {
    return e.type == "DELETED" && e.endpoint_slice_.metadata.name == s.metadata.name;
  });
  BOOST_TEST(gone.has_value());
  auto after = list("endpointslices");
  BOOST_REQUIRE(after.ok());
  BOOST_TEST(after->endpoint_slices.empty());
}

BOOST_AUTO_TEST_SUITE_END()

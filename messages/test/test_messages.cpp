#define BOOST_TEST_MODULE deckhand_messages
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <zmq.hpp>

#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/feed.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/messages/wire.hpp"

using namespace deckhand;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

wire::pod sample_pod() {
  wire::pod p;
  p.metadata.name = "web";
  p.metadata.namespace_ = "default";
  p.metadata.uid = "0b8f4a52-3c4e-4f0e-9d55-4d8b8a1c2e11";
  p.metadata.labels = {{"app", "web"}};
  p.spec.node_name = "node-a";
  p.spec.restart_policy = "OnFailure";
  wire::container c;
  c.name = "main";
  c.image = "deckhand.local/busybox:demo";
  c.command = {"sh", "-c", "echo hi"};
  c.env = {{"A", "1", {}}};
  p.spec.containers.push_back(c);
  wire::container_status cs;
  cs.name = "main";
  cs.restart_count = 2;
  cs.state.terminated.exit_code = 1;
  cs.state.terminated.reason = "Error";
  cs.state.terminated.finished_at = "2026-11-27T20:00:00Z";
  p.status.container_statuses.push_back(cs);
  p.status.phase = "Running";
  return p;
}

fs::path source_dir() {
  // From CMake, not __FILE__: ccache with base_dir makes __FILE__ relative.
  return fs::path(DECKHAND_SOURCE_DIR);
}

struct temp_dir {
  fs::path path;
  temp_dir() {
    char tmpl[] = "/tmp/dh-msg-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(codec_suite)

BOOST_AUTO_TEST_CASE(pod_round_trips_through_msgpack) {
  auto p = sample_pod();
  auto bytes = wire::encode_body(p);
  auto back = wire::decode_body<wire::pod>(bytes);
  BOOST_REQUIRE(back.ok());
  BOOST_TEST(wire::to_json(*back) == wire::to_json(p));
  BOOST_TEST(back->spec.containers.at(0).command.at(2) == "echo hi");
  BOOST_TEST(back->status.container_statuses.at(0).restart_count == 2);
}

BOOST_AUTO_TEST_CASE(pod_json_uses_kubernetes_names_and_omitempty) {
  auto j = wire::to_json(sample_pod());
  BOOST_TEST(j["metadata"]["namespace"] == "default");
  BOOST_TEST(j["spec"]["restartPolicy"] == "OnFailure");
  BOOST_TEST(!j["spec"].contains("hostNetwork"));
  auto& cs = j["status"]["containerStatuses"][0];
  BOOST_TEST(cs["restartCount"] == 2);
  BOOST_TEST(cs["ready"] == false);
  BOOST_TEST(cs["state"].contains("terminated"));
  BOOST_TEST(!cs["state"].contains("running"));
  BOOST_TEST(cs["state"]["terminated"]["exitCode"] == 1);
}

BOOST_AUTO_TEST_CASE(opt_fields_keep_absent_apart_from_zero) {
  auto p = sample_pod();
  auto& sc = p.spec.containers[0].security_context_;
  sc.run_as_user = 0;  // root, explicitly
  sc.allow_privilege_escalation = false;
  sc.capabilities_.drop = {"ALL"};
  // JSON: a set zero is rendered, an absent field is not.
  auto j = wire::to_json(p);
  auto& jsc = j["spec"]["containers"][0]["securityContext"];
  BOOST_TEST(jsc["runAsUser"] == 0);
  BOOST_TEST(jsc["allowPrivilegeEscalation"] == false);
  BOOST_TEST(!jsc.contains("runAsGroup"));
  BOOST_TEST(!j["spec"].contains("securityContext"));
  auto from_j = wire::from_json<wire::pod>(j);
  BOOST_REQUIRE(from_j.ok());
  BOOST_TEST(from_j->spec.containers[0].security_context_.run_as_user.value_or(-1) == 0);
  BOOST_TEST(!from_j->spec.containers[0].security_context_.run_as_group.has_value());
  // msgpack: absent is nil, present survives.
  auto back = wire::decode_body<wire::pod>(wire::encode_body(p));
  BOOST_REQUIRE(back.ok());
  const auto& bsc = back->spec.containers[0].security_context_;
  BOOST_TEST(bsc.run_as_user.value_or(-1) == 0);
  BOOST_TEST(!bsc.run_as_group.has_value());
  BOOST_TEST(bsc.allow_privilege_escalation.value_or(true) == false);
  BOOST_TEST(wire::to_json(*back) == j);
  // A wrong type inside an opt is still an error with its path.
  auto bad = nlohmann::json::parse(
      R"({"spec":{"containers":[{"name":"a","securityContext":{"runAsUser":"x"}}]}})");
  auto r = wire::from_json<wire::pod>(bad);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().message.find("runAsUser") != std::string::npos);
  // CAF: the same struct crosses actors.
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  BOOST_REQUIRE(!sink(p));
  wire::pod q;
  caf::binary_deserializer source{nullptr, buf};
  BOOST_REQUIRE(!source(q));
  BOOST_TEST(wire::to_json(q) == j);
}

BOOST_AUTO_TEST_CASE(endpoint_slices_and_service_affinity_round_trip) {
  auto j = nlohmann::json::parse(R"({
    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
    "metadata": {"name": "web-abc", "namespace": "default",
                 "labels": {"kubernetes.io/service-name": "web"}},
    "addressType": "IPv4",
    "endpoints": [
      {"addresses": ["10.88.0.5"], "conditions": {"ready": true, "serving": true, "terminating": false},
       "nodeName": "n1", "targetRef": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "u1"}},
      {"addresses": ["10.88.0.6"], "conditions": {}}
    ],
    "ports": [{"name": "http", "protocol": "TCP", "port": 8080}]
  })");
  auto es = wire::from_json<wire::endpoint_slice>(j);
  BOOST_REQUIRE(es.ok());
  BOOST_TEST(es->endpoints.size() == 2u);
  BOOST_TEST(es->endpoints[0].conditions.ready.value_or(false) == true);
  BOOST_TEST(es->endpoints[0].conditions.terminating.value_or(true) == false);
  BOOST_TEST(!es->endpoints[1].conditions.ready.has_value());
  BOOST_TEST(es->endpoints[0].target_ref->name == "web-1");
  BOOST_TEST(!es->endpoints[1].target_ref.has_value());
  BOOST_TEST(wire::to_json(*es) == j);
  auto back = wire::decode_body<wire::endpoint_slice>(wire::encode_body(*es));
  BOOST_REQUIRE(back.ok());
  BOOST_TEST(wire::to_json(*back) == j);

  auto sj = nlohmann::json::parse(R"({"metadata": {"name": "web"},
    "spec": {"type": "NodePort", "clusterIP": "10.96.0.10", "selector": {"app": "web"},
             "ports": [{"port": 80, "targetPort": "http", "nodePort": 30080}],
             "sessionAffinity": "ClientIP",
             "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 60}}}})");
  auto svc = wire::from_json<wire::service>(sj);
  BOOST_REQUIRE(svc.ok());
  BOOST_TEST(svc->spec.session_affinity_config_->client_ip->timeout_seconds.value_or(0) == 60);
  wire::watch_event ev;
  ev.kind = "endpointslices";
  ev.endpoint_slice_ = *es;
  ev.service_ = *svc;
  auto ev_back = wire::decode_body<wire::watch_event>(wire::encode_body(ev));
  BOOST_REQUIRE(ev_back.ok());
  BOOST_TEST(wire::to_json(ev_back->endpoint_slice_) == j);
  BOOST_TEST(ev_back->service_.spec.session_affinity_config_->client_ip->timeout_seconds.value_or(
                 0) == 60);
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  BOOST_REQUIRE(!sink(ev));
  wire::watch_event q;
  caf::binary_deserializer source{nullptr, buf};
  BOOST_REQUIRE(!source(q));
  BOOST_TEST(wire::to_json(q.endpoint_slice_) == j);
}

BOOST_AUTO_TEST_CASE(event_report_round_trips) {
  auto j = nlohmann::json::parse(R"js({
    "apiVersion": "v1", "kind": "Event",
    "metadata": {"name": "web-1.17c0ffee", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "u1",
                       "apiVersion": "v1", "fieldPath": "spec.containers{app}"},
    "reason": "BackOff", "message": "Back-off restarting failed container app in pod web-1_default(u1)",
    "type": "Warning", "source": {"component": "kubelet", "host": "n1"},
    "firstTimestamp": "2024-05-01T12:00:00Z", "lastTimestamp": "2024-05-01T12:05:00Z",
    "count": 7, "reportingComponent": "kubelet", "reportingInstance": "n1"
  })js");
  auto ev = wire::from_json<wire::event>(j);
  BOOST_REQUIRE(ev.ok());
  BOOST_TEST(ev->involved_object.field_path == "spec.containers{app}");
  BOOST_TEST(ev->count == 7);
  BOOST_TEST(wire::to_json(*ev) == j);
  wire::event_report rep;
  rep.events = {*ev, wire::event{}};
  auto back = wire::decode_body<wire::event_report>(wire::encode_body(rep));
  BOOST_REQUIRE(back.ok());
  BOOST_REQUIRE(back->events.size() == 2u);
  BOOST_TEST(wire::to_json(back->events[0]) == j);
  BOOST_TEST(back->events[1].type == "Normal");
  BOOST_TEST(back->events[1].count == 1);
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  BOOST_REQUIRE(!sink(rep));
  wire::event_report q;
  caf::binary_deserializer source{nullptr, buf};
  BOOST_REQUIRE(!source(q));
  BOOST_TEST(wire::to_json(q.events.at(0)) == j);
}

BOOST_AUTO_TEST_CASE(pod_lifecycle_fields_round_trip) {
  // Probes, hooks, init containers, sidecars, volumes and env valueFrom keep
  // Kubernetes' field names through JSON, msgpack and CAF.
  auto j = nlohmann::json::parse(R"js({
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
    "spec": {
      "restartPolicy": "Always", "terminationGracePeriodSeconds": 5,
      "activeDeadlineSeconds": 60,
      "initContainers": [
        {"name": "setup", "image": "busybox", "command": ["true"]},
        {"name": "side", "image": "busybox", "restartPolicy": "Always"}],
      "containers": [{
        "name": "app", "image": "busybox",
        "env": [{"name": "A", "value": "1"},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                {"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": true}}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP",
                                      "httpHeaders": [{"name": "X", "value": "y"}]},
                          "periodSeconds": 3, "failureThreshold": 2},
        "readinessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 1},
        "startupProbe": {"exec": {"command": ["cat", "/tmp/ok"]}},
        "lifecycle": {"preStop": {"sleep": {"seconds": 2}}}}],
      "volumes": [
        {"name": "data", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "host", "hostPath": {"path": "/var/log", "type": "Directory"}},
        {"name": "info", "downwardAPI": {"items": [
          {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]
    }
  })js");
  auto p = wire::from_json<wire::pod>(j);
  BOOST_REQUIRE(p.ok());
  BOOST_REQUIRE(p->spec.init_containers.size() == 2u);
  BOOST_TEST(!p->spec.init_containers[0].is_sidecar());
  BOOST_TEST(p->spec.init_containers[1].is_sidecar());
  const auto& c = p->spec.containers.at(0);
  BOOST_TEST(c.env.at(1).value_from->field_ref->field_path == "metadata.name");
  BOOST_TEST(c.env.at(2).value_from->resource_field_ref->divisor.value == "1Mi");
  BOOST_TEST(*c.env.at(3).value_from->secret_key_ref->optional);
  BOOST_TEST(c.liveness_probe->http_get->port.value == "http");
  BOOST_TEST(c.liveness_probe->timeout_seconds == 1);  // Kubernetes' default
  BOOST_TEST(c.liveness_probe->success_threshold == 1);
  BOOST_TEST(c.readiness_probe->tcp_socket->port.is_int());
  BOOST_TEST(c.readiness_probe->period_seconds == 10);
  BOOST_TEST(c.startup_probe->exec->command.size() == 2u);
  BOOST_TEST(c.lifecycle_->pre_stop->sleep->seconds == 2);
  BOOST_TEST(c.volume_mounts.at(0).read_only);
  BOOST_TEST(p->spec.volumes.at(0).empty_dir->size_limit.value == "64Mi");
  BOOST_TEST(p->spec.volumes.at(1).host_path->type == "Directory");
  BOOST_TEST(p->spec.volumes.at(2).downward_api->items.at(0).field_ref.has_value());

  auto back = wire::decode_body<wire::pod>(wire::encode_body(*p));
  BOOST_REQUIRE(back.ok());
  BOOST_TEST(wire::to_json(*back) == wire::to_json(*p));
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  BOOST_REQUIRE(!sink(*p));
  wire::pod q;
  caf::binary_deserializer source{nullptr, buf};
  BOOST_REQUIRE(!source(q));
  BOOST_TEST(wire::to_json(q) == wire::to_json(*p));

  // A probe without numbers gets Kubernetes' defaults after msgpack too.
  wire::probe bare;
  bare.exec = wire::exec_action{{"true"}};
  auto pb = wire::decode_body<wire::probe>(wire::encode_body(bare));
  BOOST_REQUIRE(pb.ok());
  BOOST_TEST(pb->period_seconds == 10);
  BOOST_TEST(pb->failure_threshold == 3);
}

BOOST_AUTO_TEST_CASE(supervisor_notes_and_node_messages_round_trip) {
  wire::sandbox_status s;
  s.uid = "u";
  wire::container_record r;
  r.name = "setup";
  r.notes.push_back({7, "Warning", "Unhealthy",
                     "Liveness probe failed: HTTP probe failed with statuscode: 500",
                     "2024-05-01T12:00:00Z"});
  s.init_containers.push_back(r);
  auto back = wire::decode_body<wire::sandbox_status>(wire::encode_body(s));
  BOOST_REQUIRE(back.ok());
  BOOST_REQUIRE(back->init_containers.size() == 1u);
  BOOST_TEST(back->init_containers[0].notes.at(0).seq == 7u);
  BOOST_TEST(back->init_containers[0].notes.at(0).reason == "Unhealthy");

  wire::lease_renew l;
  l.node_name = "n1";
  l.holder_identity = "n1";
  auto lb = wire::decode_body<wire::lease_renew>(wire::encode_body(l));
  BOOST_REQUIRE(lb.ok());
  BOOST_TEST(lb->lease_duration_seconds == 40);
  wire::mirror_pod_update m;
  m.pod_.metadata.name = "static-web-n1";
  m.remove = true;
  auto mb = wire::decode_body<wire::mirror_pod_update>(wire::encode_body(m));
  BOOST_REQUIRE(mb.ok());
  BOOST_TEST(mb->remove);
  BOOST_TEST(mb->pod_.metadata.name == "static-web-n1");
}

BOOST_AUTO_TEST_CASE(json_decode_reports_field_path) {
  auto j = nlohmann::json::parse(R"({"spec":{"containers":[{"name":5}]}})");
  auto p = wire::from_json<wire::pod>(j);
  BOOST_REQUIRE(!p.ok());
  BOOST_TEST(p.err().message == "spec.containers[0].name: expected string");
}

BOOST_AUTO_TEST_CASE(unknown_keys_are_ignored_and_missing_keys_default) {
  // A newer sender adds a field; an older one lacks most fields.
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(3);
  pk.pack(std::string("uid"));
  pk.pack(std::string("u1"));
  pk.pack(std::string("fieldFromTheFuture"));
  pk.pack_array(2);
  pk.pack(1);
  pk.pack(2);
  pk.pack(std::string("gracePeriodSeconds"));
  pk.pack_nil();
  auto r = wire::decode_body<wire::stop_pod_request>(std::string(buf.data(), buf.size()));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->uid == "u1");
  BOOST_TEST(r->grace_period_seconds == 30);
}

BOOST_AUTO_TEST_CASE(wrong_types_and_garbage_are_errors) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(1);
  pk.pack(std::string("gracePeriodSeconds"));
  pk.pack(std::string("thirty"));
  auto r = wire::decode_body<wire::stop_pod_request>(std::string(buf.data(), buf.size()));
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().message == "stop_pod_request.gracePeriodSeconds: expected integer");

  for (std::string garbage : {std::string("\xc1"), std::string("\x93\x01"), std::string("\x81\xa1"),
                              std::string(""), std::string("\x01")}) {
    auto g = wire::decode_body<wire::run_pod_request>(garbage);
    BOOST_TEST(!g.ok());
  }
}

BOOST_AUTO_TEST_CASE(integer_out_of_range_is_an_error) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(1);
  pk.pack(std::string("code"));
  pk.pack(uint64_t{1} << 40);
  auto r = wire::decode_body<wire::error_reply>(std::string(buf.data(), buf.size()));
  BOOST_TEST(!r.ok());
}

BOOST_AUTO_TEST_CASE(limits_reject_deep_and_huge_bodies) {
  std::string deep(100, '\x91');  // 100 nested one-element arrays
  deep.push_back('\x01');
  auto r = wire::decode_body<wire::pod>(deep);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::too_large);

  wire::decode_limits small;
  small.max_body = 16;
  auto big = wire::encode_body(sample_pod());
  auto r2 = wire::decode_body<wire::pod>(big, small);
  BOOST_TEST(!r2.ok());
  BOOST_TEST(r2.err().code == errc::too_large);

  // A map that claims 2^31 entries but has none must not allocate them.
  std::string liar = "\xdf\x7f\xff\xff\xff";
  BOOST_TEST(!wire::decode_body<wire::pod>(liar).ok());
}

BOOST_AUTO_TEST_CASE(golden_samples_decode) {
  // Encoded by protocol 1.0; must keep decoding to the same values forever.
  auto dir = source_dir() / "tests" / "golden";
  auto read = [&](const char* name) {
    std::ifstream in(dir / name, std::ios::binary);
    BOOST_REQUIRE_MESSAGE(in.good(), "missing golden sample " << name);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  auto body = read("run_pod_request.v1.0.msgpack");
  auto r = wire::decode_body<wire::run_pod_request>(body);
  BOOST_REQUIRE(r.ok());
  wire::run_pod_request expected;
  expected.pod_ = sample_pod();
  BOOST_TEST(wire::to_json(*r) == wire::to_json(expected));
  // Fields added since 1.0 (securityContext, ...) are absent from the old
  // bytes and keep their defaults; today's bytes are a superset, so a 1.0
  // reader (which ignores unknown keys) still gets the same values.
  BOOST_TEST(wire::encode_body(expected).size() > body.size());
  BOOST_TEST(!r->pod_.spec.containers.at(0).security_context_.run_as_user.has_value());

  auto hdr = read("header.v1.0.bin");
  auto h = wire::decode_header(hdr.data(), hdr.size());
  BOOST_REQUIRE(h.ok());
  BOOST_TEST(h->type == wire::run_pod_request::type_id);
  BOOST_TEST(h->correlation_id == 42u);
  BOOST_TEST(h->incarnation == 0x0102030405060708u);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(header_suite)

BOOST_AUTO_TEST_CASE(round_trip_and_rejections) {
  wire::header h;
  h.type = 30;
  h.flags = wire::flag_reply;
  h.correlation_id = 42;
  h.incarnation = 0x0102030405060708u;
  auto bytes = wire::encode_header(h);
  auto back = wire::decode_header(bytes.data(), bytes.size());
  BOOST_REQUIRE(back.ok());
  BOOST_TEST(back->type == 30);
  BOOST_TEST(back->correlation_id == 42u);
  BOOST_TEST(back->incarnation == h.incarnation);

  BOOST_TEST(!wire::decode_header(bytes.data(), bytes.size() - 1).ok());
  auto bad_magic = bytes;
  bad_magic[0] = 'X';
  BOOST_TEST(!wire::decode_header(bad_magic.data(), bad_magic.size()).ok());
  auto v2 = bytes;
  v2[2] = 2;
  auto r = wire::decode_header(v2.data(), v2.size());
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::unsupported);
  // A newer minor version is accepted.
  auto minor = bytes;
  minor[3] = 7;
  BOOST_TEST(wire::decode_header(minor.data(), minor.size()).ok());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(feed_suite)

using clk = std::chrono::steady_clock;

BOOST_AUTO_TEST_CASE(applies_in_order_and_resyncs_on_gap) {
  wire::feed_follower f(3s);
  auto t0 = clk::time_point{};
  BOOST_TEST((f.on_update(7, 1, t0) == wire::feed_follower::verdict::buffer));
  f.reset(7, 10, t0);
  BOOST_TEST((f.on_update(7, 9, t0) == wire::feed_follower::verdict::ignore));
  BOOST_TEST((f.on_update(7, 11, t0) == wire::feed_follower::verdict::apply));
  BOOST_TEST((f.on_update(7, 13, t0) == wire::feed_follower::verdict::resync));
  BOOST_TEST(!f.synced());
}

BOOST_AUTO_TEST_CASE(resyncs_on_new_incarnation_lost_tail_and_silence) {
  wire::feed_follower f(3s);
  auto t0 = clk::time_point{};
  f.reset(7, 10, t0);
  BOOST_TEST((f.on_update(8, 11, t0) == wire::feed_follower::verdict::resync));
  f.reset(8, 0, t0);
  // The heartbeat says event 2 exists, but we only saw up to 0.
  BOOST_TEST((f.on_heartbeat(8, 2, t0) == wire::feed_follower::verdict::resync));
  f.reset(8, 2, t0);
  BOOST_TEST((f.on_heartbeat(8, 2, t0 + 2s) == wire::feed_follower::verdict::ignore));
  BOOST_TEST(!f.silent(t0 + 4s));
  BOOST_TEST(f.silent(t0 + 6s));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(transport_suite)

namespace {

/// Waits (bounded) for a value produced on the bridge thread.
template <class T>
struct mailbox {
  std::mutex m;
  std::condition_variable cv;
  std::vector<T> items;
  void put(T x) {
    std::lock_guard<std::mutex> g{m};
    items.push_back(std::move(x));
    cv.notify_all();
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds d = 5s) {
    std::unique_lock<std::mutex> g{m};
    return cv.wait_for(g, d, [&] { return items.size() >= n; });
  }
};

transport::bridge_config cfg(const char* name, wire::decode_limits limits = {}) {
  transport::bridge_config c;
  c.component = name;
  c.limits = limits;
  return c;
}

std::string ep(const temp_dir& d, const char* name) { return "ipc://" + (d.path / name).string(); }

}  // namespace

BOOST_AUTO_TEST_CASE(request_reply_and_ping) {
  temp_dir dir;
  transport::bridge server(cfg("server"));
  transport::bridge client(cfg("client"));
  auto router = server.bind_router(ep(dir, "s.sock"), [&](transport::inbound_request req) {
    auto r = wire::decode_as<wire::remove_pod_request>(req.env);
    if (!r) {
      server.reply_error(req, r.err());
      return;
    }
    server.reply(req, wire::make_envelope(wire::ack{7}));
  });
  BOOST_REQUIRE(router.ok());
  server.start();
  client.start();
  auto dealer = client.connect_dealer(ep(dir, "s.sock"));
  BOOST_REQUIRE(dealer.ok());

  mailbox<result<wire::envelope>> b0, b1, b2;
  client.request(*dealer, wire::make_envelope(wire::remove_pod_request{"u"}), 2s,
                 [&](result<wire::envelope> r) { b0.put(std::move(r)); });
  client.request(*dealer, wire::make_envelope(wire::ping{}), 2s,
                 [&](result<wire::envelope> r) { b1.put(std::move(r)); });
  client.request(*dealer, wire::make_envelope(wire::list_request{}), 2s,
                 [&](result<wire::envelope> r) { b2.put(std::move(r)); });
  BOOST_REQUIRE(b0.wait_for(1) && b1.wait_for(1) && b2.wait_for(1));
  std::vector<result<wire::envelope>*> items{&b0.items[0], &b1.items[0], &b2.items[0]};
  struct {
    std::vector<result<wire::envelope>*>& items;
  } box{items};
  auto a = wire::decode_as<wire::ack>(**box.items[0]);
  BOOST_REQUIRE(a.ok());
  BOOST_TEST(a->revision == 7u);
  BOOST_TEST((*box.items[0])->hdr.incarnation == server.incarnation());
  auto p = wire::decode_as<wire::pong>(**box.items[1]);
  BOOST_REQUIRE(p.ok());
  BOOST_TEST(p->component == "server");
  BOOST_TEST(p->pid == ::getpid());
  auto e = wire::decode_as<wire::ack>(**box.items[2]);
  BOOST_TEST(!e.ok());
  BOOST_TEST(e.err().code == errc::invalid);
}

// A bridge run by the caller's own poll loop (start_on_caller: no thread,
// as in pod supervisors) answers requests, and its own requests and
// notifications go out and come back through the same loop.
BOOST_AUTO_TEST_CASE(bridge_on_the_callers_loop) {
  temp_dir dir;
  transport::bridge server(cfg("server"));
  transport::bridge peer(cfg("peer"));
  std::thread::id handled_on;
  auto router = server.bind_router(ep(dir, "s.sock"), [&](transport::inbound_request req) {
    handled_on = std::this_thread::get_id();
    server.reply(req, wire::make_envelope(wire::ack{9}));
  });
  BOOST_REQUIRE(router.ok());
  mailbox<std::string> notes;
  auto peer_router = peer.bind_router(ep(dir, "p.sock"), [&](transport::inbound_request req) {
    if (req.env.hdr.correlation_id == 0)
      notes.put("notified");
    else
      peer.reply(req, wire::make_envelope(wire::ack{3}));
  });
  BOOST_REQUIRE(peer_router.ok());
  peer.start();
  server.start_on_caller();
  auto to_peer = server.connect_dealer(ep(dir, "p.sock"));  // inline on this thread
  BOOST_REQUIRE(to_peer.ok());

  bool stop = false;
  std::optional<result<wire::envelope>> own_reply;
  server.request(*to_peer, wire::make_envelope(wire::ping{}), 2s,
                 [&](result<wire::envelope> r) { own_reply = std::move(r); });
  server.notify(*to_peer, wire::make_envelope(wire::remove_pod_request{"u"}));
  // A client on another thread asks the loop-driven server.
  mailbox<result<wire::envelope>> answers;
  std::thread client_thread([&] {
    transport::bridge client(cfg("client"));
    client.start();
    auto d = client.connect_dealer(ep(dir, "s.sock"));
    if (d.ok())
      for (int i = 0; i < 3; ++i)
        client.request(*d, wire::make_envelope(wire::remove_pod_request{"u"}), 3s,
                       [&](result<wire::envelope> r) { answers.put(std::move(r)); });
    answers.wait_for(3, 5s);
  });
  auto deadline = std::chrono::steady_clock::now() + 5s;
  int timeout = server.run_once();
  while (!stop && std::chrono::steady_clock::now() < deadline) {
    std::vector<struct pollfd> fds;
    server.fill_pollfds(fds);
    ::poll(fds.data(), fds.size(), timeout < 0 || timeout > 50 ? 50 : timeout);
    timeout = server.run_once();
    std::lock_guard<std::mutex> g{answers.m};
    stop = answers.items.size() >= 3 && own_reply.has_value();
  }
  client_thread.join();
  BOOST_REQUIRE(answers.wait_for(3, 0s));
  for (auto& a : answers.items) {
    BOOST_REQUIRE(a.ok());
    auto ack = wire::decode_as<wire::ack>(*a);
    BOOST_REQUIRE(ack.ok());
    BOOST_TEST(ack->revision == 9u);
  }
  BOOST_TEST((handled_on == std::this_thread::get_id()));
  BOOST_REQUIRE(own_reply.has_value());
  BOOST_REQUIRE(own_reply->ok());
  BOOST_TEST(wire::decode_as<wire::pong>(**own_reply).ok());
  BOOST_TEST(notes.wait_for(1, 2s));
  // A request still pending when the bridge stops fails at once.
  bool failed = false;
  server.request(*to_peer, wire::make_envelope(wire::ping{}), 10s,
                 [&](result<wire::envelope> r) { failed = !r.ok(); });
  server.stop();
  BOOST_TEST(failed);
}

BOOST_AUTO_TEST_CASE(deadline_when_peer_is_absent) {
  temp_dir dir;
  transport::bridge client(cfg("client"));
  client.start();
  auto dealer = client.connect_dealer(ep(dir, "nobody.sock"));
  BOOST_REQUIRE(dealer.ok());
  mailbox<result<wire::envelope>> box;
  client.request(*dealer, wire::make_envelope(wire::ping{}), 100ms,
                 [&](result<wire::envelope> r) { box.put(std::move(r)); });
  BOOST_REQUIRE(box.wait_for(1));
  BOOST_TEST(!box.items[0].ok());
  BOOST_TEST(box.items[0].err().code == errc::unavailable);
}

BOOST_AUTO_TEST_CASE(peer_restart_mid_request_is_detected_by_incarnation) {
  temp_dir dir;
  transport::bridge client(cfg("client"));
  client.start();
  auto dealer = client.connect_dealer(ep(dir, "s.sock"));
  BOOST_REQUIRE(dealer.ok());
  mailbox<result<wire::envelope>> box;
  uint64_t first_incarnation = 0;
  {
    // First server incarnation: receives the request and dies without replying.
    mailbox<int> seen;
    transport::bridge server(cfg("server"));
    BOOST_REQUIRE(
        server.bind_router(ep(dir, "s.sock"), [&](transport::inbound_request) { seen.put(1); })
            .ok());
    server.start();
    first_incarnation = server.incarnation();
    client.request(*dealer, wire::make_envelope(wire::remove_pod_request{"u"}), 300ms,
                   [&](result<wire::envelope> r) { box.put(std::move(r)); });
    BOOST_REQUIRE(seen.wait_for(1));
  }
  BOOST_REQUIRE(box.wait_for(1));
  BOOST_TEST(box.items[0].err().code == errc::unavailable);
  // Second incarnation on the same endpoint answers the retry.
  transport::bridge server2(cfg("server"));
  BOOST_REQUIRE(server2
                    .bind_router(ep(dir, "s.sock"),
                                 [&](transport::inbound_request req) {
                                   server2.reply(req, wire::make_envelope(wire::ack{1}));
                                 })
                    .ok());
  server2.start();
  client.request(*dealer, wire::make_envelope(wire::remove_pod_request{"u"}), 3s,
                 [&](result<wire::envelope> r) { box.put(std::move(r)); });
  BOOST_REQUIRE(box.wait_for(2));
  BOOST_REQUIRE(box.items[1].ok());
  BOOST_TEST(box.items[1]->hdr.incarnation != first_incarnation);
  BOOST_TEST(box.items[1]->hdr.incarnation == server2.incarnation());
}

BOOST_AUTO_TEST_CASE(garbage_frames_are_dropped_and_counted) {
  temp_dir dir;
  std::atomic<int> handled{0};
  transport::bridge server(cfg("server"));
  BOOST_REQUIRE(server
                    .bind_router(ep(dir, "s.sock"),
                                 [&](transport::inbound_request req) {
                                   handled++;
                                   server.reply(req, wire::make_envelope(wire::ack{}));
                                 })
                    .ok());
  server.start();

  zmq::context_t ctx;
  zmq::socket_t raw(ctx, zmq::socket_type::dealer);
  raw.set(zmq::sockopt::linger, 0);
  raw.set(zmq::sockopt::rcvtimeo, 2000);
  raw.connect(ep(dir, "s.sock"));
  // One frame of garbage; three frames; a header of a wrong major version.
  raw.send(zmq::buffer(std::string("garbage")), zmq::send_flags::none);
  raw.send(zmq::buffer(std::string("a")), zmq::send_flags::sndmore);
  raw.send(zmq::buffer(std::string("b")), zmq::send_flags::sndmore);
  raw.send(zmq::buffer(std::string("c")), zmq::send_flags::none);
  wire::header h;
  h.major = 9;
  h.type = wire::ack::type_id;
  h.correlation_id = 5;
  auto hb = wire::encode_header(h);
  raw.send(zmq::buffer(hb.data(), hb.size()), zmq::send_flags::sndmore);
  raw.send(zmq::buffer(std::string("\x80")), zmq::send_flags::none);
  // The wrong version gets an error reply naming the problem.
  zmq::message_t rh, rb;
  BOOST_REQUIRE(raw.recv(rh));
  BOOST_REQUIRE(raw.recv(rb));
  auto back = wire::decode_frames(rh.data(), rh.size(), rb.data(), rb.size());
  BOOST_REQUIRE(back.ok());
  BOOST_TEST(back->hdr.correlation_id == 5u);
  auto er = wire::decode_as<wire::ack>(*back);
  BOOST_TEST(er.err().code == errc::unsupported);
  // And the server still works.
  h.major = wire::protocol_major;
  h.correlation_id = 6;
  hb = wire::encode_header(h);
  raw.send(zmq::buffer(hb.data(), hb.size()), zmq::send_flags::sndmore);
  raw.send(zmq::buffer(std::string("\x80")), zmq::send_flags::none);
  BOOST_REQUIRE(raw.recv(rh));
  BOOST_REQUIRE(raw.recv(rb));
  BOOST_TEST(handled == 1);
  BOOST_TEST(server.stats().dropped >= 3u);
}

BOOST_AUTO_TEST_CASE(oversized_frames_are_refused) {
  temp_dir dir;
  wire::decode_limits limits;
  limits.max_body = 1024;
  std::atomic<int> handled{0};
  transport::bridge server(cfg("server", limits));
  BOOST_REQUIRE(server
                    .bind_router(ep(dir, "s.sock"),
                                 [&](transport::inbound_request req) {
                                   handled++;
                                   server.reply(req, wire::make_envelope(wire::ack{}));
                                 })
                    .ok());
  server.start();
  transport::bridge client(cfg("client"));
  client.start();
  auto dealer = client.connect_dealer(ep(dir, "s.sock"));
  mailbox<result<wire::envelope>> box;
  wire::image_import_request huge;
  huge.path = std::string(1 << 20, 'x');
  client.request(*dealer, wire::make_envelope(huge), 300ms,
                 [&](result<wire::envelope> r) { box.put(std::move(r)); });
  BOOST_REQUIRE(box.wait_for(1));
  BOOST_TEST(!box.items[0].ok());
  BOOST_TEST(handled == 0);
  // A normal request on a fresh connection still works.
  auto dealer2 = client.connect_dealer(ep(dir, "s.sock"));
  client.request(*dealer2, wire::make_envelope(wire::ping{}), 2s,
                 [&](result<wire::envelope> r) { box.put(std::move(r)); });
  BOOST_REQUIRE(box.wait_for(2));
  BOOST_TEST(box.items[1].ok());
}

BOOST_AUTO_TEST_CASE(pub_sub_delivers_numbered_events) {
  temp_dir dir;
  transport::bridge pub(cfg("pub"));
  auto p = pub.bind_pub(ep(dir, "feed.sock"));
  BOOST_REQUIRE(p.ok());
  pub.start();
  mailbox<wire::envelope> box;
  transport::bridge sub(cfg("sub"));
  BOOST_REQUIRE(
      sub.connect_sub(ep(dir, "feed.sock"), {"pods"},
                      [&](const std::string&, wire::envelope env) { box.put(std::move(env)); })
          .ok());
  sub.start();
  // Slow joiner: publish until the subscription is established (bounded).
  uint64_t seq = 0;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (box.items.empty() && std::chrono::steady_clock::now() < deadline) {
    wire::watch_event ev;
    ev.seq = ++seq;
    ev.kind = "pods";
    pub.publish(*p, "pods", wire::make_envelope(ev));
    pub.publish(*p, "services", wire::make_envelope(ev));
    box.wait_for(1, 20ms);
  }
  BOOST_REQUIRE(box.wait_for(1));
  auto ev = wire::decode_as<wire::watch_event>(box.items[0]);
  BOOST_REQUIRE(ev.ok());
  BOOST_TEST(ev->kind == "pods");
  BOOST_TEST(box.items[0].hdr.incarnation == pub.incarnation());
}

BOOST_AUTO_TEST_SUITE_END()

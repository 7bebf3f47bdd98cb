#define BOOST_TEST_MODULE deckhand_kubelet_actors
#include <boost/test/unit_test.hpp>

/// The kubelet's actors (sync loop, pod workers, status manager, node status)
/// driven by CAF's test coordinator: timers fire only when a test advances
/// virtual time. The peers are fakes: an API server on real ZeroMQ ipc://
/// sockets (ROUTER + PUB feed, on its own bridge) and a runtime that
/// implements `kubelet::runtime_client` in process.
///
/// Determinism: CAF's test coordinator is single-threaded, so nothing may
/// enter the actor system from a bridge thread. The kubelet's request hook
/// (`kubelet_sockets::request`) and the fake runtime therefore park each
/// reply in the hub, and feed
/// messages are parked too; `settle()` runs the actors until they are idle,
/// waits (bounded) until every outstanding request has been answered and
/// every published feed message has arrived, then hands them to the actors
/// on the test thread in issue order (or reverse issue order, to check that
/// the outcome does not depend on it). The actors therefore see the same
/// sequence of inputs on every run, whatever the threads' timing.

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include <caf/all.hpp>

#include "deckhand/host/caf_glue.hpp"
#include "deckhand/kubelet/kubelet.hpp"
#include "deckhand/kubelet/runtime_client.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/wire.hpp"

using namespace deckhand;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr auto wait_limit = 10s;  // bound on any wait for another thread
const std::string node_name = "node-a";

/// State shared by the fakes and the kubelet harness; one lock and one
/// condition variable so that a waiter wakes on anything.
struct hub {
  std::mutex mu;
  std::condition_variable cv;
  /// What the fakes received, in arrival order: "api:pod_finalize:UID",
  /// "runtime:stop_pod:UID:GRACE", ...
  std::vector<std::string> log;
  /// Feed messages published (not probes) since the current kubelet started.
  uint64_t feed_expected = 0;
  /// Requests a fake holds on purpose (a slow pull): settle() does not wait
  /// for their replies.
  size_t held = 0;
  /// Deadlines the kubelet gave its image_pull_requests.
  std::vector<std::chrono::milliseconds> pull_deadlines;
  /// Requests the kubelet issued, by issue number: `waiting` until the peer
  /// answers, then the answer is `ready` for settle() to hand to the actors.
  uint64_t next_seq = 0;
  std::set<uint64_t> waiting;
  std::map<uint64_t, std::function<void()>> ready;

  /// A request goes out (mu held).
  uint64_t issue() {
    auto seq = next_seq++;
    waiting.insert(seq);
    return seq;
  }

  /// Its answer, to be run on the test thread (mu held).
  void answer(uint64_t seq, std::function<void()> deliver) {
    waiting.erase(seq);
    ready.emplace(seq, std::move(deliver));
    cv.notify_all();
  }
};

wire::pod make_pod(const std::string& name, const std::string& uid,
                   const std::string& node = node_name) {
  wire::pod p;
  p.metadata.name = name;
  p.metadata.namespace_ = "default";
  p.metadata.uid = uid;
  p.spec.node_name = node;
  p.spec.termination_grace_period_seconds = 30;
  wire::container c;
  c.name = "main";
  c.image = "busybox:latest";
  p.spec.containers.push_back(c);
  return p;
}

// -- fake API server ---------------------------------------------------------------

class fake_api {
 public:
  fake_api(hub& h, std::string router_ep, std::string pub_ep)
      : hub_(h), router_ep_(std::move(router_ep)), pub_ep_(std::move(pub_ep)) {
    start(1001);
  }

  /// A new API server process: new bridge, new incarnation, same endpoints and
  /// the same stored objects (as after a restart on a durable store).
  void restart(uint64_t incarnation) {
    bus_.reset();
    start(incarnation);
  }

  // Everything below is guarded by hub.mu.
  std::map<std::string, wire::pod> pods;  // by uid
  uint64_t feed_seq = 0;
  bool fail_list = false;
  int lists = 0;
  int heartbeats = 0;
  std::vector<wire::pod_status_update> status_updates;
  /// Events by namespace/name, replaced like the real API server does.
  std::map<std::string, wire::event> events;

  /// Stores `p` and publishes it as the next feed event.
  void publish(const std::string& type, const wire::pod& p) {
    std::lock_guard lk(hub_.mu);
    if (type == "DELETED")
      pods.erase(p.metadata.uid);
    else
      pods[p.metadata.uid] = p;
    publish_locked(++feed_seq, type, p);
  }

  /// Publishes an event with an explicit sequence number (to make gaps).
  void publish_seq(uint64_t seq, const std::string& type, const wire::pod& p) {
    std::lock_guard lk(hub_.mu);
    pods[p.metadata.uid] = p;
    feed_seq = seq;
    publish_locked(seq, type, p);
  }

  void heartbeat() {
    std::lock_guard lk(hub_.mu);
    ++hub_.feed_expected;
    wire::feed_heartbeat hb;
    hb.seq = feed_seq;
    hb.topics["pods"] = feed_seq;
    bus_->publish(pub_, "hb", wire::make_envelope(hb));
  }

  /// Published on a topic only the test harness listens to, to learn when the
  /// subscription has reached the publisher.
  void probe() { bus_->publish(pub_, "probe", wire::make_envelope(wire::feed_heartbeat{})); }

  std::vector<wire::pod_status_update> updates_for(const std::string& uid) {
    std::lock_guard lk(hub_.mu);
    return updates_for_locked(uid);
  }

  std::vector<wire::pod_status_update> updates_for_locked(const std::string& uid) {
    std::vector<wire::pod_status_update> out;
    for (const auto& u : status_updates)
      if (u.uid == uid)
        out.push_back(u);
    return out;
  }

 private:
  void publish_locked(uint64_t seq, const std::string& type, const wire::pod& p) {
    wire::watch_event ev;
    ev.seq = seq;
    ev.type = type;
    ev.kind = "pods";
    ev.pod_ = p;
    ++hub_.feed_expected;
    bus_->publish(pub_, "pods", wire::make_envelope(ev));
  }

  void start(uint64_t incarnation) {
    transport::bridge_config bc;
    bc.component = "fake-apiserver";
    bc.incarnation = incarnation;
    bus_ = std::make_unique<transport::bridge>(bc);
    auto r = bus_->bind_router(
        router_ep_, [this](transport::inbound_request req) { on_request(std::move(req)); });
    auto p = bus_->bind_pub(pub_ep_);
    BOOST_REQUIRE_MESSAGE(r && p, "fake API server cannot bind");
    pub_ = *p;
    bus_->start();
  }

  // Runs on the fake's bridge thread.
  void on_request(transport::inbound_request req) {
    std::lock_guard lk(hub_.mu);
    const auto& env = req.env;
    switch (env.hdr.type) {
    case wire::list_request::type_id: {
      ++lists;
      hub_.log.push_back("api:list");
      if (fail_list) {
        bus_->reply_error(req, error{errc::unavailable, "fake: store not ready"});
        break;
      }
      auto lr = wire::decode_body<wire::list_request>(env.body);
      wire::list_reply rep;
      rep.kind = "pods";
      rep.feed_seq = feed_seq;
      for (const auto& [uid, p] : pods)
        if (lr && (lr->node_name.empty() || p.spec.node_name == lr->node_name))
          rep.pods.push_back(p);
      bus_->reply(req, wire::make_envelope(rep));
      break;
    }
    case wire::pod_status_update::type_id: {
      auto u = wire::decode_body<wire::pod_status_update>(env.body);
      if (u) {
        hub_.log.push_back("api:pod_status_update:" + u->uid);
        status_updates.push_back(*u);
      }
      bus_->reply(req, wire::make_envelope(wire::ack{}));
      break;
    }
    case wire::pod_finalize::type_id: {
      auto f = wire::decode_body<wire::pod_finalize>(env.body);
      if (f) {
        hub_.log.push_back("api:pod_finalize:" + f->uid);
        // Like the real API server: the object goes, and DELETED is
        // published (counted before the ack goes out, so the harness
        // waits for it).
        auto it = pods.find(f->uid);
        if (it != pods.end()) {
          auto p = it->second;
          pods.erase(it);
          publish_locked(++feed_seq, "DELETED", p);
        }
      }
      bus_->reply(req, wire::make_envelope(wire::ack{}));
      break;
    }
    case wire::event_report::type_id: {
      auto r = wire::decode_body<wire::event_report>(env.body);
      if (r)
        for (const auto& e : r->events)
          events[e.metadata.namespace_ + "/" + e.metadata.name] = e;
      bus_->reply(req, wire::make_envelope(wire::ack{}));
      break;
    }
    case wire::node_heartbeat::type_id:
      ++heartbeats;
      bus_->reply(req, wire::make_envelope(wire::ack{}));
      break;
    default: bus_->reply_error(req, error{errc::unsupported, "fake: unexpected request"});
    }
    hub_.cv.notify_all();
  }

  hub& hub_;
  std::string router_ep_, pub_ep_;
  std::unique_ptr<transport::bridge> bus_;
  int pub_ = -1;
};

// -- fake runtime --------------------------------------------------------------------

/// The runtime, in process: answers like deckhand-runtime would, through the
/// hub (so settle() delivers the answers in a fixed order).
class fake_runtime final : public kubelet::runtime_client {
 public:
  explicit fake_runtime(hub& h) : hub_(h) {}

  // Guarded by hub.mu.
  std::map<std::string, wire::sandbox_status> sandboxes;  // by uid
  std::map<std::string, errc> fail_run;                   // uid -> error for run_pod
  std::map<std::string, int> runs;                        // uid -> run_pod requests
  int stops = 0, removes = 0, lists = 0;
  /// Images in the store; run_pod fails like the real runtime without them.
  std::set<std::string> present;
  std::map<std::string, errc> fail_pull;  // image -> error for image_pull
  std::set<std::string> hold_pull;        // images whose pull is not answered yet
  std::vector<wire::image_pull_request> pulls;

  int pulls_of(const std::string& image) {
    std::lock_guard lk(hub_.mu);
    return static_cast<int>(
        std::count_if(pulls.begin(), pulls.end(), [&](const auto& p) { return p.image == image; }));
  }

  /// Answers the held pulls of `image` (successfully).
  void release_pull(const std::string& image) {
    std::lock_guard lk(hub_.mu);
    hold_pull.erase(image);
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->req.image == image) {
        answer_pull(it->seq, it->req, std::move(it->done));
        --hub_.held;
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
  }

  int runs_of(const std::string& uid) {
    std::lock_guard lk(hub_.mu);
    auto it = runs.find(uid);
    return it == runs.end() ? 0 : it->second;
  }

  static wire::sandbox_status running_sandbox(const wire::pod& p) {
    wire::sandbox_status sb;
    sb.uid = p.metadata.uid;
    sb.namespace_ = p.metadata.namespace_;
    sb.name = p.metadata.name;
    sb.state = "ready";
    sb.pod_ip_ = "10.88.0.7";
    sb.supervisor_alive = true;
    sb.created_at = "2026-01-01T00:00:00Z";
    for (const auto& c : p.spec.containers) {
      wire::container_record r;
      r.name = c.name;
      r.runtime_id = p.metadata.uid + "-" + c.name;
      r.status.name = c.name;
      r.status.state.running.started_at = "2026-01-01T00:00:01Z";
      r.status.ready = true;
      r.status.started = true;
      sb.containers.push_back(r);
    }
    return sb;
  }

  // -- kubelet::runtime_client (called on the test thread, by the actors) --

  void list_sandboxes(std::chrono::milliseconds,
                      kubelet::reply_fn<wire::list_sandboxes_reply> done) override {
    std::lock_guard lk(hub_.mu);
    auto seq = hub_.issue();
    ++lists;
    wire::list_sandboxes_reply rep;
    for (const auto& [uid, sb] : sandboxes)
      rep.sandboxes.push_back(sb);
    reply(seq, std::move(done), rep);
  }

  void run_pod(const wire::run_pod_request& r, std::chrono::milliseconds,
               kubelet::reply_fn<wire::run_pod_reply> done) override {
    std::lock_guard lk(hub_.mu);
    auto seq = hub_.issue();
    const auto& uid = r.pod_.metadata.uid;
    ++runs[uid];
    hub_.log.push_back("runtime:run_pod:" + uid);
    if (auto f = fail_run.find(uid); f != fail_run.end()) {
      reply<wire::run_pod_reply>(seq, std::move(done),
                                 error{f->second, "fake: image \"busybox:latest\" not found"});
      return;
    }
    std::string missing;
    for (const auto& c : r.pod_.spec.containers)
      if (!present.count(c.image) && missing.empty())
        missing = c.image;
    if (!missing.empty()) {
      reply<wire::run_pod_reply>(
          seq, std::move(done),
          error{errc::not_found, "image \"" + missing + "\" is not present on the node"});
      return;
    }
    if (!sandboxes.count(uid))
      sandboxes[uid] = running_sandbox(r.pod_);
    reply(seq, std::move(done), wire::run_pod_reply{sandboxes[uid]});
  }

  void pull_image(const wire::image_pull_request& r, std::chrono::milliseconds deadline,
                  kubelet::reply_fn<wire::image_pull_reply> done) override {
    std::lock_guard lk(hub_.mu);
    auto seq = hub_.issue();
    hub_.pull_deadlines.push_back(deadline);
    pulls.push_back(r);
    hub_.log.push_back("runtime:image_pull " + r.image);
    if (hold_pull.count(r.image)) {
      held_.push_back({seq, r, std::move(done)});
      ++hub_.held;
      return;
    }
    if (auto f = fail_pull.find(r.image); f != fail_pull.end()) {
      reply<wire::image_pull_reply>(seq, std::move(done),
                                    error{f->second, "fake: " + r.image + ": manifest unknown"});
      return;
    }
    answer_pull(seq, r, std::move(done));
  }

  void stop_pod(const wire::stop_pod_request& r, std::chrono::milliseconds,
                kubelet::reply_fn<wire::sandbox_status_reply> done) override {
    std::lock_guard lk(hub_.mu);
    auto seq = hub_.issue();
    ++stops;
    wire::sandbox_status_reply rep;
    hub_.log.push_back("runtime:stop_pod:" + r.uid + ":" + std::to_string(r.grace_period_seconds));
    auto it = sandboxes.find(r.uid);
    if (it != sandboxes.end()) {
      it->second.state = "stopped";
      it->second.supervisor_alive = false;
      for (auto& c : it->second.containers) {
        auto started = c.status.state.running.started_at;
        c.status.state = {};
        c.status.state.terminated.exit_code = 0;
        c.status.state.terminated.reason = "Completed";
        c.status.state.terminated.started_at = started;
        c.status.state.terminated.finished_at = "2026-01-01T00:01:00Z";
        c.status.ready = false;
      }
      rep.sandbox = it->second;
    }
    reply(seq, std::move(done), rep);
  }

  void remove_pod(const wire::remove_pod_request& r, std::chrono::milliseconds,
                  kubelet::reply_fn<wire::ack> done) override {
    std::lock_guard lk(hub_.mu);
    auto seq = hub_.issue();
    ++removes;
    hub_.log.push_back("runtime:remove_pod:" + r.uid);
    sandboxes.erase(r.uid);
    reply(seq, std::move(done), wire::ack{});
  }

  void container_stats(std::chrono::milliseconds,
                       kubelet::reply_fn<wire::container_stats_reply> done) override {
    std::lock_guard lk(hub_.mu);
    reply<wire::container_stats_reply>(hub_.issue(), std::move(done),
                                       error{errc::unsupported, "fake: unexpected request"});
  }

 private:
  struct held_pull {
    uint64_t seq;
    wire::image_pull_request req;
    kubelet::reply_fn<wire::image_pull_reply> done;
  };

  // Called with hub.mu held.
  template <class T>
  void reply(uint64_t seq, kubelet::reply_fn<T> done, std::type_identity_t<result<T>> r) {
    hub_.answer(seq, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  }

  // Called with hub.mu held.
  void answer_pull(uint64_t seq, const wire::image_pull_request& r,
                   kubelet::reply_fn<wire::image_pull_reply> done) {
    wire::image_pull_reply rep;
    rep.image.id = "sha256:" + std::string(64, 'e');
    rep.image.names = {r.image};
    rep.pulled = !(r.if_not_present && present.count(r.image));
    present.insert(r.image);
    reply(seq, std::move(done), rep);
  }

  hub& hub_;
  std::vector<held_pull> held_;  // pulls answered by release_pull
};

// -- the kubelet under test ---------------------------------------------------------------

kubelet::kubelet_config test_config(const fs::path& dir) {
  kubelet::kubelet_config cfg;
  cfg.node_name = node_name;
  cfg.data_dir = dir;
  cfg.host_ip = "192.0.2.10";
  cfg.relist_period = 1000ms;
  cfg.node_status_period = 10000ms;
  cfg.feed_silence = std::chrono::hours(1);  // tests publish heartbeats when they care
  cfg.request_deadline = 5000ms;             // real time, on the bridge thread
  cfg.retry_initial = 500ms;
  cfg.retry_max = 10000ms;
  // The eviction manager reads the real machine (memory, the data dir's
  // disk); these tests are about pods, not about this machine's free space.
  cfg.node.eviction_hard.clear();
  return cfg;
}

/// One kubelet "process": its own bridge and a CAF system on the test
/// coordinator. Destroying it is a kubelet shutdown.
class kubelet_harness {
 public:
  enum class order { issue, reverse };

  kubelet_harness(hub& h, fake_api& api, const std::string& api_ep, const std::string& feed_ep,
                  std::shared_ptr<kubelet::runtime_client> runtime, kubelet::kubelet_config kcfg,
                  order ord = order::issue)
      : hub_(h), api_(api), order_(ord) {
    cfg_.set("scheduler.policy", caf::atom("testing"));
    sys_ = std::make_unique<caf::actor_system>(cfg_);
    sched_ = &dynamic_cast<caf::scheduler::test_coordinator&>(sys_->scheduler());
    {
      std::lock_guard lk(hub_.mu);
      hub_.feed_expected = 0;
      hub_.waiting.clear();
    }
    transport::bridge_config bc;
    bc.component = "kubelet-under-test";
    bus_ = std::make_unique<transport::bridge>(bc);
    auto a = bus_->connect_dealer(api_ep);
    // "probe" last: once a probe arrives, the earlier subscriptions are active.
    auto s = bus_->connect_sub(feed_ep, {"hb", "pods", "probe"},
                               [this](const std::string& topic, wire::envelope env) {
                                 std::lock_guard lk(hub_.mu);
                                 if (topic == "probe")
                                   probe_seen_ = true;
                                 else
                                   feed_in_.push_back(std::move(env));
                                 hub_.cv.notify_all();
                               });
    BOOST_REQUIRE(a && s);
    api_dealer_ = *a;
    bus_->start();
    sync_feed();
    kubelet::kubelet_sockets socks;
    socks.bus = bus_.get();
    socks.api = *a;
    socks.runtime_peer = std::move(runtime);
    socks.request = [this](int dealer, wire::envelope env, std::chrono::milliseconds deadline,
                           transport::reply_handler on_reply) {
      uint64_t seq;
      {
        std::lock_guard lk(hub_.mu);
        seq = hub_.issue();
      }
      bus_->request(dealer, std::move(env), deadline,
                    [this, seq, on_reply = std::move(on_reply)](result<wire::envelope> res) {
                      auto shared = std::make_shared<result<wire::envelope>>(std::move(res));
                      std::lock_guard lk(hub_.mu);
                      hub_.answer(seq, [on_reply, shared] { on_reply(std::move(*shared)); });
                    });
    };
    kubelet_ = kubelet::spawn_kubelet(*sys_, socks, std::move(kcfg));
  }

  ~kubelet_harness() {
    caf::anon_send_exit(kubelet_, caf::exit_reason::user_shutdown);
    kubelet_ = nullptr;
    sched_->run();
    bus_->stop();  // fails what is still pending; those replies are dropped below
    {
      std::lock_guard lk(hub_.mu);
      hub_.ready.clear();
      hub_.waiting.clear();
      feed_in_.clear();
    }
    auto alive = sys_->registry().running();
    if (alive != 0) {
      // The actor system would wait for them forever: report and leak it
      // rather than hang the test binary.
      BOOST_ERROR("kubelet actors still alive after shutdown: " << alive);
      (void)sys_.release();
      return;
    }
    sys_.reset();
  }

  /// Waits until the kubelet's SUB socket receives what the fake publishes.
  void sync_feed() {
    auto deadline = std::chrono::steady_clock::now() + wait_limit;
    std::unique_lock lk(hub_.mu);
    probe_seen_ = false;
    while (!probe_seen_) {
      BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                            "feed subscription never became active");
      lk.unlock();
      api_.probe();
      lk.lock();
      hub_.cv.wait_for(lk, 20ms, [&] { return probe_seen_; });
    }
  }

  /// Waits until the kubelet's API DEALER reaches the (possibly restarted)
  /// API server, so that no request of the test is queued behind a reconnect.
  void ping_api() {
    auto deadline = std::chrono::steady_clock::now() + wait_limit;
    for (;;) {
      auto done = std::make_shared<int>(0);  // 0 pending, 1 ok, 2 failed
      bus_->request(api_dealer_, wire::make_envelope(wire::ping{}), 500ms,
                    [this, done](result<wire::envelope> r) {
                      std::lock_guard lk(hub_.mu);
                      *done = r ? 1 : 2;
                      hub_.cv.notify_all();
                    });
      std::unique_lock lk(hub_.mu);
      hub_.cv.wait_until(lk, deadline, [&] { return *done != 0; });
      if (*done == 1)
        return;
      BOOST_REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline,
                            "API server never reachable");
    }
  }

  /// Runs the actors until nothing is left to do now: every request answered
  /// and delivered, every published feed message delivered, no job queued.
  void settle() {
    auto deadline = std::chrono::steady_clock::now() + wait_limit;
    for (uint64_t rounds = 1;; ++rounds) {
      sched_->run();
      std::vector<std::function<void()>> batch;
      {
        std::unique_lock lk(hub_.mu);
        bool ok = hub_.cv.wait_until(lk, deadline, [&] {
          return hub_.waiting.size() <= hub_.held &&
                 feed_in_.size() + feed_delivered_ >= hub_.feed_expected;
        });
        // Many rounds means the actors never go idle (a request loop).
        BOOST_REQUIRE_MESSAGE(ok && std::chrono::steady_clock::now() < deadline,
                              "kubelet not idle after "
                                  << rounds << " delivery rounds: " << hub_.waiting.size()
                                  << " replies outstanding, feed "
                                  << feed_in_.size() + feed_delivered_ << "/"
                                  << hub_.feed_expected);
        // Feed first, then replies; each in the order fixed by the test.
        for (auto& env : feed_in_)
          batch.push_back([this, env] { caf::anon_send(kubelet_, host::feed_atom::value, env); });
        feed_delivered_ += feed_in_.size();
        feed_in_.clear();
        if (order_ == order::issue)
          for (auto& [seq, f] : hub_.ready)
            batch.push_back(std::move(f));
        else
          for (auto it = hub_.ready.rbegin(); it != hub_.ready.rend(); ++it)
            batch.push_back(std::move(it->second));
        hub_.ready.clear();
      }
      if (batch.empty())
        return;
      for (auto& f : batch)
        f();
    }
  }

  /// Advances virtual time in steps (so periodic timers fire at every period,
  /// as they would in real time), settling after each step.
  void advance(std::chrono::milliseconds total, std::chrono::milliseconds step = 100ms) {
    settle();
    for (std::chrono::milliseconds done{0}; done < total; done += step) {
      sched_->advance_time(std::min(step, total - done));
      settle();
    }
  }

 private:
  hub& hub_;
  fake_api& api_;
  order order_;
  caf::actor_system_config cfg_;
  std::unique_ptr<caf::actor_system> sys_;
  caf::scheduler::test_coordinator* sched_ = nullptr;
  std::unique_ptr<transport::bridge> bus_;
  int api_dealer_ = -1;
  caf::actor kubelet_;
  // Guarded by hub.mu.
  std::deque<wire::envelope> feed_in_;
  uint64_t feed_delivered_ = 0;
  bool probe_seen_ = false;
};

/// A temp dir, the fakes, and a way to (re)start the kubelet.
struct world {
  world() {
    std::string tmpl = (fs::temp_directory_path() / "dh-kubelet-XXXXXX").string();
    BOOST_REQUIRE(::mkdtemp(tmpl.data()));
    dir = tmpl;
    api_ep = "ipc://" + (dir / "api.sock").string();
    feed_ep = "ipc://" + (dir / "feed.sock").string();
    api = std::make_unique<fake_api>(h, api_ep, feed_ep);
    rt = std::make_shared<fake_runtime>(h);
  }
  ~world() {
    kl.reset();
    api.reset();
    rt.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  kubelet_harness& start_kubelet(kubelet_harness::order ord = kubelet_harness::order::issue,
                                 std::optional<kubelet::kubelet_config> cfg = {}) {
    kl.reset();
    kl = std::make_unique<kubelet_harness>(h, *api, api_ep, feed_ep, rt,
                                           cfg ? *cfg : test_config(dir), ord);
    kl->settle();
    return *kl;
  }

  void stop_kubelet() { kl.reset(); }

  /// Seeds the API server's store (before the kubelet lists it).
  void store(const wire::pod& p) {
    std::lock_guard lk(h.mu);
    api->pods[p.metadata.uid] = p;
  }

  std::vector<std::string> log_matching(const std::string& uid) {
    std::lock_guard lk(h.mu);
    std::vector<std::string> out;
    for (const auto& e : h.log)
      if (e.find(":" + uid) != std::string::npos &&
          e.find("pod_status_update") == std::string::npos)
        out.push_back(e);
    return out;
  }

  int api_lists() {
    std::lock_guard lk(h.mu);
    return api->lists;
  }

  template <class F>
  auto locked(F f) {
    std::lock_guard lk(h.mu);
    return f();
  }

  hub h;
  fs::path dir;
  std::string api_ep, feed_ep;
  std::unique_ptr<fake_api> api;
  std::shared_ptr<fake_runtime> rt;
  std::unique_ptr<kubelet_harness> kl;
};

const wire::container_status& first_container(const wire::pod_status_update& u) {
  BOOST_REQUIRE(!u.status.container_statuses.empty());
  return u.status.container_statuses.front();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(kubelet_actors)

// Kubernetes: the kubelet starts a pod bound to its node that the runtime does
// not have, exactly once, and reports phase Running once a container runs.
BOOST_FIXTURE_TEST_CASE(new_pod_is_started_once_and_reported_running, world) {
  store(make_pod("web", "u1"));
  auto& k = start_kubelet();
  BOOST_TEST(rt->runs_of("u1") == 1);
  auto updates = api->updates_for("u1");
  BOOST_REQUIRE(!updates.empty());
  BOOST_TEST(updates.back().status.phase == "Running");
  BOOST_TEST(updates.back().name == "web");
  BOOST_TEST(updates.back().status.pod_ip_ == "10.88.0.7");
  BOOST_TEST(first_container(updates.back()).state.is_running());
  // Later relists find it running: still exactly one start.
  k.advance(5s);
  BOOST_TEST(rt->runs_of("u1") == 1);
  // A pod bound to another node is none of our business.
  api->publish("ADDED", make_pod("elsewhere", "u9", "node-b"));
  k.advance(2s);
  BOOST_TEST(rt->runs_of("u9") == 0);
  BOOST_TEST(locked([&] { return api->heartbeats; }) >= 1);  // the node registered
}

// Kubernetes: a restarted kubelet adopts the pods the runtime still runs
// instead of starting them again, whichever of the API list and the runtime
// relist answers first.
BOOST_FIXTURE_TEST_CASE(restart_does_not_start_running_pods_again, world) {
  store(make_pod("web", "u1"));
  start_kubelet();
  BOOST_REQUIRE(rt->runs_of("u1") == 1);
  for (auto ord : {kubelet_harness::order::issue, kubelet_harness::order::reverse}) {
    stop_kubelet();
    auto& k = start_kubelet(ord);
    k.advance(3s);
    BOOST_TEST(rt->runs_of("u1") == 1);  // zero new run_pod requests
    auto updates = api->updates_for("u1");
    BOOST_REQUIRE(!updates.empty());
    BOOST_TEST(updates.back().status.phase == "Running");
  }
}

// Kubernetes: graceful deletion stops the containers with the pod's
// deletionGracePeriodSeconds, removes the sandbox, and only then lets the API
// server remove the object.
BOOST_FIXTURE_TEST_CASE(deletion_stops_removes_then_finalizes, world) {
  auto p = make_pod("web", "u1");
  store(p);
  auto& k = start_kubelet();
  BOOST_REQUIRE(rt->runs_of("u1") == 1);
  p.metadata.deletion_timestamp = "2026-01-01T00:05:00Z";
  p.metadata.deletion_grace_period_seconds = 7;
  api->publish("MODIFIED", p);
  k.settle();
  std::vector<std::string> want = {"runtime:run_pod:u1", "runtime:stop_pod:u1:7",
                                   "runtime:remove_pod:u1", "api:pod_finalize:u1"};
  BOOST_TEST(log_matching("u1") == want, boost::test_tools::per_element());
  BOOST_TEST(locked([&] { return rt->sandboxes.count("u1"); }) == 0u);
  // Terminated for good: later relists do nothing more.
  k.advance(3s);
  BOOST_TEST(log_matching("u1").size() == want.size());
  // While terminating, Ready went False.
  auto updates = api->updates_for("u1");
  BOOST_REQUIRE(!updates.empty());
  for (const auto& c : updates.back().status.conditions)
    if (c.type == "Ready")
      BOOST_TEST(c.status == "False");
}

// Kubernetes (pod workers): once termination has been requested the pod never
// goes back to running, neither while it terminates nor after it terminated.
BOOST_FIXTURE_TEST_CASE(a_kill_is_never_overwritten, world) {
  auto p = make_pod("web", "u1");
  store(p);
  auto& k = start_kubelet();
  BOOST_REQUIRE(rt->runs_of("u1") == 1);
  auto deleting = p;
  deleting.metadata.deletion_timestamp = "2026-01-01T00:05:00Z";
  deleting.metadata.deletion_grace_period_seconds = 5;
  // The stale update arrives while stop_pod is in flight.
  api->publish("MODIFIED", deleting);
  api->publish("MODIFIED", p);
  k.settle();
  BOOST_TEST(rt->runs_of("u1") == 1);
  std::vector<std::string> want = {"runtime:run_pod:u1", "runtime:stop_pod:u1:5",
                                   "runtime:remove_pod:u1", "api:pod_finalize:u1"};
  BOOST_TEST(log_matching("u1") == want, boost::test_tools::per_element());
  // And once more after the pod has terminated (and been DELETED).
  api->publish("MODIFIED", p);
  k.advance(3s);
  BOOST_TEST(rt->runs_of("u1") == 1);
  BOOST_TEST(log_matching("u1") == want, boost::test_tools::per_element());
}

// Kubernetes (list+watch): a watch that misses events, or a new API server
// incarnation, or a silent watch, makes the client list again.
BOOST_FIXTURE_TEST_CASE(feed_gap_restart_and_silence_cause_relist, world) {
  auto cfg = test_config(dir);
  cfg.feed_silence = 3000ms;
  store(make_pod("web", "u1"));
  auto& k = start_kubelet(kubelet_harness::order::issue, cfg);
  BOOST_REQUIRE(api_lists() == 1);

  // In order: applied, no relist.
  api->publish("ADDED", make_pod("db", "u2"));
  k.settle();
  BOOST_TEST(api_lists() == 1);
  BOOST_TEST(rt->runs_of("u2") == 1);

  // A gap (seq jumps by two): relist, and the relist carries the pod that the
  // jumped event announced.
  auto seq = locked([&] { return api->feed_seq; });
  api->publish_seq(seq + 2, "ADDED", make_pod("cache", "u3"));
  k.settle();
  BOOST_TEST(api_lists() == 2);
  BOOST_TEST(rt->runs_of("u3") == 1);

  // A heartbeat announcing nothing new: no relist.
  api->heartbeat();
  k.settle();
  BOOST_TEST(api_lists() == 2);

  // New API server incarnation: its first heartbeat makes the kubelet relist,
  // and its events are applied afterwards.
  api->restart(1002);
  k.sync_feed();
  k.ping_api();
  api->heartbeat();
  k.settle();
  BOOST_TEST(api_lists() == 3);
  api->publish("ADDED", make_pod("queue", "u4"));
  k.settle();
  BOOST_TEST(api_lists() == 3);
  BOOST_TEST(rt->runs_of("u4") == 1);

  // Silence past feed_silence: relist at the next tick, not before.
  k.advance(2900ms);
  BOOST_TEST(api_lists() == 3);
  k.advance(1200ms);
  BOOST_TEST(api_lists() == 4);
}

// Kubernetes: an image that cannot be pulled shows as waiting/ErrImagePull and
// is retried with an exponential back-off, never earlier.
BOOST_FIXTURE_TEST_CASE(image_pull_failure_backs_off, world) {
  locked([&] {
    rt->fail_run["u1"] = errc::not_found;
    return 0;
  });
  store(make_pod("web", "u1"));
  auto& k = start_kubelet();
  BOOST_TEST(rt->runs_of("u1") == 1);
  auto updates = api->updates_for("u1");
  BOOST_REQUIRE(!updates.empty());
  BOOST_TEST(updates.back().status.phase == "Pending");
  BOOST_TEST(first_container(updates.back()).state.waiting.reason == "ErrImagePull");
  BOOST_TEST(first_container(updates.back()).state.waiting.message.find("not found") !=
             std::string::npos);
  // First back-off: 500 ms.
  k.advance(400ms);
  BOOST_TEST(rt->runs_of("u1") == 1);
  k.advance(200ms);
  BOOST_TEST(rt->runs_of("u1") == 2);
  // Doubled: 1000 ms after the second failure (at 500 ms), then 2000 ms.
  k.advance(800ms);
  BOOST_TEST(rt->runs_of("u1") == 2);
  k.advance(300ms);
  BOOST_TEST(rt->runs_of("u1") == 3);
  // The image appears: the next attempt (2000 ms later) succeeds.
  locked([&] { return rt->fail_run.erase("u1"); });
  k.advance(1700ms);
  BOOST_TEST(rt->runs_of("u1") == 3);
  k.advance(200ms);
  BOOST_TEST(rt->runs_of("u1") == 4);
  updates = api->updates_for("u1");
  BOOST_TEST(updates.back().status.phase == "Running");
  k.advance(5s);
  BOOST_TEST(rt->runs_of("u1") == 4);
}

// Kubernetes (housekeeping): sandboxes of pods the API server does not know
// are killed, but only once the kubelet has seen the API server's pods; an
// unreachable API server must not make it kill everything.
BOOST_FIXTURE_TEST_CASE(orphans_are_removed_only_after_api_sync, world) {
  locked([&] {
    api->fail_list = true;
    rt->sandboxes["ghost"] = fake_runtime::running_sandbox(make_pod("ghost", "ghost"));
    return 0;
  });
  store(make_pod("web", "u1"));
  auto& k = start_kubelet();
  k.advance(3s);
  BOOST_TEST(locked([&] { return api->lists; }) >= 3);  // it kept trying
  BOOST_TEST(log_matching("ghost").empty());
  BOOST_TEST(locked([&] { return rt->sandboxes.count("ghost"); }) == 1u);
  BOOST_TEST(rt->runs_of("u1") == 0);

  locked([&] { return api->fail_list = false; });
  k.advance(1s);
  std::vector<std::string> want = {"runtime:stop_pod:ghost:2", "runtime:remove_pod:ghost"};
  BOOST_TEST(log_matching("ghost") == want, boost::test_tools::per_element());
  BOOST_TEST(locked([&] { return rt->sandboxes.count("ghost"); }) == 0u);
  BOOST_TEST(api->updates_for("ghost").empty());
  BOOST_TEST(rt->runs_of("u1") == 1);
  k.advance(3s);
  BOOST_TEST(log_matching("ghost").size() == want.size());
}

// Kubernetes (status manager): a status equal to the last one sent is not
// sent again; a real change is sent once.
BOOST_FIXTURE_TEST_CASE(identical_status_is_not_resent, world) {
  store(make_pod("web", "u1"));
  auto& k = start_kubelet();
  auto before = api->updates_for("u1").size();
  BOOST_REQUIRE(before >= 1u);
  k.advance(5s);  // five relists, each re-deriving the same status
  BOOST_TEST(api->updates_for("u1").size() == before);
  locked([&] {
    auto& c = rt->sandboxes["u1"].containers.at(0);
    c.status.restart_count = 1;
    return 0;
  });
  k.advance(1s);
  auto updates = api->updates_for("u1");
  BOOST_TEST(updates.size() == before + 1);
  BOOST_TEST(first_container(updates.back()).restart_count == 1);
  k.advance(3s);
  BOOST_TEST(api->updates_for("u1").size() == before + 1);
}

// A kubelet shutdown ends every actor it spawned at once, pod workers
// included (also one waiting out a back-off); the process waits for all of
// them at exit.
BOOST_FIXTURE_TEST_CASE(shutdown_ends_every_actor, world) {
  store(make_pod("web", "u1"));
  store(make_pod("db", "u2"));
  locked([&] {
    rt->fail_run["u3"] = errc::not_found;
    return 0;
  });
  store(make_pod("broken", "u3"));
  auto& k = start_kubelet();
  k.advance(200ms);
  BOOST_REQUIRE(rt->runs_of("u2") == 1);
  BOOST_REQUIRE(rt->runs_of("u3") == 1);
  stop_kubelet();  // the harness reports actors left alive
}

// -- image pulls -------------------------------------------------------------------

wire::pod image_pod(const std::string& name, const std::string& uid, const std::string& image,
                    const std::string& policy = {}) {
  auto p = make_pod(name, uid);
  p.spec.containers.at(0).image = image;
  p.spec.containers.at(0).image_pull_policy = policy;
  return p;
}

/// "REASON: MESSAGE (xCOUNT)" of the fake API server's events about `uid`,
/// oldest series first.
std::vector<std::string> events_of(world& w, const std::string& uid) {
  std::vector<std::string> out;
  w.locked([&] {
    std::vector<wire::event> evs;
    for (const auto& [key, e] : w.api->events)
      if (e.involved_object.uid == uid)
        evs.push_back(e);
    // Names end in the creation time in hex nanoseconds: creation order.
    std::sort(evs.begin(), evs.end(), [](const auto& a, const auto& b) {
      return a.metadata.name.size() != b.metadata.name.size()
                 ? a.metadata.name.size() < b.metadata.name.size()
                 : a.metadata.name < b.metadata.name;
    });
    for (const auto& e : evs)
      out.push_back(e.reason + ": " + e.message + " (x" + std::to_string(e.count) + ")");
    return 0;
  });
  return out;
}

const wire::container_state_waiting& waiting_of(const std::vector<wire::pod_status_update>& u) {
  BOOST_REQUIRE(!u.empty());
  return first_container(u.back()).state.waiting;
}

// Kubernetes: imagePullPolicy Always (the default for :latest) pulls before
// the pod starts, every time, passing the pod's imagePullSecrets; the pull
// request may take long (its own deadline), and the pod then runs.
BOOST_FIXTURE_TEST_CASE(always_pulls_before_the_pod_starts, world) {
  auto p = image_pod("web", "u1", "busybox:latest");
  p.spec.image_pull_secrets = {wire::local_object_reference{"regcred"},
                               wire::local_object_reference{"other"}};
  store(p);
  start_kubelet();
  std::vector<std::string> want = {"runtime:image_pull busybox:latest", "runtime:run_pod:u1"};
  auto order = locked([&] {
    std::vector<std::string> out;
    for (const auto& e : h.log)
      if (e.find("image_pull") != std::string::npos || e.find("run_pod") != std::string::npos)
        out.push_back(e);
    return out;
  });
  BOOST_TEST(order == want, boost::test_tools::per_element());
  auto pulls = locked([&] { return rt->pulls; });
  BOOST_REQUIRE(pulls.size() == 1u);
  BOOST_TEST(!pulls[0].if_not_present);
  std::vector<std::string> secrets = {"regcred", "other"};
  BOOST_TEST(pulls[0].secrets == secrets, boost::test_tools::per_element());
  BOOST_TEST(locked([&] { return h.pull_deadlines.at(0); }) >= std::chrono::minutes(30));
  BOOST_TEST(api->updates_for("u1").back().status.phase == "Running");
}

// Kubernetes: IfNotPresent (the default for other tags) only makes sure the
// image is there; the runtime contacts no registry when it is.
BOOST_FIXTURE_TEST_CASE(if_not_present_pulls_only_when_absent, world) {
  locked([&] { return rt->present.insert("busybox:1.36").second; });
  store(image_pod("web", "u1", "busybox:1.36"));
  start_kubelet();
  auto pulls = locked([&] { return rt->pulls; });
  BOOST_REQUIRE(pulls.size() == 1u);
  BOOST_TEST(pulls[0].if_not_present);
  BOOST_TEST(rt->runs_of("u1") == 1);
  BOOST_TEST(api->updates_for("u1").back().status.phase == "Running");
}

// Kubernetes: Never never pulls; a missing image shows ErrImageNeverPull with
// the kubelet's message and the pod stays Pending until the image appears.
BOOST_FIXTURE_TEST_CASE(never_does_not_pull_and_reports_err_image_never_pull, world) {
  store(image_pod("web", "u1", "local/app:v1", "Never"));
  auto& k = start_kubelet();
  BOOST_TEST(rt->pulls_of("local/app:v1") == 0);
  BOOST_TEST(rt->runs_of("u1") == 1);
  auto updates = api->updates_for("u1");
  BOOST_TEST(updates.back().status.phase == "Pending");
  BOOST_TEST(waiting_of(updates).reason == "ErrImageNeverPull");
  BOOST_TEST(waiting_of(updates).message ==
             "Container image \"local/app:v1\" is not present with pull policy of Never");
  // The image is imported by hand: the next attempt runs the pod, still
  // without a pull.
  locked([&] { return rt->present.insert("local/app:v1").second; });
  k.advance(600ms);
  BOOST_TEST(rt->runs_of("u1") == 2);
  BOOST_TEST(api->updates_for("u1").back().status.phase == "Running");
  BOOST_TEST(rt->pulls_of("local/app:v1") == 0);
}

// Kubernetes: a failed pull shows ErrImagePull (with the error); from the next
// sync at least one relist period later on, ImagePullBackOff
// `Back-off pulling image "X"` until the back-off
// (10 s, then 20 s, ...) ends, when the kubelet pulls again. The pod stays
// Pending and runs once a pull succeeds.
BOOST_FIXTURE_TEST_CASE(err_image_pull_then_backoff_then_success, world) {
  const std::string img = "registry.test/app:latest";
  locked([&] { return rt->fail_pull[img] = errc::not_found; });
  store(image_pod("web", "u1", img));
  auto& k = start_kubelet();
  BOOST_TEST(rt->pulls_of(img) == 1);
  BOOST_TEST(rt->runs_of("u1") == 0);
  auto updates = api->updates_for("u1");
  BOOST_TEST(updates.back().status.phase == "Pending");
  BOOST_TEST(waiting_of(updates).reason == "ErrImagePull");
  BOOST_TEST(waiting_of(updates).message == "fake: " + img + ": manifest unknown");

  k.advance(1s);  // a relist: the next sync
  updates = api->updates_for("u1");
  BOOST_TEST(updates.back().status.phase == "Pending");
  BOOST_TEST(waiting_of(updates).reason == "ImagePullBackOff");
  BOOST_TEST(waiting_of(updates).message == "Back-off pulling image \"" + img + "\"");

  k.advance(8900ms);  // 9.9 s after the failure
  BOOST_TEST(rt->pulls_of(img) == 1);
  k.advance(200ms);
  BOOST_TEST(rt->pulls_of(img) == 2);
  BOOST_TEST(waiting_of(api->updates_for("u1")).reason == "ErrImagePull");
  k.advance(1s);
  BOOST_TEST(waiting_of(api->updates_for("u1")).reason == "ImagePullBackOff");
  // Doubled: 20 s.
  k.advance(18800ms);
  BOOST_TEST(rt->pulls_of(img) == 2);
  BOOST_TEST(waiting_of(api->updates_for("u1")).reason == "ImagePullBackOff");
  locked([&] { return rt->fail_pull.erase(img); });
  k.advance(200ms);
  BOOST_TEST(rt->pulls_of(img) == 3);
  BOOST_TEST(rt->runs_of("u1") == 1);
  updates = api->updates_for("u1");
  BOOST_TEST(updates.back().status.phase == "Running");
  BOOST_TEST(first_container(updates.back()).state.is_running());
  k.advance(5s);
  BOOST_TEST(rt->pulls_of(img) == 3);
}

// The back-off doubles per failure and stops at its maximum (configurable;
// Kubernetes: 10 s to 300 s).
BOOST_FIXTURE_TEST_CASE(pull_backoff_doubles_up_to_its_cap, world) {
  auto cfg = test_config(dir);
  cfg.image_pull_backoff_initial = 1000ms;
  cfg.image_pull_backoff_max = 4000ms;
  const std::string img = "registry.test/app:latest";
  locked([&] { return rt->fail_pull[img] = errc::unavailable; });
  store(image_pod("web", "u1", img));
  auto& k = start_kubelet(kubelet_harness::order::issue, cfg);
  // Failures at 0 s, then pulls at 1 s, 3 s, 7 s, 11 s, 15 s.
  std::vector<std::pair<std::chrono::milliseconds, int>> schedule = {
      {900ms, 1}, {200ms, 2},  {1800ms, 2}, {200ms, 3},  {3800ms, 3},
      {200ms, 4}, {3800ms, 4}, {200ms, 5},  {3800ms, 5}, {200ms, 6}};
  for (auto [step, pulls] : schedule) {
    k.advance(step);
    BOOST_TEST(rt->pulls_of(img) == pulls);
  }
  BOOST_TEST(rt->runs_of("u1") == 0);
}

// Back-off is per image: another pod's image pulls at once, and a pull in
// flight holds up neither other pods nor the deletion of its own pod.
BOOST_FIXTURE_TEST_CASE(a_slow_pull_blocks_no_other_pod, world) {
  locked([&] { return rt->hold_pull.insert("slow/app:latest").second; });
  store(image_pod("slow", "u1", "slow/app:latest"));
  store(image_pod("fast", "u2", "busybox:latest"));
  auto& k = start_kubelet();
  BOOST_TEST(rt->pulls_of("slow/app:latest") == 1);
  BOOST_TEST(rt->runs_of("u2") == 1);
  BOOST_TEST(api->updates_for("u2").back().status.phase == "Running");
  BOOST_TEST(rt->runs_of("u1") == 0);
  auto slow = api->updates_for("u1");
  BOOST_TEST(slow.back().status.phase == "Pending");
  BOOST_TEST(waiting_of(slow).reason == "ContainerCreating");
  k.advance(3s);
  BOOST_TEST(rt->pulls_of("slow/app:latest") == 1);  // one pull, still in flight

  // The slow pod is deleted meanwhile: it terminates without waiting.
  auto p = image_pod("slow", "u1", "slow/app:latest");
  p.metadata.deletion_timestamp = "2026-01-01T00:05:00Z";
  p.metadata.deletion_grace_period_seconds = 3;
  api->publish("MODIFIED", p);
  k.settle();
  std::vector<std::string> want = {"runtime:stop_pod:u1:3", "runtime:remove_pod:u1",
                                   "api:pod_finalize:u1"};
  BOOST_TEST(log_matching("u1") == want, boost::test_tools::per_element());
  // The pull completes later: nothing runs.
  rt->release_pull("slow/app:latest");
  k.advance(2s);
  BOOST_TEST(rt->runs_of("u1") == 0);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(kubelet_events)
using namespace kubelet_actors;

// Kubernetes: a pod's events tell its story: the pull, then the container's
// creation and start, each with the kubelet's reason and message.
BOOST_FIXTURE_TEST_CASE(a_pulled_pod_has_pulling_pulled_created_started_events, world) {
  store(image_pod("web", "u1", "busybox:latest"));
  auto& k = start_kubelet();
  k.advance(1s);
  auto evs = events_of(*this, "u1");
  BOOST_REQUIRE_EQUAL(evs.size(), 4u);
  BOOST_TEST(evs[0] == "Pulling: Pulling image \"busybox:latest\" (x1)");
  BOOST_TEST(evs[1].rfind("Pulled: Successfully pulled image \"busybox:latest\" in ", 0) == 0u);
  BOOST_TEST(evs[2] == "Created: Created container main (x1)");
  BOOST_TEST(evs[3] == "Started: Started container main (x1)");
  auto e = locked([&] { return api->events.begin()->second; });
  BOOST_TEST(e.involved_object.field_path == "spec.containers{main}");
  BOOST_TEST(e.source.component == "kubelet");
  BOOST_TEST(e.source.host == node_name);
  // A restarted kubelet sees the same container: no new events.
  stop_kubelet();
  locked([&] {
    // The API server holds what the first kubelet reported.
    auto& p = api->pods["u1"];
    p.status = api->updates_for_locked("u1").back().status;
    return 0;
  });
  auto& k2 = start_kubelet();
  k2.advance(1s);
  BOOST_TEST(events_of(*this, "u1").size() == 4u);
}

// Kubernetes: an image already there is "already present on machine"; a
// deletion says which containers it stops.
BOOST_FIXTURE_TEST_CASE(present_image_and_killing_events, world) {
  locked([&] { return rt->present.insert("busybox:1.36").second; });
  auto p = image_pod("web", "u1", "busybox:1.36");
  store(p);
  auto& k = start_kubelet();
  k.advance(1s);
  auto evs = events_of(*this, "u1");
  BOOST_REQUIRE_EQUAL(evs.size(), 3u);
  BOOST_TEST(evs[0] == "Pulled: Container image \"busybox:1.36\" already present on machine (x1)");
  p.metadata.deletion_timestamp = "2026-01-01T00:05:00Z";
  p.metadata.deletion_grace_period_seconds = 7;
  api->publish("MODIFIED", p);
  k.advance(1s);
  evs = events_of(*this, "u1");
  BOOST_REQUIRE_EQUAL(evs.size(), 4u);
  BOOST_TEST(evs[3] == "Killing: Stopping container main (x1)");
}

// Kubernetes: a failing pull is reported as Failed (with the registry's
// error and ErrImagePull), then BackOff / ImagePullBackOff; repeats count up.
BOOST_FIXTURE_TEST_CASE(failed_pulls_give_failed_and_backoff_events_that_aggregate, world) {
  const std::string img = "registry.test/app:latest";
  locked([&] { return rt->fail_pull[img] = errc::not_found; });
  store(image_pod("web", "u1", img));
  auto& k = start_kubelet();
  k.advance(12s);  // two failed pulls (10 s back-off)
  auto evs = events_of(*this, "u1");
  std::vector<std::string> want = {
      "Pulling: Pulling image \"" + img + "\" (x2)",
      "Failed: Failed to pull image \"" + img + "\": fake: " + img + ": manifest unknown (x2)",
      "Failed: Error: ErrImagePull (x2)", "BackOff: Back-off pulling image \"" + img + "\" (x2)",
      "Failed: Error: ImagePullBackOff (x2)"};
  BOOST_TEST(evs == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

// Pod lifecycle: activeDeadlineSeconds, grace periods of deletions.
BOOST_AUTO_TEST_SUITE(kubelet_pod_lifecycle)
using namespace kubelet_actors;

/// The last status the kubelet reported for `uid`.
wire::pod_status last_status(world& w, const std::string& uid) {
  auto updates = w.api->updates_for(uid);
  BOOST_REQUIRE(!updates.empty());
  return updates.back().status;
}

// Kubernetes (activeDeadlineHandler): a pod active longer than
// activeDeadlineSeconds fails with DeadlineExceeded, its containers stop
// (with its own grace period), it never runs again, and its object stays
// until it is deleted.
BOOST_FIXTURE_TEST_CASE(active_deadline_fails_and_stops_the_pod, world) {
  auto p = make_pod("web", "u1");
  p.spec.active_deadline_seconds = 5;
  store(p);
  auto& k = start_kubelet();
  BOOST_REQUIRE(rt->runs_of("u1") == 1);
  k.advance(4s);
  BOOST_TEST(locked([&] { return rt->stops; }) == 0);
  BOOST_TEST(last_status(*this, "u1").phase == "Running");
  k.advance(2s);
  std::vector<std::string> want = {"runtime:run_pod:u1", "runtime:stop_pod:u1:30"};
  BOOST_TEST(log_matching("u1") == want, boost::test_tools::per_element());
  auto st = last_status(*this, "u1");
  BOOST_TEST(st.phase == "Failed");
  BOOST_TEST(st.reason == "DeadlineExceeded");
  BOOST_TEST(st.message == "Pod was active on the node longer than the specified deadline");
  auto evs = events_of(*this, "u1");
  BOOST_TEST((std::find(evs.begin(), evs.end(),
                        "DeadlineExceeded: Pod was active on the node longer than the "
                        "specified deadline (x1)") != evs.end()));
  // Nothing more happens: no restart, no removal.
  k.advance(3s);
  BOOST_TEST(log_matching("u1") == want, boost::test_tools::per_element());
  BOOST_TEST(last_status(*this, "u1").phase == "Failed");

  // A kubelet restart keeps the pod failed (the API server's status says so).
  stop_kubelet();
  auto failed = last_status(*this, "u1");
  locked([&] { return api->pods["u1"].status = failed, 0; });
  auto& k2 = start_kubelet();
  k2.advance(2s);
  BOOST_TEST(rt->runs_of("u1") == 1);
  BOOST_TEST(last_status(*this, "u1").phase == "Failed");

  // Deleting it removes the sandbox and the object.
  p.metadata.deletion_timestamp = "2026-01-01T00:05:00Z";
  p.metadata.deletion_grace_period_seconds = 30;
  api->publish("MODIFIED", p);
  k2.settle();
  auto log = log_matching("u1");
  BOOST_TEST(log.back() == "api:pod_finalize:u1");
  BOOST_TEST(rt->runs_of("u1") == 1);
}

// Kubernetes: the deadline counts from status.startTime, also for a pod the
// kubelet picks up again after a restart.
BOOST_FIXTURE_TEST_CASE(active_deadline_counts_from_start_time, world) {
  auto p = make_pod("web", "u1");
  p.spec.active_deadline_seconds = 60;
  p.status.phase = "Running";
  p.status.start_time = "2020-01-01T00:00:00Z";  // long ago
  store(p);
  locked([&] { return rt->sandboxes["u1"] = fake_runtime::running_sandbox(p), 0; });
  auto& k = start_kubelet();
  k.advance(1s);
  BOOST_TEST(last_status(*this, "u1").reason == "DeadlineExceeded");
  BOOST_TEST(rt->runs_of("u1") == 0);
}

// Kubernetes: a force-deleted pod (the object is gone at once) is still
// stopped by the kubelet; deckhand kills it without a grace period. A
// deletion with one second (kubectl --now) still gets kuberuntime's
// two-second minimum.
BOOST_FIXTURE_TEST_CASE(force_deletion_and_minimum_grace, world) {
  auto p = make_pod("web", "u1");
  auto q = make_pod("db", "u2");
  store(p);
  store(q);
  auto& k = start_kubelet();
  BOOST_REQUIRE(rt->runs_of("u1") == 1 && rt->runs_of("u2") == 1);
  api->publish("DELETED", p);
  q.metadata.deletion_timestamp = "2026-01-01T00:00:01Z";
  q.metadata.deletion_grace_period_seconds = 1;
  api->publish("MODIFIED", q);
  k.settle();
  std::vector<std::string> want1 = {"runtime:run_pod:u1", "runtime:stop_pod:u1:0",
                                    "runtime:remove_pod:u1"};
  BOOST_TEST(log_matching("u1") == want1, boost::test_tools::per_element());
  std::vector<std::string> want2 = {"runtime:run_pod:u2", "runtime:stop_pod:u2:2",
                                    "runtime:remove_pod:u2", "api:pod_finalize:u2"};
  BOOST_TEST(log_matching("u2") == want2, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

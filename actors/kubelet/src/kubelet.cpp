#include "deckhand/kubelet/kubelet.hpp"

#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/kubelet/admission.hpp"
#include "deckhand/kubelet/container_events.hpp"
#include "deckhand/kubelet/event_recorder.hpp"
#include "deckhand/kubelet/eviction.hpp"
#include "deckhand/kubelet/image_pull.hpp"
#include "deckhand/kubelet/node_status.hpp"
#include "deckhand/kubelet/pod_lifecycle.hpp"
#include "deckhand/kubelet/pod_status.hpp"
#include "deckhand/kubelet/static_pod_source.hpp"
#include "deckhand/kubelet/static_pods.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/feed.hpp"
#include "deckhand/messages/json.hpp"

namespace deckhand::kubelet {

namespace {

using host::feed_atom;
using host::rpc_reply;
using host::status_atom;
using host::stop_atom;
using host::sync_atom;
using host::tick_atom;
using clock_type = std::chrono::steady_clock;
/// A pull that may only check presence (IfNotPresent) is announced as
/// `Pulling` once it has taken this long, or when it turns out to have pulled.
using pull_notice_atom = caf::atom_constant<caf::atom("dh_pullnt")>;
constexpr std::chrono::milliseconds pull_notice_delay{500};
/// spec.activeDeadlineSeconds ran out (pod_lifecycle.hpp); carries a generation.
using deadline_atom = caf::atom_constant<caf::atom("dh_dline")>;

struct context {
  kubelet_sockets sockets;
  kubelet_config cfg;
  std::shared_ptr<event_recorder_stats> event_stats;
};
using ctx_ptr = std::shared_ptr<const context>;

/// host::call, but through `sockets.request` so tests can choose the thread
/// replies are delivered on.
template <class Req>
void call(const context& c, int dealer, const Req& req, std::chrono::milliseconds deadline,
          caf::actor dest, uint64_t tag, std::string what) {
  c.sockets.request(dealer, wire::make_envelope(req), deadline,
                    host::reply_to(std::move(dest), tag, std::move(what)));
}

std::string pod_ref(const wire::pod& p) {
  return "pod=" + p.metadata.namespace_ + "/" + p.metadata.name + " uid=" + p.metadata.uid;
}

// -- status manager -------------------------------------------------------------

struct status_state {
  ctx_ptr ctx;
  std::map<std::string, wire::pod_status_update> wanted;  // by uid
  std::map<std::string, std::string> sent;                // uid -> body sent
  std::set<std::string> inflight;
  /// In-flight requests sent before a stop: their reply must not count as
  /// sent (a recreated mirror pod needs the status again).
  std::set<std::string> discard;
  uint64_t tag = 0;
  static inline const char* name = "status_manager";
};

caf::behavior status_manager(caf::stateful_actor<status_state>* self, ctx_ptr ctx) {
  self->state.ctx = ctx;
  auto flush = [self](const std::string& uid) {
    auto& st = self->state;
    auto it = st.wanted.find(uid);
    if (it == st.wanted.end() || st.inflight.count(uid))
      return;
    auto body = wire::encode_body(it->second.status);
    if (st.sent[uid] == body)
      return;
    st.inflight.insert(uid);
    call(*st.ctx, st.ctx->sockets.api, it->second, st.ctx->cfg.request_deadline,
         caf::actor_cast<caf::actor>(self), 0, uid + "\n" + body);
  };
  return {
      [=](status_atom, wire::pod_status_update u) {
        auto uid = u.uid;
        self->state.wanted[uid] = std::move(u);
        flush(uid);
      },
      [=](stop_atom, const std::string& uid) {
        self->state.wanted.erase(uid);
        self->state.sent.erase(uid);
        if (self->state.inflight.count(uid))
          self->state.discard.insert(uid);
      },
      [=](const rpc_reply& r) {
        auto nl = r.what.find('\n');
        auto uid = r.what.substr(0, nl);
        auto body = r.what.substr(nl + 1);
        self->state.inflight.erase(uid);
        if (self->state.discard.erase(uid)) {
          flush(uid);
          return;
        }
        auto ack = r.as<wire::ack>();
        if (ack) {
          self->state.sent[uid] = body;
          flush(uid);
        } else if (ack.err().code == errc::not_found) {
          // The pod is gone from the API server: nothing left to report to.
          self->state.sent[uid] = body;
        } else {
          log::get()->warn("msg=\"status update failed, will retry\" uid={} error=\"{}\"", uid,
                           ack.err().message);
          self->delayed_send(self, std::chrono::seconds(1), sync_atom::value, uid);
        }
      },
      [=](sync_atom, const std::string& uid) { flush(uid); },
  };
}

// -- pod worker -------------------------------------------------------------------

enum class worker_phase { syncing, terminating, terminated };

/// The kubelet's retry back-off (Kubernetes' flowcontrol.Backoff without
/// expiry): `initial` after the first failure, doubling up to `max`. The pod
/// worker keeps one for run_pod and one per image it failed to pull.
class retry_backoff {
 public:
  retry_backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
      : initial_(initial), max_(max) {}

  /// A failure: the delay before the next attempt.
  std::chrono::milliseconds next() {
    current_ = current_.count() == 0 ? initial_ : std::min(current_ * 2, max_);
    return current_;
  }

  /// A success: the next failure starts over at `initial`.
  void reset() { current_ = std::chrono::milliseconds(0); }

 private:
  std::chrono::milliseconds initial_, max_;
  std::chrono::milliseconds current_{0};
};

/// One image of a pod whose pull failed: no new pull before `retry_at`.
struct image_pull_state {
  retry_backoff backoff;
  clock_type::time_point failed_at{};
  clock_type::time_point retry_at{};
};

struct worker_state {
  ctx_ptr ctx;
  caf::actor parent;
  caf::actor status_mgr;
  caf::actor recorder;
  std::string uid;
  wire::pod desired;
  bool have_desired = false;
  bool api_deleted = false;  // the object is gone from the API server
  int64_t kill_grace = -1;   // grace for an orphan or force-deleted pod
  bool have_sandbox = false;
  bool sandbox_known = false;  // runtime relist has answered at least once
  wire::sandbox_status sandbox;
  std::string err_reason, err_message;
  worker_phase phase = worker_phase::syncing;
  bool busy = false;
  bool stopped = false, removed = false, finalized = false;
  wire::pod_status last_status;
  clock_type::time_point next_attempt{};
  /// Set from the config when the worker starts.
  retry_backoff run_backoff{std::chrono::milliseconds(0), std::chrono::milliseconds(0)};
  uint64_t timer_gen = 0;
  /// Images whose last pull failed, by image as the spec names it.
  std::map<std::string, image_pull_state> failed_pulls;
  /// Images made present since the last run_pod attempt.
  std::set<std::string> images_ready;
  /// The image whose pull is in flight; empty if none. Not `busy`: a pull
  /// may take minutes and must not delay a deletion.
  std::string pulling;
  /// Waiting states of containers held up by their image, by container name.
  std::map<std::string, wire::container_state_waiting> waiting;
  /// When the pull in flight started (for the Pulled event's duration).
  clock_type::time_point pull_started{};
  bool pull_announced = false;
  uint64_t pull_gen = 0;
  /// Container statuses already turned into events; seeded from the API
  /// server's pod status, so a kubelet restart repeats none.
  std::vector<wire::container_status> reported;
  bool reported_seeded = false;
  /// Kubernetes' activeDeadlineSeconds: when the pod became active on this
  /// worker's clock (from status.startTime after a kubelet restart), the
  /// deadline armed, and whether it has passed (the pod then stops for good).
  std::optional<clock_type::time_point> active_since;
  std::optional<clock_type::time_point> deadline_armed;
  uint64_t deadline_gen = 0;
  bool deadline_exceeded = false;
  /// The grace period of the stop_pod sent last (-1: none); it only shrinks.
  int64_t grace_in_force = -1;
  /// Set once the eviction manager evicted the pod: it stops, its status
  /// says Failed/Evicted, and the object stays (eviction.hpp).
  std::string evicted_message;
  static inline const char* name = "pod_worker";
};

using worker_actor = caf::stateful_actor<worker_state>;

/// Records an event about the pod (nothing for an orphan: no object to name).
void emit(worker_actor* self, const std::string& field_path, const char* type, const char* reason,
          const std::string& message) {
  auto& st = self->state;
  if (!st.have_desired || !st.recorder)
    return;
  self->send(st.recorder, record_atom::value,
             pod_event(st.desired, field_path, type, reason, message));
}

/// The same event for every container that runs `image`.
void emit_for_image(worker_actor* self, const std::string& image, const char* type,
                    const char* reason, const std::string& message) {
  for (const auto& c : self->state.desired.spec.containers)
    if (c.image == image)
      emit(self, container_field_path(c.name), type, reason, message);
}

/// Turns what the runtime's records show and no event has reported yet into
/// Created/Started/BackOff events.
void observe_containers(worker_actor* self) {
  auto& st = self->state;
  if (!st.have_desired || !st.have_sandbox)
    return;
  if (!st.reported_seeded) {
    st.reported = st.desired.status.container_statuses;
    st.reported_seeded = true;
  }
  for (auto& n : container_events(st.desired, st.reported, st.sandbox))
    emit(self, n.field_path, n.type.c_str(), n.reason.c_str(), n.message);
  for (const auto& rec : st.sandbox.containers) {
    auto it = std::find_if(st.reported.begin(), st.reported.end(),
                           [&](const auto& cs) { return cs.name == rec.name; });
    if (it == st.reported.end())
      st.reported.push_back(rec.status);
    else
      *it = rec.status;
  }
}

void publish_status(worker_actor* self) {
  auto& st = self->state;
  if (!st.have_desired || st.api_deleted)
    return;
  observed_pod obs;
  obs.sandbox = st.have_sandbox ? &st.sandbox : nullptr;
  obs.runtime_error_reason = st.err_reason;
  obs.runtime_error_message = st.err_message;
  obs.waiting = st.waiting;
  obs.terminating = st.phase != worker_phase::syncing;
  obs.containers_stopped = st.stopped && obs.terminating;
  obs.deadline_exceeded = st.deadline_exceeded;
  obs.host_ip = st.ctx->cfg.host_ip;
  obs.now = now_rfc3339();
  auto status = compute_status(st.desired, obs, st.last_status);
  if (!st.evicted_message.empty())
    mark_evicted(status, st.evicted_message, obs.now);
  st.last_status = status;
  wire::pod_status_update u;
  u.namespace_ = st.desired.metadata.namespace_;
  u.name = st.desired.metadata.name;
  u.uid = st.uid;
  u.status = std::move(status);
  self->send(st.status_mgr, status_atom::value, std::move(u));
}

void step(worker_actor* self);

/// run_pod said an image is missing (`image "X" is not present ...`): the
/// containers running the images it names wait with ErrImageNeverPull
/// (policy Never) or ErrImagePull (the image vanished after its pull).
/// Returns false when the message names none of the pod's images.
bool attribute_missing_images(worker_state& st, const std::string& message,
                              std::vector<std::string>& never_pull_events) {
  bool any = false;
  for (const auto& c : st.desired.spec.containers) {
    if (message.find("\"" + c.image + "\"") == std::string::npos)
      continue;
    any = true;
    if (pull_policy(c) == "Never") {
      st.waiting[c.name] = {reason_err_image_never_pull, never_pull_message(c.image)};
      never_pull_events.push_back(c.name);
    } else
      st.waiting[c.name] = {reason_err_image_pull, message};
  }
  return any;
}

void arm_timer(worker_actor* self, std::chrono::milliseconds d) {
  auto gen = ++self->state.timer_gen;
  self->delayed_send(self, d, tick_atom::value, gen);
}

/// Sets the waiting state of every container that runs `image`.
void set_waiting(worker_state& st, const std::string& image, const std::string& reason,
                 const std::string& message) {
  for (const auto& c : st.desired.spec.containers)
    if (c.image == image)
      st.waiting[c.name] = wire::container_state_waiting{reason, message};
}

void clear_waiting(worker_state& st, const std::string& image) {
  for (const auto& c : st.desired.spec.containers)
    if (c.image == image)
      st.waiting.erase(c.name);
}

/// Kubernetes' EnsureImageExists, for every container before the pod starts:
/// Always pulls, IfNotPresent pulls unless present, Never does not pull (a
/// missing image then fails run_pod). An image whose last pull failed is not
/// pulled again before its back-off ends. Returns true while the pod must
/// wait: a pull is in flight, or an image is in back-off.
bool ensure_images(worker_actor* self, clock_type::time_point now) {
  auto& st = self->state;
  const auto& cfg = st.ctx->cfg;
  std::optional<clock_type::time_point> wake;
  // Init containers' images too: all are present before the sandbox exists.
  std::vector<const wire::container*> all;
  for (const auto& c : st.desired.spec.init_containers)
    all.push_back(&c);
  for (const auto& c : st.desired.spec.containers)
    all.push_back(&c);
  for (const auto* cp : all) {
    const auto& c = *cp;
    auto policy = pull_policy(c);
    if (policy == "Never" || st.images_ready.count(c.image))
      continue;
    auto failed = st.failed_pulls.find(c.image);
    if (failed != st.failed_pulls.end() && now < failed->second.retry_at) {
      // ErrImagePull stays for at least one sync period, so that users (and
      // status watchers) see why before the back-off message replaces it.
      if (now >= failed->second.failed_at + cfg.relist_period) {
        auto w = st.waiting.find(c.name);
        if (w == st.waiting.end() || w->second.reason != reason_image_pull_backoff) {
          emit(self, container_field_path(c.name), "Normal", "BackOff",
               pull_backoff_message(c.image));
          emit(self, container_field_path(c.name), "Warning", "Failed",
               std::string("Error: ") + reason_image_pull_backoff);
        }
        set_waiting(st, c.image, reason_image_pull_backoff, pull_backoff_message(c.image));
      }
      if (!wake || failed->second.retry_at < *wake)
        wake = failed->second.retry_at;
      continue;
    }
    wire::image_pull_request req;
    req.image = c.image;
    req.if_not_present = policy != "Always";
    for (const auto& s : st.desired.spec.image_pull_secrets)
      req.secrets.push_back(s.name);
    st.pulling = c.image;
    st.pull_started = self->clock().now();
    log::get()->info("msg=\"pulling image\" {} image={} policy={}", pod_ref(st.desired), c.image,
                     policy);
    st.pull_announced = !req.if_not_present;
    ++st.pull_gen;
    if (st.pull_announced)
      emit_for_image(self, c.image, "Normal", "Pulling", "Pulling image \"" + c.image + "\"");
    else
      self->delayed_send(self, pull_notice_delay, pull_notice_atom::value, st.pull_gen);
    publish_status(self);
    call(*st.ctx, st.ctx->sockets.runtime, req, cfg.image_pull_deadline,
         caf::actor_cast<caf::actor>(self), 0, "pull");
    return true;
  }
  if (!wake)
    return false;
  publish_status(self);
  arm_timer(self, std::chrono::duration_cast<std::chrono::milliseconds>(*wake - now));
  return true;
}

/// Stops the pod's containers with the effective grace period (it only
/// shrinks); the reply ("stop") steps again.
void send_stop(worker_actor* self) {
  auto& st = self->state;
  auto grace = effective_grace_period(st.have_desired ? &st.desired : nullptr, st.grace_in_force,
                                      st.kill_grace);
  st.grace_in_force = grace;
  if (st.have_sandbox)
    for (const auto& rec : st.sandbox.containers)
      if (rec.status.state.is_running())
        emit(self, container_field_path(rec.name), "Normal", "Killing",
             "Stopping container " + rec.name);
  st.busy = true;
  call(*st.ctx, st.ctx->sockets.runtime, wire::stop_pod_request{st.uid, grace},
       st.ctx->cfg.request_deadline + std::chrono::seconds(grace + 15),
       caf::actor_cast<caf::actor>(self), 0, "stop");
}

/// Kubernetes (pod workers): a kill with a shorter grace period than the one
/// under way takes over. The runtime's supervisor moves its SIGKILL deadline
/// earlier (never later); the first stop's reply still completes the stop.
void shorten_stop(worker_actor* self) {
  auto& st = self->state;
  if (!st.busy || st.stopped || st.grace_in_force < 0 || st.phase != worker_phase::terminating)
    return;
  auto grace = effective_grace_period(st.have_desired ? &st.desired : nullptr, st.grace_in_force,
                                      st.kill_grace);
  if (grace >= st.grace_in_force)
    return;
  log::get()->info("msg=\"shortening the grace period\" uid={} from={} to={}", st.uid,
                   st.grace_in_force, grace);
  st.grace_in_force = grace;
  call(*st.ctx, st.ctx->sockets.runtime, wire::stop_pod_request{st.uid, grace},
       st.ctx->cfg.request_deadline + std::chrono::seconds(grace + 15),
       caf::actor_cast<caf::actor>(self), 0, "shorten");
}

/// Kubernetes' activeDeadlineHandler: a pod active longer than
/// spec.activeDeadlineSeconds fails (DeadlineExceeded) and its containers
/// stop; it never runs again, and its sandbox stays until the pod is deleted.
/// Returns true once the deadline has passed.
bool enforce_active_deadline(worker_actor* self) {
  auto& st = self->state;
  auto now = self->clock().now();
  if (!st.deadline_exceeded) {
    if (!st.active_since) {
      // status.startTime survives a kubelet restart; the worker's own clock
      // (virtual in tests) measures from there.
      const auto& start = !st.last_status.start_time.empty() ? st.last_status.start_time
                                                             : st.desired.status.start_time;
      st.active_since = now - active_duration(start, std::chrono::system_clock::now());
    }
    auto left = active_deadline_left(
        st.desired.spec,
        std::chrono::duration_cast<std::chrono::milliseconds>(now - *st.active_since));
    if (!left)
      return false;
    if (left->count() > 0) {
      auto at = now + *left;
      if (!st.deadline_armed || *st.deadline_armed != at) {
        st.deadline_armed = at;
        self->delayed_send(self, *left, deadline_atom::value, ++st.deadline_gen);
      }
      return false;
    }
    st.deadline_exceeded = true;
    log::get()->info("msg=\"pod exceeded its active deadline\" {} activeDeadlineSeconds={}",
                     pod_ref(st.desired), st.desired.spec.active_deadline_seconds);
    emit(self, "", "Normal", reason_deadline_exceeded, message_deadline_exceeded);
  }
  if (st.have_sandbox && !st.stopped) {
    publish_status(self);
    send_stop(self);
    return true;
  }
  publish_status(self);
  return true;
}

void step(worker_actor* self) {
  auto& st = self->state;
  if (st.busy || st.phase == worker_phase::terminated)
    return;
  const auto& ctx = *st.ctx;
  auto me = caf::actor_cast<caf::actor>(self);
  bool deleting = st.api_deleted || st.kill_grace >= 0 ||
                  (st.have_desired && !st.desired.metadata.deletion_timestamp.empty());
  if (deleting && st.phase == worker_phase::syncing) {
    st.phase = worker_phase::terminating;
    if (st.have_desired)
      log::get()->info("msg=\"terminating pod\" {}", pod_ref(st.desired));
  }
  if (st.phase == worker_phase::terminating) {
    if (!st.sandbox_known)
      return;  // wait for the first relist: maybe there is nothing to stop
    if (!st.stopped) {
      send_stop(self);
      return;
    }
    if (!st.removed) {
      st.busy = true;
      call(ctx, st.ctx->sockets.runtime, wire::remove_pod_request{st.uid},
           st.ctx->cfg.request_deadline + std::chrono::seconds(10), me, 0, "remove");
      return;
    }
    if (!st.api_deleted && st.have_desired && !st.finalized && st.evicted_message.empty()) {
      st.busy = true;
      wire::pod_finalize f;
      f.namespace_ = st.desired.metadata.namespace_;
      f.name = st.desired.metadata.name;
      f.uid = st.uid;
      call(ctx, st.ctx->sockets.api, f, st.ctx->cfg.request_deadline, me, 0, "finalize");
      return;
    }
    st.phase = worker_phase::terminated;
    if (st.have_desired)
      log::get()->info("msg=\"pod terminated\" {}", pod_ref(st.desired));
    self->send(st.status_mgr, stop_atom::value, st.uid);
    self->send(st.parent, stop_atom::value, st.uid);
    self->quit();
    return;
  }
  // Syncing.
  if (!st.have_desired || !st.sandbox_known)
    return;
  if (enforce_active_deadline(self))
    return;
  // Kubernetes: a pod in a terminal phase never runs again.
  if (!st.have_sandbox &&
      (st.last_status.phase == "Succeeded" || st.last_status.phase == "Failed")) {
    publish_status(self);
    return;
  }
  if (!st.have_sandbox) {
    if (!st.pulling.empty())
      return;                        // its reply steps again
    auto now = self->clock().now();  // virtual under CAF's test coordinator
    if (now < st.next_attempt) {
      arm_timer(self, std::chrono::duration_cast<std::chrono::milliseconds>(st.next_attempt - now));
      return;
    }
    if (ensure_images(self, now))
      return;
    st.busy = true;
    log::get()->info("msg=\"starting pod\" {}", pod_ref(st.desired));
    wire::run_pod_request run{st.desired};
    // status.hostIP for the downward API (env fieldRef status.hostIP).
    if (run.pod_.status.host_ip.empty())
      run.pod_.status.host_ip = ctx.cfg.host_ip;
    call(ctx, st.ctx->sockets.runtime, run, st.ctx->cfg.request_deadline + std::chrono::seconds(60),
         me, 0, "run");
    return;
  }
  publish_status(self);
}

/// A pull finished: on success the pod may start; on failure the image's
/// containers show ErrImagePull until the worker next syncs (relist), and
/// ImagePullBackOff from then until the back-off ends.
void on_pull_reply(worker_actor* self, const rpc_reply& r) {
  auto& s = self->state;
  auto image = std::exchange(s.pulling, std::string{});
  if (s.phase != worker_phase::syncing || s.have_sandbox) {
    step(self);
    return;
  }
  auto rep = r.as<wire::image_pull_reply>();
  if (rep) {
    log::get()->info("msg=\"image ready\" {} image={} id={} pulled={}", pod_ref(s.desired), image,
                     rep->image.id, rep->pulled);
    if (rep->pulled) {
      if (!s.pull_announced)
        emit_for_image(self, image, "Normal", "Pulling", "Pulling image \"" + image + "\"");
      auto took = std::chrono::duration_cast<std::chrono::milliseconds>(self->clock().now() -
                                                                        s.pull_started);
      auto msg = "Successfully pulled image \"" + image + "\" in " + go_duration(took) + " (" +
                 go_duration(took) + " including waiting)";
      if (rep->image.size > 0)
        msg += ". Image size: " + std::to_string(rep->image.size) + " bytes.";
      emit_for_image(self, image, "Normal", "Pulled", msg);
    } else {
      emit_for_image(self, image, "Normal", "Pulled",
                     "Container image \"" + image + "\" already present on machine");
    }
    s.failed_pulls.erase(image);
    s.images_ready.insert(image);
    clear_waiting(s, image);
    step(self);
    return;
  }
  const auto& cfg = s.ctx->cfg;
  auto& ip = s.failed_pulls
                 .try_emplace(image, image_pull_state{retry_backoff{cfg.image_pull_backoff_initial,
                                                                    cfg.image_pull_backoff_max}})
                 .first->second;
  auto delay = ip.backoff.next();
  ip.failed_at = self->clock().now();
  ip.retry_at = ip.failed_at + delay;
  set_waiting(s, image, reason_err_image_pull, rep.err().message);
  emit_for_image(self, image, "Warning", "Failed",
                 "Failed to pull image \"" + image + "\": " + rep.err().message);
  emit_for_image(self, image, "Warning", "Failed", std::string("Error: ") + reason_err_image_pull);
  log::get()->warn("msg=\"image pull failed\" {} image={} backoff_ms={} error=\"{}\"",
                   pod_ref(s.desired), image, delay.count(), rep.err().message);
  publish_status(self);
  arm_timer(self, delay);
}

caf::behavior pod_worker(worker_actor* self, ctx_ptr ctx, caf::actor parent, caf::actor status_mgr,
                         caf::actor recorder, std::string uid) {
  auto& st = self->state;
  st.ctx = ctx;
  st.parent = parent;
  st.status_mgr = status_mgr;
  st.recorder = recorder;
  st.uid = uid;
  st.run_backoff = retry_backoff{ctx->cfg.retry_initial, ctx->cfg.retry_max};
  return {
      [=](sync_atom, const wire::pod& p) {
        auto& s = self->state;
        s.desired = p;
        s.have_desired = true;
        // After a kubelet restart the API server's status is where we left
        // off: its startTime, transition times and a terminal phase carry on.
        if (s.last_status.phase.empty() && !p.status.phase.empty()) {
          s.last_status = p.status;
          s.deadline_exceeded = p.status.reason == reason_deadline_exceeded;
        }
        shorten_stop(self);
        step(self);
      },
      // The object left the API server (force delete) or never was there
      // (orphan): stop with `grace` seconds.
      [=](stop_atom, int64_t grace) {
        auto& s = self->state;
        s.api_deleted = true;
        if (s.kill_grace < 0 || grace < s.kill_grace)
          s.kill_grace = grace;
        shorten_stop(self);
        step(self);
      },
      [=](status_atom, const wire::sandbox_status& sb) {
        auto& s = self->state;
        s.sandbox_known = true;
        s.have_sandbox = true;
        s.sandbox = sb;
        if (sb.state == "stopped" && s.phase != worker_phase::syncing)
          s.stopped = true;
        observe_containers(self);
        step(self);
      },
      [=](status_atom) {
        auto& s = self->state;
        s.sandbox_known = true;
        if (s.have_sandbox && s.phase == worker_phase::syncing && !s.busy) {
          // The sandbox vanished underneath us (removed by hand): recreate.
          log::get()->warn("msg=\"sandbox disappeared\" uid={}", s.uid);
        }
        if (!s.busy)
          s.have_sandbox = false;
        if (s.phase != worker_phase::syncing && !s.busy && !s.have_sandbox) {
          s.stopped = true;
          s.removed = true;
        }
        step(self);
      },
      // Evicted by the eviction manager: stop with Kubernetes' 1 s grace.
      [=](evict_atom, const std::string& message) {
        auto& s = self->state;
        if (s.phase == worker_phase::terminated || !s.evicted_message.empty())
          return;
        s.evicted_message = message;
        if (s.kill_grace < 0 || s.kill_grace > 1)
          s.kill_grace = 1;
        publish_status(self);
        step(self);
      },
      [=](tick_atom, uint64_t gen) {
        if (gen == self->state.timer_gen)
          step(self);
      },
      [=](deadline_atom, uint64_t gen) {
        if (gen == self->state.deadline_gen)
          step(self);
      },
      [=](pull_notice_atom, uint64_t gen) {
        auto& s = self->state;
        if (gen != s.pull_gen || s.pulling.empty() || s.pull_announced)
          return;
        s.pull_announced = true;
        emit_for_image(self, s.pulling, "Normal", "Pulling", "Pulling image \"" + s.pulling + "\"");
      },
      [=](const rpc_reply& r) {
        auto& s = self->state;
        if (r.what == "pull") {
          on_pull_reply(self, r);
          return;
        }
        if (r.what == "shorten") {
          // The first stop's reply completes the stop; this one only moved
          // the SIGKILL deadline.
          if (auto rep = r.as<wire::sandbox_status_reply>(); !rep)
            log::get()->warn("msg=\"shortening the grace period failed\" uid={} error=\"{}\"",
                             s.uid, rep.err().message);
          return;
        }
        s.busy = false;
        if (r.what == "run") {
          auto rep = r.as<wire::run_pod_reply>();
          // Always means a pull before every start attempt.
          s.images_ready.clear();
          if (rep) {
            s.have_sandbox = true;
            s.sandbox = rep->sandbox;
            s.err_reason.clear();
            s.err_message.clear();
            s.waiting.clear();
            s.run_backoff.reset();
            for (const auto& c : s.desired.spec.containers)
              if (pull_policy(c) == "Never")
                emit(self, container_field_path(c.name), "Normal", "Pulled",
                     "Container image \"" + c.image + "\" already present on machine");
            observe_containers(self);
          } else {
            const auto& e = rep.err();
            s.err_reason.clear();
            s.err_message.clear();
            std::vector<std::string> never_pull;
            if (e.code != errc::not_found || !attribute_missing_images(s, e.message, never_pull)) {
              s.err_reason =
                  e.code == errc::not_found ? reason_err_image_pull : "CreateContainerError";
              s.err_message = e.message;
            }
            for (const auto& name : never_pull) {
              emit(self, container_field_path(name), "Warning", reason_err_image_never_pull,
                   s.waiting[name].message);
              emit(self, container_field_path(name), "Warning", "Failed",
                   std::string("Error: ") + reason_err_image_never_pull);
            }
            // Kubernetes: a container that cannot be configured (a missing
            // ConfigMap key, ...) waits with CreateContainerConfigError.
            if (auto cfg = config_error_waiting(e.message)) {
              s.err_reason = cfg->reason;
              s.err_message = cfg->message;
              emit(self, "", "Warning", "Failed", "Error: " + cfg->message);
            }
            s.next_attempt = self->clock().now() + s.run_backoff.next();
            log::get()->warn("msg=\"pod start failed\" {} code={} error=\"{}\"", pod_ref(s.desired),
                             to_string(e.code), e.message);
            publish_status(self);
          }
        } else if (r.what == "stop") {
          auto rep = r.as<wire::sandbox_status_reply>();
          if (rep) {
            s.stopped = true;
            if (!rep->sandbox.uid.empty()) {
              s.sandbox = rep->sandbox;
              s.have_sandbox = true;
            }
            publish_status(self);
          } else {
            log::get()->warn("msg=\"stop failed, will retry\" uid={} error=\"{}\"", s.uid,
                             rep.err().message);
            arm_timer(self, std::chrono::seconds(1));
            return;
          }
        } else if (r.what == "remove") {
          auto rep = r.as<wire::ack>();
          if (rep) {
            s.removed = true;
            s.have_sandbox = false;
          } else {
            log::get()->warn("msg=\"remove failed, will retry\" uid={} error=\"{}\"", s.uid,
                             rep.err().message);
            arm_timer(self, std::chrono::seconds(1));
            return;
          }
        } else if (r.what == "finalize") {
          auto rep = r.as<wire::ack>();
          if (rep || rep.err().code == errc::not_found) {
            s.finalized = true;
          } else {
            arm_timer(self, std::chrono::seconds(1));
            return;
          }
        }
        step(self);
      },
  };
}

// -- sync loop ----------------------------------------------------------------------

struct sync_state {
  ctx_ptr ctx;
  caf::actor status_mgr;
  caf::actor recorder;
  wire::feed_follower follower;
  bool api_synced = false;
  bool list_inflight = false;
  bool relist_inflight = false;
  std::map<std::string, wire::pod> desired;  // by uid
  std::map<std::string, caf::actor> workers;
  /// Pods whose worker has terminated: a pod uid, once killed, never runs
  /// again (a stale update must not revive it). Forgotten once a snapshot no
  /// longer lists the uid: the object is gone and uids are never reused.
  std::set<std::string> finished;
  std::map<std::string, wire::sandbox_status> sandboxes;  // last runtime relist
  bool runtime_listed = false;
  std::vector<wire::envelope> buffered;
  uint64_t tick_gen = 0;
  /// The file source (static_pod_source.hpp) and the static pods it asks
  /// for, by uid. Until it has reported once, no sandbox counts as orphaned.
  caf::actor static_source;
  std::map<std::string, wire::pod> static_pods;
  bool static_synced = true;
  /// Admission (admission.hpp): the node's allocatable resources and the
  /// pressure conditions the eviction manager reports True.
  resource_amounts allocatable;
  std::vector<std::string> pressure;
  static inline const char* name = "kubelet";
};

using sync_actor = caf::stateful_actor<sync_state>;

caf::actor worker_for(sync_actor* self, const std::string& uid) {
  auto& st = self->state;
  auto it = st.workers.find(uid);
  if (it != st.workers.end())
    return it->second;
  // Linked: a kubelet shutdown ends the workers at once. Unlinked, a worker
  // waiting out a back-off timer outlives the sync loop; its retry then parks
  // a request (holding the worker) on the already stopped bridge, and
  // await_all_actors_done never returns. A worker's normal exit is ignored.
  auto w = self->spawn<caf::linked>(pod_worker, st.ctx, caf::actor_cast<caf::actor>(self),
                                    st.status_mgr, st.recorder, uid);
  st.workers.emplace(uid, w);
  // Tell the new worker what the runtime last said, so it need not wait for
  // the next relist (and does not start a pod that already runs).
  if (st.runtime_listed) {
    auto sb = st.sandboxes.find(uid);
    if (sb != st.sandboxes.end())
      self->send(w, status_atom::value, sb->second);
    else
      self->send(w, status_atom::value);
  }
  return w;
}

bool mine(const sync_state& st, const wire::pod& p) {
  return p.spec.node_name == st.ctx->cfg.node_name;
}

void request_list(sync_actor* self) {
  auto& st = self->state;
  if (st.list_inflight)
    return;
  st.list_inflight = true;
  st.follower.invalidate();
  wire::list_request req;
  req.kind = "pods";
  req.node_name = st.ctx->cfg.node_name;
  call(*st.ctx, st.ctx->sockets.api, req, st.ctx->cfg.request_deadline,
       caf::actor_cast<caf::actor>(self), 0, "list");
}

void request_relist(sync_actor* self) {
  auto& st = self->state;
  if (st.relist_inflight)
    return;
  st.relist_inflight = true;
  call(*st.ctx, st.ctx->sockets.runtime, wire::list_sandboxes_request{},
       st.ctx->cfg.request_deadline, caf::actor_cast<caf::actor>(self), 0, "relist");
}

/// Kubernetes' active pods: admitted (a worker runs them) and not terminal.
/// Static pods count for admission; the eviction manager does not get them
/// (they are critical in Kubernetes).
std::vector<const wire::pod*> active_pods(const sync_state& st, bool with_static) {
  std::vector<const wire::pod*> out;
  auto terminal = [](const wire::pod& p) {
    return p.status.phase == "Succeeded" || p.status.phase == "Failed";
  };
  for (const auto& [uid, p] : st.desired)
    if (st.workers.count(uid) && !terminal(p))
      out.push_back(&p);
  if (with_static)
    for (const auto& [uid, p] : st.static_pods)
      if (st.workers.count(uid) && !terminal(p))
        out.push_back(&p);
  return out;
}

/// Admission of a pod without a worker (admission.hpp). A rejected pod is
/// Failed with the reason, gets a Warning event and never runs; one the
/// kubelet rejected or evicted before (a restart) is not run again.
bool admitted(sync_actor* self, const wire::pod& p) {
  auto& st = self->state;
  auto uid = p.metadata.uid;
  if (p.status.phase == "Succeeded" || p.status.phase == "Failed") {
    if (!rejected_by_kubelet(p.status))
      return true;
    st.finished.insert(uid);
    st.desired.erase(uid);
    return false;
  }
  auto r = admit_pod(p, active_pods(st, true), st.allocatable, st.pressure);
  if (r.admit)
    return true;
  log::get()->warn("msg=\"pod rejected\" {} reason={} message=\"{}\"", pod_ref(p), r.reason,
                   r.message);
  wire::pod_status_update u;
  u.namespace_ = p.metadata.namespace_;
  u.name = p.metadata.name;
  u.uid = uid;
  u.status = rejected_status(r);
  self->send(st.status_mgr, status_atom::value, std::move(u));
  if (st.recorder)
    self->send(st.recorder, record_atom::value, pod_event(p, "", "Warning", r.reason, r.message));
  st.finished.insert(uid);
  st.desired.erase(uid);
  return false;
}

/// Pods in the order Kubernetes admits them: oldest first.
std::vector<wire::pod> admission_order(const std::map<std::string, wire::pod>& pods) {
  std::vector<wire::pod> out;
  for (const auto& [uid, p] : pods)
    out.push_back(p);
  std::stable_sort(out.begin(), out.end(), [](const wire::pod& a, const wire::pod& b) {
    return a.metadata.creation_timestamp < b.metadata.creation_timestamp;
  });
  return out;
}

void apply_event(sync_actor* self, const wire::watch_event& ev) {
  auto& st = self->state;
  if (ev.kind != "pods")
    return;
  const auto& p = ev.pod_;
  const auto& uid = p.metadata.uid;
  // A mirror pod only shows a static pod: never run from this source.
  if (is_mirror_pod(p)) {
    if (mine(st, p) && st.static_source)
      self->send(st.static_source, mirror_atom::value, ev.type, std::vector<wire::pod>{p},
                 ev.revision);
    return;
  }
  if (ev.type == "DELETED") {
    st.desired.erase(uid);
    auto it = st.workers.find(uid);
    if (it != st.workers.end())
      self->send(it->second, stop_atom::value, int64_t{0});
    return;
  }
  if (!mine(st, p) || st.finished.count(uid))
    return;
  if (!st.workers.count(uid) && !admitted(self, p))
    return;
  st.desired[uid] = p;
  self->send(worker_for(self, uid), sync_atom::value, p);
}

void on_feed(sync_actor* self, const wire::envelope& env) {
  auto& st = self->state;
  auto now = self->clock().now();
  if (env.hdr.type == wire::feed_heartbeat::type_id) {
    auto hb = wire::decode_body<wire::feed_heartbeat>(env.body);
    if (!hb)
      return;
    if (st.follower.on_heartbeat(env.hdr.incarnation, hb->topic_seq("pods"), now) ==
        wire::feed_follower::verdict::resync)
      request_list(self);
    return;
  }
  auto ev = wire::decode_as<wire::watch_event>(env);
  if (!ev) {
    log::get()->warn("msg=\"dropping malformed feed event\" error=\"{}\"", ev.err().message);
    return;
  }
  switch (st.follower.on_update(env.hdr.incarnation, ev->seq, now)) {
  case wire::feed_follower::verdict::apply: apply_event(self, *ev); break;
  case wire::feed_follower::verdict::ignore: break;
  case wire::feed_follower::verdict::buffer:
    if (st.buffered.size() < 10000)
      st.buffered.push_back(env);
    break;
  case wire::feed_follower::verdict::resync:
    log::get()->info("msg=\"feed gap or restart, relisting\" seq={}", ev->seq);
    request_list(self);
    break;
  }
}

void on_snapshot(sync_actor* self, const wire::list_reply& rep, uint64_t incarnation) {
  auto& st = self->state;
  std::map<std::string, wire::pod> fresh;
  std::set<std::string> listed;
  std::vector<wire::pod> mirrors;
  for (const auto& p : rep.pods) {
    listed.insert(p.metadata.uid);
    if (is_mirror_pod(p)) {
      if (mine(st, p))
        mirrors.push_back(p);
    } else if (mine(st, p) && !st.finished.count(p.metadata.uid)) {
      fresh[p.metadata.uid] = p;
    }
  }
  if (st.static_source)
    self->send(st.static_source, mirror_atom::value, std::string("SNAPSHOT"), std::move(mirrors),
               rep.revision);
  std::erase_if(st.finished, [&](const std::string& uid) { return !listed.count(uid); });
  // Pods that vanished while we were not listening.
  for (auto& [uid, w] : st.workers)
    if (!fresh.count(uid) && st.desired.count(uid))
      self->send(w, stop_atom::value, int64_t{0});
  st.desired = std::move(fresh);
  for (const auto& p : admission_order(st.desired))
    if (st.workers.count(p.metadata.uid) || admitted(self, p))
      self->send(worker_for(self, p.metadata.uid), sync_atom::value, p);
  st.follower.reset(incarnation, rep.feed_seq, self->clock().now());
  if (!st.api_synced)
    log::get()->info("msg=\"synced with the API server\" pods={}", st.desired.size());
  st.api_synced = true;
  auto buffered = std::move(st.buffered);
  st.buffered.clear();
  for (const auto& env : buffered)
    on_feed(self, env);
}

void on_relist(sync_actor* self, const wire::list_sandboxes_reply& rep) {
  auto& st = self->state;
  st.runtime_listed = true;
  st.sandboxes.clear();
  for (const auto& sb : rep.sandboxes)
    st.sandboxes[sb.uid] = sb;
  std::set<std::string> seen;
  for (const auto& sb : rep.sandboxes) {
    seen.insert(sb.uid);
    auto it = st.workers.find(sb.uid);
    if (it != st.workers.end()) {
      self->send(it->second, status_atom::value, sb);
    } else if (st.api_synced && st.static_synced && !st.desired.count(sb.uid) &&
               !st.static_pods.count(sb.uid)) {
      // A sandbox no pod asks for: a leftover of a pod deleted while we were down.
      log::get()->info("msg=\"removing orphaned pod sandbox\" uid={} pod={}/{}", sb.uid,
                       sb.namespace_, sb.name);
      auto w = worker_for(self, sb.uid);
      self->send(w, stop_atom::value, int64_t{2});
      self->send(w, status_atom::value, sb);
    }
  }
  for (auto& [uid, w] : st.workers)
    if (!seen.count(uid))
      self->send(w, status_atom::value);
}

/// The file source's full set of static pods: new ones start, gone ones
/// (file removed or changed: a changed file is a new uid) stop with their
/// own grace period. Nothing here needs the API server.
void apply_static_pods(sync_actor* self, const std::vector<wire::pod>& pods) {
  auto& st = self->state;
  std::map<std::string, wire::pod> fresh;
  for (const auto& p : pods)
    fresh[p.metadata.uid] = p;
  for (const auto& [uid, p] : st.static_pods) {
    if (fresh.count(uid))
      continue;
    log::get()->info("msg=\"static pod removed\" {}", pod_ref(p));
    if (auto w = st.workers.find(uid); w != st.workers.end())
      self->send(w->second, stop_atom::value, p.spec.termination_grace_period_seconds);
  }
  st.static_pods = std::move(fresh);
  st.static_synced = true;
  for (const auto& [uid, p] : st.static_pods)
    self->send(worker_for(self, uid), sync_atom::value, p);
}

caf::behavior sync_loop(sync_actor* self, ctx_ptr ctx) {
  auto& st = self->state;
  st.ctx = ctx;
  st.follower = wire::feed_follower(ctx->cfg.feed_silence);
  st.status_mgr = self->spawn(status_manager, ctx);
  self->link_to(st.status_mgr);
  auto node = spawn_node_status(
      self->system(),
      node_status_sink{ctx->sockets.request, ctx->sockets.api, ctx->cfg.request_deadline},
      node_identity{ctx->cfg.node_name, ctx->cfg.host_ip}, ctx->cfg.node, ctx->cfg.data_dir,
      ctx->cfg.node_status_period);
  self->link_to(node);
  st.allocatable = node_allocatable(ctx->cfg.node, node_capacity(ctx->cfg.node, ctx->cfg.data_dir));
  {
    event_recorder_config rc = ctx->cfg.events;
    rc.host = ctx->cfg.node_name;
    rc.request_deadline = ctx->cfg.request_deadline;
    st.recorder = spawn_event_recorder(
        self->system(), event_sink{ctx->sockets.request, ctx->sockets.api}, rc, ctx->event_stats);
    self->link_to(st.recorder);
  }
  {
    eviction_deps deps;
    auto data_dir = ctx->cfg.data_dir;
    deps.read_stats = [data_dir] { return read_node_stats(data_dir); };
    deps.request = ctx->sockets.request;
    deps.runtime = ctx->sockets.runtime;
    deps.pod_source = caf::actor_cast<caf::actor>(self);
    deps.evict_target = deps.pod_source;
    deps.recorder = st.recorder;
    deps.pressure_listeners = {node, deps.pod_source};
    auto ec = ctx->cfg.eviction;
    ec.hard = ctx->cfg.node.eviction_hard;
    self->link_to(spawn_eviction_manager(self->system(), std::move(deps), ec));
  }
  if (!ctx->cfg.static_pod_path.empty()) {
    static_pod_source_config sc{ctx->cfg.static_pod_path, ctx->cfg.node_name,
                                ctx->cfg.static_pod_poll, ctx->cfg.request_deadline};
    st.static_source =
        spawn_static_pod_source(self->system(), sc, ctx->sockets.request, ctx->sockets.api,
                                caf::actor_cast<caf::actor>(self), st.status_mgr);
    self->link_to(st.static_source);
    st.static_synced = false;
  }
  self->send(self, tick_atom::value, uint64_t{0});
  return {
      [=](feed_atom, const wire::envelope& env) { on_feed(self, env); },
      [=](static_atom, const std::vector<wire::pod>& pods) { apply_static_pods(self, pods); },
      [=](const transport::inbound_request& req) {
        if (req.env.hdr.type != wire::pod_status_notify::type_id)
          return;  // notifications only; the bridge answers ping
        auto n = wire::decode_body<wire::pod_status_notify>(req.env.body);
        if (!n)
          return;
        auto it = self->state.workers.find(n->sandbox.uid);
        if (it != self->state.workers.end())
          self->send(it->second, status_atom::value, n->sandbox);
      },
      [=](tick_atom, uint64_t) {
        auto& s = self->state;
        if (!s.follower.synced() || s.follower.silent(self->clock().now()))
          request_list(self);
        request_relist(self);
        self->delayed_send(self, s.ctx->cfg.relist_period, tick_atom::value, uint64_t{0});
      },
      [=](pods_atom) {
        std::vector<wire::pod> out;
        for (const auto* p : active_pods(self->state, false))
          out.push_back(*p);
        return out;
      },
      [=](evict_atom, const std::string& uid, const std::string& message) {
        auto it = self->state.workers.find(uid);
        if (it != self->state.workers.end())
          self->send(it->second, evict_atom::value, message);
      },
      [=](pressure_atom, std::vector<std::string> pressure) {
        self->state.pressure = std::move(pressure);
      },
      [=](stop_atom, const std::string& uid) {
        auto& s = self->state;
        s.workers.erase(uid);
        s.finished.insert(uid);
        // A pod that is still desired (deleted and re-created with the same uid
        // cannot happen) is dropped from the desired set once terminated.
        s.desired.erase(uid);
        // A static pod whose file came back while it was stopping runs again.
        if (auto sp = s.static_pods.find(uid); sp != s.static_pods.end()) {
          s.finished.erase(uid);
          self->send(worker_for(self, uid), sync_atom::value, sp->second);
        }
      },
      [=](const rpc_reply& r) {
        auto& s = self->state;
        if (r.what == "list") {
          s.list_inflight = false;
          auto rep = r.as<wire::list_reply>();
          if (!rep) {
            log::get()->warn("msg=\"listing pods failed\" error=\"{}\"", rep.err().message);
            return;  // the next tick retries
          }
          on_snapshot(self, *rep, r.env.hdr.incarnation);
        } else if (r.what == "relist") {
          s.relist_inflight = false;
          auto rep = r.as<wire::list_sandboxes_reply>();
          if (!rep) {
            log::get()->warn("msg=\"runtime relist failed\" error=\"{}\"", rep.err().message);
            return;
          }
          on_relist(self, *rep);
        }
      },
  };
}

}  // namespace

caf::actor spawn_kubelet(caf::actor_system& sys, kubelet_sockets sockets, kubelet_config cfg) {
  if (!sockets.request) {
    auto* bus = sockets.bus;
    sockets.request = [bus](int dealer, wire::envelope req, std::chrono::milliseconds deadline,
                            transport::reply_handler on_reply) {
      bus->request(dealer, std::move(req), deadline, std::move(on_reply));
    };
  }
  auto stats = cfg.event_stats;
  auto ctx = std::make_shared<const context>(
      context{std::move(sockets), std::move(cfg), std::move(stats)});
  return sys.spawn(sync_loop, ctx);
}

}  // namespace deckhand::kubelet

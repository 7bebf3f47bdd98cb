/// The pod worker, one per pod, as the Go kubelet's pod workers: sync (image
/// pulls, run_pod) -> terminating (stop_pod, remove_pod, pod_finalize) ->
/// terminated. Updates arriving while a request is in flight coalesce; once
/// a pod is terminating nothing turns it back.

#include <algorithm>
#include <utility>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/kubelet/container_events.hpp"
#include "deckhand/kubelet/eviction.hpp"
#include "deckhand/kubelet/image_pull.hpp"
#include "deckhand/kubelet/pod_lifecycle.hpp"
#include "deckhand/kubelet/pod_status.hpp"
#include "pod_worker.hpp"

namespace deckhand::kubelet::detail {

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

namespace {

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

}  // namespace

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

void arm_timer(worker_actor* self, std::chrono::milliseconds d) {
  auto gen = ++self->state.timer_gen;
  self->delayed_send(self, d, tick_atom::value, gen);
}

namespace {

/// Stops the pod's containers with the effective grace period (it only
/// shrinks); its reply (stopped_atom) steps again.
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
  st.ctx->runtime->stop_pod(wire::stop_pod_request{st.uid, grace},
                            st.ctx->cfg.request_deadline + std::chrono::seconds(grace + 15),
                            deliver<stopped_atom>(self));
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
  st.ctx->runtime->stop_pod(wire::stop_pod_request{st.uid, grace},
                            st.ctx->cfg.request_deadline + std::chrono::seconds(grace + 15),
                            deliver<shortened_atom>(self));
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

}  // namespace

void step(worker_actor* self) {
  auto& st = self->state;
  if (st.busy || st.phase == worker_phase::terminated)
    return;
  const auto& ctx = *st.ctx;
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
      ctx.runtime->remove_pod(wire::remove_pod_request{st.uid},
                              ctx.cfg.request_deadline + std::chrono::seconds(10),
                              deliver<removed_atom>(self));
      return;
    }
    if (!st.api_deleted && st.have_desired && !st.finalized && st.evicted_message.empty()) {
      st.busy = true;
      wire::pod_finalize f;
      f.namespace_ = st.desired.metadata.namespace_;
      f.name = st.desired.metadata.name;
      f.uid = st.uid;
      ctx.api->finalize_pod(f, ctx.cfg.request_deadline, deliver<finalized_atom>(self));
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
    ctx.runtime->run_pod(run, ctx.cfg.request_deadline + std::chrono::seconds(60),
                         deliver<ran_atom>(self));
    return;
  }
  publish_status(self);
}

namespace {

/// run_pod answered: the sandbox runs, or the pod waits with the reason
/// (a missing image, a configuration error) until its retry back-off ends.
void on_run_reply(worker_actor* self, const result<wire::run_pod_reply>& rep) {
  auto& s = self->state;
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
    return;
  }
  const auto& e = rep.err();
  s.err_reason.clear();
  s.err_message.clear();
  std::vector<std::string> never_pull;
  if (e.code != errc::not_found || !attribute_missing_images(s, e.message, never_pull)) {
    s.err_reason = e.code == errc::not_found ? reason_err_image_pull : "CreateContainerError";
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

caf::behavior pod_worker(worker_actor* self, ctx_ptr ctx, caf::actor parent, caf::actor status_mgr,
                         caf::actor recorder, std::string uid) {
  auto& st = self->state;
  st.ctx = ctx;
  st.parent = parent;
  st.status_mgr = status_mgr;
  st.recorder = recorder;
  st.uid = uid;
  st.run_backoff = common::backoff({ctx->cfg.retry_initial, ctx->cfg.retry_max});
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
      [=](pulled_atom, const peer_reply<wire::image_pull_reply>& r) {
        on_pull_reply(self, r.value);
      },
      [=](shortened_atom, const peer_reply<wire::sandbox_status_reply>& r) {
        // The first stop's reply completes the stop; this one only moved
        // the SIGKILL deadline.
        if (!r.value)
          log::get()->warn("msg=\"shortening the grace period failed\" uid={} error=\"{}\"",
                           self->state.uid, r.value.err().message);
      },
      [=](ran_atom, const peer_reply<wire::run_pod_reply>& r) {
        self->state.busy = false;
        on_run_reply(self, r.value);
        step(self);
      },
      [=](stopped_atom, const peer_reply<wire::sandbox_status_reply>& r) {
        auto& s = self->state;
        s.busy = false;
        const auto& rep = r.value;
        if (!rep) {
          log::get()->warn("msg=\"stop failed, will retry\" uid={} error=\"{}\"", s.uid,
                           rep.err().message);
          arm_timer(self, std::chrono::seconds(1));
          return;
        }
        s.stopped = true;
        if (!rep->sandbox.uid.empty()) {
          s.sandbox = rep->sandbox;
          s.have_sandbox = true;
        }
        publish_status(self);
        step(self);
      },
      [=](removed_atom, const peer_reply<wire::ack>& r) {
        auto& s = self->state;
        s.busy = false;
        if (!r.value) {
          log::get()->warn("msg=\"remove failed, will retry\" uid={} error=\"{}\"", s.uid,
                           r.value.err().message);
          arm_timer(self, std::chrono::seconds(1));
          return;
        }
        s.removed = true;
        s.have_sandbox = false;
        step(self);
      },
      [=](finalized_atom, const peer_reply<wire::ack>& r) {
        auto& s = self->state;
        s.busy = false;
        if (!r.value && r.value.err().code != errc::not_found) {
          arm_timer(self, std::chrono::seconds(1));
          return;
        }
        s.finalized = true;
        step(self);
      },
  };
}

}  // namespace

caf::actor spawn_pod_worker(caf::event_based_actor* parent, ctx_ptr ctx, caf::actor status_mgr,
                            caf::actor recorder, std::string uid) {
  return parent->spawn<caf::linked>(pod_worker, std::move(ctx), caf::actor_cast<caf::actor>(parent),
                                    std::move(status_mgr), std::move(recorder), std::move(uid));
}

}  // namespace deckhand::kubelet::detail

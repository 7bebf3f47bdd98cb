#include "deckhand/supervisor/pod_state.hpp"

#include <csignal>

#include "deckhand/common/paths.hpp"
#include "deckhand/host/pod_dir.hpp"

namespace deckhand::supervisor {

namespace {

constexpr const char* creating_reason = "ContainerCreating";
constexpr const char* backoff_reason = "CrashLoopBackOff";
constexpr const char* initializing_reason = "PodInitializing";
/// Kubernetes' one-time extension for a preStop hook still running at the
/// deadline, and the shortest window between a hook's end and SIGKILL.
constexpr auto min_stop_window = std::chrono::seconds(2);
/// Notes kept per container (the kubelet reads them by sequence number).
constexpr std::size_t max_notes = 8;

wire::container_state waiting(std::string reason, std::string message = {}) {
  wire::container_state s;
  s.waiting.reason = std::move(reason);
  s.waiting.message = std::move(message);
  return s;
}

}  // namespace

pod_state::pod_state(pod_context ctx) : ctx_(std::move(ctx)) {
  // Init containers first: the table's order is the start order.
  const bool has_init = !ctx_.pod.spec.init_containers.empty();
  auto add = [&](const wire::container& c, bool init) {
    entry e;
    e.spec = c;
    e.runtime_id = pod_dir::runtime_id(ctx_.pod.metadata.uid, c.name);
    e.status.name = c.name;
    e.status.image = c.image;
    e.status.state = waiting(has_init ? initializing_reason : creating_reason);
    e.backoff = common::backoff(crash_loop_policy(ctx_.backoff));
    e.probes = container_probes(c);
    e.init = init;
    e.sidecar = init && c.is_sidecar();
    entries_.push_back(std::move(e));
  };
  for (const auto& c : ctx_.pod.spec.init_containers)
    add(c, true);
  for (const auto& c : ctx_.pod.spec.containers)
    add(c, false);
}

pod_state::entry* pod_state::find(const std::string& name) {
  for (auto& e : entries_)
    if (e.spec.name == name)
      return &e;
  return nullptr;
}

pod_state::phase pod_state::phase_of(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.spec.name == name)
      return e.ph;
  return phase::terminated;
}

const wire::container_status* pod_state::status_of(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.spec.name == name)
      return &e.status;
  return nullptr;
}

std::string pod_state::container_id(const entry& e) const { return "deckhand://" + e.runtime_id; }

std::string pod_state::backoff_message(const entry& e, millis delay) const {
  const auto& meta = ctx_.pod.metadata;
  return "back-off " + go_duration(delay) + " restarting failed container=" + e.spec.name +
         " pod=" + meta.name + "_" + meta.namespace_ + "(" + meta.uid + ")";
}

std::filesystem::path pod_state::log_file(const entry& e) const {
  const auto& meta = ctx_.pod.metadata;
  return paths::pod_log_dir(ctx_.data_dir, meta.namespace_, meta.name, meta.uid) / e.spec.name /
         (std::to_string(e.status.restart_count) + ".log");
}

action::log_target pod_state::log_target(const entry& e) const {
  action::log_target t;
  t.stdout_fifo = pod_dir::log_fifo(ctx_.pod_dir, e.spec.name, "stdout");
  t.stderr_fifo = pod_dir::log_fifo(ctx_.pod_dir, e.spec.name, "stderr");
  t.log_file = log_file(e);
  t.instance = e.status.restart_count;
  return t;
}

void pod_state::begin(const std::optional<status_document>& previous,
                      const std::optional<stop_marker>& marker, time_point now) {
  if (previous) {
    for (auto& e : entries_) {
      const auto& records =
          e.init ? previous->sandbox.init_containers : previous->sandbox.containers;
      for (const auto& rec : records) {
        if (rec.name != e.spec.name)
          continue;
        e.status = rec.status;
        e.notes = rec.notes;
        e.status.name = e.spec.name;
        if (e.status.image.empty())
          e.status.image = e.spec.image;
        if (e.status.state.is_running())
          e.started_at = parse_rfc3339(e.status.state.running.started_at).value_or(time_point{});
      }
      if (const auto* b = previous->find_backoff(e.spec.name)) {
        e.backoff.set_step(b->step);
        if (b->restart_at_ms > 0)
          e.restart_at = from_epoch_ms(b->restart_at_ms);
      }
    }
    // Init progress: a completed init container never runs again, and a
    // container that was ever launched means everything before it passed
    // the gate (a sidecar that crashed since then does not block again).
    std::size_t launched_upto = 0;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const auto& st = entries_[i].status.state;
      if (!(st.is_waiting() && st.waiting.reason == initializing_reason))
        launched_upto = i + 1;
    }
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      auto& e = entries_[i];
      if (!e.init)
        continue;
      if (i + 1 < launched_upto)
        e.init_done = true;
      if (!e.sidecar && e.status.state.is_terminated() &&
          e.status.state.terminated.exit_code == 0 &&
          e.status.state.terminated.reason == "Completed")
        e.init_done = true;
    }
  }
  if (marker) {
    stopping_ = true;
    stop_deadline_ = from_epoch_ms(marker->deadline_ms);
  }
  (void)now;  // a stop carried over acts once the probes answer (advance())
  for (auto& e : entries_) {
    e.ph = phase::probing;
    action::probe probe;
    probe.name = e.spec.name;
    probe.runtime_id = e.runtime_id;
    probe.log = log_target(e);
    actions_.emplace_back(std::move(probe));
  }
  // The new pid and incarnation must reach status.json even if nothing else
  // changes.
  persist();
}

void pod_state::on_probed(const std::string& name, bool running, time_point now) {
  entry* e = find(name);
  if (!e || e->ph != phase::probing)
    return;
  if (running) {
    // Adopt it: a running container is never restarted because its
    // supervisor restarted.
    e->ph = phase::running;
    const bool resumed = e->status.state.is_running();  // the instance recorded before
    if (!e->status.state.is_running()) {
      e->status.state = {};
      e->status.state.running.started_at = rfc3339(now);
      e->started_at = now;
    }
    probes_running(*e, now, resumed);
    e->status.container_id = container_id(*e);
    // Adopted in the middle of a stop: the previous supervisor ran the hook.
    e->skip_hook = stopping_;
    persist();
    advance(now);
    return;
  }
  if (e->status.state.is_running()) {
    handle_exit(*e, exit_info::unknown(), now);
    return;
  }
  if (e->status.state.is_terminated()) {
    e->ph = phase::terminated;
  } else if (e->status.state.waiting.reason == backoff_reason) {
    e->ph = phase::backoff;
    if (e->restart_at == time_point{})
      e->restart_at = now;
  } else {
    // Never started, or a launch the previous supervisor did not see finish:
    // the gate (or the stop) decides.
    e->ph = phase::pending;
  }
  persist();
  advance(now);
  check_stop_done();
}

void pod_state::launch(entry& e, time_point, bool restart) {
  if (restart)
    ++e.status.restart_count;
  e.status.state = waiting(creating_reason);
  e.status.started = false;
  e.status.ready = false;
  e.ph = phase::launching;
  e.term = term_step::none;
  e.skip_hook = false;
  e.restart_at = {};
  // Persisted before the launch runs, so a supervisor killed mid-launch
  // finds the new restart count and the right log file.
  persist();
  actions_.push_back(action::launch{e.spec.name, e.runtime_id,
                                    pod_dir::bundle(ctx_.pod_dir, e.spec.name), log_file(e),
                                    log_target(e)});
}

void pod_state::on_started(const std::string& name, time_point now) {
  entry* e = find(name);
  if (!e || e->ph != phase::launching)
    return;
  e->ph = phase::running;
  e->status.state = {};
  e->status.state.running.started_at = rfc3339(now);
  e->started_at = now;
  probes_running(*e, now, false);
  e->status.container_id = container_id(*e);
  persist();
  advance(now);
}

void pod_state::on_start_failed(const std::string& name, const std::string& message,
                                time_point now) {
  entry* e = find(name);
  if (!e || e->ph != phase::launching)
    return;
  handle_exit(*e, exit_info::start_error(message), now);
}

void pod_state::on_exited(const std::string& name, const exit_info& info, time_point now) {
  entry* e = find(name);
  if (!e || e->ph != phase::running)
    return;
  handle_exit(*e, info, now);
}

void pod_state::handle_exit(entry& e, const exit_info& info, time_point now) {
  auto term =
      terminated_state(info, e.status.state.running.started_at, rfc3339(now), container_id(e));
  e.status.ready = false;
  e.status.started = false;
  e.probes.on_stopped();
  const bool completed_init =
      e.init && !e.sidecar && info.known && term.exit_code == 0 && term.reason == "Completed";
  bool restart;
  if (ending() || completed_init)
    restart = false;
  else if (e.sidecar)
    restart = true;  // whatever the pod's policy
  else if (e.init)
    restart = ctx_.pod.spec.restart_policy != "Never";  // failed: retried unless Never
  else
    restart = should_restart(ctx_.pod.spec.restart_policy, term.exit_code);
  e.term = term_step::none;
  if (!restart) {
    e.status.state = {};
    e.status.state.terminated = std::move(term);
    e.ph = phase::terminated;
    e.restart_at = {};
    if (completed_init)
      e.init_done = true;
  } else {
    auto delay = next_restart_delay(e.backoff, e.started_at, now);
    e.status.last_state = {};
    e.status.last_state.terminated = std::move(term);
    if (delay <= millis(0)) {
      // Not in back-off yet: the kubelet restarts at once.
      launch(e, now, true);
      return;
    }
    e.restart_at = now + delay;
    e.ph = phase::backoff;
    e.status.state = waiting(backoff_reason, backoff_message(e, delay));
  }
  persist();
  advance(now);
  check_stop_done();
}

void pod_state::on_tick(time_point now) {
  if (!ending()) {
    for (auto& e : entries_)
      if (e.ph == phase::backoff && e.restart_at <= now)
        launch(e, now, true);
  }
  for (auto& e : entries_) {
    if (e.ph != phase::running)
      continue;
    if (e.term == term_step::hook) {
      if (now >= e.term_deadline) {
        // Still running at the deadline: stop signal, then one 2-second
        // extension before SIGKILL (the hook itself is left to finish).
        ++e.hook_gen;
        send_stop_signal(e, now, now + min_stop_window);
      } else if (e.hook_until != time_point{} && now >= e.hook_until) {
        ++e.hook_gen;
        send_stop_signal(e, now, std::max(e.term_deadline, now + min_stop_window));
      }
    } else if (e.term == term_step::signalled && now >= e.term_deadline) {
      e.term = term_step::killed;
      actions_.push_back(action::kill{e.spec.name, e.runtime_id, SIGKILL, true});
    }
  }
  for (auto& e : entries_)
    run_due_probes(e, now);
  advance(now);
}

int pod_state::stop_signal_of(const entry& e) const {
  auto it = ctx_.stop_signals.find(e.spec.name);
  return it != ctx_.stop_signals.end() && it->second > 0 ? it->second : SIGTERM;
}

void pod_state::terminate(entry& e, time_point now, time_point deadline) {
  if (e.term != term_step::none || e.ph != phase::running)
    return;
  const wire::lifecycle_handler* hook = nullptr;
  if (e.spec.lifecycle_ && e.spec.lifecycle_->pre_stop)
    hook = &*e.spec.lifecycle_->pre_stop;
  // Like the kubelet: the hook runs only while there is grace left.
  if (hook && !e.skip_hook && now < deadline) {
    e.term = term_step::hook;
    e.term_deadline = deadline;
    e.hook_until = {};
    ++e.hook_gen;
    if (hook->sleep) {
      // Handled here, in (virtual) time: nothing to run.
      e.hook_until = now + std::chrono::seconds(std::max<int64_t>(0, hook->sleep->seconds));
      if (e.hook_until <= now)
        send_stop_signal(e, now, std::max(deadline, now + min_stop_window));
      return;
    }
    actions_.push_back(action::run_hook{e.spec.name, e.runtime_id, *hook,
                                        std::chrono::duration_cast<millis>(deadline - now),
                                        e.hook_gen});
    return;
  }
  send_stop_signal(e, now, deadline);
}

void pod_state::send_stop_signal(entry& e, time_point now, time_point kill_at) {
  e.hook_until = {};
  e.term_deadline = kill_at;
  // Past the deadline already (a container that started after it): SIGKILL
  // only.
  if (now <= kill_at) {
    e.term = term_step::signalled;
    actions_.push_back(action::kill{e.spec.name, e.runtime_id, stop_signal_of(e), false});
  }
  if (now >= kill_at) {
    e.term = term_step::killed;
    actions_.push_back(action::kill{e.spec.name, e.runtime_id, SIGKILL, true});
  }
}

void pod_state::on_hook_done(const std::string& name, uint64_t gen, bool ok,
                             const std::string& message, time_point now) {
  entry* e = find(name);
  if (!e || e->ph != phase::running || e->term != term_step::hook || e->hook_gen != gen)
    return;
  if (!ok) {
    note(*e, "Warning", "FailedPreStopHook",
         "PreStopHook failed" + (message.empty() ? std::string{} : ": " + message), now);
    persist();
  }
  ++e->hook_gen;
  send_stop_signal(*e, now, std::max(e->term_deadline, now + min_stop_window));
  advance(now);
}

void pod_state::note(entry& e, const std::string& type, const std::string& reason,
                     const std::string& message, time_point now) {
  wire::supervisor_note n;
  n.seq = e.notes.empty() ? 1 : e.notes.back().seq + 1;
  n.type = type;
  n.reason = reason;
  n.message = message;
  n.timestamp = rfc3339(now);
  e.notes.push_back(std::move(n));
  if (e.notes.size() > max_notes)
    e.notes.erase(e.notes.begin(), e.notes.end() - max_notes);
}

bool pod_state::should_wind_down() const {
  bool any_app = false, all_apps_done = true;
  for (const auto& e : entries_) {
    // A regular init container that failed for good (restartPolicy Never).
    if (e.init && !e.sidecar && e.ph == phase::terminated && !e.init_done)
      return true;
    if (!e.init) {
      any_app = true;
      all_apps_done = all_apps_done && e.ph == phase::terminated;
    }
  }
  const auto& policy = ctx_.pod.spec.restart_policy;
  return any_app && all_apps_done && (policy == "Never" || policy == "OnFailure");
}

void pod_state::advance(time_point now) {
  if (!ending() && should_wind_down()) {
    winding_down_ = true;
    stop_deadline_ =
        now +
        std::chrono::seconds(std::max<int64_t>(0, ctx_.pod.spec.termination_grace_period_seconds));
  }
  if (ending()) {
    advance_stop(now);
    return;
  }
  // The gate: init containers one at a time, in order.
  for (auto& e : entries_) {
    if (!e.init)
      break;
    if (e.sidecar && e.ph == phase::running && e.status.started)
      e.init_done = true;
    if (e.init_done)
      continue;
    if (e.ph == phase::pending)
      launch(e, now, false);
    return;
  }
  for (auto& e : entries_)
    if (!e.init && e.ph == phase::pending)
      launch(e, now, false);
}

void pod_state::advance_stop(time_point now) {
  // App containers (and a regular init container caught running) first, in
  // parallel.
  bool first_done = true;
  for (auto& e : entries_) {
    if (e.sidecar)
      continue;
    switch (e.ph) {
    case phase::running:
      terminate(e, now, stop_deadline_);
      first_done = false;
      break;
    case phase::pending:
    case phase::backoff: finish_without_running(e); break;
    case phase::terminated: break;
    default:  // probing, launching: wait for the answer
      first_done = false;
    }
  }
  if (!first_done)
    return;
  // Then the sidecars, one by one, last first.
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    auto& e = *it;
    if (!e.sidecar)
      continue;
    if (e.ph == phase::pending || e.ph == phase::backoff) {
      finish_without_running(e);
      continue;
    }
    if (e.ph == phase::terminated)
      continue;
    if (e.ph == phase::running)
      terminate(e, now, stop_deadline_);
    return;
  }
}

void pod_state::finish_without_running(entry& e) {
  if (e.ph != phase::terminated)
    persist();
  e.ph = phase::terminated;
  e.restart_at = {};
  // A container waiting out its back-off will not run again: its last
  // termination becomes its final state.
  if (e.status.last_state.is_terminated()) {
    e.status.state = {};
    e.status.state.terminated = e.status.last_state.terminated;
    e.status.last_state = {};
  }
}

void pod_state::on_stop_request(uint64_t token, int64_t grace_period_seconds, time_point now) {
  if (grace_period_seconds < 0)
    grace_period_seconds = 0;
  auto deadline = now + std::chrono::seconds(grace_period_seconds);
  stop_tokens_.push_back(token);
  if (!stopping_) {
    // A wind-down under way keeps its deadline if that is sooner.
    if (!winding_down_ || deadline < stop_deadline_)
      stop_deadline_ = deadline;
    stopping_ = true;
    // The marker goes first: a supervisor restarted from here on must not
    // start anything.
    actions_.push_back(
        action::write_stop_marker{{grace_period_seconds, to_epoch_ms(stop_deadline_)}});
    persist();
  } else if (deadline < stop_deadline_) {
    // A later request may shorten the grace period, never lengthen it.
    stop_deadline_ = deadline;
    actions_.push_back(action::write_stop_marker{{grace_period_seconds, to_epoch_ms(deadline)}});
  }
  for (auto& e : entries_)
    if (e.term != term_step::none && e.term != term_step::killed &&
        e.term_deadline > stop_deadline_)
      e.term_deadline = stop_deadline_;
  on_tick(now);
  check_stop_done();
}

bool pod_state::stopped() const {
  if (!stopping_)
    return false;
  for (const auto& e : entries_)
    if (e.ph != phase::terminated)
      return false;
  return true;
}

void pod_state::check_stop_done() {
  if (!stopped() || stop_tokens_.empty())
    return;
  persist();
  actions_.push_back(action::stop_done{std::move(stop_tokens_)});
  stop_tokens_.clear();
}

void pod_state::persist() {
  if (actions_.empty() || !std::holds_alternative<action::persist>(actions_.back()))
    actions_.push_back(action::persist{});
}

std::optional<time_point> pod_state::next_wakeup() const {
  std::optional<time_point> next;
  auto consider = [&](time_point t) {
    if (!next || t < *next)
      next = t;
  };
  for (const auto& e : entries_) {
    if (!ending() && e.ph == phase::backoff)
      consider(e.restart_at);
    if (e.ph != phase::running)
      continue;
    if (e.term == term_step::hook) {
      consider(e.term_deadline);
      if (e.hook_until != time_point{})
        consider(e.hook_until);
    } else if (e.term == term_step::signalled) {
      consider(e.term_deadline);
    }
  }
  for (const auto& e : entries_)
    if (!ending() && e.ph == phase::running && e.term == term_step::none)
      if (auto t = e.probes.next_wakeup())
        consider(*t);
  return next;
}

std::vector<action_t> pod_state::take_actions() {
  std::vector<action_t> out;
  out.swap(actions_);
  return out;
}

wire::sandbox_status pod_state::snapshot() const {
  wire::sandbox_status s;
  const auto& meta = ctx_.pod.metadata;
  s.uid = meta.uid;
  s.namespace_ = meta.namespace_;
  s.name = meta.name;
  s.state = !stopping_ ? "ready" : stopped() ? "stopped" : "stopping";
  s.pod_ip_ = !ctx_.pod_ip.empty() ? ctx_.pod_ip : ctx_.pod.status.pod_ip_;
  s.supervisor_pid = ctx_.supervisor_pid;
  s.supervisor_alive = true;
  s.supervisor_incarnation = ctx_.incarnation;
  for (const auto& e : entries_)
    (e.init ? s.init_containers : s.containers)
        .push_back(wire::container_record{e.spec.name, e.runtime_id, e.status, e.notes});
  return s;
}

status_document pod_state::document() const {
  status_document doc;
  doc.sandbox = snapshot();
  for (const auto& e : entries_) {
    backoff_record b;
    b.name = e.spec.name;
    b.step = e.backoff.step();
    if (e.ph == phase::backoff)
      b.restart_at_ms = to_epoch_ms(e.restart_at);
    doc.backoff.push_back(b);
  }
  return doc;
}

// -- probes (probe.hpp, handlers.hpp) ----------------------------------------------

void pod_state::probes_running(entry& e, time_point now, bool resumed) {
  e.probes.on_running(e.started_at, now, resumed, e.status.started, e.status.ready);
  e.status.started = e.probes.started();
  e.status.ready = e.probes.ready();
  run_due_probes(e, now);
}

void pod_state::run_due_probes(entry& e, time_point now) {
  if (ending() || e.ph != phase::running || e.term != term_step::none)
    return;
  for (const auto& req : e.probes.due(now)) {
    action::run_probe a;
    a.name = e.spec.name;
    a.runtime_id = e.runtime_id;
    a.kind = req.kind;
    a.instance = req.instance;
    a.what = handler_action::of(*e.probes.spec(req.kind));
    a.target.container = e.spec.name;
    a.target.runtime_id = e.runtime_id;
    a.target.pod_ip = !ctx_.pod_ip.empty() ? ctx_.pod_ip : ctx_.pod.status.pod_ip_;
    a.target.ports = e.spec.ports;
    a.timeout = req.timeout;
    actions_.push_back(std::move(a));
  }
}

void pod_state::on_probe_result(const std::string& name, probe_kind kind, uint64_t instance,
                                const handler_result& r, time_point now) {
  entry* e = find(name);
  // A pod on its way out probes no more (the kubelet stops its workers).
  if (!e || e->ph != phase::running || e->term != term_step::none || ending())
    return;
  const bool was_started = e->status.started;
  auto v = e->probes.on_result(kind, instance, r.outcome, now);
  if (instance == e->probes.instance() && r.outcome == handler_outcome::unknown) {
    // The kubelet reports a probe that could not run and does not count it.
    note(*e, "Warning", "Unhealthy",
         std::string(probe_title(kind)) +
             " probe errored and resulted in unknown state: " + r.message,
         now);
    persist();
  }
  if (v.failed_attempt) {
    note(*e, "Warning", "Unhealthy", std::string(probe_title(kind)) + " probe failed: " + r.message,
         now);
    persist();
  }
  if (v.changed) {
    e->status.started = e->probes.started();
    e->status.ready = e->probes.ready();
    persist();
  }
  if (v.kill) {
    const auto* spec = e->probes.spec(kind);
    int64_t grace = spec && spec->termination_grace_period_seconds
                        ? *spec->termination_grace_period_seconds
                        : ctx_.pod.spec.termination_grace_period_seconds;
    std::string message = "Container " + e->spec.name + " failed " + probe_word(kind) + " probe";
    if (ctx_.pod.spec.restart_policy != "Never")
      message += ", will be restarted";
    note(*e, "Normal", "Killing", message, now);
    persist();
    terminate(*e, now, now + std::chrono::seconds(std::max<int64_t>(grace, 0)));
  }
  run_due_probes(*e, now);
  if (was_started != e->status.started)
    advance(now);
}

}  // namespace deckhand::supervisor

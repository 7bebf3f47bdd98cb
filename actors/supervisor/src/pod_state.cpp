#include "deckhand/supervisor/pod_state.hpp"

#include <csignal>

#include "deckhand/common/paths.hpp"
#include "deckhand/host/pod_dir.hpp"

namespace deckhand::supervisor {

namespace {

constexpr const char* creating_reason = "ContainerCreating";
constexpr const char* backoff_reason = "CrashLoopBackOff";

wire::container_state waiting(std::string reason, std::string message = {}) {
  wire::container_state s;
  s.waiting.reason = std::move(reason);
  s.waiting.message = std::move(message);
  return s;
}

} // namespace

pod_state::pod_state(pod_context ctx) : ctx_(std::move(ctx)) {
  for (const auto& c : ctx_.pod.spec.containers) {
    entry e;
    e.spec = c;
    e.runtime_id = pod_dir::runtime_id(ctx_.pod.metadata.uid, c.name);
    e.status.name = c.name;
    e.status.image = c.image;
    e.status.state = waiting(creating_reason);
    e.backoff = restart_backoff(ctx_.backoff);
    entries_.push_back(std::move(e));
  }
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

std::string pod_state::container_id(const entry& e) const {
  return "deckhand://" + e.runtime_id;
}

std::string pod_state::backoff_message(const entry& e, millis delay) const {
  const auto& meta = ctx_.pod.metadata;
  return "back-off " + go_duration(delay) + " restarting failed container=" + e.spec.name
         + " pod=" + meta.name + "_" + meta.namespace_ + "(" + meta.uid + ")";
}

std::filesystem::path pod_state::log_file(const entry& e) const {
  const auto& meta = ctx_.pod.metadata;
  return paths::pod_log_dir(ctx_.data_dir, meta.namespace_, meta.name, meta.uid) / e.spec.name
         / (std::to_string(e.status.restart_count) + ".log");
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
      for (const auto& rec : previous->sandbox.containers) {
        if (rec.name != e.spec.name)
          continue;
        e.status = rec.status;
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
  }
  if (marker) {
    stopping_ = true;
    stop_deadline_ = from_epoch_ms(marker->deadline_ms);
    kill_sent_ = now >= stop_deadline_;
  }
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
    if (!e->status.state.is_running()) {
      e->status.state = {};
      e->status.state.running.started_at = rfc3339(now);
      e->started_at = now;
    }
    e->status.started = true;
    e->status.ready = true;
    e->status.container_id = container_id(*e);
    if (stopping_)
      stop_container(*e, now);
    persist();
    return;
  }
  if (e->status.state.is_running()) {
    handle_exit(*e, exit_info::unknown(), now);
    return;
  }
  if (e->status.state.is_terminated()) {
    e->ph = phase::terminated;
  } else if (e->status.state.waiting.reason == backoff_reason) {
    if (stopping_) {
      finish_without_running(*e);
    } else {
      e->ph = phase::backoff;
      if (e->restart_at == time_point{})
        e->restart_at = now;
    }
  } else if (stopping_) {
    finish_without_running(*e);
  } else {
    // Never started, or a launch the previous supervisor did not see finish.
    launch(*e, now, false);
  }
  persist();
  check_stop_done();
}

void pod_state::launch(entry& e, time_point, bool restart) {
  if (restart)
    ++e.status.restart_count;
  e.status.state = waiting(creating_reason);
  e.status.started = false;
  e.status.ready = false;
  e.ph = phase::launching;
  e.term_sent = false;
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
  e->status.started = true;
  e->status.ready = true;
  e->status.container_id = container_id(*e);
  if (stopping_)
    stop_container(*e, now);
  persist();
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
  auto term = terminated_state(info, e.status.state.running.started_at, rfc3339(now),
                               container_id(e));
  e.status.ready = false;
  e.status.started = false;
  if (stopping_ || !should_restart(ctx_.pod.spec.restart_policy, term.exit_code)) {
    e.status.state = {};
    e.status.state.terminated = std::move(term);
    e.ph = phase::terminated;
    e.restart_at = {};
  } else {
    auto delay = e.backoff.next(e.started_at, now);
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
  check_stop_done();
}

void pod_state::on_tick(time_point now) {
  if (!stopping_) {
    for (auto& e : entries_)
      if (e.ph == phase::backoff && e.restart_at <= now)
        launch(e, now, true);
    return;
  }
  if (!kill_sent_ && now >= stop_deadline_) {
    kill_sent_ = true;
    for (auto& e : entries_)
      if (e.ph == phase::running)
        actions_.push_back(action::kill{e.spec.name, e.runtime_id, SIGKILL, true});
  }
}

void pod_state::stop_container(entry& e, time_point now) {
  if (kill_sent_ || now >= stop_deadline_) {
    actions_.push_back(action::kill{e.spec.name, e.runtime_id, SIGKILL, true});
  } else if (!e.term_sent) {
    e.term_sent = true;
    actions_.push_back(action::kill{e.spec.name, e.runtime_id, SIGTERM, false});
  }
}

void pod_state::finish_without_running(entry& e) {
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
    stopping_ = true;
    stop_deadline_ = deadline;
    // The marker goes first: a supervisor restarted from here on must not
    // start anything.
    actions_.push_back(action::write_stop_marker{{grace_period_seconds, to_epoch_ms(deadline)}});
    for (auto& e : entries_) {
      if (e.ph == phase::running)
        stop_container(e, now);
      else if (e.ph == phase::backoff)
        finish_without_running(e);
    }
    persist();
  } else if (deadline < stop_deadline_ && !kill_sent_) {
    // A later request may shorten the grace period, never lengthen it.
    stop_deadline_ = deadline;
    actions_.push_back(action::write_stop_marker{{grace_period_seconds, to_epoch_ms(deadline)}});
  }
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
  if (stopping_)
    return kill_sent_ || stopped() ? std::nullopt : std::optional<time_point>(stop_deadline_);
  std::optional<time_point> next;
  for (const auto& e : entries_)
    if (e.ph == phase::backoff && (!next || e.restart_at < *next))
      next = e.restart_at;
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
  s.pod_ip_ = ctx_.pod.status.pod_ip_;
  s.supervisor_pid = ctx_.supervisor_pid;
  s.supervisor_alive = true;
  s.supervisor_incarnation = ctx_.incarnation;
  for (const auto& e : entries_)
    s.containers.push_back(wire::container_record{e.spec.name, e.runtime_id, e.status});
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

} // namespace deckhand::supervisor

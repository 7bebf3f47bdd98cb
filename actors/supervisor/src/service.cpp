#include "deckhand/supervisor/service.hpp"

#include <malloc.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include <caf/all.hpp>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/common/process.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/host/component.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/host/single_thread_scheduler.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/messages/wire.hpp"
#include "deckhand/supervisor/handlers.hpp"
#include "deckhand/supervisor/log_pump.hpp"
#include "deckhand/supervisor/pod_state.hpp"
#include "deckhand/supervisor/runner.hpp"

namespace deckhand::supervisor {

namespace fs = std::filesystem;

namespace {

using probed_atom = caf::atom_constant<caf::atom("sup_probed")>;
using started_atom = caf::atom_constant<caf::atom("sup_start")>;
using failed_atom = caf::atom_constant<caf::atom("sup_fail")>;
using exited_atom = caf::atom_constant<caf::atom("sup_exit")>;
using request_atom = caf::atom_constant<caf::atom("sup_req")>;
using idle_atom = caf::atom_constant<caf::atom("sup_idle")>;
using trim_atom = caf::atom_constant<caf::atom("sup_trim")>;
using hook_done_atom = caf::atom_constant<caf::atom("sup_hook")>;
using probe_done_atom = caf::atom_constant<caf::atom("sup_prdone")>;

/// How long the connection to the kubelet stays open after the last
/// notification. Longer than the bridge's 5 s send deadline, so closing never
/// drops a notification still waiting for the kubelet.
constexpr auto kubelet_idle = std::chrono::seconds(6);

/// What the pod actor works with; outlives the actor.
struct wiring {
  pod_context ctx;
  std::optional<status_document> previous;
  std::optional<stop_marker> marker;
  transport::bridge* bus = nullptr;
  std::string kubelet_endpoint;
  /// The DEALER to the kubelet, open only while notifications flow: an idle
  /// pod holds no connection, which at hundreds of pods per node saves the
  /// kubelet (and this process) ZeroMQ's per-connection buffers. Runner
  /// thread only.
  int kubelet = -1;
  std::chrono::steady_clock::time_point kubelet_used{};
  runner* run = nullptr;
  /// Runs probe and lifecycle-hook actions (handlers.hpp); its completions
  /// are forwarded to the pod actor.
  handler_executor* handlers = nullptr;
  std::string log_fields;
};

struct pod_actor_state {
  std::unique_ptr<pod_state> core;
  uint64_t timer_gen = 0;
  std::optional<time_point> timer_at;
  uint64_t next_token = 1;
  std::map<uint64_t, transport::inbound_request> pending_stops;
  static inline const char* name = "pod_supervisor";
};

using pod_actor_t = caf::stateful_actor<pod_actor_state>;

time_point now() { return wall_clock::now(); }

/// Runs a preStop hook's exec/httpGet/tcpSocket action; its end comes back
/// as hook_done_atom.
void start_hook(pod_actor_t* self, wiring* w, const action::run_hook& h) {
  log::get()->info("{} container={} msg=\"running preStop hook\" timeout={}ms", w->log_fields,
                   h.name, h.timeout.count());
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto done = [me, name = h.name, gen = h.gen](bool ok, const std::string& message) {
    caf::anon_send(me, hook_done_atom::value, name, gen, ok, message);
  };
  handler_target target;
  target.container = h.name;
  target.runtime_id = h.runtime_id;
  target.pod_ip = !w->ctx.pod_ip.empty() ? w->ctx.pod_ip : w->ctx.pod.status.pod_ip_;
  target.user_agent = "kube-lifecycle/1.32";
  for (const auto* list : {&w->ctx.pod.spec.init_containers, &w->ctx.pod.spec.containers})
    for (const auto& c : *list)
      if (c.name == h.name)
        target.ports = c.ports;
  w->handlers->run(
      handler_action::of(h.handler), std::move(target), h.timeout, [done](handler_result r) {
        done(r.outcome == handler_outcome::success, !r.message.empty() ? r.message : r.output);
      });
}

/// Runs one probe; its result comes back as probe_done_atom.
void start_probe(pod_actor_t* self, wiring* w, const action::run_probe& p) {
  caf::actor me = caf::actor_cast<caf::actor>(self);
  w->handlers->run(p.what, p.target, p.timeout,
                   [me, name = p.name, kind = static_cast<int32_t>(p.kind),
                    instance = p.instance](handler_result r) {
                     caf::anon_send(me, probe_done_atom::value, name, kind, instance,
                                    static_cast<int32_t>(r.outcome), r.message);
                   });
}

/// Hands the core's actions to the runner, in order, and re-arms the timer.
void drain(pod_actor_t* self, wiring* w) {
  auto& st = self->state;
  auto actions = st.core->take_actions();
  bool persist = false;
  for (const auto& a : actions)
    persist = persist || std::holds_alternative<action::persist>(a);
  // Status goes to disk before the launches and kills of the same step: a
  // supervisor killed in between finds the new restart count and log file.
  if (persist) {
    auto doc = encode_status(st.core->document());
    auto notify = wire::make_envelope(wire::pod_status_notify{st.core->snapshot()});
    auto path = pod_dir::status_json(w->ctx.pod_dir);
    w->run->post([w, doc = std::move(doc), notify = std::move(notify), path] {
      if (auto err = fsutil::write_file_atomic(path, doc, fsutil::durability::process_crash))
        log::get()->error("{} msg=\"writing status.json failed\" error=\"{}\"", w->log_fields,
                          err.message);
      // Only a hint: the kubelet may be down, its relist is the truth.
      if (w->kubelet < 0) {
        auto dealer = w->bus->connect_dealer(w->kubelet_endpoint);
        if (!dealer) {
          log::get()->warn("{} msg=\"cannot connect to the kubelet\" error=\"{}\"", w->log_fields,
                           dealer.err().message);
          return;
        }
        w->kubelet = *dealer;
      }
      w->bus->notify(w->kubelet, notify);
      w->kubelet_used = std::chrono::steady_clock::now();
    });
    self->delayed_send(self, kubelet_idle + millis(100), idle_atom::value);
  }
  for (auto& a : actions) {
    if (auto* p = std::get_if<action::probe>(&a)) {
      w->run->probe(p->name, p->runtime_id, p->log);
    } else if (auto* l = std::get_if<action::launch>(&a)) {
      w->run->launch(l->name, l->runtime_id, l->bundle, l->log);
    } else if (auto* k = std::get_if<action::kill>(&a)) {
      w->run->kill(k->name, k->runtime_id, k->signal, k->all);
    } else if (auto* m = std::get_if<action::write_stop_marker>(&a)) {
      auto text = encode_stop_marker(m->marker);
      auto path = pod_dir::stopping_marker(w->ctx.pod_dir);
      w->run->post([w, text, path] {
        if (auto err = fsutil::write_file_atomic(path, text, fsutil::durability::process_crash))
          log::get()->error("{} msg=\"writing stopping marker failed\" error=\"{}\"", w->log_fields,
                            err.message);
      });
    } else if (auto* pr = std::get_if<action::run_probe>(&a)) {
      start_probe(self, w, *pr);
    } else if (auto* h = std::get_if<action::run_hook>(&a)) {
      start_hook(self, w, *h);
    } else if (auto* d = std::get_if<action::stop_done>(&a)) {
      wire::sandbox_status_reply reply{st.core->snapshot()};
      std::vector<transport::inbound_request> reqs;
      for (auto token : d->tokens) {
        auto it = st.pending_stops.find(token);
        if (it != st.pending_stops.end()) {
          reqs.push_back(std::move(it->second));
          st.pending_stops.erase(it);
        }
      }
      log::get()->info("{} msg=\"all containers stopped\"", w->log_fields);
      // Through the runner, so the reply leaves after status.json is durable.
      w->run->post([w, reply, reqs = std::move(reqs)] {
        for (const auto& req : reqs)
          w->bus->reply(req, wire::make_envelope(reply));
      });
    }
  }
  auto wake = st.core->next_wakeup();
  if (wake && (!st.timer_at || *wake < *st.timer_at)) {
    st.timer_at = wake;
    auto delay = std::chrono::duration_cast<millis>(*wake - now()) + millis(1);
    if (delay < millis(1))
      delay = millis(1);
    self->delayed_send(self, delay, host::tick_atom::value, ++st.timer_gen);
  }
}

void handle_request(pod_actor_t* self, wiring* w, transport::inbound_request req) {
  auto& st = self->state;
  switch (req.env.hdr.type) {
  case wire::supervisor_status_request::type_id:
    w->bus->reply(req, wire::make_envelope(wire::sandbox_status_reply{st.core->snapshot()}));
    return;
  case wire::supervisor_stop_request::type_id: {
    auto stop = wire::decode_as<wire::supervisor_stop_request>(req.env);
    if (!stop) {
      w->bus->reply_error(req, stop.err());
      return;
    }
    log::get()->info("{} msg=\"stop requested\" grace={}s", w->log_fields,
                     stop->grace_period_seconds);
    auto token = st.next_token++;
    st.pending_stops.emplace(token, std::move(req));
    st.core->on_stop_request(token, stop->grace_period_seconds, now());
    drain(self, w);
    return;
  }
  default:
    w->bus->reply_error(req, error{errc::invalid, "pod supervisor: unexpected message type " +
                                                      std::to_string(req.env.hdr.type)});
  }
}

caf::behavior pod_actor(pod_actor_t* self, wiring* w) {
  self->state.core = std::make_unique<pod_state>(w->ctx);
  return {
      [=](host::sync_atom) {
        self->state.core->begin(w->previous, w->marker, now());
        drain(self, w);
      },
      [=](request_atom, int32_t socket, const std::string& peer, const wire::envelope& env) {
        transport::inbound_request req;
        req.socket = socket;
        req.peer = peer;
        req.env = env;
        handle_request(self, w, std::move(req));
      },
      [=](probed_atom, const std::string& name, bool running) {
        self->state.core->on_probed(name, running, now());
        drain(self, w);
      },
      [=](started_atom, const std::string& name) {
        self->state.core->on_started(name, now());
        drain(self, w);
      },
      [=](failed_atom, const std::string& name, const std::string& message) {
        self->state.core->on_start_failed(name, message, now());
        drain(self, w);
      },
      [=](exited_atom, const std::string& name, bool known, int32_t code, int32_t signal,
          const std::string& reason) {
        exit_info e = known ? exit_info{} : exit_info::unknown();
        if (known) {
          e.code = code;
          e.signal = signal;
          e.reason = reason;
        }
        self->state.core->on_exited(name, e, now());
        drain(self, w);
      },
      [=](idle_atom) {
        w->run->post([w] {
          if (w->kubelet >= 0 &&
              std::chrono::steady_clock::now() - w->kubelet_used >= kubelet_idle) {
            w->bus->close(w->kubelet);
            w->kubelet = -1;
          }
        });
        // Once the connection's buffers are freed (ZeroMQ does that on its own
        // threads), give the pages of what the last burst of work freed back.
        self->delayed_send(self, std::chrono::seconds(1), trim_atom::value);
      },
      [=](trim_atom) { w->run->post([] { ::malloc_trim(0); }); },
      [=](probe_done_atom, const std::string& name, int32_t kind, uint64_t instance,
          int32_t outcome, const std::string& message) {
        if (kind < 0 || kind > 2 || outcome < 0 || outcome > 2)
          return;
        handler_result r;
        r.outcome = static_cast<handler_outcome>(outcome);
        r.message = message;
        self->state.core->on_probe_result(name, static_cast<probe_kind>(kind), instance, r, now());
        drain(self, w);
      },
      [=](hook_done_atom, const std::string& name, uint64_t gen, bool ok,
          const std::string& message) {
        if (!ok)
          log::get()->warn("{} container={} msg=\"preStop hook failed\" error=\"{}\"",
                           w->log_fields, name, message);
        self->state.core->on_hook_done(name, gen, ok, message, now());
        drain(self, w);
      },
      [=](host::tick_atom, uint64_t gen) {
        auto& st = self->state;
        if (gen != st.timer_gen)
          return;
        st.timer_at.reset();
        st.core->on_tick(now());
        drain(self, w);
      },
  };
}

template <class T>
result<T> load_json(const fs::path& p) {
  auto text = fsutil::read_file(p);
  if (!text)
    return std::move(text).err();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded())
    return error{errc::invalid, p.string() + ": not JSON"};
  auto v = wire::from_json<T>(j);
  if (!v)
    return error{errc::invalid, p.string() + ": " + v.err().message};
  return v;
}

}  // namespace

result<supervisor::log_limits> service_options::container_log_limits() const {
  auto size = parse_log_size(container_log_max_size);
  if (!size)
    return error{errc::invalid, "--container-log-max-size: " + size.err().message};
  if (*size == 0)
    return error{errc::invalid, "--container-log-max-size must be positive"};
  if (container_log_max_files < 2)
    return error{errc::invalid, "--container-log-max-files must be at least 2"};
  supervisor::log_limits l;
  l.max_size = *size;
  l.max_files = container_log_max_files;
  return l;
}

void add_service_options(CLI::App& app, service_options& opts) {
  app.add_option("--pod-uid", opts.pod_uid, "uid of the pod to supervise")->required();
  app.add_option("--oci-runtime", opts.oci_runtime, "OCI runtime binary (runc or crun)");
  app.add_option("--backoff-initial-ms", opts.backoff_initial_ms,
                 "first crash-loop back-off delay");
  app.add_option("--backoff-max-ms", opts.backoff_max_ms, "longest crash-loop back-off delay");
  app.add_option("--backoff-reset-ms", opts.backoff_reset_ms,
                 "a container that ran this long starts its back-off over");
  app.add_option("--container-log-max-size", opts.container_log_max_size,
                 "rotate a container log file before it grows past this (bytes, or "
                 "10Mi-style quantity)");
  app.add_option("--container-log-max-files", opts.container_log_max_files,
                 "log files kept per container, the live ones included (>= 2)");
}

int run(const host::common_options& common, const service_options& opts) {
  auto fail = [&](const std::string& what) {
    std::fprintf(stderr, "deckhand-pod-supervisor: %s\n", what.c_str());
    log::get()->error("uid={} msg=\"cannot start\" error=\"{}\"", opts.pod_uid, what);
    return 1;
  };
  if (opts.pod_uid.empty() || opts.pod_uid.find('/') != std::string::npos || opts.pod_uid == "." ||
      opts.pod_uid == "..")
    return fail("invalid --pod-uid");
  if (opts.backoff_initial_ms <= 0 || opts.backoff_max_ms < opts.backoff_initial_ms ||
      opts.backoff_reset_ms <= 0)
    return fail("invalid back-off settings");
  auto limits = opts.container_log_limits();
  if (!limits)
    return fail(limits.err().message);

  auto sub = common::set_child_subreaper();
  if (!sub)
    return fail(sub.err().message);

  wiring w;
  w.ctx.data_dir = common.data_dir;
  w.ctx.pod_dir = pod_dir::root(common.data_dir, opts.pod_uid);
  w.ctx.supervisor_pid = ::getpid();
  w.ctx.backoff = opts.backoff();
  auto pod = load_json<wire::pod>(pod_dir::pod_json(w.ctx.pod_dir));
  if (!pod)
    return fail(pod.err().message);
  w.ctx.pod = std::move(*pod);
  if (w.ctx.pod.metadata.uid.empty())
    w.ctx.pod.metadata.uid = opts.pod_uid;
  if (w.ctx.pod.metadata.uid != opts.pod_uid)
    return fail("pod.json belongs to uid " + w.ctx.pod.metadata.uid);
  // The image's stop signal, which the runtime wrote into each bundle.
  for (const auto* list : {&w.ctx.pod.spec.init_containers, &w.ctx.pod.spec.containers})
    for (const auto& c : *list)
      if (int sig = bundle_stop_signal(pod_dir::bundle(w.ctx.pod_dir, c.name)); sig != SIGTERM)
        w.ctx.stop_signals[c.name] = sig;
  const auto& meta = w.ctx.pod.metadata;
  w.log_fields = "pod=" + meta.namespace_ + "/" + meta.name + " uid=" + meta.uid;
  // The pod IP is the runtime's (sandbox.json): probes default to it.
  if (auto text = fsutil::read_file(pod_dir::sandbox_json(w.ctx.pod_dir))) {
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_object() && j.contains("podIP") && j["podIP"].is_string())
      w.ctx.pod_ip = j["podIP"].get<std::string>();
  }

  if (auto err = fsutil::write_file_atomic(pod_dir::supervisor_pid(w.ctx.pod_dir),
                                           std::to_string(::getpid()) + "\n",
                                           fsutil::durability::process_crash))
    return fail(err.message);

  const auto status_path = pod_dir::status_json(w.ctx.pod_dir);
  if (fs::exists(status_path)) {
    auto text = fsutil::read_file(status_path);
    auto doc = text ? decode_status(*text) : result<status_document>(text.err());
    if (doc) {
      w.previous = std::move(*doc);
    } else {
      // Running containers are still found by probing; only history is lost.
      log::get()->warn("{} msg=\"ignoring unreadable status.json\" error=\"{}\"", w.log_fields,
                       doc.err().message);
    }
  }
  if (auto text = fsutil::read_file(pod_dir::stopping_marker(w.ctx.pod_dir)); text)
    w.marker = decode_stop_marker(*text);
  else if (fs::exists(pod_dir::stopping_marker(w.ctx.pod_dir)))
    w.marker = stop_marker{};

  std::error_code ec;
  fs::create_directories(paths::run_dir(common.data_dir), ec);

  // The CAF scheduler runs on this thread, in the runner's loop (below):
  // one thread fewer per pod.
  host::scheduler_loop sched;
  host::component comp("pod-supervisor", common, &sched);
  w.ctx.incarnation = comp.bus().incarnation();
  w.bus = &comp.bus();

  log_pump logs(*limits, w.log_fields);
  runner worker(oci::runc(paths::runc_root(common.data_dir), opts.oci_runtime),
                w.ctx.pod_dir / "pids", w.log_fields, opts.pod_uid, &logs);
  worker.add_source(sched.wake_fd(), [&sched] { return sched.run(); });
  // The transport too runs in that loop, not on a thread of its own.
  worker.add_source([&comp](std::vector<struct pollfd>& fds) { comp.bus().fill_pollfds(fds); },
                    [&comp] { return comp.bus().run_once(); });
  w.run = &worker;
  // Its thread starts with the first probe or hook.
  auto handlers = std::make_unique<handler_executor>(
      handler_executor::options{paths::runc_root(common.data_dir), opts.oci_runtime, w.log_fields});
  w.handlers = handlers.get();

  auto actor = comp.system().spawn(pod_actor, &w);

  auto router = comp.bus().bind_router(pod_dir::supervisor_endpoint(common.data_dir, opts.pod_uid),
                                       [actor](transport::inbound_request req) {
                                         caf::anon_send(actor, request_atom::value, req.socket,
                                                        std::move(req.peer), std::move(req.env));
                                       });
  if (!router) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    return fail(router.err().message);
  }
  w.kubelet_endpoint = paths::ipc_endpoint(common.data_dir, "kubelet");

  runner_events ev;
  ev.probed = [actor](const std::string& name, bool running) {
    caf::anon_send(actor, probed_atom::value, name, running);
  };
  ev.started = [actor](const std::string& name) {
    caf::anon_send(actor, started_atom::value, name);
  };
  ev.start_failed = [actor](const std::string& name, const std::string& message) {
    caf::anon_send(actor, failed_atom::value, name, message);
  };
  ev.exited = [actor](const std::string& name, const exit_info& e) {
    caf::anon_send(actor, exited_atom::value, name, e.known, static_cast<int32_t>(e.code),
                   static_cast<int32_t>(e.signal), e.reason);
  };
  // SIGINT/SIGTERM (and SIGUSR2, component::request_stop) are blocked in
  // every thread (host::block_signals); the runner's loop on this thread
  // returns when one arrives.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGUSR2);
  common::unique_fd stop_fd(::signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!stop_fd) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    return fail("signalfd: " + error::from_errno("signalfd").message);
  }
  // No logs.start(): the pump shares this thread with the runner (one
  // thread less per pod, for density); run_here() drives it.
  comp.bus().start_on_caller();
  log::get()->info("{} msg=\"supervising\" containers={} restarted={} stopping={}", w.log_fields,
                   w.ctx.pod.spec.containers.size(), w.previous.has_value(), w.marker.has_value());
  caf::anon_send(actor, host::sync_atom::value);

  worker.run_here(std::move(ev), stop_fd.get());
  signalfd_siginfo si{};
  if (::read(stop_fd.get(), &si, sizeof si) == static_cast<ssize_t>(sizeof si))
    log::get()->info("msg=\"stopping\" signal={}", si.ssi_signo);
  // The containers are left alone: a restarted supervisor re-adopts them.
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  worker.stop();
  // On the thread that drove the pump, now that its loop has returned.
  logs.stop();
  comp.shutdown();
  // After the actors (which may still call run()); a completion sent now
  // goes to a terminated actor and is dropped.
  handlers.reset();
  return 0;
}

}  // namespace deckhand::supervisor

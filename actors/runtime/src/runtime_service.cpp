#include "deckhand/runtime/runtime_service.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <deque>
#include <iostream>
#include <map>

#include <caf/all.hpp>

#include "deckhand/host/caf_glue.hpp"

#include "deckhand/common/log.hpp"
#include "deckhand/host/component.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/host/zygote.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/oci/runc.hpp"
#include "deckhand/runtime/container_process.hpp"
#include "deckhand/runtime/exec.hpp"
#include "deckhand/runtime/image_service.hpp"
#include "deckhand/runtime/sim_backend.hpp"
#include "deckhand/runtime/supervisor_process.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using transport::inbound_request;

namespace {

using adopt_atom = caf::atom_constant<caf::atom("rt_adopt")>;
using release_atom = caf::atom_constant<caf::atom("rt_release")>;
using done_atom = caf::atom_constant<caf::atom("rt_done")>;
using forward_atom = caf::atom_constant<caf::atom("rt_fwdstop")>;

/// Runs `fn` on a thread of its own (a blocking actor): the place for mounts,
/// runc, fork/exec and the image store.
template <class Fn>
void run_blocking(caf::actor_system* sys, Fn fn) {
  sys->spawn([fn = std::move(fn)](caf::blocking_actor*) mutable { fn(); });
}

wire::image_summary summarize(const image::image_record& rec) {
  wire::image_summary s;
  s.id = rec.id;
  s.names = rec.names;
  s.size = static_cast<int64_t>(rec.size);
  return s;
}

// -- front ---------------------------------------------------------------------

caf::behavior front_actor(caf::event_based_actor*, transport::bridge* bus, caf::actor images,
                          caf::actor sandboxes) {
  return {
      [=](inbound_request& req) {
        switch (req.env.hdr.type) {
        case wire::image_import_request::type_id:
        case wire::image_list_request::type_id:
        case wire::image_pull_request::type_id:
        case wire::image_remove_request::type_id: caf::anon_send(images, std::move(req)); break;
        case wire::run_pod_request::type_id:
        case wire::stop_pod_request::type_id:
        case wire::remove_pod_request::type_id:
        case wire::list_sandboxes_request::type_id:
        case wire::container_stats_request::type_id:
        case wire::exec_request::type_id: caf::anon_send(sandboxes, std::move(req)); break;
        default:
          bus->reply_error(req, {errc::invalid, "the runtime does not serve message type " +
                                                    std::to_string(req.env.hdr.type)});
        }
      },
  };
}

// -- image service -----------------------------------------------------------------

caf::behavior image_service(caf::event_based_actor* self, transport::bridge* bus,
                            std::shared_ptr<image::image_store> store,
                            std::shared_ptr<image_context> pulls) {
  self->link_to(spawn_image_gc(self->system(), pulls));
  return {
      [=](inbound_request& req) {
        if (req.env.hdr.type == wire::image_pull_request::type_id ||
            req.env.hdr.type == wire::image_remove_request::type_id) {
          serve_image_request(self->system(), pulls, std::move(req));
        } else if (req.env.hdr.type == wire::image_import_request::type_id) {
          auto msg = wire::decode_body<wire::image_import_request>(req.env.body);
          if (!msg) {
            bus->reply_error(req, msg.err());
            return;
          }
          run_blocking(&self->system(), [=, m = std::move(*msg)] {
            if (m.path.empty()) {
              bus->reply_error(req, {errc::invalid, "image import needs a path"});
              return;
            }
            std::optional<std::string> name;
            if (!m.name.empty())
              name = m.name;
            auto rec = store->import(m.path, name);
            if (!rec) {
              log::get()->warn("msg=\"image import failed\" path={} error=\"{}\"", m.path,
                               rec.err().message);
              bus->reply_error(req, rec.err());
              return;
            }
            log::get()->info("msg=\"image imported\" id={} path={}", rec->id, m.path);
            wire::image_import_reply rep;
            rep.image = summarize(*rec);
            bus->reply(req, wire::make_envelope(rep));
          });
        } else {
          run_blocking(&self->system(), [=] {
            wire::image_list_reply rep;
            for (const auto& rec : store->list())
              rep.images.push_back(summarize(rec));
            bus->reply(req, wire::make_envelope(rep));
          });
        }
      },
  };
}

// -- supervisor manager ----------------------------------------------------------------

struct tracked_supervisor {
  pid_t pid = 0;
  /// Stopped on purpose (stopping marker): not restarted.
  bool parked = false;
  std::chrono::milliseconds backoff = 200ms;
  std::chrono::steady_clock::time_point next_start{};
  std::chrono::steady_clock::time_point started{};
};

struct manager_state {
  std::map<std::string, tracked_supervisor> pods;
  uint64_t generation = 0;
  static inline const char* name = "supervisor_manager";
};

constexpr auto check_interval = 500ms;
constexpr auto backoff_initial = 200ms;
constexpr auto backoff_max = std::chrono::milliseconds(10s);
/// A supervisor that ran this long without dying earns a fresh back-off.
constexpr auto backoff_reset_after = std::chrono::milliseconds(10s);

caf::behavior supervisor_manager(caf::stateful_actor<manager_state>* self, runtime_options opts) {
  auto schedule = [self](std::chrono::milliseconds delay) {
    auto gen = ++self->state.generation;
    self->delayed_send(self, delay, host::tick_atom::value, gen);
  };
  auto check = [self, opts]() -> std::chrono::milliseconds {
    auto lg = log::get();
    auto now = std::chrono::steady_clock::now();
    auto next = std::chrono::milliseconds(check_interval);
    for (auto it = self->state.pods.begin(); it != self->state.pods.end();) {
      const auto& uid = it->first;
      auto& t = it->second;
      auto dir = pod_dir::root(opts.data_dir, uid);
      std::error_code ec;
      if (!fs::exists(pod_dir::pod_json(dir), ec)) {
        reap_if_exited(t.pid);
        it = self->state.pods.erase(it);
        continue;
      }
      bool stopping = fs::exists(pod_dir::stopping_marker(dir), ec);
      if (t.pid > 0) {
        if (!reap_if_exited(t.pid) && is_supervisor_of(t.pid, uid)) {
          if (now - t.started > backoff_reset_after)
            t.backoff = backoff_initial;
          ++it;
          continue;
        }
        lg->warn("msg=\"pod supervisor died\" uid={} pid={}", uid, t.pid);
        t.pid = 0;
        t.next_start = now + t.backoff;
        t.backoff = std::min(t.backoff * 2, backoff_max);
      }
      t.parked = stopping;
      if (!t.parked) {
        if (now >= t.next_start) {
          auto pid = start_supervisor(opts, uid);
          if (pid) {
            lg->info("msg=\"pod supervisor started\" uid={} pid={}", uid, *pid);
            t.pid = *pid;
            t.started = now;
          } else {
            lg->error("msg=\"cannot start pod supervisor\" uid={} error=\"{}\"", uid,
                      pid.err().message);
            t.next_start = now + t.backoff;
            t.backoff = std::min(t.backoff * 2, backoff_max);
          }
        }
        if (t.pid == 0)
          next = std::min(next, std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                             t.next_start - now),
                                         std::chrono::milliseconds(20)));
      }
      ++it;
    }
    return next;
  };
  schedule(0ms);
  return {
      [=](adopt_atom, const std::string& uid, int64_t pid) {
        auto& t = self->state.pods[uid];
        t = tracked_supervisor{};
        t.pid = static_cast<pid_t>(pid);
        t.started = std::chrono::steady_clock::now();
        if (pid == 0)
          schedule(0ms);
      },
      [=](release_atom, const std::string& uid) -> int64_t {
        auto it = self->state.pods.find(uid);
        if (it == self->state.pods.end())
          return 0;
        int64_t pid = it->second.pid;
        self->state.pods.erase(it);
        return pid;
      },
      [=](host::tick_atom, uint64_t gen) {
        if (gen != self->state.generation)
          return;
        schedule(check());
      },
  };
}

// -- sandbox service ---------------------------------------------------------------------

struct pending_stop {
  std::string uid;
  inbound_request req;
  int dealer = -1;
  int64_t grace = 0;
  pid_t pid = 0;
};

struct sandbox_service_state {
  /// Requests per pod; the front one is running.
  std::map<std::string, std::deque<inbound_request>> queues;
  std::map<uint64_t, pending_stop> stops;
  uint64_t next_tag = 1;
  static inline const char* name = "sandbox_service";
};

std::string request_uid(const inbound_request& req, error& err) {
  switch (req.env.hdr.type) {
  case wire::run_pod_request::type_id: {
    auto m = wire::decode_body<wire::run_pod_request>(req.env.body);
    if (!m) {
      err = m.err();
      return {};
    }
    return m->pod_.metadata.uid;
  }
  case wire::stop_pod_request::type_id: {
    auto m = wire::decode_body<wire::stop_pod_request>(req.env.body);
    if (!m) {
      err = m.err();
      return {};
    }
    return m->uid;
  }
  default: {
    auto m = wire::decode_body<wire::remove_pod_request>(req.env.body);
    if (!m) {
      err = m.err();
      return {};
    }
    return m->uid;
  }
  }
}

wire::sandbox_status unknown_pod_stopped_status(const std::string& uid) {
  wire::sandbox_status st;
  st.uid = uid;
  st.state = "stopped";
  return st;
}

caf::behavior sandbox_service(caf::stateful_actor<sandbox_service_state>* self,
                              transport::bridge* bus, runtime_options opts,
                              std::shared_ptr<image::image_store> store, caf::actor manager) {
  auto* sys = &self->system();
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto reply_status = [bus](const inbound_request& req, wire::sandbox_status st) {
    wire::sandbox_status_reply rep;
    rep.sandbox = std::move(st);
    bus->reply(req, wire::make_envelope(rep));
  };
  // Stops the containers without the supervisor, replies, finishes the op.
  auto stop_fallback = [sys, me, opts, reply_status](inbound_request req, std::string uid,
                                                     int64_t grace, pid_t unresponsive) {
    run_blocking(sys, [=] {
      if (unresponsive > 0) {
        log::get()->warn("msg=\"pod supervisor did not stop the pod, stopping it "
                         "directly\" uid={} pid={}",
                         uid, unresponsive);
        terminate_supervisor(unresponsive, uid);
      }
      auto st = stop_containers(opts, uid, std::chrono::seconds(std::max<int64_t>(grace, 0)));
      if (st)
        reply_status(req, std::move(*st));
      else
        reply_status(req, unknown_pod_stopped_status(uid));
      caf::anon_send(me, done_atom::value, uid);
    });
  };

  auto start_op = [=](const std::string& uid) {
    auto req = self->state.queues[uid].front();
    auto type = req.env.hdr.type;
    if (type == wire::run_pod_request::type_id) {
      run_blocking(sys, [=] {
        auto m = wire::decode_body<wire::run_pod_request>(req.env.body);
        auto finish = [&] { caf::anon_send(me, done_atom::value, uid); };
        wire::run_pod_reply rep;
        if (auto existing = read_sandbox(opts, uid)) {
          rep.sandbox = std::move(*existing);
          bus->reply(req, wire::make_envelope(rep));
          return finish();
        }
        const auto& p = m->pod_;
        auto st = create_sandbox(opts, *store, p);
        if (!st) {
          bus->reply_error(req, st.err());
          return finish();
        }
        touch_images(*store, p);
        auto pid = start_supervisor(opts, uid);
        if (!pid) {
          log::get()->error("msg=\"cannot start pod supervisor\" uid={} error=\"{}\"", uid,
                            pid.err().message);
          remove_sandbox(opts, uid);
          bus->reply_error(
              req, {pid.err().code, "cannot start the pod supervisor: " + pid.err().message});
          return finish();
        }
        caf::anon_send(manager, adopt_atom::value, uid, static_cast<int64_t>(*pid));
        log::get()->info("msg=\"pod started\" pod={}/{} uid={} supervisor_pid={}", st->namespace_,
                         st->name, uid, *pid);
        rep.sandbox = std::move(*st);
        rep.sandbox.supervisor_pid = *pid;
        rep.sandbox.supervisor_alive = true;
        bus->reply(req, wire::make_envelope(rep));
        finish();
      });
    } else if (type == wire::stop_pod_request::type_id) {
      run_blocking(sys, [=] {
        auto m = wire::decode_body<wire::stop_pod_request>(req.env.body);
        auto grace = std::max<int64_t>(m->grace_period_seconds, 0);
        auto st = read_sandbox(opts, uid);
        if (!st || st->state == "stopped") {
          reply_status(req, st ? std::move(*st) : unknown_pod_stopped_status(uid));
          caf::anon_send(me, done_atom::value, uid);
          return;
        }
        // The marker goes first, so that a supervisor (re)started from now
        // on leaves the containers alone.
        if (auto err = mark_stopping(opts, uid, grace))
          log::get()->warn("msg=\"cannot mark pod stopping\" uid={} error=\"{}\"", uid,
                           err.message);
        auto dir = pod_dir::root(opts.data_dir, uid);
        auto pid = read_supervisor_pid(dir);
        bool alive = pid && is_supervisor_of(*pid, uid);
        // A supervisor without its socket cannot take the request; waiting
        // for the deadline would only delay the stop.
        auto endpoint = pod_dir::supervisor_endpoint(opts.data_dir, uid);
        std::error_code ec;
        bool listening = endpoint.rfind("ipc://", 0) != 0 || fs::exists(endpoint.substr(6), ec);
        if (alive && listening)
          caf::anon_send(me, forward_atom::value, uid, grace, static_cast<int64_t>(*pid));
        else
          stop_fallback(req, uid, grace, alive ? *pid : 0);
      });
    } else {
      self->request(manager, caf::infinite, release_atom::value, uid).then([=](int64_t pid) {
        run_blocking(sys, [=] {
          if (auto err = remove_sandbox(opts, uid, static_cast<pid_t>(pid)))
            bus->reply_error(req, err);
          else
            bus->reply(req, wire::make_envelope(wire::ack{}));
          caf::anon_send(me, done_atom::value, uid);
        });
      });
    }
  };

  return {
      [=](inbound_request& req) {
        if (req.env.hdr.type == wire::exec_request::type_id) {
          // The command may run for long: a worker thread of its own.
          run_blocking(sys, [=] {
            auto m = wire::decode_body<wire::exec_request>(req.env.body);
            auto rep = m ? exec_in_container(opts, *m) : result<wire::exec_reply>(m.err());
            if (rep)
              bus->reply(req, wire::make_envelope(*rep));
            else
              bus->reply_error(req, rep.err());
          });
          return;
        }
        if (req.env.hdr.type == wire::container_stats_request::type_id) {
          run_blocking(sys, [=] {  // cgroup file reads
            auto m = wire::decode_body<wire::container_stats_request>(req.env.body);
            if (!m)
              return bus->reply_error(req, m.err());
            wire::container_stats_reply rep;
            rep.stats = collect_container_stats(opts, m->uid);
            bus->reply(req, wire::make_envelope(rep));
          });
          return;
        }
        if (req.env.hdr.type == wire::list_sandboxes_request::type_id) {
          run_blocking(sys, [=] {
            wire::list_sandboxes_reply rep;
            rep.sandboxes = list_sandboxes(opts);
            bus->reply(req, wire::make_envelope(rep));
          });
          return;
        }
        error err;
        auto uid = request_uid(req, err);
        if (err) {
          bus->reply_error(req, err);
          return;
        }
        if (req.env.hdr.type == wire::run_pod_request::type_id) {
          auto m = wire::decode_body<wire::run_pod_request>(req.env.body);
          if (auto verr = validate_pod(m->pod_)) {
            bus->reply_error(req, verr);
            return;
          }
        } else if (uid.empty()) {
          if (req.env.hdr.type == wire::stop_pod_request::type_id)
            reply_status(req, unknown_pod_stopped_status(uid));
          else
            bus->reply_error(req, {errc::invalid, "remove_pod_request needs a uid"});
          return;
        }
        auto& q = self->state.queues[uid];
        q.push_back(std::move(req));
        if (q.size() == 1)
          start_op(uid);
      },
      [=](done_atom, const std::string& uid) {
        auto it = self->state.queues.find(uid);
        if (it == self->state.queues.end())
          return;
        it->second.pop_front();
        if (it->second.empty())
          self->state.queues.erase(it);
        else
          start_op(uid);
      },
      [=](forward_atom, const std::string& uid, int64_t grace, int64_t pid) {
        auto qit = self->state.queues.find(uid);
        if (qit == self->state.queues.end() || qit->second.empty())
          return;
        auto& req = qit->second.front();
        auto dealer = bus->connect_dealer(pod_dir::supervisor_endpoint(opts.data_dir, uid));
        if (!dealer) {
          stop_fallback(req, uid, grace, static_cast<pid_t>(pid));
          return;
        }
        auto tag = self->state.next_tag++;
        self->state.stops[tag] = pending_stop{uid, req, *dealer, grace, static_cast<pid_t>(pid)};
        wire::supervisor_stop_request stop;
        stop.grace_period_seconds = grace;
        host::call(*bus, *dealer, stop, std::chrono::seconds(grace + 10), me, tag, "stop");
      },
      [=](host::rpc_reply& rep) {
        auto it = self->state.stops.find(rep.tag);
        if (it == self->state.stops.end())
          return;
        auto ps = std::move(it->second);
        self->state.stops.erase(it);
        bus->close(ps.dealer);
        auto reply = rep.as<wire::sandbox_status_reply>();
        if (!reply) {
          log::get()->warn("msg=\"stop through the pod supervisor failed\" uid={} error=\"{}\"",
                           ps.uid, reply.err().message);
          stop_fallback(ps.req, ps.uid, ps.grace, ps.pid);
          return;
        }
        run_blocking(sys, [=, sup = std::move(reply->sandbox)]() mutable {
          mark_stopped(opts, ps.uid);
          auto st = read_sandbox(opts, ps.uid);
          if (st) {
            // The supervisor's answer is the freshest view of the containers.
            if (!sup.containers.empty())
              st->containers = std::move(sup.containers);
            reply_status(ps.req, std::move(*st));
          } else {
            sup.state = "stopped";
            reply_status(ps.req, std::move(sup));
          }
          caf::anon_send(me, done_atom::value, ps.uid);
        });
      },
  };
}

}  // namespace

runtime_actors spawn_runtime(caf::actor_system& sys, transport::bridge& bus,
                             const runtime_options& opts,
                             std::shared_ptr<image::image_store> images,
                             const std::vector<recovered_pod>& recovered) {
  runtime_actors a;
  a.supervisors = sys.spawn<caf::detached>(supervisor_manager, opts);
  for (const auto& r : recovered) {
    if (r.action == startup_action::adopt)
      caf::anon_send(a.supervisors, adopt_atom::value, r.uid,
                     static_cast<int64_t>(r.supervisor_pid));
    else if (r.action == startup_action::start_supervisor)
      caf::anon_send(a.supervisors, adopt_atom::value, r.uid, int64_t{0});
  }
  a.images = sys.spawn(image_service, &bus, images, make_image_context(bus, opts, images));
  if (opts.backend == "sim")
    a.sandboxes = spawn_sim_service(sys, bus, opts, images);
  else
    a.sandboxes = sys.spawn(sandbox_service, &bus, opts, images, a.supervisors);
  a.front = sys.spawn(front_actor, &bus, a.images, a.sandboxes);
  return a;
}

int cleanup_all(const runtime_options& opts) {
  int failures = 0;
  for (const auto& uid : pod_uids_on_disk(opts)) {
    if (auto err = remove_sandbox(opts, uid)) {
      log::get()->error("msg=\"cleanup failed\" uid={} error=\"{}\"", uid, err.message);
      ++failures;
    }
  }
  // Containers whose pod directory is already gone still belong to this
  // node's runc root.
  std::error_code ec;
  if (fs::exists(paths::runc_root(opts.data_dir), ec)) {
    oci::runc rc(paths::runc_root(opts.data_dir), opts.oci_runtime);
    if (auto list = rc.list())
      for (const auto& c : *list)
        if (auto r = rc.remove(c.id, true); !r)
          ++failures;
  }
  // Addresses, veths and mounts whose pod directory is already gone.
  auto left = pod_uids_on_disk(opts);
  sweep_orphans(opts, {left.begin(), left.end()});
  return failures;
}

int run_runtime(const runtime_options& given, const host::common_options& common,
                bool cleanup_all_and_exit) {
  log::init("runtime", common.log_level, common.log_json);
  auto lg = log::get();
  runtime_options opts = given;
  if (opts.backend == "process" && opts.oci_runtime == "runc") {
    // Host processes through the OCI command line: deckhand-process-oci,
    // installed next to this executable.
    std::error_code exe_ec;
    auto self = fs::read_symlink("/proc/self/exe", exe_ec);
    opts.oci_runtime = exe_ec ? std::string("deckhand-process-oci")
                              : (self.parent_path() / "deckhand-process-oci").string();
  }
  if (cleanup_all_and_exit) {
    int failures = cleanup_all(opts);
    lg->info("msg=\"cleanup done\" failures={}", failures);
    return failures == 0 ? 0 : 1;
  }
  std::error_code ec;
  for (const auto& d : {paths::run_dir(opts.data_dir), paths::pods_state_dir(opts.data_dir),
                        paths::runc_root(opts.data_dir)}) {
    fs::create_directories(d, ec);
    if (ec) {
      std::cerr << "deckhand-runtime: cannot create " << d << ": " << ec.message() << "\n";
      return 1;
    }
  }
  auto store = image::image_store::open(paths::image_dir(opts.data_dir));
  if (!store) {
    std::cerr << "deckhand-runtime: image store: " << store.err().message << "\n";
    return 1;
  }
  std::shared_ptr<image::image_store> images(std::move(*store));
  if (opts.backend != "oci" && opts.backend != "sim" && opts.backend != "process") {
    std::cerr << "deckhand-runtime: unknown --backend \"" << opts.backend
              << "\" (oci, process or sim)\n";
    return 2;
  }
  // Simulated pods are recovered by the sim back-end itself.
  std::vector<recovered_pod> recovered;
  if (opts.backend != "sim")
    recovered = recover_sandboxes(opts);

  // The supervisor zygote: from the main thread, which lives as long as the
  // process (it dies with the thread that started it).
  runtime_options run_opts = opts;
  pid_t zygote_pid = 0;
  if (opts.backend != "sim") {
    auto sock = paths::run_dir(opts.data_dir) / "supervisor-zygote.sock";
    if (auto z = host::start_zygote(supervisor_binary(opts), sock)) {
      zygote_pid = *z;
      run_opts.supervisor_zygote = sock;
    } else {
      lg->warn("msg=\"no supervisor zygote; supervisors are exec'd\" error=\"{}\"",
               z.err().message);
    }
  }

  host::component comp("runtime", common);
  auto actors = spawn_runtime(comp.system(), comp.bus(), run_opts, images, recovered);
  auto endpoint = paths::ipc_endpoint(opts.data_dir, "runtime");
  auto router = comp.bus().bind_router(endpoint, host::forward_to(actors.front));
  int rc = 0;
  if (!router) {
    std::cerr << "deckhand-runtime: cannot bind " << endpoint << ": " << router.err().message
              << "\n";
    rc = 1;
  } else {
    comp.bus().start();
    lg->info("msg=\"ready\" endpoint={} pods={} supervisor={}", endpoint, recovered.size(),
             supervisor_binary(opts).string());
    comp.wait_for_stop();
  }
  for (const auto& a : {actors.front, actors.images, actors.sandboxes, actors.supervisors})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  // The detached manager's thread ends only once no handle refers to it.
  actors = runtime_actors{};
  comp.shutdown();
  if (zygote_pid > 0) {
    ::kill(zygote_pid, SIGTERM);
    int st;
    ::waitpid(zygote_pid, &st, 0);
  }
  return rc;
}

}  // namespace deckhand::runtime

#include "deckhand/runtime/sandbox_service.hpp"

#include <deque>
#include <map>
#include <variant>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/runtime/image_service.hpp"
#include "deckhand/runtime/runtime_api.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"
#include "deckhand/runtime/supervisor_manager.hpp"
#include "deckhand/runtime/supervisor_process.hpp"
#include "run_blocking.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;
using transport::inbound_request;

namespace {

using done_atom = caf::atom_constant<caf::atom("rt_done")>;
using forward_atom = caf::atom_constant<caf::atom("rt_fwdstop")>;

using run_pod = responder<wire::run_pod_request>;
using stop_pod = responder<wire::stop_pod_request>;
using remove_pod = responder<wire::remove_pod_request>;

/// A request on one pod, waiting for the ones before it.
using pod_op = std::variant<run_pod, stop_pod, remove_pod>;

/// A stop handed to the pod's supervisor, waiting for its answer.
struct pending_stop {
  std::string uid;
  stop_pod req;
  int dealer = -1;
  int64_t grace = 0;
  pid_t pid = 0;
};

struct sandbox_service_state {
  /// Requests per pod; the front one is running.
  std::map<std::string, std::deque<pod_op>> queues;
  std::map<uint64_t, pending_stop> stops;
  uint64_t next_tag = 1;
  static inline const char* name = "sandbox_service";
};

wire::sandbox_status unknown_pod_stopped_status(const std::string& uid) {
  wire::sandbox_status st;
  st.uid = uid;
  st.state = "stopped";
  return st;
}

caf::behavior sandbox_service(caf::stateful_actor<sandbox_service_state>* self,
                              transport::bridge* bus, runtime_options opts,
                              std::shared_ptr<const supervised_backend> backend,
                              std::shared_ptr<image::image_store> store, caf::actor manager) {
  auto* sys = &self->system();
  caf::actor me = caf::actor_cast<caf::actor>(self);
  auto reply_status = [](const stop_pod& req, wire::sandbox_status st) {
    wire::sandbox_status_reply rep;
    rep.sandbox = std::move(st);
    req.reply(rep);
  };
  // Stops the containers without the supervisor, replies, finishes the op.
  auto stop_fallback = [sys, me, opts, reply_status](stop_pod req, std::string uid, int64_t grace,
                                                     pid_t unresponsive) {
    run_blocking(*sys, [=] {
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

  auto start_run = [=](const std::string& uid, const run_pod& req) {
    run_blocking(*sys, [=] {
      auto finish = [&] { caf::anon_send(me, done_atom::value, uid); };
      wire::run_pod_reply rep;
      if (auto existing = read_sandbox(opts, uid)) {
        rep.sandbox = std::move(*existing);
        req.reply(rep);
        return finish();
      }
      const auto& p = req.request().pod_;
      auto st = create_sandbox(opts, *backend, *store, p);
      if (!st) {
        req.fail(st.err());
        return finish();
      }
      touch_images(*store, p);
      auto pid = start_supervisor(opts, uid);
      if (!pid) {
        log::get()->error("msg=\"cannot start pod supervisor\" uid={} error=\"{}\"", uid,
                          pid.err().message);
        remove_sandbox(opts, uid);
        req.fail({pid.err().code, "cannot start the pod supervisor: " + pid.err().message});
        return finish();
      }
      caf::anon_send(manager, supervisor_adopt_atom::value, uid, static_cast<int64_t>(*pid));
      log::get()->info("msg=\"pod started\" pod={}/{} uid={} supervisor_pid={}", st->namespace_,
                       st->name, uid, *pid);
      rep.sandbox = std::move(*st);
      rep.sandbox.supervisor_pid = *pid;
      rep.sandbox.supervisor_alive = true;
      req.reply(rep);
      finish();
    });
  };

  auto start_stop = [=](const std::string& uid, const stop_pod& req) {
    run_blocking(*sys, [=] {
      auto grace = std::max<int64_t>(req.request().grace_period_seconds, 0);
      auto st = read_sandbox(opts, uid);
      if (!st || st->state == "stopped") {
        reply_status(req, st ? std::move(*st) : unknown_pod_stopped_status(uid));
        caf::anon_send(me, done_atom::value, uid);
        return;
      }
      // The marker goes first, so that a supervisor (re)started from now
      // on leaves the containers alone.
      if (auto err = mark_stopping(opts, uid, grace))
        log::get()->warn("msg=\"cannot mark pod stopping\" uid={} error=\"{}\"", uid, err.message);
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
  };

  auto start_remove = [=](const std::string& uid, const remove_pod& req) {
    self->request(manager, caf::infinite, supervisor_release_atom::value, uid)
        .then([=](int64_t pid) {
          run_blocking(*sys, [=] {
            if (auto err = remove_sandbox(opts, uid, static_cast<pid_t>(pid)))
              req.fail(err);
            else
              req.reply(wire::ack{});
            caf::anon_send(me, done_atom::value, uid);
          });
        });
  };

  auto start_op = [=](const std::string& uid) {
    const auto& op = self->state.queues[uid].front();
    if (const auto* run = std::get_if<run_pod>(&op))
      start_run(uid, *run);
    else if (const auto* stop = std::get_if<stop_pod>(&op))
      start_stop(uid, *stop);
    else
      start_remove(uid, std::get<remove_pod>(op));
  };

  auto enqueue = [=](const std::string& uid, pod_op op) {
    auto& q = self->state.queues[uid];
    q.push_back(std::move(op));
    if (q.size() == 1)
      start_op(uid);
  };

  return {
      [=](inbound_request& req) {
        if (carries<wire::list_sandboxes_request>(req)) {
          auto r = responder<wire::list_sandboxes_request>::decode(*bus, std::move(req));
          if (!r)
            return;
          run_blocking(*sys, [=, r = std::move(*r)] {
            wire::list_sandboxes_reply rep;
            rep.sandboxes = list_sandboxes(opts);
            r.reply(rep);
          });
        } else if (carries<wire::run_pod_request>(req)) {
          auto r = run_pod::decode(*bus, std::move(req));
          if (!r)
            return;
          if (auto verr = validate_pod(r->request().pod_)) {
            r->fail(verr);
            return;
          }
          auto uid = r->request().pod_.metadata.uid;
          enqueue(uid, std::move(*r));
        } else if (carries<wire::stop_pod_request>(req)) {
          auto r = stop_pod::decode(*bus, std::move(req));
          if (!r)
            return;
          auto uid = r->request().uid;
          if (uid.empty())
            reply_status(*r, unknown_pod_stopped_status(uid));
          else
            enqueue(uid, std::move(*r));
        } else if (carries<wire::remove_pod_request>(req)) {
          auto r = remove_pod::decode(*bus, std::move(req));
          if (!r)
            return;
          auto uid = r->request().uid;
          if (uid.empty())
            r->fail({errc::invalid, "remove_pod_request needs a uid"});
          else
            enqueue(uid, std::move(*r));
        } else {
          bus->reply_error(req, {errc::invalid, "the sandbox service does not serve message type " +
                                                    std::to_string(req.env.hdr.type)});
        }
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
        const auto* req = std::get_if<stop_pod>(&qit->second.front());
        if (!req)
          return;
        auto dealer = bus->connect_dealer(pod_dir::supervisor_endpoint(opts.data_dir, uid));
        if (!dealer) {
          stop_fallback(*req, uid, grace, static_cast<pid_t>(pid));
          return;
        }
        auto tag = self->state.next_tag++;
        self->state.stops.emplace(tag,
                                  pending_stop{uid, *req, *dealer, grace, static_cast<pid_t>(pid)});
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
        run_blocking(*sys, [=, sup = std::move(reply->sandbox)]() mutable {
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

caf::actor spawn_sandbox_service(caf::actor_system& sys, transport::bridge& bus,
                                 const runtime_options& opts,
                                 std::shared_ptr<const supervised_backend> backend,
                                 std::shared_ptr<image::image_store> images, caf::actor manager) {
  return sys.spawn(sandbox_service, &bus, opts, std::move(backend), std::move(images),
                   std::move(manager));
}

}  // namespace deckhand::runtime

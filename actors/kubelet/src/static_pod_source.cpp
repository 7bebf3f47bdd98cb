#include "deckhand/kubelet/static_pod_source.hpp"

#include <map>

#include <caf/all.hpp>

#include "deckhand/api/time.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/kubelet/static_pods.hpp"
#include "deckhand/messages/codec.hpp"

namespace deckhand::kubelet {

namespace {

using host::rpc_reply;
using host::stop_atom;
using host::tick_atom;

struct source_state {
  static_pod_source_config cfg;
  request_fn request;
  int api = -1;
  caf::actor sync_loop;
  caf::actor status_mgr;
  bool sent_once = false;
  std::vector<std::string> last_uids;           // what the sync loop was told
  std::map<std::string, std::string> seen;      // uid -> config.seen
  std::map<std::string, std::string> problems;  // file -> message last logged
  std::string dir_error;                        // last logged directory error
  mirror_reconciler mirrors;
  std::map<uint64_t, mirror_reconciler::action> pending;  // by request tag
  std::map<std::string, std::string> mirror_errors;       // key -> last logged error
  uint64_t next_tag = 0;
  static inline const char* name = "static_pod_source";
};

using source_actor = caf::stateful_actor<source_state>;

void scan(source_actor* self) {
  auto& st = self->state;
  auto files = read_manifest_dir(st.cfg.dir);
  if (!files && files.err().code != errc::not_found) {
    // Unreadable for now: keep running what runs rather than stop everything.
    if (st.dir_error != files.err().message)
      log::get()->warn("msg=\"cannot read the static pod directory\" path={} error=\"{}\"",
                       st.cfg.dir.string(), files.err().message);
    st.dir_error = files.err().message;
    if (st.sent_once)
      return;
  } else if (!files) {
    if (st.dir_error != files.err().message)
      log::get()->info("msg=\"static pod directory does not exist, no static pods\" path={}",
                       st.cfg.dir.string());
    st.dir_error = files.err().message;
  } else {
    st.dir_error.clear();
  }
  auto set = desired_static_pods(files ? *files : std::vector<manifest_file>{}, st.cfg.node_name);
  std::map<std::string, std::string> problems;
  for (const auto& p : set.problems) {
    problems[p.file] = p.message;
    auto old = st.problems.find(p.file);
    if (old == st.problems.end() || old->second != p.message)
      log::get()->error("msg=\"invalid static pod manifest, ignored\" path={} error=\"{}\"",
                        (st.cfg.dir / p.file).string(), p.message);
  }
  st.problems = std::move(problems);
  std::vector<wire::pod> pods;
  std::vector<std::string> uids;
  std::map<std::string, std::string> seen;
  for (auto& sp : set.pods) {
    auto& p = sp.pod;
    auto it = st.seen.find(p.metadata.uid);
    seen[p.metadata.uid] = it != st.seen.end()
                               ? it->second
                               : api::format_rfc3339_nano(std::chrono::system_clock::now());
    p.metadata.annotations[config_seen_annotation] = seen[p.metadata.uid];
    uids.push_back(p.metadata.uid);
    pods.push_back(std::move(p));
  }
  st.seen = std::move(seen);
  st.mirrors.set_desired(pods);
  if (st.sent_once && uids == st.last_uids)
    return;
  for (const auto& p : pods)
    if (std::find(st.last_uids.begin(), st.last_uids.end(), p.metadata.uid) == st.last_uids.end())
      log::get()->info("msg=\"static pod found\" pod={}/{} uid={}", p.metadata.namespace_,
                       p.metadata.name, p.metadata.uid);
  st.last_uids = std::move(uids);
  st.sent_once = true;
  self->send(st.sync_loop, static_atom::value, std::move(pods));
}

void pump(source_actor* self) {
  auto& st = self->state;
  for (auto& a : st.mirrors.next()) {
    auto tag = ++st.next_tag;
    auto env = wire::make_envelope(a.update);
    st.pending.emplace(tag, std::move(a));
    st.request(st.api, std::move(env), st.cfg.request_deadline,
               host::reply_to(caf::actor_cast<caf::actor>(self), tag, "mirror"));
  }
}

caf::behavior static_pod_source(source_actor* self, static_pod_source_config cfg,
                                request_fn request, int api, caf::actor sync_loop,
                                caf::actor status_mgr) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.request = std::move(request);
  st.api = api;
  st.sync_loop = std::move(sync_loop);
  st.status_mgr = std::move(status_mgr);
  log::get()->info("msg=\"watching static pod directory\" path={} poll_ms={}", st.cfg.dir.string(),
                   st.cfg.poll_period.count());
  scan(self);
  self->send(self, tick_atom::value, uint64_t{0});
  return {
      [=](tick_atom, uint64_t) {
        scan(self);
        self->state.mirrors.retry_failed();
        pump(self);
        self->delayed_send(self, self->state.cfg.poll_period, tick_atom::value, uint64_t{0});
      },
      [=](mirror_atom, const std::string& type, const std::vector<wire::pod>& mirrors,
          uint64_t revision) {
        auto& s = self->state;
        if (type == "SNAPSHOT")
          s.mirrors.observe_snapshot(mirrors, revision);
        else
          for (const auto& m : mirrors)
            s.mirrors.observe_event(type, m, revision);
        pump(self);
      },
      [=](const rpc_reply& r) {
        auto& s = self->state;
        auto it = s.pending.find(r.tag);
        if (it == s.pending.end())
          return;
        auto a = std::move(it->second);
        s.pending.erase(it);
        auto ack = r.as<wire::ack>();
        if (!ack) {
          auto& last = s.mirror_errors[a.key];
          if (last != ack.err().message)
            log::get()->warn("msg=\"mirror pod update failed, will retry\" pod={} remove={} "
                             "error=\"{}\"",
                             a.key, a.update.remove, ack.err().message);
          last = ack.err().message;
          s.mirrors.failed(a.key);
          return;
        }
        s.mirror_errors.erase(a.key);
        log::get()->info("msg=\"{}\" pod={} hash={}",
                         a.update.remove ? "mirror pod removed" : "mirror pod written", a.key,
                         a.hash);
        s.mirrors.acknowledged(a, ack->revision);
        // A new mirror pod has no status yet: have the status manager write
        // the static pod's status again.
        if (!a.update.remove)
          self->send(s.status_mgr, stop_atom::value, a.hash);
        pump(self);
      },
  };
}

}  // namespace

caf::actor spawn_static_pod_source(caf::actor_system& sys, static_pod_source_config cfg,
                                   request_fn request, int api, caf::actor sync_loop,
                                   caf::actor status_manager) {
  return sys.spawn<caf::detached>(static_pod_source, std::move(cfg), std::move(request), api,
                                  std::move(sync_loop), std::move(status_manager));
}

}  // namespace deckhand::kubelet

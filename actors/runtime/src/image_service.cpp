#include "deckhand/runtime/image_service.hpp"

#include <sys/stat.h>

#include <cctype>
#include <fstream>
#include <mutex>

#include <caf/all.hpp>
#include <nlohmann/json.hpp>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/host/caf_glue.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/image/reference.hpp"
#include "deckhand/messages/codec.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/runtime/runtime_api.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"
#include "run_blocking.hpp"
#include "sandbox_store.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;
using transport::inbound_request;

namespace {

using gc_done_atom = caf::atom_constant<caf::atom("imgc_done")>;

wire::image_summary summarize(const image::image_record& rec) {
  wire::image_summary s;
  s.id = rec.id;
  s.names = rec.names;
  s.size = static_cast<int64_t>(rec.size);
  return s;
}

std::string short_id(const std::string& id) {
  auto hex = id.rfind(':') == std::string::npos ? id : id.substr(id.rfind(':') + 1);
  return hex.substr(0, 12);
}

/// Bytes of the files among `blobs` that exist now.
uint64_t blob_bytes(const image::image_store& store, const std::vector<std::string>& blobs) {
  uint64_t n = 0;
  for (const auto& b : blobs) {
    struct stat st {};
    if (::stat(store.blob_path(b).c_str(), &st) == 0)
      n += static_cast<uint64_t>(st.st_size);
  }
  return n;
}

void publish(const image_context& ctx, wire::image_pull_progress p) {
  if (ctx.pub >= 0)
    ctx.bus->publish(ctx.pub, "pull", wire::make_envelope(p));
}

void pull_image(const image_context& ctx, const responder<wire::image_pull_request>& req) {
  auto lg = log::get();
  const auto* m = &req.request();
  auto name = image::normalize_reference(m->image);
  if (!name) {
    req.fail(name.err());
    return;
  }
  if (m->if_not_present) {
    if (auto rec = ctx.store->find(m->image)) {
      wire::image_pull_reply rep;
      rep.image = summarize(*rec);
      req.reply(rep);
      return;
    }
  }
  lg->info("msg=\"pulling image\" image={} secrets={}", *name, m->secrets.size());
  std::mutex mu;
  progress_throttle throttle(ctx.progress_interval);
  wire::image_pull_progress last;
  last.image = *name;
  auto on_progress = [&](const image::pull_progress& pp) {
    std::lock_guard lk(mu);
    last.blob = pp.blob;
    last.blob_done = pp.blob_done;
    last.blob_total = pp.blob_total;
    last.done = pp.done;
    last.total = pp.total;
    last.phase = pp.phase;
    if (throttle.admit(pp.phase, progress_throttle::clock::now()))
      publish(ctx, last);
  };
  auto rec = ctx.puller->pull(m->image, m->secrets, on_progress);
  std::lock_guard lk(mu);
  last.blob.clear();
  last.blob_done = last.blob_total = 0;
  if (!rec) {
    lg->warn("msg=\"image pull failed\" image={} error=\"{}\"", *name, rec.err().message);
    last.phase = "failed";
    last.message = rec.err().message;
    publish(ctx, last);
    req.fail(rec.err());
    return;
  }
  lg->info("msg=\"image pulled\" image={} id={} size={}", *name, rec->id, rec->size);
  last.phase = "done";
  last.done = last.total = static_cast<int64_t>(rec->size);
  publish(ctx, last);
  wire::image_pull_reply rep;
  rep.image = summarize(*rec);
  rep.pulled = true;
  req.reply(rep);
}

void remove_image(const image_context& ctx, const responder<wire::image_remove_request>& req) {
  const auto* m = &req.request();
  auto rec = ctx.store->find(m->image);
  if (!rec) {
    req.fail(rec.err());
    return;
  }
  auto used = images_in_use(ctx.opts, *ctx.store);
  if (auto it = used.find(rec->id); it != used.end()) {
    std::string pods;
    for (const auto& p : it->second)
      pods += (pods.empty() ? "" : ", ") + p;
    req.fail({errc::conflict, "image \"" + m->image + "\" (" + short_id(rec->id) +
                                  ") is in use by pod " + pods + "; delete the pod first"});
    return;
  }
  auto before = blob_bytes(*ctx.store, rec->blobs);
  auto removed = ctx.store->remove(m->image);
  if (!removed) {
    req.fail(removed.err());
    return;
  }
  wire::image_remove_reply rep;
  // Removing one of several names only untags the image.
  if (!ctx.store->find(rec->id)) {
    rep.removed.push_back(rec->id);
    rep.freed_bytes =
        static_cast<int64_t>(before - std::min(before, blob_bytes(*ctx.store, rec->blobs)));
  }
  log::get()->info("msg=\"image removed\" ref={} id={} deleted={} freed={}", m->image, rec->id,
                   !rep.removed.empty(), rep.freed_bytes);
  req.reply(rep);
}

void collect(const image_context& ctx) {
  image::gc_policy policy;
  policy.high_percent = ctx.opts.image_gc_high_threshold;
  policy.low_percent = ctx.opts.image_gc_low_threshold;
  std::set<std::string> in_use;
  for (const auto& [id, pods] : images_in_use(ctx.opts, *ctx.store))
    in_use.insert(id);
  auto report = image::collect_images(*ctx.store, policy, in_use);
  auto lg = log::get();
  if (!report) {
    lg->warn("msg=\"image garbage collection failed\" error=\"{}\"", report.err().message);
    return;
  }
  if (!report->removed.empty())
    lg->info("msg=\"image garbage collection\" removed={} freed={} usage_before={} "
             "usage_after={}",
             report->removed.size(), report->freed_bytes, report->usage_percent_before,
             report->usage_percent_after);
}

struct gc_state {
  std::shared_ptr<image_context> ctx;
  bool running = false;
  static inline const char* name = "image_gc";
};

caf::behavior image_gc(caf::stateful_actor<gc_state>* self, std::shared_ptr<image_context> ctx) {
  self->state.ctx = ctx;
  auto period = ctx->opts.image_gc_period;
  if (period.count() <= 0)
    return {[](host::tick_atom, uint64_t) {}};
  self->delayed_send(self, period, host::tick_atom::value, uint64_t{0});
  return {
      [=](host::tick_atom, uint64_t) {
        if (!self->state.running) {
          self->state.running = true;
          auto me = caf::actor_cast<caf::actor>(self);
          self->system().spawn([ctx, me](caf::blocking_actor*) {
            collect(*ctx);
            caf::anon_send(me, gc_done_atom::value);
          });
        }
        self->delayed_send(self, period, host::tick_atom::value, uint64_t{0});
      },
      [=](gc_done_atom) { self->state.running = false; },
  };
}

void import_image(const image_context& ctx, const responder<wire::image_import_request>& req) {
  const auto& m = req.request();
  if (m.path.empty()) {
    req.fail({errc::invalid, "image import needs a path"});
    return;
  }
  std::optional<std::string> name;
  if (!m.name.empty())
    name = m.name;
  auto rec = ctx.store->import(m.path, name);
  if (!rec) {
    log::get()->warn("msg=\"image import failed\" path={} error=\"{}\"", m.path, rec.err().message);
    req.fail(rec.err());
    return;
  }
  log::get()->info("msg=\"image imported\" id={} path={}", rec->id, m.path);
  wire::image_import_reply rep;
  rep.image = summarize(*rec);
  req.reply(rep);
}

void list_images(const image_context& ctx, const responder<wire::image_list_request>& req) {
  wire::image_list_reply rep;
  for (const auto& rec : ctx.store->list())
    rep.images.push_back(summarize(rec));
  req.reply(rep);
}

/// Decodes `req` as `Request` and hands it to `fn` on a worker thread.
template <class Request, class Fn>
void serve(caf::actor_system& sys, const std::shared_ptr<image_context>& ctx, inbound_request req,
           Fn fn) {
  auto r = responder<Request>::decode(*ctx->bus, std::move(req));
  if (!r)
    return;
  run_blocking(sys, [ctx, fn, r = std::move(*r)] { fn(*ctx, r); });
}

caf::behavior image_service(caf::event_based_actor* self, std::shared_ptr<image_context> ctx) {
  self->link_to(spawn_image_gc(self->system(), ctx));
  return {
      [=](inbound_request& req) {
        auto& sys = self->system();
        if (carries<wire::image_pull_request>(req))
          serve<wire::image_pull_request>(sys, ctx, std::move(req), pull_image);
        else if (carries<wire::image_remove_request>(req))
          serve<wire::image_remove_request>(sys, ctx, std::move(req), remove_image);
        else if (carries<wire::image_import_request>(req))
          serve<wire::image_import_request>(sys, ctx, std::move(req), import_image);
        else if (carries<wire::image_list_request>(req))
          serve<wire::image_list_request>(sys, ctx, std::move(req), list_images);
        else
          ctx->bus->reply_error(req,
                                {errc::invalid, "the image service does not serve message type " +
                                                    std::to_string(req.env.hdr.type)});
      },
  };
}
}  // namespace

bool progress_throttle::admit(const std::string& phase, clock::time_point now) {
  if (!any_ || phase != phase_ || now - last_ >= interval_) {
    any_ = true;
    phase_ = phase;
    last_ = now;
    return true;
  }
  return false;
}

result<std::chrono::milliseconds> parse_duration(const std::string& text) {
  using namespace std::chrono;
  milliseconds total{0};
  size_t i = 0;
  if (text.empty())
    return error{errc::invalid, "empty duration"};
  while (i < text.size()) {
    size_t start = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
      ++i;
    if (i == start || i - start > 9)
      return error{errc::invalid, "bad duration \"" + text + "\" (e.g. 90s, 5m, 1h30m)"};
    auto n = std::stoll(text.substr(start, i - start));
    std::string unit;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i])))
      unit += text[i++];
    if (unit == "ms")
      total += milliseconds(n);
    else if (unit == "s" || (unit.empty() && i == text.size() && start == 0))
      total += seconds(n);
    else if (unit == "m")
      total += minutes(n);
    else if (unit == "h")
      total += hours(n);
    else
      return error{errc::invalid, "bad duration \"" + text + "\" (e.g. 90s, 5m, 1h30m)"};
  }
  return total;
}

std::shared_ptr<image_context> make_image_context(transport::bridge& bus,
                                                  const runtime_options& opts,
                                                  std::shared_ptr<image::image_store> store) {
  auto ctx = std::make_shared<image_context>();
  ctx->bus = &bus;
  ctx->opts = opts;
  ctx->store = store;
  image::pull_options po;
  po.credentials_file = opts.registry_credentials;
  po.insecure_registries = opts.insecure_registries;
  ctx->puller = std::make_shared<image::puller>(*store, po);
  auto endpoint = paths::runtime_pub_endpoint(opts.data_dir);
  auto pub = bus.bind_pub(endpoint);
  if (pub)
    ctx->pub = *pub;
  else
    log::get()->warn("msg=\"cannot bind the progress socket; pulls report no progress\" "
                     "endpoint={} error=\"{}\"",
                     endpoint, pub.err().message);
  return ctx;
}

caf::actor spawn_image_gc(caf::actor_system& sys, std::shared_ptr<image_context> ctx) {
  return sys.spawn(image_gc, std::move(ctx));
}

caf::actor spawn_image_service(caf::actor_system& sys, std::shared_ptr<image_context> ctx) {
  return sys.spawn(image_service, std::move(ctx));
}

std::map<std::string, std::set<std::string>> images_in_use(const runtime_options& opts,
                                                           const image::image_store& store) {
  std::map<std::string, std::set<std::string>> used;
  std::map<std::string, std::string> pod_names;  // uid -> namespace/name
  for (const auto& uid : pod_uids_on_disk(opts)) {
    auto dir = pod_dir::root(opts.data_dir, uid);
    auto p = read_pod(dir);
    if (!p)
      continue;
    auto label =
        (p->metadata.namespace_.empty() ? std::string("default") : p->metadata.namespace_) + "/" +
        p->metadata.name;
    pod_names[uid] = label;
    for (const auto& c : p->spec.containers)
      if (auto rec = store.find(c.image))
        used[rec->id].insert(label);
  }
  // A name may since point at another image: the overlay mounts say which
  // image root filesystems the containers really sit on.
  auto rootfs_prefix = (store.root() / "rootfs").string() + "/";
  auto pods_prefix = paths::pods_state_dir(opts.data_dir).string() + "/";
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);) {
    auto at = line.find(rootfs_prefix);
    if (at == std::string::npos)
      continue;
    auto hex = line.substr(at + rootfs_prefix.size(), 64);
    if (hex.size() != 64 || hex.find_first_not_of("0123456789abcdef") != std::string::npos)
      continue;
    std::string label = "(unknown)";
    auto mp = line.find(" " + pods_prefix);
    if (mp != std::string::npos) {
      auto uid_start = mp + 1 + pods_prefix.size();
      auto uid = line.substr(uid_start, line.find('/', uid_start) - uid_start);
      auto it = pod_names.find(uid);
      label = it != pod_names.end() ? it->second : uid;
    }
    used["sha256:" + hex].insert(label);
  }
  return used;
}

void touch_images(image::image_store& store, const wire::pod& p) {
  for (const auto& c : p.spec.containers)
    if (auto r = store.touch(c.image); !r)
      log::get()->debug("msg=\"cannot mark image used\" image={} error=\"{}\"", c.image,
                        r.err().message);
}

}  // namespace deckhand::runtime

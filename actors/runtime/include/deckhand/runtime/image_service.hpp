#pragma once

/// The runtime's image pulls, removals and image garbage collection.
///
/// Requests (routed here by the runtime's front actor, answered from worker
/// threads because pulls block for seconds or minutes):
///   image_pull_request   -> image_pull_reply. With `if_not_present` and the
///                           image in the store, no registry is contacted
///                           (`pulled` false). Concurrent pulls of one image
///                           download it once (the puller's single flight).
///   image_remove_request -> image_remove_reply; an image that a sandbox on
///                           the node uses is refused with errc::conflict.
/// Progress of every pull is published as `image_pull_progress` on topic
/// "pull" of the PUB socket at paths::runtime_pub_endpoint: at most one
/// message per `progress_interval` per pull, plus every phase change (and a
/// final "done" or "failed"). PUB may drop; the reply is the outcome.
///
/// Image GC: every `gc_period`, Kubernetes' policy (image::collect_images)
/// with the ids of the images used by the node's sandboxes as in use.

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "deckhand/image/image_store.hpp"
#include "deckhand/image/puller.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/wire.hpp"
#include "deckhand/runtime/options.hpp"

namespace deckhand::runtime {

/// What the image service's handlers share. Built once per process.
struct image_context {
  transport::bridge* bus = nullptr;
  runtime_options opts;
  std::shared_ptr<image::image_store> store;
  std::shared_ptr<image::puller> puller;
  int pub = -1;  ///< PUB socket for progress; -1: not published
  std::chrono::milliseconds progress_interval{100};
};

/// Builds the context: the puller from `opts` (credentials file, insecure
/// registries) and the PUB socket at paths::runtime_pub_endpoint. A PUB
/// socket that cannot be bound only disables progress (logged).
std::shared_ptr<image_context> make_image_context(transport::bridge& bus,
                                                  const runtime_options& opts,
                                                  std::shared_ptr<image::image_store> store);

/// Spawns the image service: image_import_request, image_list_request,
/// image_pull_request and image_remove_request (runtime_api.hpp), each
/// answered from a worker thread of its own, and the image GC linked to it.
caf::actor spawn_image_service(caf::actor_system& sys, std::shared_ptr<image_context> ctx);

/// Spawns the periodic image GC (first run after one period; none when the
/// period is zero). The caller links it to the image service.
caf::actor spawn_image_gc(caf::actor_system& sys, std::shared_ptr<image_context> ctx);

/// Ids of the images that sandboxes on the node use, each with the pods
/// ("namespace/name") using it: the images their pod.json names (resolved in
/// the store) and the image root filesystems their overlay mounts sit on.
std::map<std::string, std::set<std::string>> images_in_use(const runtime_options& opts,
                                                           const image::image_store& store);

/// `90s`, `5m`, `1h30m`, `500ms`, or a plain number of seconds.
result<std::chrono::milliseconds> parse_duration(const std::string& text);

/// Marks the images of `p`'s containers as used now (image GC order).
void touch_images(image::image_store& store, const wire::pod& p);

/// Decides which progress reports of one pull are published: every phase
/// change, else at most one per `interval`. Pure, so tests pass the time.
class progress_throttle {
 public:
  using clock = std::chrono::steady_clock;
  explicit progress_throttle(std::chrono::milliseconds interval) : interval_(interval) {}
  bool admit(const std::string& phase, clock::time_point now);

 private:
  std::chrono::milliseconds interval_;
  std::string phase_;
  clock::time_point last_{};
  bool any_ = false;
};

}  // namespace deckhand::runtime

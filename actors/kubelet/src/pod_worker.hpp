#pragma once

/// A pod worker's state and the steps shared by pod_worker.cpp (sync,
/// terminate) and pod_worker_images.cpp (image pulls).

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/stateful_actor.hpp>

#include "context.hpp"
#include "deckhand/common/backoff.hpp"
#include "deckhand/messages/wire.hpp"

namespace deckhand::kubelet::detail {

/// A pull that may only check presence (IfNotPresent) is announced as
/// `Pulling` once it has taken this long, or when it turns out to have pulled.
using pull_notice_atom = caf::atom_constant<caf::atom("dh_pullnt")>;
constexpr std::chrono::milliseconds pull_notice_delay{500};
/// spec.activeDeadlineSeconds ran out (pod_lifecycle.hpp); carries a generation.
using deadline_atom = caf::atom_constant<caf::atom("dh_dline")>;

enum class worker_phase { syncing, terminating, terminated };

/// One image of a pod whose pull failed: no new pull before `retry_at`.
struct image_pull_state {
  common::backoff backoff;
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
  /// run_pod's retry back-off (Kubernetes' flowcontrol.Backoff without
  /// expiry), set from the config when the worker starts.
  common::backoff run_backoff;
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
          const std::string& message);

/// The same event for every container that runs `image`.
void emit_for_image(worker_actor* self, const std::string& image, const char* type,
                    const char* reason, const std::string& message);

/// Computes the pod's status and hands it to the status manager.
void publish_status(worker_actor* self);

/// Steps again after `d` (a back-off); an earlier timer is dropped.
void arm_timer(worker_actor* self, std::chrono::milliseconds d);

/// Does the next thing the pod needs, unless a request is in flight.
void step(worker_actor* self);

/// Kubernetes' EnsureImageExists (pod_worker_images.cpp). Returns true while
/// the pod must wait: a pull is in flight, or an image is in back-off.
bool ensure_images(worker_actor* self, clock_type::time_point now);

/// A pull finished (pod_worker_images.cpp).
void on_pull_reply(worker_actor* self, const result<wire::image_pull_reply>& rep);

/// run_pod said an image is missing (`image "X" is not present ...`): the
/// containers running the images it names wait with ErrImageNeverPull
/// (policy Never) or ErrImagePull (the image vanished after its pull).
/// Returns false when the message names none of the pod's images.
bool attribute_missing_images(worker_state& st, const std::string& message,
                              std::vector<std::string>& never_pull_events);

}  // namespace deckhand::kubelet::detail

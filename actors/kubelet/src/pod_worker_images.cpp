/// A pod worker's image pulls: Kubernetes' EnsureImageExists with
/// imagePullPolicy, a per-image back-off (ImagePullBackOff), and the
/// Pulling/Pulled/Failed/BackOff events.

#include <optional>
#include <utility>

#include <caf/all.hpp>

#include "deckhand/common/log.hpp"
#include "deckhand/kubelet/container_events.hpp"
#include "deckhand/kubelet/image_pull.hpp"
#include "deckhand/kubelet/pod_lifecycle.hpp"
#include "deckhand/kubelet/pod_status.hpp"
#include "pod_worker.hpp"

namespace deckhand::kubelet::detail {

bool attribute_missing_images(worker_state& st, const std::string& message,
                              std::vector<std::string>& never_pull_events) {
  bool any = false;
  for (const auto& c : st.desired.spec.containers) {
    if (message.find("\"" + c.image + "\"") == std::string::npos)
      continue;
    any = true;
    if (pull_policy(c) == "Never") {
      st.waiting[c.name] = {reason_err_image_never_pull, never_pull_message(c.image)};
      never_pull_events.push_back(c.name);
    } else
      st.waiting[c.name] = {reason_err_image_pull, message};
  }
  return any;
}

namespace {

/// Sets the waiting state of every container that runs `image`.
void set_waiting(worker_state& st, const std::string& image, const std::string& reason,
                 const std::string& message) {
  for (const auto& c : st.desired.spec.containers)
    if (c.image == image)
      st.waiting[c.name] = wire::container_state_waiting{reason, message};
}

void clear_waiting(worker_state& st, const std::string& image) {
  for (const auto& c : st.desired.spec.containers)
    if (c.image == image)
      st.waiting.erase(c.name);
}

}  // namespace

/// Kubernetes' EnsureImageExists, for every container before the pod starts:
/// Always pulls, IfNotPresent pulls unless present, Never does not pull (a
/// missing image then fails run_pod). An image whose last pull failed is not
/// pulled again before its back-off ends. Returns true while the pod must
/// wait: a pull is in flight, or an image is in back-off.
bool ensure_images(worker_actor* self, clock_type::time_point now) {
  auto& st = self->state;
  const auto& cfg = st.ctx->cfg;
  std::optional<clock_type::time_point> wake;
  // Init containers' images too: all are present before the sandbox exists.
  std::vector<const wire::container*> all;
  for (const auto& c : st.desired.spec.init_containers)
    all.push_back(&c);
  for (const auto& c : st.desired.spec.containers)
    all.push_back(&c);
  for (const auto* cp : all) {
    const auto& c = *cp;
    auto policy = pull_policy(c);
    if (policy == "Never" || st.images_ready.count(c.image))
      continue;
    auto failed = st.failed_pulls.find(c.image);
    if (failed != st.failed_pulls.end() && now < failed->second.retry_at) {
      // ErrImagePull stays for at least one sync period, so that users (and
      // status watchers) see why before the back-off message replaces it.
      if (now >= failed->second.failed_at + cfg.relist_period) {
        auto w = st.waiting.find(c.name);
        if (w == st.waiting.end() || w->second.reason != reason_image_pull_backoff) {
          emit(self, container_field_path(c.name), "Normal", "BackOff",
               pull_backoff_message(c.image));
          emit(self, container_field_path(c.name), "Warning", "Failed",
               std::string("Error: ") + reason_image_pull_backoff);
        }
        set_waiting(st, c.image, reason_image_pull_backoff, pull_backoff_message(c.image));
      }
      if (!wake || failed->second.retry_at < *wake)
        wake = failed->second.retry_at;
      continue;
    }
    wire::image_pull_request req;
    req.image = c.image;
    req.if_not_present = policy != "Always";
    for (const auto& s : st.desired.spec.image_pull_secrets)
      req.secrets.push_back(s.name);
    st.pulling = c.image;
    st.pull_started = self->clock().now();
    log::get()->info("msg=\"pulling image\" {} image={} policy={}", pod_ref(st.desired), c.image,
                     policy);
    st.pull_announced = !req.if_not_present;
    ++st.pull_gen;
    if (st.pull_announced)
      emit_for_image(self, c.image, "Normal", "Pulling", "Pulling image \"" + c.image + "\"");
    else
      self->delayed_send(self, pull_notice_delay, pull_notice_atom::value, st.pull_gen);
    publish_status(self);
    st.ctx->runtime->pull_image(req, cfg.image_pull_deadline, deliver<pulled_atom>(self));
    return true;
  }
  if (!wake)
    return false;
  publish_status(self);
  arm_timer(self, std::chrono::duration_cast<std::chrono::milliseconds>(*wake - now));
  return true;
}

/// A pull finished: on success the pod may start; on failure the image's
/// containers show ErrImagePull until the worker next syncs (relist), and
/// ImagePullBackOff from then until the back-off ends.
void on_pull_reply(worker_actor* self, const result<wire::image_pull_reply>& rep) {
  auto& s = self->state;
  auto image = std::exchange(s.pulling, std::string{});
  if (s.phase != worker_phase::syncing || s.have_sandbox) {
    step(self);
    return;
  }
  if (rep) {
    log::get()->info("msg=\"image ready\" {} image={} id={} pulled={}", pod_ref(s.desired), image,
                     rep->image.id, rep->pulled);
    if (rep->pulled) {
      if (!s.pull_announced)
        emit_for_image(self, image, "Normal", "Pulling", "Pulling image \"" + image + "\"");
      auto took = std::chrono::duration_cast<std::chrono::milliseconds>(self->clock().now() -
                                                                        s.pull_started);
      auto msg = "Successfully pulled image \"" + image + "\" in " + go_duration(took) + " (" +
                 go_duration(took) + " including waiting)";
      if (rep->image.size > 0)
        msg += ". Image size: " + std::to_string(rep->image.size) + " bytes.";
      emit_for_image(self, image, "Normal", "Pulled", msg);
    } else {
      emit_for_image(self, image, "Normal", "Pulled",
                     "Container image \"" + image + "\" already present on machine");
    }
    s.failed_pulls.erase(image);
    s.images_ready.insert(image);
    clear_waiting(s, image);
    step(self);
    return;
  }
  const auto& cfg = s.ctx->cfg;
  auto& ip =
      s.failed_pulls
          .try_emplace(image, image_pull_state{common::backoff(
                                  {cfg.image_pull_backoff_initial, cfg.image_pull_backoff_max})})
          .first->second;
  auto delay = ip.backoff.next();
  ip.failed_at = self->clock().now();
  ip.retry_at = ip.failed_at + delay;
  set_waiting(s, image, reason_err_image_pull, rep.err().message);
  emit_for_image(self, image, "Warning", "Failed",
                 "Failed to pull image \"" + image + "\": " + rep.err().message);
  emit_for_image(self, image, "Warning", "Failed", std::string("Error: ") + reason_err_image_pull);
  log::get()->warn("msg=\"image pull failed\" {} image={} backoff_ms={} error=\"{}\"",
                   pod_ref(s.desired), image, delay.count(), rep.err().message);
  publish_status(self);
  arm_timer(self, delay);
}

}  // namespace deckhand::kubelet::detail

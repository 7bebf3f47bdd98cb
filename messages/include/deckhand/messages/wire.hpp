#pragma once

/// The inter-process messages of deckhand: who sends each, when, and what comes
/// back. Every body is a msgpack map produced from the struct's field list (see
/// fields.hpp); every frame pair is [header][body] (header.hpp).
///
/// Type ids are part of the protocol: never reuse or renumber one.

#include <cstdint>
#include <string>
#include <vector>

#include "deckhand/messages/fields.hpp"
#include "deckhand/messages/model.hpp"

namespace deckhand::wire {

// -- generic -----------------------------------------------------------------

/// Reply to any request that failed. `code` is a deckhand::errc value.
struct error_reply {
  static constexpr uint16_t type_id = 1;
  static constexpr const char* type_name = "error_reply";
  int32_t code = 0;
  std::string message;
  static constexpr auto fields() {
    return std::make_tuple(field("code", &error_reply::code),
                           field("message", &error_reply::message));
  }
};

/// Any process -> any ROUTER endpoint: liveness and identity. Answered by the
/// transport itself with `pong`.
struct ping {
  static constexpr uint16_t type_id = 2;
  static constexpr const char* type_name = "ping";
  static constexpr auto fields() { return std::tuple<>{}; }
};

/// Reply to `ping`: who answers and how its transport is doing.
struct pong {
  static constexpr uint16_t type_id = 3;
  static constexpr const char* type_name = "pong";
  std::string component;
  uint64_t incarnation = 0;
  int64_t pid = 0;
  int64_t uptime_ms = 0;
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  uint64_t dropped = 0;
  static constexpr auto fields() {
    return std::make_tuple(field("component", &pong::component),
                           field("incarnation", &pong::incarnation), field("pid", &pong::pid),
                           field("uptimeMs", &pong::uptime_ms), field("framesIn", &pong::frames_in),
                           field("framesOut", &pong::frames_out), field("dropped", &pong::dropped));
  }
};

/// Generic success reply carrying the store revision a write produced (0 when
/// the request wrote nothing).
struct ack {
  static constexpr uint16_t type_id = 4;
  static constexpr const char* type_name = "ack";
  uint64_t revision = 0;
  static constexpr auto fields() { return std::make_tuple(field("revision", &ack::revision)); }
};

// -- API server <-> kubelet, proxy ---------------------------------------------

/// kubelet/proxy -> apiserver: a snapshot of one kind. `node_name` filters pods
/// by spec.nodeName (empty: all). Reply: `list_reply`.
struct list_request {
  static constexpr uint16_t type_id = 10;
  static constexpr const char* type_name = "list_request";
  std::string kind;  ///< "pods", "services" or "endpointslices"
  std::string node_name;
  static constexpr auto fields() {
    return std::make_tuple(field("kind", &list_request::kind),
                           field("nodeName", &list_request::node_name));
  }
};

/// The snapshot: objects plus the feed position (of the kind's topic) it
/// corresponds to. A subscriber applies feed events with `seq > feed_seq` on
/// top of it.
struct list_reply {
  static constexpr uint16_t type_id = 11;
  static constexpr const char* type_name = "list_reply";
  std::string kind;
  uint64_t revision = 0;
  uint64_t feed_seq = 0;
  std::vector<pod> pods;
  std::vector<service> services;
  std::vector<endpoint_slice> endpoint_slices;
  static constexpr auto fields() {
    return std::make_tuple(
        field("kind", &list_reply::kind), field("revision", &list_reply::revision),
        field("feedSeq", &list_reply::feed_seq), field("pods", &list_reply::pods),
        field("services", &list_reply::services),
        field("endpointSlices", &list_reply::endpoint_slices));
  }
};

/// apiserver -> subscribers (PUB, topic = kind): one change. `seq` numbers the
/// topic's feed of this apiserver incarnation without gaps; a subscriber that
/// sees a gap, a new incarnation or silence relists.
struct watch_event {
  static constexpr uint16_t type_id = 12;
  static constexpr const char* type_name = "watch_event";
  uint64_t seq = 0;
  std::string type;  ///< ADDED, MODIFIED, DELETED
  std::string kind;  ///< "pods", "services" or "endpointslices"
  uint64_t revision = 0;
  pod pod_;
  service service_;
  endpoint_slice endpoint_slice_;
  static constexpr auto fields() {
    return std::make_tuple(
        field("seq", &watch_event::seq), field("type", &watch_event::type),
        field("kind", &watch_event::kind), field("revision", &watch_event::revision),
        field("pod", &watch_event::pod_), field("service", &watch_event::service_),
        field("endpointSlice", &watch_event::endpoint_slice_));
  }
};

/// apiserver -> subscribers (PUB, topic "hb"), every heartbeat interval: the
/// last `seq` published on each topic, so silence and lost tails are
/// detectable. Sequences are per topic: a subscriber to some topics never sees
/// the others' numbers as gaps. `seq` is the total over all topics (for
/// diagnostics only).
struct feed_heartbeat {
  static constexpr uint16_t type_id = 13;
  static constexpr const char* type_name = "feed_heartbeat";
  uint64_t seq = 0;
  std::map<std::string, uint64_t> topics;
  /// The last seq of `topic` (0: nothing published on it yet).
  uint64_t topic_seq(const std::string& topic) const {
    auto it = topics.find(topic);
    return it == topics.end() ? 0 : it->second;
  }
  static constexpr auto fields() {
    return std::make_tuple(field("seq", &feed_heartbeat::seq),
                           field("topics", &feed_heartbeat::topics));
  }
};

/// kubelet -> apiserver: replace the status of pod NS/NAME if its uid matches.
/// Idempotent. Reply: `ack`.
struct pod_status_update {
  static constexpr uint16_t type_id = 14;
  static constexpr const char* type_name = "pod_status_update";
  std::string namespace_;
  std::string name;
  std::string uid;
  pod_status status;
  static constexpr auto fields() {
    return std::make_tuple(
        field("namespace", &pod_status_update::namespace_), field("name", &pod_status_update::name),
        field("uid", &pod_status_update::uid), field("status", &pod_status_update::status));
  }
};

/// kubelet -> apiserver: the pod's containers are gone; remove the object of a
/// pod under graceful deletion. Idempotent. Reply: `ack`.
struct pod_finalize {
  static constexpr uint16_t type_id = 15;
  static constexpr const char* type_name = "pod_finalize";
  std::string namespace_;
  std::string name;
  std::string uid;
  static constexpr auto fields() {
    return std::make_tuple(field("namespace", &pod_finalize::namespace_),
                           field("name", &pod_finalize::name), field("uid", &pod_finalize::uid));
  }
};

/// kubelet -> apiserver, every node-status interval: registers the node on
/// first contact and renews its lease. Reply: `ack`.
struct node_heartbeat {
  static constexpr uint16_t type_id = 16;
  static constexpr const char* type_name = "node_heartbeat";
  node node_;
  static constexpr auto fields() { return std::make_tuple(field("node", &node_heartbeat::node_)); }
};

/// kubelet (or another node component) -> apiserver: a batch of events. Each
/// event is created, or replaces the stored one of the same namespace/name
/// (a series whose count grew), so a retried batch does no harm. Reply: `ack`.
struct event_report {
  static constexpr uint16_t type_id = 17;
  static constexpr const char* type_name = "event_report";
  std::vector<event> events;
  static constexpr auto fields() { return std::make_tuple(field("events", &event_report::events)); }
};

/// kubelet -> apiserver, every lease-renew interval (10 s by default): renews
/// the node's Lease (coordination.k8s.io/v1, namespace kube-node-lease, named
/// after the node), creating it if absent. The node lifecycle controller
/// counts a node alive while its lease is fresh. Reply: `ack`.
struct lease_renew {
  static constexpr uint16_t type_id = 18;
  static constexpr const char* type_name = "lease_renew";
  std::string node_name;
  std::string holder_identity;
  int32_t lease_duration_seconds = 40;
  static constexpr auto fields() {
    return std::make_tuple(
        field("nodeName", &lease_renew::node_name),
        field("holderIdentity", &lease_renew::holder_identity),
        field_always("leaseDurationSeconds", &lease_renew::lease_duration_seconds));
  }
};

/// kubelet -> apiserver: create, update or delete the mirror pod of a static
/// pod (annotation `kubernetes.io/config.mirror`, owned by the Node). The
/// API server never schedules, stops or finalizes a mirror pod through the
/// usual path; deleting it with kubectl makes the kubelet recreate it.
/// Reply: `ack`.
struct mirror_pod_update {
  static constexpr uint16_t type_id = 19;
  static constexpr const char* type_name = "mirror_pod_update";
  pod pod_;
  bool remove = false;
  static constexpr auto fields() {
    return std::make_tuple(field("pod", &mirror_pod_update::pod_),
                           field("remove", &mirror_pod_update::remove));
  }
};

// -- kubelet <-> runtime ---------------------------------------------------------

/// Something a pod supervisor saw happen to a container that the kubelet
/// turns into an event: a failed probe (`Unhealthy`), a kill it decided on
/// (`Killing`), a failed hook (`FailedPreStopHook`, `FailedPostStartHook`).
/// Numbered per container so a kubelet (also a restarted one) reports each
/// note once; a supervisor keeps only its last few.
struct supervisor_note {
  static constexpr const char* type_name = "supervisor_note";
  uint64_t seq = 0;
  std::string type = "Normal";  ///< Normal or Warning
  std::string reason;
  std::string message;
  std::string timestamp;  ///< RFC 3339
  static constexpr auto fields() {
    return std::make_tuple(
        field("seq", &supervisor_note::seq), field("type", &supervisor_note::type),
        field("reason", &supervisor_note::reason), field("message", &supervisor_note::message),
        field("timestamp", &supervisor_note::timestamp));
  }
};

/// A container as the runtime and its supervisor track it.
struct container_record {
  static constexpr const char* type_name = "container_record";
  std::string name;
  std::string runtime_id;  ///< the OCI runtime's container id
  container_status status;
  std::vector<supervisor_note> notes;  ///< the most recent, oldest first
  static constexpr auto fields() {
    return std::make_tuple(
        field("name", &container_record::name), field("runtimeId", &container_record::runtime_id),
        field("status", &container_record::status), field("notes", &container_record::notes));
  }
};

/// The runtime's view of one pod sandbox.
struct sandbox_status {
  static constexpr const char* type_name = "sandbox_status";
  std::string uid;
  std::string namespace_;
  std::string name;
  std::string state;  ///< "ready", "stopping", "stopped"
  std::string pod_ip_;
  int64_t supervisor_pid = 0;
  bool supervisor_alive = false;
  uint64_t supervisor_incarnation = 0;
  std::string created_at;
  std::vector<container_record> init_containers;  ///< spec.initContainers, in order
  std::vector<container_record> containers;
  static constexpr auto fields() {
    return std::make_tuple(
        field("uid", &sandbox_status::uid), field("namespace", &sandbox_status::namespace_),
        field("name", &sandbox_status::name), field("state", &sandbox_status::state),
        field("podIP", &sandbox_status::pod_ip_),
        field("supervisorPid", &sandbox_status::supervisor_pid),
        field("supervisorAlive", &sandbox_status::supervisor_alive),
        field("supervisorIncarnation", &sandbox_status::supervisor_incarnation),
        field("createdAt", &sandbox_status::created_at),
        field("initContainers", &sandbox_status::init_containers),
        field("containers", &sandbox_status::containers));
  }
};

/// kubelet -> runtime: make this pod run (sandbox, bundles, supervisor).
/// Idempotent by pod uid: a pod that already runs is left alone. Reply:
/// `run_pod_reply`, or `error_reply` (e.g. errc::not_found for a missing image).
struct run_pod_request {
  static constexpr uint16_t type_id = 30;
  static constexpr const char* type_name = "run_pod_request";
  pod pod_;
  static constexpr auto fields() { return std::make_tuple(field("pod", &run_pod_request::pod_)); }
};

struct run_pod_reply {
  static constexpr uint16_t type_id = 31;
  static constexpr const char* type_name = "run_pod_reply";
  sandbox_status sandbox;
  static constexpr auto fields() {
    return std::make_tuple(field("sandbox", &run_pod_reply::sandbox));
  }
};

/// kubelet -> runtime: stop the pod's containers (SIGTERM, then SIGKILL after
/// the grace period). Idempotent. Reply: `sandbox_status_reply` once stopped.
struct stop_pod_request {
  static constexpr uint16_t type_id = 32;
  static constexpr const char* type_name = "stop_pod_request";
  std::string uid;
  int64_t grace_period_seconds = 30;
  static constexpr auto fields() {
    return std::make_tuple(field("uid", &stop_pod_request::uid),
                           field("gracePeriodSeconds", &stop_pod_request::grace_period_seconds));
  }
};

/// kubelet -> runtime: remove everything of a stopped pod (containers, mounts,
/// netns, state, logs). Idempotent. Reply: `ack`.
struct remove_pod_request {
  static constexpr uint16_t type_id = 33;
  static constexpr const char* type_name = "remove_pod_request";
  std::string uid;
  static constexpr auto fields() { return std::make_tuple(field("uid", &remove_pod_request::uid)); }
};

/// kubelet/CLI -> runtime: every sandbox on the node. Reply: `list_sandboxes_reply`.
struct list_sandboxes_request {
  static constexpr uint16_t type_id = 34;
  static constexpr const char* type_name = "list_sandboxes_request";
  static constexpr auto fields() { return std::tuple<>{}; }
};

struct list_sandboxes_reply {
  static constexpr uint16_t type_id = 35;
  static constexpr const char* type_name = "list_sandboxes_reply";
  std::vector<sandbox_status> sandboxes;
  static constexpr auto fields() {
    return std::make_tuple(field("sandboxes", &list_sandboxes_reply::sandboxes));
  }
};

struct sandbox_status_reply {
  static constexpr uint16_t type_id = 36;
  static constexpr const char* type_name = "sandbox_status_reply";
  sandbox_status sandbox;
  static constexpr auto fields() {
    return std::make_tuple(field("sandbox", &sandbox_status_reply::sandbox));
  }
};

/// CLI -> runtime: import an image from an OCI layout directory or an OCI /
/// docker-save archive on this host. Reply: `image_import_reply`.
struct image_import_request {
  static constexpr uint16_t type_id = 40;
  static constexpr const char* type_name = "image_import_request";
  std::string path;
  std::string name;  ///< optional override of the image's own name
  static constexpr auto fields() {
    return std::make_tuple(field("path", &image_import_request::path),
                           field("name", &image_import_request::name));
  }
};

struct image_summary {
  static constexpr const char* type_name = "image_summary";
  std::string id;
  std::vector<std::string> names;
  int64_t size = 0;
  static constexpr auto fields() {
    return std::make_tuple(field("id", &image_summary::id), field("names", &image_summary::names),
                           field("size", &image_summary::size));
  }
};

struct image_import_reply {
  static constexpr uint16_t type_id = 41;
  static constexpr const char* type_name = "image_import_reply";
  image_summary image;
  static constexpr auto fields() {
    return std::make_tuple(field("image", &image_import_reply::image));
  }
};

struct image_list_request {
  static constexpr uint16_t type_id = 42;
  static constexpr const char* type_name = "image_list_request";
  static constexpr auto fields() { return std::tuple<>{}; }
};

struct image_list_reply {
  static constexpr uint16_t type_id = 43;
  static constexpr const char* type_name = "image_list_reply";
  std::vector<image_summary> images;
  static constexpr auto fields() {
    return std::make_tuple(field("images", &image_list_reply::images));
  }
};

/// CLI/kubelet -> runtime: make `image` present (pull policy applied by the
/// caller; this always contacts the registry unless `if_not_present` and the
/// image is there). `secrets` names credentials the node has (imagePullSecrets).
/// Reply: `image_pull_reply`. Progress goes out as `image_pull_progress`.
struct image_pull_request {
  static constexpr uint16_t type_id = 44;
  static constexpr const char* type_name = "image_pull_request";
  std::string image;
  bool if_not_present = false;
  std::vector<std::string> secrets;
  static constexpr auto fields() {
    return std::make_tuple(field("image", &image_pull_request::image),
                           field("ifNotPresent", &image_pull_request::if_not_present),
                           field("secrets", &image_pull_request::secrets));
  }
};

struct image_pull_reply {
  static constexpr uint16_t type_id = 45;
  static constexpr const char* type_name = "image_pull_reply";
  image_summary image;
  bool pulled = false;  ///< false: it was already present
  static constexpr auto fields() {
    return std::make_tuple(field("image", &image_pull_reply::image),
                           field("pulled", &image_pull_reply::pulled));
  }
};

/// CLI -> runtime: remove an image by name or id. An image in use by a
/// sandbox is refused. Reply: `image_remove_reply`.
struct image_remove_request {
  static constexpr uint16_t type_id = 46;
  static constexpr const char* type_name = "image_remove_request";
  std::string image;
  static constexpr auto fields() {
    return std::make_tuple(field("image", &image_remove_request::image));
  }
};

struct image_remove_reply {
  static constexpr uint16_t type_id = 47;
  static constexpr const char* type_name = "image_remove_reply";
  std::vector<std::string> removed;  ///< image ids
  int64_t freed_bytes = 0;
  static constexpr auto fields() {
    return std::make_tuple(field("removed", &image_remove_reply::removed),
                           field("freedBytes", &image_remove_reply::freed_bytes));
  }
};

/// runtime -> subscribers (PUB topic "pull"): progress of one pull.
struct image_pull_progress {
  static constexpr uint16_t type_id = 48;
  static constexpr const char* type_name = "image_pull_progress";
  std::string image;
  std::string blob;  ///< digest being fetched; empty once the pull finished
  int64_t blob_done = 0;
  int64_t blob_total = 0;
  int64_t done = 0;   ///< bytes of the whole image fetched so far
  int64_t total = 0;  ///< bytes of the whole image (0 until the manifest is read)
  std::string phase;  ///< "resolving", "downloading", "unpacking", "done", "failed"
  std::string message;
  static constexpr auto fields() {
    return std::make_tuple(
        field("image", &image_pull_progress::image), field("blob", &image_pull_progress::blob),
        field("blobDone", &image_pull_progress::blob_done),
        field("blobTotal", &image_pull_progress::blob_total),
        field("done", &image_pull_progress::done), field("total", &image_pull_progress::total),
        field("phase", &image_pull_progress::phase),
        field("message", &image_pull_progress::message));
  }
};

/// CLI/kubelet -> runtime: run a command in a running container, without a
/// terminal, and return its output and exit code. Output beyond
/// `output_limit` bytes per stream is cut (and says so). Reply: `exec_reply`.
struct exec_request {
  static constexpr uint16_t type_id = 37;
  static constexpr const char* type_name = "exec_request";
  std::string uid;  ///< pod uid (or empty with namespace+name)
  std::string namespace_;
  std::string name;
  std::string container;  ///< empty: the pod's first container
  std::vector<std::string> command;
  int64_t timeout_ms = 0;  ///< 0: none
  std::string stdin_data;
  int64_t output_limit = 1 << 20;
  static constexpr auto fields() {
    return std::make_tuple(
        field("uid", &exec_request::uid), field("namespace", &exec_request::namespace_),
        field("name", &exec_request::name), field("container", &exec_request::container),
        field("command", &exec_request::command), field("timeoutMs", &exec_request::timeout_ms),
        field("stdin", &exec_request::stdin_data),
        field("outputLimit", &exec_request::output_limit));
  }
};

struct exec_reply {
  static constexpr uint16_t type_id = 38;
  static constexpr const char* type_name = "exec_reply";
  int32_t exit_code = 0;
  std::string stdout_data;
  std::string stderr_data;
  bool timed_out = false;
  bool truncated = false;
  static constexpr auto fields() {
    return std::make_tuple(
        field_always("exitCode", &exec_reply::exit_code), field("stdout", &exec_reply::stdout_data),
        field("stderr", &exec_reply::stderr_data), field("timedOut", &exec_reply::timed_out),
        field("truncated", &exec_reply::truncated));
  }
};

/// One container's resource usage, read from its cgroup.
struct container_stats {
  static constexpr const char* type_name = "container_stats";
  std::string uid;
  std::string pod;  ///< namespace/name
  std::string container;
  uint64_t cpu_usage_ns = 0;  ///< cumulative
  uint64_t memory_usage_bytes = 0;
  uint64_t memory_working_set_bytes = 0;
  uint64_t memory_limit_bytes = 0;  ///< 0: unlimited
  uint64_t pids = 0;
  int64_t timestamp_ms = 0;
  static constexpr auto fields() {
    return std::make_tuple(
        field("uid", &container_stats::uid), field("pod", &container_stats::pod),
        field("container", &container_stats::container),
        field("cpuUsageNanoSeconds", &container_stats::cpu_usage_ns),
        field("memoryUsageBytes", &container_stats::memory_usage_bytes),
        field("memoryWorkingSetBytes", &container_stats::memory_working_set_bytes),
        field("memoryLimitBytes", &container_stats::memory_limit_bytes),
        field("pids", &container_stats::pids),
        field("timestampMs", &container_stats::timestamp_ms));
  }
};

/// CLI/kubelet -> runtime: stats of running containers (of one pod if `uid`
/// is set). Reply: `container_stats_reply`.
struct container_stats_request {
  static constexpr uint16_t type_id = 60;
  static constexpr const char* type_name = "container_stats_request";
  std::string uid;
  static constexpr auto fields() {
    return std::make_tuple(field("uid", &container_stats_request::uid));
  }
};

struct container_stats_reply {
  static constexpr uint16_t type_id = 61;
  static constexpr const char* type_name = "container_stats_reply";
  std::vector<container_stats> stats;
  static constexpr auto fields() {
    return std::make_tuple(field("stats", &container_stats_reply::stats));
  }
};

// -- pod supervisor ---------------------------------------------------------------

/// runtime/kubelet -> supervisor: current state of the pod's containers.
/// Reply: `sandbox_status_reply`.
struct supervisor_status_request {
  static constexpr uint16_t type_id = 50;
  static constexpr const char* type_name = "supervisor_status_request";
  static constexpr auto fields() { return std::tuple<>{}; }
};

/// runtime -> supervisor: stop every container (SIGTERM, SIGKILL at the
/// deadline) and stop restarting them. Reply: `sandbox_status_reply` when all
/// have exited.
struct supervisor_stop_request {
  static constexpr uint16_t type_id = 51;
  static constexpr const char* type_name = "supervisor_stop_request";
  int64_t grace_period_seconds = 30;
  static constexpr auto fields() {
    return std::make_tuple(
        field("gracePeriodSeconds", &supervisor_stop_request::grace_period_seconds));
  }
};

/// supervisor -> kubelet (notification, no reply): a container changed state.
/// Only a hint to react fast; the kubelet's periodic relist is the truth.
struct pod_status_notify {
  static constexpr uint16_t type_id = 52;
  static constexpr const char* type_name = "pod_status_notify";
  sandbox_status sandbox;
  static constexpr auto fields() {
    return std::make_tuple(field("sandbox", &pod_status_notify::sandbox));
  }
};

}  // namespace deckhand::wire

#pragma once

/// Pure pieces of the pod worker's lifecycle decisions, the Go kubelet's
/// rules: the grace period a pod is stopped with (pod_workers.go
/// calculateEffectiveGracePeriod, kuberuntime's minimum shutdown window) and
/// spec.activeDeadlineSeconds (active_deadline.go).

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "deckhand/messages/model.hpp"

namespace deckhand::kubelet {

/// Kuberuntime's minimumGracePeriodInSeconds: a graceful stop always gives
/// containers this long after SIGTERM.
inline constexpr int64_t minimum_grace_period_seconds = 2;

/// The grace period to stop a pod with, in seconds. A grace period only ever
/// shrinks: `in_force` is the one already sent (-1: none). `desired` is the
/// pod as the API server last showed it (null for an orphan); a
/// deletionTimestamp brings its deletionGracePeriodSeconds, and
/// `override_seconds` (-1: none) is a kill the kubelet decided on (0: the
/// object was force-deleted, SIGKILL at once). Without either, the pod's
/// terminationGracePeriodSeconds. A graceful stop gets at least
/// `minimum_grace_period_seconds`; only an override of 0 means none.
int64_t effective_grace_period(const wire::pod* desired, int64_t in_force,
                               int64_t override_seconds);

/// Kubernetes' activeDeadlineHandler: how much longer the pod may run, given
/// how long it has been active; nothing when it has no deadline. Zero or
/// negative: the deadline has passed.
std::optional<std::chrono::milliseconds> active_deadline_left(const wire::pod_spec& spec,
                                                              std::chrono::milliseconds active_for);

/// How long a pod has been active, from its status.startTime (RFC 3339) and
/// the current wall time; zero for an empty, unparsable or future time.
std::chrono::milliseconds active_duration(const std::string& start_time,
                                          std::chrono::system_clock::time_point now);

/// RFC 3339 UTC ("2026-01-01T00:00:00Z", fractions and offsets accepted).
std::optional<std::chrono::system_clock::time_point> parse_rfc3339_time(const std::string& text);

}  // namespace deckhand::kubelet

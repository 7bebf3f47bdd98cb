#pragma once

/// kubectl's human-readable output: the columns of `get pods`, `get svc`,
/// `get ep` and `get endpointslices`, computed from the objects exactly as
/// kubectl computes them, and its tab-aligned table layout.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/api/time.hpp"

namespace deckhand::cli {

using wall_time = std::chrono::system_clock::time_point;

/// Parses an RFC 3339 timestamp (`2024-05-01T10:00:00Z`, fractional seconds
/// and numeric offsets accepted).
std::optional<wall_time> parse_rfc3339(const std::string& text);

/// `t` as RFC 3339 UTC with second precision, as Kubernetes writes times.
using api::format_rfc3339;

/// kubectl's HumanDuration: `5s`, `3m2s`, `15m`, `4h`, `2d5h`, `1y30d`.
std::string human_duration(std::chrono::nanoseconds d);

/// The age of `timestamp` at `now`, `<unknown>` when it is missing or invalid.
std::string age_since(const std::string& timestamp, wall_time now);

/// STATUS column of `kubectl get pods`: Terminating while deleting; else the
/// reason of a waiting or terminated (init) container (CrashLoopBackOff,
/// Completed, Error, ...); else the pod's reason or phase.
std::string pod_status_text(const nlohmann::json& pod);

/// READY column: ready containers / containers in the spec, e.g. `1/2`.
std::string pod_ready_text(const nlohmann::json& pod);

/// RESTARTS column: the sum of restart counts, with `(5m ago)` since the last
/// container termination when there were restarts.
std::string pod_restarts_text(const nlohmann::json& pod, wall_time now);

/// A table laid out like kubectl's tab writer: each column as wide as its
/// widest cell plus three spaces (at least six), the last column unpadded.
std::string format_table(const std::vector<std::vector<std::string>>& rows);

struct table_options {
  bool wide = false;
  bool all_namespaces = false;  ///< adds a leading NAMESPACE column
};

/// `kubectl get pods`: NAME READY STATUS RESTARTS AGE (+ IP NODE when wide).
std::string format_pod_table(const std::vector<nlohmann::json>& pods, const table_options& opts,
                             wall_time now);

/// `kubectl get svc`: NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE
/// (+ SELECTOR when wide).
std::string format_service_table(const std::vector<nlohmann::json>& services,
                                 const table_options& opts, wall_time now);

/// ENDPOINTS column of `kubectl get ep`: ready `IP:PORT`s, three at most
/// (`a,b,c + 2 more...`), `<none>` without any.
std::string endpoints_text(const nlohmann::json& endpoints);

/// `kubectl get endpoints`: NAME ENDPOINTS AGE.
std::string format_endpoints_table(const std::vector<nlohmann::json>& endpoints,
                                   const table_options& opts, wall_time now);

/// `kubectl get endpointslices`: NAME ADDRESSTYPE PORTS ENDPOINTS AGE.
std::string format_endpoint_slice_table(const std::vector<nlohmann::json>& slices,
                                        const table_options& opts, wall_time now);

/// Bytes as `docker images` and `crictl images` print them (`4.28MB`).
std::string human_size(int64_t bytes);

}  // namespace deckhand::cli

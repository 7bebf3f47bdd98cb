#pragma once

/// How a container's end becomes a Kubernetes `ContainerStateTerminated`, and
/// the RFC 3339 timestamps that status carries.

#include <filesystem>
#include <optional>
#include <string>

#include "deckhand/messages/model.hpp"
#include "deckhand/supervisor/backoff.hpp"

namespace deckhand::supervisor {

/// How a container ended. `known` is false when the supervisor could not see
/// the exit status (it was not the container's parent, or was down).
struct exit_info {
  bool known = true;
  int code = 0;         ///< exit code, or 128 + signal
  int signal = 0;       ///< terminating signal, or 0
  std::string message;  ///< extra text (e.g. why a start failed)
  std::string reason;   ///< overrides the derived reason when not empty

  /// From a waitpid() status word.
  static exit_info from_wait_status(int raw);
  /// The supervisor did not see the exit: reported as 137, never invented.
  static exit_info unknown();
  /// `runc run` failed: the container never ran.
  static exit_info start_error(std::string message);
};

/// Exit code recorded for an exit the supervisor could not observe.
constexpr int unknown_exit_code = 137;
constexpr const char* unknown_exit_reason = "ContainerStatusUnknown";
constexpr const char* unknown_exit_message =
    "the container exited while its supervisor was down; exit code unknown";

/// The terminated state for `e`: reason `Completed` for 0, `Error` otherwise,
/// `ContainerStatusUnknown` for an unknown exit.
wire::container_state_terminated terminated_state(const exit_info& e, const std::string& started_at,
                                                  const std::string& finished_at,
                                                  const std::string& container_id);

/// The OCI annotation the runtime copies an image's StopSignal into.
constexpr const char* stop_signal_annotation = "org.opencontainers.image.stopSignal";

/// The stop signal of the container whose OCI bundle is `bundle`: its
/// config.json's stopSignal annotation, SIGTERM when absent or unreadable.
int bundle_stop_signal(const std::filesystem::path& bundle);

/// `2024-05-01T12:00:00Z` (UTC, seconds, as Kubernetes prints times).
std::string rfc3339(time_point t);

/// Parses what `rfc3339` prints (fractional seconds and a numeric offset are
/// accepted too); nullopt for anything else.
std::optional<time_point> parse_rfc3339(const std::string& s);

}  // namespace deckhand::supervisor

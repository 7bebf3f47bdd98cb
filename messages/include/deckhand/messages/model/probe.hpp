#pragma once

/// Probes and lifecycle hooks of a container (core/v1 Probe, LifecycleHandler).

#include <cstdint>
#include <string>
#include <vector>

#include "deckhand/messages/fields.hpp"

namespace deckhand::wire {

struct exec_action {
  static constexpr const char* type_name = "exec_action";
  std::vector<std::string> command;
  static constexpr auto fields() {
    return std::make_tuple(field("command", &exec_action::command));
  }
};

struct http_header {
  static constexpr const char* type_name = "http_header";
  std::string name;
  std::string value;
  static constexpr auto fields() {
    return std::make_tuple(field("name", &http_header::name), field("value", &http_header::value));
  }
};

/// `httpGet`: `port` is a number or the name of a container port; `host`
/// defaults to the pod IP, `scheme` to HTTP, `path` to "/".
struct http_get_action {
  static constexpr const char* type_name = "http_get_action";
  std::string path;
  int_or_string port;
  std::string host;
  std::string scheme;
  std::vector<http_header> http_headers;
  static constexpr auto fields() {
    return std::make_tuple(
        field("path", &http_get_action::path), field("port", &http_get_action::port),
        field("host", &http_get_action::host), field("scheme", &http_get_action::scheme),
        field("httpHeaders", &http_get_action::http_headers));
  }
};

struct tcp_socket_action {
  static constexpr const char* type_name = "tcp_socket_action";
  int_or_string port;
  std::string host;
  static constexpr auto fields() {
    return std::make_tuple(field("port", &tcp_socket_action::port),
                           field("host", &tcp_socket_action::host));
  }
};

struct sleep_action {
  static constexpr const char* type_name = "sleep_action";
  int64_t seconds = 0;
  static constexpr auto fields() {
    return std::make_tuple(field_always("seconds", &sleep_action::seconds));
  }
};

/// A probe, with Kubernetes' defaults for the fields a manifest leaves out.
struct probe {
  static constexpr const char* type_name = "probe";
  opt<exec_action> exec;
  opt<http_get_action> http_get;
  opt<tcp_socket_action> tcp_socket;
  int32_t initial_delay_seconds = 0;
  int32_t timeout_seconds = 1;
  int32_t period_seconds = 10;
  int32_t success_threshold = 1;
  int32_t failure_threshold = 3;
  opt<int64_t> termination_grace_period_seconds;
  static constexpr auto fields() {
    return std::make_tuple(
        field("exec", &probe::exec), field("httpGet", &probe::http_get),
        field("tcpSocket", &probe::tcp_socket),
        field("initialDelaySeconds", &probe::initial_delay_seconds),
        field("timeoutSeconds", &probe::timeout_seconds),
        field("periodSeconds", &probe::period_seconds),
        field("successThreshold", &probe::success_threshold),
        field("failureThreshold", &probe::failure_threshold),
        field("terminationGracePeriodSeconds", &probe::termination_grace_period_seconds));
  }
};

/// A `postStart` or `preStop` handler: exactly one action is set.
struct lifecycle_handler {
  static constexpr const char* type_name = "lifecycle_handler";
  opt<exec_action> exec;
  opt<http_get_action> http_get;
  opt<tcp_socket_action> tcp_socket;
  opt<sleep_action> sleep;
  static constexpr auto fields() {
    return std::make_tuple(field("exec", &lifecycle_handler::exec),
                           field("httpGet", &lifecycle_handler::http_get),
                           field("tcpSocket", &lifecycle_handler::tcp_socket),
                           field("sleep", &lifecycle_handler::sleep));
  }
};

struct lifecycle {
  static constexpr const char* type_name = "lifecycle";
  opt<lifecycle_handler> post_start;
  opt<lifecycle_handler> pre_stop;
  static constexpr auto fields() {
    return std::make_tuple(field("postStart", &lifecycle::post_start),
                           field("preStop", &lifecycle::pre_stop));
  }
};

}  // namespace deckhand::wire

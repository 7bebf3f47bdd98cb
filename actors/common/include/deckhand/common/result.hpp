#pragma once

/// Errors as values for code that crosses a boundary (syscalls, files, ZeroMQ,
/// msgpack, HTTP). Handlers return `result<T>` instead of throwing.

#include <cerrno>
#include <cstring>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <variant>

namespace deckhand {

/// Coarse classification of an error, stable enough to map onto HTTP status
/// codes and wire error replies.
enum class errc : int {
  ok = 0,
  invalid = 1,  ///< bad input: manifest, message, request
  not_found = 2,
  already_exists = 3,
  conflict = 4,     ///< resourceVersion mismatch, immutable field change
  unavailable = 5,  ///< peer down, deadline exceeded
  io = 6,           ///< syscall or file failure
  internal = 7,
  too_large = 8,
  unsupported = 9,
};

const char* to_string(errc c);

/// An error: a class and a human-readable message with context.
struct error {
  errc code = errc::ok;
  std::string message;

  error() = default;
  error(errc c, std::string msg) : code(c), message(std::move(msg)) {}

  explicit operator bool() const { return code != errc::ok; }

  /// An `errc::io` error whose message is `context: strerror(errno_value)`.
  static error from_errno(const std::string& context, int errno_value = errno) {
    return {errc::io, context + ": " + std::strerror(errno_value)};
  }
};

/// Either a value or an error.
template <class T>
class result {
 public:
  result(T value) : v_(std::move(value)) {}
  result(error err) : v_(std::move(err)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const error& err() const& { return std::get<1>(v_); }
  error&& err() && { return std::get<1>(std::move(v_)); }

 private:
  std::variant<T, error> v_;
};

/// Success or an error, for operations without a value.
#define DECKHAND_HAS_RESULT_VOID 1
template <>
class result<void> {
 public:
  result() = default;
  /// An error value; an `errc::ok` error counts as success.
  result(error err) {
    if (err)
      err_ = std::move(err);
  }

  bool ok() const { return !err_; }
  explicit operator bool() const { return ok(); }

  const error& err() const& { return *err_; }
  error&& err() && { return std::move(*err_); }

 private:
  std::optional<error> err_;
};

inline const char* to_string(errc c) {
  switch (c) {
  case errc::ok: return "ok";
  case errc::invalid: return "invalid";
  case errc::not_found: return "not_found";
  case errc::already_exists: return "already_exists";
  case errc::conflict: return "conflict";
  case errc::unavailable: return "unavailable";
  case errc::io: return "io";
  case errc::internal: return "internal";
  case errc::too_large: return "too_large";
  case errc::unsupported: return "unsupported";
  }
  return "unknown";
}

inline std::ostream& operator<<(std::ostream& os, errc c) { return os << to_string(c); }

}  // namespace deckhand

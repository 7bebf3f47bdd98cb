#pragma once

/// `deckhand::result<void>`: success or an error, for operations with no
/// value. deckhand_common's result.hpp has no such specialization yet; this
/// one belongs there (with the guard macro defined) and becomes a no-op once
/// it is.

#include <optional>
#include <utility>

#include "deckhand/common/result.hpp"

#ifndef DECKHAND_HAS_RESULT_VOID
#define DECKHAND_HAS_RESULT_VOID 1

namespace deckhand {

template <>
class result<void> {
 public:
  /// Success.
  result() = default;
  result(error err) : err_(std::move(err)) {}

  bool ok() const { return !err_; }
  explicit operator bool() const { return ok(); }

  const error& err() const& { return *err_; }
  error&& err() && { return std::move(*err_); }

 private:
  std::optional<error> err_;
};

}  // namespace deckhand

#endif

#pragma once

/// Signal names as people and manifests write them ("SIGTERM", "TERM",
/// "term", "15") and back.

#include <string>
#include <string_view>

#include "deckhand/common/result.hpp"

namespace deckhand::common {

/// The signal `text` names: a name with or without the "SIG" prefix in any
/// case, or a decimal number below NSIG. `errc::invalid` otherwise.
result<int> parse_signal(std::string_view text);

/// "SIGTERM" for SIGTERM; "SIG<n>" for a number without a name (real-time
/// signals).
std::string signal_name(int sig);

}  // namespace deckhand::common

#pragma once

/// SHA-256 (FIPS 180-4) of a memory buffer, for the few places outside the
/// image store that need a stable digest (static pod uids, proxy chain
/// names). Those processes would otherwise load libcrypto for it, whose
/// relocated data alone costs each of them ~400 kB of private memory.

#include <array>
#include <cstdint>
#include <string_view>

namespace deckhand::sha256 {

using digest = std::array<uint8_t, 32>;

digest of(std::string_view data);

}  // namespace deckhand::sha256

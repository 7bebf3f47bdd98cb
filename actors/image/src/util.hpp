#pragma once

/// Small internal helpers shared by the store, the unpacker and the builder.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "deckhand/common/result.hpp"
#include "deckhand/common/unique_fd.hpp"

namespace deckhand::image::detail {

using common::unique_fd;

/// Incremental SHA-256.
class sha256 {
 public:
  sha256();
  ~sha256();
  sha256(const sha256&) = delete;
  sha256& operator=(const sha256&) = delete;
  void update(const void* data, std::size_t n);
  /// `sha256:<hex>`; the hasher is spent afterwards.
  std::string digest();

 private:
  EVP_MD_CTX* ctx_;
};

/// `sha256:<hex>` of a byte string.
std::string sha256_of(std::string_view data);

/// Opens `rel` below the directory `dirfd` with RESOLVE_IN_ROOT, so symlinks
/// inside an untrusted tree resolve as if `dirfd` were `/`.
result<unique_fd> open_in_root(int dirfd, const std::string& rel, int flags = O_RDONLY);

/// Reads what `fd` has left, at most `max` bytes.
result<std::string> read_fd(int fd, std::uint64_t max, const std::string& what);

/// Removes `name` in `dirfd` and, for a directory, everything below it,
/// never following a symlink.
error remove_at(int dirfd, const char* name);

/// Removes a tree by path without following symlinks; missing is fine.
error remove_tree(const std::filesystem::path& p);

/// A fresh directory `parent/<prefix>XXXXXX`.
result<std::filesystem::path> make_temp_dir(const std::filesystem::path& parent,
                                            const std::string& prefix);

}  // namespace deckhand::image::detail

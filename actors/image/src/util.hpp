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

namespace deckhand::image::detail {

/// An owned file descriptor.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o)
      reset(o.release());
    return *this;
  }
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  ~unique_fd() { reset(); }

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

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

/// Reads a whole file of at most `max` bytes.
result<std::string> read_fd(int fd, std::uint64_t max, const std::string& what);
result<std::string> read_file(const std::filesystem::path& p, std::uint64_t max);

/// Writes `data` to `p` through `p.tmp.<pid>`, fsync and rename, then fsyncs
/// the directory, so readers see the old or the new content, never a mix.
error write_file_atomic(const std::filesystem::path& p, std::string_view data);

/// fsync of a directory (makes renames inside it durable).
error fsync_dir(const std::filesystem::path& dir);

/// Removes `name` in `dirfd` and, for a directory, everything below it,
/// never following a symlink.
error remove_at(int dirfd, const char* name);

/// Removes a tree by path without following symlinks; missing is fine.
error remove_tree(const std::filesystem::path& p);

/// A fresh directory `parent/<prefix>XXXXXX`.
result<std::filesystem::path> make_temp_dir(const std::filesystem::path& parent,
                                            const std::string& prefix);

}  // namespace deckhand::image::detail

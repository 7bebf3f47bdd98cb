#pragma once

/// The one owned file descriptor type (crun's habit: every descriptor a
/// process code path opens has an owner that closes it).

namespace deckhand::common {

/// Owns one file descriptor and closes it on destruction. Move-only.
/// Closing never changes `errno`, so an error path can build its message
/// from `errno` after the descriptors it opened have gone out of scope.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
  unique_fd& operator=(unique_fd&& other) noexcept {
    if (this != &other)
      reset(other.release());
    return *this;
  }
  ~unique_fd() { reset(); }

  /// The descriptor, or -1.
  int get() const { return fd_; }

  /// Gives up ownership without closing.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

  /// Closes the current descriptor (if any and if it is not `fd`) and takes
  /// `fd`.
  void reset(int fd = -1);

  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

}  // namespace deckhand::common

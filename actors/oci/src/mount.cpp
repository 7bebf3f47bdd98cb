#include "deckhand/oci/mount.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <system_error>

namespace deckhand::oci {

namespace fs = std::filesystem;

namespace {

/// overlayfs takes its options in one page.
constexpr std::size_t max_mount_data = 4095;

bool has_option_separator(const fs::path& p) {
  const std::string& s = p.native();
  return s.find(':') != std::string::npos || s.find(',') != std::string::npos;
}

}  // namespace

bool is_mountpoint(const fs::path& path) {
#if defined(STATX_ATTR_MOUNT_ROOT)
  struct statx stx {};
  if (::statx(AT_FDCWD, path.c_str(), 0, STATX_BASIC_STATS, &stx) != 0)
    return false;
  if (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT)
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
#endif
  // Older kernels: a mount root sits on another device than its parent, or is
  // its own parent (/). Misses a bind mount within one filesystem.
  struct stat self {
  }, parent{};
  if (::stat(path.c_str(), &self) != 0)
    return false;
  fs::path up = path.has_parent_path() ? path.parent_path() : fs::path("..");
  if (S_ISDIR(self.st_mode))
    up = path / "..";
  if (::stat(up.c_str(), &parent) != 0)
    return false;
  return self.st_dev != parent.st_dev || self.st_ino == parent.st_ino;
}

result<void> mount_overlay(const std::vector<fs::path>& lower_dirs, const fs::path& upper,
                           const fs::path& work, const fs::path& target) {
  if (lower_dirs.empty())
    return error{errc::invalid, "overlay: no lower directories"};
  std::string lower;
  for (auto& dir : lower_dirs) {
    if (dir.empty() || has_option_separator(dir))
      return error{errc::invalid, "overlay: unusable lower directory: " + dir.string()};
    if (!lower.empty())
      lower += ':';
    lower += dir.string();
  }
  for (auto* p : {&upper, &work, &target})
    if (p->empty() || has_option_separator(*p))
      return error{errc::invalid, "overlay: unusable path: " + p->string()};
  if (is_mountpoint(target))
    return error{errc::already_exists, "overlay: already mounted: " + target.string()};
  for (auto* p : {&upper, &work, &target}) {
    std::error_code ec;
    fs::create_directories(*p, ec);
    if (ec)
      return error{errc::io, "overlay: create " + p->string() + ": " + ec.message()};
  }
  std::string data =
      "lowerdir=" + lower + ",upperdir=" + upper.string() + ",workdir=" + work.string();
  if (data.size() > max_mount_data)
    return error{errc::too_large, "overlay: mount options exceed one page (" +
                                      std::to_string(lower_dirs.size()) + " layers)"};
  if (::mount("overlay", target.c_str(), "overlay", 0, data.c_str()) != 0)
    return error::from_errno("mount overlay on " + target.string());
  return {};
}

result<void> unmount(const fs::path& target) {
  // Loop: mounts can be stacked on one path, and cleanup wants them all gone.
  for (int i = 0; i < 32; ++i) {
    if (::umount2(target.c_str(), UMOUNT_NOFOLLOW) == 0)
      continue;
    int err = errno;
    if (err == ENOENT)
      return {};
    if (err == EINVAL && !is_mountpoint(target))
      return {};
    if (err == EBUSY) {
      if (::umount2(target.c_str(), MNT_DETACH | UMOUNT_NOFOLLOW) == 0)
        continue;
      err = errno;
    }
    return error::from_errno("umount " + target.string(), err);
  }
  return error{errc::internal, "umount " + target.string() + ": still mounted"};
}

}  // namespace deckhand::oci

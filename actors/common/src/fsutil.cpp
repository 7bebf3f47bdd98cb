#include "deckhand/common/fsutil.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <random>

#include "deckhand/common/unique_fd.hpp"

namespace deckhand::fsutil {

using common::unique_fd;

error sync_dir(const std::filesystem::path& dir) {
  unique_fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd)
    return error::from_errno("open " + dir.string());
  if (::fsync(fd.get()) != 0)
    return error::from_errno("fsync " + dir.string());
  return {};
}

error write_file_atomic(const std::filesystem::path& path, std::string_view data, durability d,
                        unsigned mode) {
  std::random_device rd;
  auto tmp = path;
  tmp += ".tmp." + std::to_string(rd());
  {
    unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd)
      return error::from_errno("create " + tmp.string());
    std::size_t off = 0;
    while (off < data.size()) {
      auto n = ::write(fd.get(), data.data() + off, data.size() - off);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        auto err = error::from_errno("write " + tmp.string());
        ::unlink(tmp.c_str());
        return err;
      }
      off += static_cast<std::size_t>(n);
    }
    if (d == durability::machine_crash && ::fsync(fd.get()) != 0) {
      auto err = error::from_errno("fsync " + tmp.string());
      ::unlink(tmp.c_str());
      return err;
    }
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto err = error::from_errno("rename " + tmp.string());
    ::unlink(tmp.c_str());
    return err;
  }
  if (d == durability::process_crash)
    return {};
  return sync_dir(path.parent_path().empty() ? "." : path.parent_path());
}

result<std::string> read_file(const std::filesystem::path& path, std::size_t max_size) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd)
    return error(errno == ENOENT ? errc::not_found : errc::io,
                 "open " + path.string() + ": " + std::strerror(errno));
  std::string out;
  char buf[65536];
  while (true) {
    auto n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return error::from_errno("read " + path.string());
    }
    if (n == 0)
      break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_size)
      return error(errc::too_large,
                   path.string() + " is larger than " + std::to_string(max_size) + " bytes");
  }
  return out;
}

}  // namespace deckhand::fsutil

#include "deckhand/runtime/ipam.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <set>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/common/process.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;
using net::ipv4;

namespace {

constexpr const char* lock_name = ".lock";
/// Where the last handed-out address is remembered. Only a hint for where the
/// next search starts, so it is written without fsync.
constexpr const char* last_name = ".last";

/// An exclusive flock on DIR/.lock, held while alive.
class dir_lock {
 public:
  static result<dir_lock> take(const fs::path& dir) {
    auto fd = common::open_fd(dir / lock_name, O_RDWR | O_CREAT, 0600);
    if (!fd)
      return std::move(fd).err();
    int rc;
    do
      rc = ::flock(fd->get(), LOCK_EX);
    while (rc != 0 && errno == EINTR);
    if (rc != 0)
      return error::from_errno("ipam: flock " + (dir / lock_name).string());
    return dir_lock(std::move(*fd));
  }

 private:
  explicit dir_lock(common::unique_fd fd) : fd_(std::move(fd)) {}
  common::unique_fd fd_;  // closing it drops the lock
};

std::optional<std::string> read_link(const fs::path& p) {
  char buf[256];
  ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf)
    return std::nullopt;
  return std::string(buf, static_cast<std::size_t>(n));
}

/// (address, uid) of every entry of `dir` that names an address of `cidr`.
std::vector<std::pair<ipv4, std::string>> scan(const fs::path& dir, const net::ipv4_cidr& cidr) {
  std::vector<std::pair<ipv4, std::string>> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d)
    return out;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] == '.')
      continue;
    auto ip = ipv4::parse(e->d_name);
    if (!ip || !cidr.contains(*ip))
      continue;
    if (auto uid = read_link(dir / e->d_name))
      out.emplace_back(*ip, std::move(*uid));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

fs::path ipam_dir(const fs::path& data_dir, const net::ipv4_cidr& cidr) {
  return paths::runtime_dir(data_dir) / "ipam" /
         (cidr.network.to_string() + "_" + std::to_string(cidr.prefix));
}

result<ip_allocator> ip_allocator::open(const fs::path& dir, const net::ipv4_cidr& cidr) {
  if (cidr.prefix > 30)
    return error{errc::invalid,
                 "pod CIDR " + cidr.to_string() + " has no room for pods (at most /30)"};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return error{errc::io, "ipam: create " + dir.string() + ": " + ec.message()};
  return ip_allocator(dir, cidr);
}

result<ipv4> ip_allocator::allocate(const std::string& uid) {
  if (uid.empty() || uid.size() > 200 || uid.find('/') != std::string::npos)
    return error{errc::invalid, "ipam: unusable pod uid \"" + uid + "\""};
  auto lock = dir_lock::take(dir_);
  if (!lock)
    return std::move(lock).err();
  auto current = scan(dir_, cidr_);
  std::set<std::uint32_t> taken;
  for (const auto& [ip, owner] : current) {
    if (owner == uid)
      return ip;
    taken.insert(ip.value);
  }

  const std::uint32_t first = cidr_.gateway().value + 1;
  const std::uint32_t last = cidr_.broadcast().value - 1;
  const std::uint32_t count = last - first + 1;
  std::uint32_t start = first;
  if (auto hint = read_link(dir_ / last_name))
    if (auto h = ipv4::parse(*hint); h && h->value >= first && h->value < last)
      start = h->value + 1;
  for (std::uint32_t i = 0; i < count; ++i) {
    std::uint32_t candidate = first + (start - first + i) % count;
    if (taken.count(candidate))
      continue;
    ipv4 ip{candidate};
    auto entry = dir_ / ip.to_string();
    if (::symlink(uid.c_str(), entry.c_str()) != 0) {
      if (errno == EEXIST)
        continue;  // a malformed entry scan() skipped, or a writer without the lock
      return error::from_errno("ipam: create " + entry.string());
    }
    if (auto err = fsutil::sync_dir(dir_)) {
      ::unlink(entry.c_str());
      return err;
    }
    auto tmp = dir_ / (std::string(last_name) + ".tmp");
    ::unlink(tmp.c_str());
    if (::symlink(ip.to_string().c_str(), tmp.c_str()) == 0)
      ::rename(tmp.c_str(), (dir_ / last_name).c_str());
    return ip;
  }
  return error{errc::unavailable, "ipam: no free address left in pod CIDR " + cidr_.to_string()};
}

std::optional<ipv4> ip_allocator::lookup(const std::string& uid) const {
  for (const auto& [ip, owner] : scan(dir_, cidr_))
    if (owner == uid)
      return ip;
  return std::nullopt;
}

error ip_allocator::release(const std::string& uid) {
  auto lock = dir_lock::take(dir_);
  if (!lock)
    return std::move(lock).err();
  bool changed = false;
  for (const auto& [ip, owner] : scan(dir_, cidr_)) {
    if (owner != uid)
      continue;
    auto entry = dir_ / ip.to_string();
    if (::unlink(entry.c_str()) != 0 && errno != ENOENT)
      return error::from_errno("ipam: remove " + entry.string());
    changed = true;
  }
  if (changed)
    return fsutil::sync_dir(dir_);
  return {};
}

std::vector<std::pair<ipv4, std::string>> ip_allocator::allocations() const {
  return scan(dir_, cidr_);
}

}  // namespace deckhand::runtime

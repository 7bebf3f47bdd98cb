#include "deckhand/net/netns.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <thread>
#include <vector>

#include "deckhand/common/process.hpp"
#include "deckhand/common/unique_fd.hpp"
#include "deckhand/oci/mount.hpp"

namespace deckhand::net {

namespace fs = std::filesystem;
using common::open_fd;
using common::unique_fd;
using oci::is_mountpoint;
using oci::unmount;

namespace {

constexpr long nsfs_magic = 0x6e736673;

struct wanted_ns {
  const fs::path* file;
  int flag;
  const char* proc_name;  ///< entry under /proc/thread-self/ns
};

/// Runs in the throw-away thread, after unshare(): the thread is already in
/// the new namespaces.
error set_up_and_mount(const std::vector<wanted_ns>& missing, const std::string& hostname,
                       std::vector<const fs::path*>& mounted) {
  for (const auto& w : missing) {
    if (w.flag == CLONE_NEWUTS && !hostname.empty() &&
        ::sethostname(hostname.data(), hostname.size()) != 0)
      return error::from_errno("namespaces: sethostname " + hostname);
    if (w.flag == CLONE_NEWNET) {
      unique_fd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      if (!sock)
        return error::from_errno("namespaces: socket");
      ifreq ifr{};
      std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
      if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0)
        return error::from_errno("namespaces: SIOCGIFFLAGS lo");
      ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
      if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0)
        return error::from_errno("namespaces: SIOCSIFFLAGS lo");
    }
    // /proc/self is the thread group leader, which stayed where it was.
    std::string source = std::string("/proc/thread-self/ns/") + w.proc_name;
    if (::mount(source.c_str(), w.file->c_str(), nullptr, MS_BIND, nullptr) != 0)
      return error::from_errno("namespaces: bind mount " + source + " on " + w.file->string());
    mounted.push_back(w.file);
  }
  return {};
}

}  // namespace

bool is_netns_mount(const fs::path& file) {
  struct statfs sfs {};
  if (::statfs(file.c_str(), &sfs) != 0)
    return false;
  return static_cast<long>(sfs.f_type) == nsfs_magic;
}

result<void> create_namespaces(const namespace_files& files, const std::string& hostname) {
  std::vector<wanted_ns> missing;
  for (const auto& w :
       {wanted_ns{&files.net, CLONE_NEWNET, "net"}, wanted_ns{&files.uts, CLONE_NEWUTS, "uts"},
        wanted_ns{&files.ipc, CLONE_NEWIPC, "ipc"}})
    if (!w.file->empty() && !is_netns_mount(*w.file))
      missing.push_back(w);
  if (missing.empty())
    return {};

  std::vector<const fs::path*> created_files;
  auto discard_files = [&] {
    for (const auto* f : created_files)
      if (!is_mountpoint(*f))
        ::unlink(f->c_str());
  };
  int flags = 0;
  for (const auto& w : missing) {
    std::error_code ec;
    if (w.file->has_parent_path())
      fs::create_directories(w.file->parent_path(), ec);
    if (ec) {
      discard_files();
      return error{errc::io,
                   "namespaces: create " + w.file->parent_path().string() + ": " + ec.message()};
    }
    auto fd = open_fd(*w.file, O_RDONLY | O_CREAT, 0444);
    if (!fd) {
      discard_files();
      return fd.err();
    }
    created_files.push_back(w.file);
    flags |= w.flag;
  }

  // The thread shares our mount namespace, so its bind mounts are ours too.
  error err;
  std::vector<const fs::path*> mounted;
  try {
    std::thread t([&] {
      if (::unshare(flags) != 0) {
        err = error::from_errno("namespaces: unshare");
        return;
      }
      err = set_up_and_mount(missing, hostname, mounted);
    });
    t.join();
  } catch (const std::system_error& e) {
    err = error{errc::io, std::string("namespaces: thread: ") + e.what()};
  }
  if (err) {
    for (const auto* f : mounted)
      (void)unmount(*f);
    discard_files();
    return err;
  }
  return {};
}

result<void> create_netns(const fs::path& file) { return create_namespaces({file, {}, {}}); }

result<void> remove_netns(const fs::path& file) {
  if (auto r = unmount(file); !r)
    return r;
  if (::unlink(file.c_str()) != 0 && errno != ENOENT)
    return error::from_errno("netns: unlink " + file.string());
  return {};
}

}  // namespace deckhand::net

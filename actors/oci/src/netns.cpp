#include "deckhand/oci/netns.hpp"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "deckhand/oci/mount.hpp"
#include "deckhand/oci/process.hpp"

namespace deckhand::oci {

namespace fs = std::filesystem;

namespace {

constexpr long nsfs_magic = 0x6e736673;

struct child_failure {
  int stage;
  int err;
};

enum stage : int { stage_unshare = 1, stage_socket, stage_lo_get, stage_lo_set, stage_mount };

const char* stage_name(int s) {
  switch (s) {
    case stage_unshare: return "unshare(CLONE_NEWNET)";
    case stage_socket: return "socket";
    case stage_lo_get: return "SIOCGIFFLAGS lo";
    case stage_lo_set: return "SIOCSIFFLAGS lo";
    case stage_mount: return "bind mount";
  }
  return "child";
}

[[noreturn]] void fail(int fd, int s) {
  child_failure f{s, errno};
  while (::write(fd, &f, sizeof f) < 0 && errno == EINTR) {
  }
  ::_exit(1);
}

} // namespace

bool is_netns_mount(const fs::path& file) {
  struct statfs sfs {};
  if (::statfs(file.c_str(), &sfs) != 0)
    return false;
  return static_cast<long>(sfs.f_type) == nsfs_magic;
}

result<void> create_netns(const fs::path& file) {
  if (is_netns_mount(file))
    return {};
  std::error_code ec;
  if (file.has_parent_path())
    fs::create_directories(file.parent_path(), ec);
  if (ec)
    return error{errc::io, "netns: create " + file.parent_path().string() + ": " + ec.message()};
  {
    auto fd = open_fd(file, O_RDONLY | O_CREAT, 0444);
    if (!fd)
      return fd.err();
  }
  auto report = make_pipe();
  if (!report)
    return report.err();
  const int report_w = report->second.get();
  const std::string target = file.string();
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);

  // The namespace is made by a child that exists only for this: unshare()
  // in a multi-threaded caller would move just one of its threads. The child
  // shares our mount namespace, so its bind mount is ours too.
  pid_t pid = ::fork();
  if (pid < 0)
    return error::from_errno("fork");
  if (pid == 0) {
    if (::unshare(CLONE_NEWNET) != 0)
      fail(report_w, stage_unshare);
    int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
      fail(report_w, stage_socket);
    if (::ioctl(sock, SIOCGIFFLAGS, &ifr) != 0)
      fail(report_w, stage_lo_get);
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    if (::ioctl(sock, SIOCSIFFLAGS, &ifr) != 0)
      fail(report_w, stage_lo_set);
    if (::mount("/proc/self/ns/net", target.c_str(), nullptr, MS_BIND, nullptr) != 0)
      fail(report_w, stage_mount);
    ::_exit(0);
  }
  report->second.reset();
  auto st = wait_with_deadline(pid, std::chrono::seconds(10));
  if (!st) {
    kill_and_reap(pid, false);
    ::unlink(target.c_str());
    return error{errc::unavailable, "netns: child creating " + target + " hung"};
  }
  if (st->exited() && st->code() == 0)
    return {};
  child_failure f{};
  ssize_t n = ::read(report->first.get(), &f, sizeof f);
  if (!is_mountpoint(file))
    ::unlink(target.c_str());
  if (n == static_cast<ssize_t>(sizeof f))
    return error::from_errno("netns " + target + ": " + stage_name(f.stage), f.err);
  return error{errc::internal, "netns " + target + ": child " + st->describe()};
}

result<void> remove_netns(const fs::path& file) {
  if (auto r = unmount(file); !r)
    return r;
  if (::unlink(file.c_str()) != 0 && errno != ENOENT)
    return error::from_errno("netns: unlink " + file.string());
  return {};
}

} // namespace deckhand::oci

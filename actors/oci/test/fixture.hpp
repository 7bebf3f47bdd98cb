#pragma once

/// Shared test scaffolding: a temporary directory that is cleaned up however
/// a test ends (containers deleted, mounts and namespaces removed, children
/// reaped), and a busybox root filesystem to run containers from.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "deckhand/net/netns.hpp"
#include "deckhand/testing/skip.hpp"

#include "deckhand/common/process.hpp"
#include "deckhand/oci/bundle.hpp"
#include "deckhand/oci/mount.hpp"
#include "deckhand/oci/runc.hpp"

namespace deckhand::oci {
inline std::ostream& operator<<(std::ostream& os, container_status s) { return os << to_string(s); }
}  // namespace deckhand::oci

namespace deckhand::oci::test {

namespace fs = std::filesystem;

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

/// Mount points at or below `prefix`, deepest first, from mountinfo.
inline std::vector<fs::path> mounts_under(const fs::path& prefix) {
  std::vector<fs::path> found;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  const std::string pre = prefix.string();
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mnt;
    fields >> id >> parent >> devno >> root >> mnt;
    std::string un;  // mountinfo escapes space, tab, newline, backslash as \ooo
    for (std::size_t i = 0; i < mnt.size(); ++i) {
      if (mnt[i] == '\\' && i + 3 < mnt.size()) {
        un += static_cast<char>(std::stoi(mnt.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        un += mnt[i];
      }
    }
    if (un == pre || un.rfind(pre + "/", 0) == 0)
      found.emplace_back(un);
  }
  std::sort(found.begin(), found.end(), [](const fs::path& a, const fs::path& b) {
    return a.native().size() > b.native().size();
  });
  return found;
}

/// A temporary directory plus everything a test creates inside it.
struct sandbox {
  fs::path dir;
  fs::path runc_root;
  runc rt;
  std::vector<std::string> ids;
  std::vector<fs::path> netns_files;

  sandbox() : dir(make_temp_dir()), runc_root(dir / "runc-root"), rt(runc_root) {}

  ~sandbox() {
    for (auto& id : ids)
      if (auto r = rt.remove(id, true); !r)
        BOOST_TEST_MESSAGE("cleanup: " << r.err().message);
    for (auto& f : netns_files)
      (void)net::remove_netns(f);
    for (auto& m : mounts_under(dir))
      (void)unmount(m);
    // Orphans re-parented to this (subreaper) process.
    int st;
    while (::waitpid(-1, &st, WNOHANG) > 0) {
    }
    if (mounts_under(dir).empty()) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    } else {
      BOOST_TEST_MESSAGE("cleanup: mounts left under " << dir << ", not removing it");
    }
  }

  static fs::path make_temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "deckhand-oci-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      throw std::runtime_error("mkdtemp failed");
    return tmpl;
  }

  /// A container id unique across concurrently running test processes (runc
  /// names the default cgroup after it).
  std::string new_id() {
    static int counter = 0;
    ids.push_back("dh-oci-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    return ids.back();
  }

  /// DIR/bin/busybox plus applet symlinks and the usual mount points.
  fs::path make_rootfs(const fs::path& rootfs) {
    fs::create_directories(rootfs / "bin");
    for (auto d : {"proc", "dev", "sys", "tmp", "etc"})
      fs::create_directories(rootfs / d);
    fs::copy_file(fs::canonical("/bin/busybox"), rootfs / "bin/busybox",
                  fs::copy_options::overwrite_existing);
    for (auto applet :
         {"sh", "echo", "sleep", "true", "cat", "hostname", "ip", "ifconfig", "readlink", "ls"})
      fs::create_symlink("busybox", rootfs / "bin" / applet);
    return rootfs;
  }

  bundle_spec spec_for(const fs::path& rootfs, std::vector<std::string> args) {
    bundle_spec s;
    s.args = std::move(args);
    s.rootfs = rootfs;
    s.hostname = "deckhand-test";
    return s;
  }

  /// Writes the bundle and a stdout file; returns the open stdout fd.
  common::unique_fd open_output(const fs::path& file) {
    auto fd = common::open_fd(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    BOOST_REQUIRE_MESSAGE(fd.ok(), (fd ? "" : fd.err().message));
    return std::move(*fd);
  }
};

/// Polls `pred` until it holds or `timeout` passes; for waiting on a real
/// process, with a bound.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}

inline pid_t read_pid(const fs::path& pid_file) {
  return static_cast<pid_t>(std::stol(read_file(pid_file)));
}

}  // namespace deckhand::oci::test

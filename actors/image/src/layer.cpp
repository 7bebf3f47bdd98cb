#include "deckhand/image/layer.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <unordered_set>
#include <vector>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sys/stat.h>

#include "util.hpp"

namespace deckhand::image {

namespace {

using detail::unique_fd;

constexpr const char* opaque_marker = ".wh..wh..opq";
constexpr const char* whiteout_prefix = ".wh.";

struct archive_deleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using archive_ptr = std::unique_ptr<archive, archive_deleter>;

error invalid_entry(const std::string& path, const std::string& why) {
  return {errc::invalid, "layer entry \"" + path + "\": " + why};
}

/// Splits an archive path into components, dropping `.` and empty ones.
/// Absolute paths and `..` anywhere are refused rather than clamped: a layer
/// that contains them was built to attack whoever unpacks it.
result<std::vector<std::string>> split_path(const char* raw, const char* what) {
  if (!raw || !*raw)
    return error(errc::invalid, std::string("layer entry with empty ") + what);
  std::string p(raw);
  if (p.front() == '/')
    return invalid_entry(p, std::string("absolute ") + what);
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i <= p.size()) {
    std::size_t j = p.find('/', i);
    if (j == std::string::npos)
      j = p.size();
    std::string c = p.substr(i, j - i);
    if (c == "..")
      return invalid_entry(p, std::string(what) + " contains '..'");
    if (!c.empty() && c != ".")
      out.push_back(std::move(c));
    i = j + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& comps, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    if (i)
      s += '/';
    s += comps[i];
  }
  return s;
}

/// Where the decompressed tar stream comes from: a second libarchive reader
/// in "raw" mode that only strips the compression. Reading through it lets
/// us hash (diff_id) and bound exactly the bytes the tar parser consumes.
struct stream_source {
  archive* raw = nullptr;
  detail::sha256 hash;
  std::uint64_t total = 0;
  std::uint64_t limit = 0;
  bool eof = false;
  bool too_large = false;
  std::string raw_error;
  std::vector<char> buf = std::vector<char>(1 << 16);

  /// Pulls the next chunk; 0 at end, -1 on error.
  la_ssize_t pull() {
    if (eof)
      return 0;
    la_ssize_t n = archive_read_data(raw, buf.data(), buf.size());
    if (n < 0) {
      const char* msg = archive_error_string(raw);
      raw_error = msg ? msg : "decompression failed";
      return -1;
    }
    if (n == 0) {
      eof = true;
      return 0;
    }
    total += static_cast<std::uint64_t>(n);
    if (total > limit) {
      too_large = true;
      return -1;
    }
    hash.update(buf.data(), static_cast<std::size_t>(n));
    return n;
  }
};

la_ssize_t read_callback(archive* a, void* client, const void** out) {
  auto* src = static_cast<stream_source*>(client);
  la_ssize_t n = src->pull();
  if (n < 0) {
    archive_set_error(a, EIO, "%s", src->too_large ? "layer too large" : src->raw_error.c_str());
    return -1;
  }
  *out = src->buf.data();
  return n;
}

class unpacker {
 public:
  unpacker(int rootfd, const unpack_options& opts) : rootfd_(rootfd), opts_(opts) {}

  error apply(archive* a, archive_entry* e);
  void finish();

 private:
  /// Opens the directory formed by the first `n` components, one component at
  /// a time without following symlinks. Missing directories are created when
  /// `create` (tar archives need not list parents).
  result<unique_fd> open_dir(const std::vector<std::string>& comps, std::size_t n, bool create,
                             const std::string& entry);
  error whiteout(const std::vector<std::string>& comps, const std::string& path);
  error make_dir(int pfd, const std::string& leaf, archive_entry* e, const std::string& path);
  error make_file(archive* a, int pfd, const std::string& leaf, archive_entry* e,
                  const std::string& path);
  error make_symlink(int pfd, const std::vector<std::string>& comps, archive_entry* e,
                     const std::string& path);
  error make_hardlink(int pfd, const std::string& leaf, archive_entry* e, const std::string& path);
  error set_owner(int pfd, const std::string& leaf, archive_entry* e, const std::string& path);

  int rootfd_;
  unpack_options opts_;
  /// Paths this layer created: whiteouts only hide what lower layers left.
  std::unordered_set<std::string> created_;
  /// Directory mtimes are restored last: adding children bumps them.
  std::vector<std::pair<std::string, std::array<timespec, 2>>> dir_times_;
};

std::array<timespec, 2> entry_times(archive_entry* e) {
  std::array<timespec, 2> ts{};
  ts[1].tv_sec = archive_entry_mtime(e);
  ts[1].tv_nsec = archive_entry_mtime_nsec(e);
  if (archive_entry_atime_is_set(e)) {
    ts[0].tv_sec = archive_entry_atime(e);
    ts[0].tv_nsec = archive_entry_atime_nsec(e);
  } else {
    ts[0] = ts[1];
  }
  for (auto& t : ts)
    if (t.tv_nsec < 0 || t.tv_nsec >= 1000000000)
      t.tv_nsec = 0;
  return ts;
}

result<unique_fd> unpacker::open_dir(const std::vector<std::string>& comps, std::size_t n,
                                     bool create, const std::string& entry) {
  unique_fd fd(::openat(rootfd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd)
    return error::from_errno("open layer root");
  for (std::size_t i = 0; i < n; ++i) {
    const char* c = comps[i].c_str();
    int next = ::openat(fd.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(fd.get(), c, 0755) != 0 && errno != EEXIST)
        return error::from_errno("mkdir " + join(comps, i + 1));
      next = ::openat(fd.get(), c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    }
    if (next < 0) {
      int err = errno;
      struct stat st;
      if ((err == ELOOP || err == ENOTDIR) &&
          ::fstatat(fd.get(), c, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        if (S_ISLNK(st.st_mode)) {
          // Layers legitimately write through symlinks that earlier layers
          // made (bin -> usr/bin). Resolve the prefix the way the container
          // will, with the layer root as `/`: the kernel clamps `..` and
          // absolute targets at the root, so the result is inside it.
          auto via = detail::open_in_root(rootfd_, join(comps, i + 1), O_RDONLY | O_DIRECTORY);
          if (via) {
            fd = std::move(*via);
            continue;
          }
          if (via.err().code == errc::not_found)
            return invalid_entry(entry, "would be written through the dangling symlink \"" +
                                            join(comps, i + 1) + "\"");
          return invalid_entry(entry, "would be written through the symlink \"" +
                                          join(comps, i + 1) +
                                          "\", which does not lead to a "
                                          "directory inside the layer root");
        }
        return invalid_entry(entry, "parent \"" + join(comps, i + 1) + "\" is not a directory");
      }
      error ex = error::from_errno("open " + join(comps, i + 1), err);
      if (err == ENOENT)
        ex.code = errc::not_found;
      return ex;
    }
    fd.reset(next);
  }
  return fd;
}

error unpacker::whiteout(const std::vector<std::string>& comps, const std::string& path) {
  const std::string& leaf = comps.back();
  auto dir = open_dir(comps, comps.size() - 1, false, path);
  if (!dir) {
    // Hiding something that is not there is a no-op.
    if (dir.err().code == errc::not_found)
      return {};
    return dir.err();
  }
  std::string parent = join(comps, comps.size() - 1);
  auto child_path = [&](const std::string& name) {
    return parent.empty() ? name : parent + "/" + name;
  };
  if (leaf == opaque_marker) {
    int fd2 = ::dup(dir->get());
    if (fd2 < 0)
      return error::from_errno("dup");
    DIR* d = ::fdopendir(fd2);
    if (!d) {
      ::close(fd2);
      return error::from_errno("opendir " + parent);
    }
    std::vector<std::string> doomed;
    while (dirent* ent = ::readdir(d)) {
      std::string name = ent->d_name;
      if (name == "." || name == "..")
        continue;
      if (!created_.count(child_path(name)))
        doomed.push_back(std::move(name));
    }
    ::closedir(d);
    for (const auto& name : doomed)
      if (auto err = detail::remove_at(dir->get(), name.c_str()))
        return err;
    return {};
  }
  if (leaf.rfind(".wh..wh.", 0) == 0)
    return {};  // aufs metadata (.wh..wh.plnk): nothing to apply
  std::string name = leaf.substr(std::strlen(whiteout_prefix));
  if (name.empty() || name == "." || name == "..")
    return invalid_entry(path, "malformed whiteout");
  if (created_.count(child_path(name)))
    return {};
  return detail::remove_at(dir->get(), name.c_str());
}

error unpacker::set_owner(int pfd, const std::string& leaf, archive_entry* e,
                          const std::string& path) {
  if (!opts_.preserve_owner)
    return {};
  la_int64_t uid = archive_entry_uid(e), gid = archive_entry_gid(e);
  if (uid < 0 || gid < 0 || uid >= 0xffffffffLL || gid >= 0xffffffffLL)
    return invalid_entry(path, "uid/gid out of range");
  if (::fchownat(pfd, leaf.c_str(), static_cast<uid_t>(uid), static_cast<gid_t>(gid),
                 AT_SYMLINK_NOFOLLOW) != 0)
    return error::from_errno("chown " + path);
  return {};
}

error unpacker::make_dir(int pfd, const std::string& leaf, archive_entry* e,
                         const std::string& path) {
  struct stat st;
  bool exists = ::fstatat(pfd, leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (exists && !S_ISDIR(st.st_mode)) {
    if (auto err = detail::remove_at(pfd, leaf.c_str()))
      return err;
    exists = false;
  }
  if (!exists && ::mkdirat(pfd, leaf.c_str(), 0700) != 0)
    return error::from_errno("mkdir " + path);
  unique_fd fd(::openat(pfd, leaf.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd)
    return error::from_errno("open " + path);
  if (auto err = set_owner(pfd, leaf, e, path))
    return err;
  if (::fchmod(fd.get(), archive_entry_perm(e) & 07777) != 0)
    return error::from_errno("chmod " + path);
  dir_times_.emplace_back(path, entry_times(e));
  return {};
}

error unpacker::make_file(archive* a, int pfd, const std::string& leaf, archive_entry* e,
                          const std::string& path) {
  la_int64_t size = archive_entry_size(e);
  if (size < 0)
    return invalid_entry(path, "negative size");
  if (static_cast<std::uint64_t>(size) > opts_.max_uncompressed_size)
    return error(errc::too_large, "layer entry \"" + path + "\": larger than the layer limit");
  if (auto err = detail::remove_at(pfd, leaf.c_str()))
    return err;
  unique_fd fd(
      ::openat(pfd, leaf.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd)
    return error::from_errno("create " + path);
  for (;;) {
    const void* buf = nullptr;
    std::size_t len = 0;
    la_int64_t off = 0;
    int r = archive_read_data_block(a, &buf, &len, &off);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN) {
      const char* msg = archive_error_string(a);
      return invalid_entry(path, msg ? msg : "truncated data");
    }
    if (off < 0 || static_cast<std::uint64_t>(off) + len > static_cast<std::uint64_t>(size))
      return invalid_entry(path, "data beyond the entry's size");
    const char* p = static_cast<const char*>(buf);
    while (len > 0) {
      ssize_t w = ::pwrite(fd.get(), p, len, off);
      if (w < 0) {
        if (errno == EINTR)
          continue;
        return error::from_errno("write " + path);
      }
      p += w;
      off += w;
      len -= static_cast<std::size_t>(w);
    }
  }
  // Sparse entries may end in a hole.
  if (::ftruncate(fd.get(), size) != 0)
    return error::from_errno("truncate " + path);
  if (auto err = set_owner(pfd, leaf, e, path))
    return err;
  // After chown, which clears setuid/setgid.
  if (::fchmod(fd.get(), archive_entry_perm(e) & 07777) != 0)
    return error::from_errno("chmod " + path);
  auto ts = entry_times(e);
  if (::futimens(fd.get(), ts.data()) != 0)
    return error::from_errno("utimes " + path);
  return {};
}

error unpacker::make_symlink(int pfd, const std::vector<std::string>& comps, archive_entry* e,
                             const std::string& path) {
  const char* target = archive_entry_symlink(e);
  if (!target || !*target)
    return invalid_entry(path, "symlink without target");
  // An absolute target is resolved against the container's root when the
  // container follows it. A relative one that climbs above the layer root
  // would lead host-side code that follows it out of the rootfs.
  if (target[0] != '/') {
    long depth = static_cast<long>(comps.size()) - 1;
    std::string t(target);
    std::size_t i = 0;
    while (i <= t.size()) {
      std::size_t j = t.find('/', i);
      if (j == std::string::npos)
        j = t.size();
      std::string c = t.substr(i, j - i);
      if (c == "..") {
        if (--depth < 0)
          return invalid_entry(path,
                               std::string("symlink target \"") + target + "\" escapes the root");
      } else if (!c.empty() && c != ".") {
        ++depth;
      }
      i = j + 1;
    }
  }
  const std::string& leaf = comps.back();
  if (auto err = detail::remove_at(pfd, leaf.c_str()))
    return err;
  if (::symlinkat(target, pfd, leaf.c_str()) != 0)
    return error::from_errno("symlink " + path);
  if (auto err = set_owner(pfd, leaf, e, path))
    return err;
  auto ts = entry_times(e);
  if (::utimensat(pfd, leaf.c_str(), ts.data(), AT_SYMLINK_NOFOLLOW) != 0)
    return error::from_errno("utimes " + path);
  return {};
}

error unpacker::make_hardlink(int pfd, const std::string& leaf, archive_entry* e,
                              const std::string& path) {
  auto target = split_path(archive_entry_hardlink(e), "hardlink target");
  if (!target)
    return target.err();
  if (target->empty())
    return invalid_entry(path, "hardlink to the root");
  std::string tpath = join(*target, target->size());
  auto tdir = open_dir(*target, target->size() - 1, false, path);
  if (!tdir) {
    if (tdir.err().code == errc::not_found)
      return invalid_entry(path, "hardlink target \"" + tpath + "\" does not exist");
    return tdir.err();
  }
  const std::string& tleaf = target->back();
  struct stat st;
  if (::fstatat(tdir->get(), tleaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return invalid_entry(path, "hardlink target \"" + tpath + "\" does not exist");
  if (S_ISDIR(st.st_mode))
    return invalid_entry(path, "hardlink to a directory");
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
    return invalid_entry(path, "hardlink to a device node");
  if (tpath == path)
    return {};
  if (auto err = detail::remove_at(pfd, leaf.c_str()))
    return err;
  // Flags 0: a symlink target is linked itself, never followed.
  if (::linkat(tdir->get(), tleaf.c_str(), pfd, leaf.c_str(), 0) != 0)
    return error::from_errno("link " + path);
  return {};
}

error unpacker::apply(archive* a, archive_entry* e) {
  auto comps = split_path(archive_entry_pathname(e), "path");
  if (!comps)
    return comps.err();
  std::string path = join(*comps, comps->size());
  bool is_hardlink = archive_entry_hardlink(e) != nullptr;
  auto type = archive_entry_filetype(e);
  if (comps->empty()) {
    if (type == AE_IFDIR && !is_hardlink)
      return {};  // "./": the root stays as created
    return invalid_entry(archive_entry_pathname(e), "replaces the root");
  }
  const std::string& leaf = comps->back();
  if (opts_.whiteouts && leaf.rfind(whiteout_prefix, 0) == 0)
    return whiteout(*comps, path);
  if (!is_hardlink && (type == AE_IFCHR || type == AE_IFBLK))
    return invalid_entry(path, "device nodes are not allowed");
  auto dir = open_dir(*comps, comps->size() - 1, true, path);
  if (!dir)
    return dir.err();
  int pfd = dir->get();
  error err;
  if (is_hardlink) {
    err = make_hardlink(pfd, leaf, e, path);
  } else {
    switch (type) {
    case AE_IFDIR: err = make_dir(pfd, leaf, e, path); break;
    case AE_IFREG: err = make_file(a, pfd, leaf, e, path); break;
    case AE_IFLNK: err = make_symlink(pfd, *comps, e, path); break;
    case AE_IFIFO: {
      if ((err = detail::remove_at(pfd, leaf.c_str())))
        break;
      if (::mkfifoat(pfd, leaf.c_str(), 0600) != 0) {
        err = error::from_errno("mkfifo " + path);
        break;
      }
      if ((err = set_owner(pfd, leaf, e, path)))
        break;
      if (::fchmodat(pfd, leaf.c_str(), archive_entry_perm(e) & 07777, 0) != 0)
        err = error::from_errno("chmod " + path);
      break;
    }
    case AE_IFSOCK: return {};  // sockets are created by their servers at run time
    default: return invalid_entry(path, "unsupported entry type");
    }
  }
  if (!err)
    created_.insert(path);
  return err;
}

void unpacker::finish() {
  for (auto it = dir_times_.rbegin(); it != dir_times_.rend(); ++it) {
    auto comps = split_path(it->first.c_str(), "path");
    if (!comps || comps->empty())
      continue;
    auto dir = open_dir(*comps, comps->size(), false, it->first);
    // A later whiteout in the same layer may have removed it.
    if (dir)
      ::futimens(dir->get(), it->second.data());
  }
}

result<layer_stats> run(archive* raw, const std::filesystem::path& root,
                        const unpack_options& opts) {
  unique_fd rootfd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd)
    return error::from_errno("open " + root.string());

  stream_source src;
  src.raw = raw;
  src.limit = opts.max_uncompressed_size;
  archive_entry* rawent = nullptr;
  int r = archive_read_next_header(raw, &rawent);
  if (r == ARCHIVE_EOF) {
    src.eof = true;
  } else if (r < ARCHIVE_WARN) {
    const char* msg = archive_error_string(raw);
    return error(errc::invalid, std::string("layer: ") + (msg ? msg : "unreadable"));
  }

  archive_ptr tar(archive_read_new());
  if (!tar)
    return error(errc::internal, "archive_read_new failed");
  archive_read_support_format_tar(tar.get());
  archive_read_support_format_empty(tar.get());
  auto stream_error = [&](archive* a) -> error {
    if (src.too_large)
      return {errc::too_large, "layer: uncompressed size exceeds " +
                                   std::to_string(opts.max_uncompressed_size) + " bytes"};
    if (!src.raw_error.empty())
      return {errc::invalid, "layer: " + src.raw_error};
    const char* msg = archive_error_string(a);
    return {errc::invalid, std::string("layer: ") + (msg ? msg : "malformed tar")};
  };
  if (archive_read_open(tar.get(), &src, nullptr, read_callback, nullptr) != ARCHIVE_OK)
    return stream_error(tar.get());

  unpacker u(rootfd.get(), opts);
  layer_stats stats;
  for (;;) {
    archive_entry* e = nullptr;
    r = archive_read_next_header(tar.get(), &e);
    if (r == ARCHIVE_EOF)
      break;
    if (r < ARCHIVE_WARN)
      return stream_error(tar.get());
    ++stats.entries;
    if (auto err = u.apply(tar.get(), e)) {
      // A failing stream shows up as a data error of the entry being read.
      if (src.too_large || !src.raw_error.empty())
        return stream_error(tar.get());
      return err;
    }
  }
  u.finish();
  // The diff_id covers the whole stream, including padding after the end marker.
  while (true) {
    la_ssize_t n = src.pull();
    if (n == 0)
      break;
    if (n < 0)
      return stream_error(tar.get());
  }
  stats.uncompressed_size = src.total;
  stats.diff_id = src.hash.digest();
  return stats;
}

archive_ptr new_raw_reader() {
  archive_ptr raw(archive_read_new());
  if (!raw)
    return raw;
  archive_read_support_format_raw(raw.get());
  // Named filters only: archive_read_support_filter_all would also run
  // external programs (lrzip, lzop, ...) on untrusted input.
  archive_read_support_filter_gzip(raw.get());
  archive_read_support_filter_zstd(raw.get());
  return raw;
}

}  // namespace

result<layer_stats> unpack_layer(const std::filesystem::path& layer,
                                 const std::filesystem::path& root, const unpack_options& opts) {
  archive_ptr raw = new_raw_reader();
  if (!raw)
    return error(errc::internal, "archive_read_new failed");
  if (archive_read_open_filename(raw.get(), layer.c_str(), 1 << 16) != ARCHIVE_OK) {
    const char* msg = archive_error_string(raw.get());
    return error(errc::io, "open layer " + layer.string() + ": " + (msg ? msg : "failed"));
  }
  return run(raw.get(), root, opts);
}

result<layer_stats> unpack_layer(const void* data, std::size_t size,
                                 const std::filesystem::path& root, const unpack_options& opts) {
  archive_ptr raw = new_raw_reader();
  if (!raw)
    return error(errc::internal, "archive_read_new failed");
  if (archive_read_open_memory(raw.get(), data, size) != ARCHIVE_OK) {
    const char* msg = archive_error_string(raw.get());
    return error(errc::invalid, std::string("layer: ") + (msg ? msg : "unreadable"));
  }
  return run(raw.get(), root, opts);
}

}  // namespace deckhand::image

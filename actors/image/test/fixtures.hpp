#pragma once

/// Test helpers: temporary directories and layer tarballs built with
/// libarchive, including ones no honest image builder would produce.

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <openssl/sha.h>

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include "deckhand/common/result.hpp"

namespace deckhand::image::test {

/// The error message of a failed result, for test diagnostics.
template <class R>
std::string why(const R& r) {
  return r.ok() ? std::string("ok") : r.err().message;
}

namespace fs = std::filesystem;

/// A directory under $TMPDIR removed (without following symlinks) on exit.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "deckhand-image-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      std::abort();
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& s) const { return path_ / s; }

 private:
  fs::path path_;
};

/// One tar entry.
struct tar_entry {
  enum kind { file, dir, symlink, hardlink, chr, blk, fifo };
  tar_entry(std::string p, kind k = file, std::string d = {}, std::string l = {})
      : path(std::move(p)), type(k), data(std::move(d)), link(std::move(l)) {}
  std::string path;
  kind type = file;
  std::string data;  ///< file content
  std::string link;  ///< symlink target or hardlink target
  unsigned mode = 0644;
  std::int64_t uid = 0, gid = 0;
  std::int64_t mtime = 1700000000;
  std::int64_t declared_size = -1;  ///< override the header's size
};

inline la_ssize_t append_cb(archive*, void* client, const void* buf, size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

/// A tar (optionally gzip-compressed) stream holding `entries` verbatim:
/// libarchive's writer does not sanitize names, which is what we want here.
inline std::string make_tar(const std::vector<tar_entry>& entries, bool gzip = false) {
  std::string out;
  archive* a = archive_write_new();
  if (gzip) {
    archive_write_add_filter_gzip(a);
    // No zero padding after the gzip trailer, like registry layers.
    archive_write_set_bytes_in_last_block(a, 1);
  }
  archive_write_set_format_pax_restricted(a);
  archive_write_open(a, &out, nullptr, append_cb, nullptr);
  for (const auto& t : entries) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, t.path.c_str());
    archive_entry_set_perm(e, t.mode);
    archive_entry_set_uid(e, t.uid);
    archive_entry_set_gid(e, t.gid);
    archive_entry_set_mtime(e, t.mtime, 0);
    archive_entry_set_size(e, 0);
    switch (t.type) {
    case tar_entry::file:
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_size(e, t.declared_size >= 0 ? t.declared_size
                                                     : static_cast<la_int64_t>(t.data.size()));
      break;
    case tar_entry::dir: archive_entry_set_filetype(e, AE_IFDIR); break;
    case tar_entry::symlink:
      archive_entry_set_filetype(e, AE_IFLNK);
      archive_entry_set_symlink(e, t.link.c_str());
      break;
    case tar_entry::hardlink:
      archive_entry_set_filetype(e, AE_IFREG);
      archive_entry_set_hardlink(e, t.link.c_str());
      break;
    case tar_entry::chr:
      archive_entry_set_filetype(e, AE_IFCHR);
      archive_entry_set_rdevmajor(e, 1);
      archive_entry_set_rdevminor(e, 3);
      break;
    case tar_entry::blk:
      archive_entry_set_filetype(e, AE_IFBLK);
      archive_entry_set_rdevmajor(e, 8);
      archive_entry_set_rdevminor(e, 0);
      break;
    case tar_entry::fifo: archive_entry_set_filetype(e, AE_IFIFO); break;
    }
    archive_write_header(a, e);
    if (t.type == tar_entry::file && !t.data.empty())
      archive_write_data(a, t.data.data(), t.data.size());
    archive_entry_free(e);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

/// A tar of the directory `dir` (its contents at the archive root): an OCI
/// layout packed the way `tar -C dir -cf out .` would.
inline std::string tar_directory(const fs::path& dir) {
  std::vector<tar_entry> entries;
  std::vector<fs::path> paths;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    paths.push_back(e.path());
  std::sort(paths.begin(), paths.end());
  for (const auto& p : paths) {
    tar_entry t(p.lexically_relative(dir).string());
    if (fs::is_directory(fs::symlink_status(p))) {
      t.type = tar_entry::dir;
      t.mode = 0755;
    } else {
      std::ifstream in(p, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      t.data = ss.str();
    }
    entries.push_back(std::move(t));
  }
  return make_tar(entries);
}

/// The decompressed bytes of a gzip stream.
inline std::string gunzip(const std::string& gz) {
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_raw(a);
  archive_read_open_memory(a, gz.data(), gz.size());
  archive_entry* e = nullptr;
  std::string out;
  if (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    char buf[65536];
    la_ssize_t n;
    while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
      out.append(buf, static_cast<size_t>(n));
  }
  archive_read_free(a);
  return out;
}

/// `sha256:<hex>` of `s`.
inline std::string sha256_hex(const std::string& s) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), md);
  static const char* hex = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned char c : md) {
    out += hex[c >> 4];
    out += hex[c & 0xf];
  }
  return out;
}

inline void write_file(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

inline std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Names of the entries of `dir`, sorted; empty if it does not exist.
inline std::vector<std::string> entries_of(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace deckhand::image::test

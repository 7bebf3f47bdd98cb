#include "deckhand/image/builder.hpp"

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <set>
#include <vector>

#include <archive.h>
#include <archive_entry.h>
#include <sys/stat.h>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/process.hpp"
#include "manifest.hpp"
#include "util.hpp"

namespace deckhand::image {

namespace fs = std::filesystem;
using detail::unique_fd;

namespace {

struct write_deleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
using writer_ptr = std::unique_ptr<archive, write_deleter>;

/// The compressed side: a raw-format gzip writer whose output is hashed and
/// written to the blob file.
struct gzip_sink {
  int fd = -1;
  detail::sha256 hash;
  std::uint64_t size = 0;
};

la_ssize_t gzip_out(archive*, void* client, const void* buf, size_t n) {
  auto* s = static_cast<gzip_sink*>(client);
  const char* p = static_cast<const char*>(buf);
  size_t left = n;
  while (left > 0) {
    ssize_t w = ::write(s->fd, p, left);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return -1;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  s->hash.update(buf, n);
  s->size += n;
  return static_cast<la_ssize_t>(n);
}

/// The uncompressed side: the tar writer's output is hashed (the diff_id)
/// and handed to the gzip writer.
struct tar_sink {
  archive* gz = nullptr;
  detail::sha256 hash;
};

la_ssize_t tar_out(archive* a, void* client, const void* buf, size_t n) {
  auto* s = static_cast<tar_sink*>(client);
  s->hash.update(buf, n);
  la_ssize_t w = archive_write_data(s->gz, buf, n);
  if (w < 0) {
    archive_set_error(a, EIO, "gzip: %s", archive_error_string(s->gz));
    return -1;
  }
  return static_cast<la_ssize_t>(n);
}

error archive_fail(archive* a, const std::string& what) {
  const char* msg = archive_error_string(a);
  return {errc::io, what + ": " + (msg ? msg : "libarchive error")};
}

error add_tree(archive* tar, const fs::path& root) {
  std::error_code ec;
  std::vector<fs::path> paths;
  for (auto it = fs::recursive_directory_iterator(root, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    paths.push_back(it->path().lexically_relative(root));
  if (ec)
    return {errc::io, "walk " + root.string() + ": " + ec.message()};
  // Sorted: parents precede children and equal trees give equal layers.
  std::sort(paths.begin(), paths.end());
  std::vector<char> buf(1 << 16);
  for (const auto& rel : paths) {
    fs::path full = root / rel;
    struct stat st;
    if (::lstat(full.c_str(), &st) != 0)
      return error::from_errno("lstat " + full.string());
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode))
      continue;
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> e(archive_entry_new(),
                                                               archive_entry_free);
    archive_entry_copy_stat(e.get(), &st);
    archive_entry_set_nlink(e.get(), 1);
    archive_entry_set_pathname(e.get(), rel.c_str());
    if (S_ISLNK(st.st_mode)) {
      std::vector<char> target(static_cast<size_t>(st.st_size) + 1);
      ssize_t n = ::readlink(full.c_str(), target.data(), target.size());
      if (n < 0)
        return error::from_errno("readlink " + full.string());
      archive_entry_set_symlink(e.get(),
                                std::string(target.data(), static_cast<size_t>(n)).c_str());
      archive_entry_set_size(e.get(), 0);
    } else if (S_ISDIR(st.st_mode)) {
      archive_entry_set_size(e.get(), 0);
    }
    if (archive_write_header(tar, e.get()) != ARCHIVE_OK)
      return archive_fail(tar, rel.string());
    if (S_ISREG(st.st_mode)) {
      unique_fd fd(::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      if (!fd)
        return error::from_errno("open " + full.string());
      for (;;) {
        ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0)
          return error::from_errno("read " + full.string());
        if (n == 0)
          break;
        if (archive_write_data(tar, buf.data(), static_cast<size_t>(n)) < 0)
          return archive_fail(tar, rel.string());
      }
    }
  }
  return {};
}

error write_blob(const fs::path& layout, const std::string& digest, const std::string& bytes) {
  return fsutil::write_file_atomic(layout / "blobs" / "sha256" / digest.substr(7), bytes);
}

}  // namespace

result<std::string> build_layout(const fs::path& rootfs_dir, const fs::path& layout_dir,
                                 const std::string& ref_name, const image_config& cfg) {
  std::error_code ec;
  fs::create_directories(layout_dir / "blobs" / "sha256", ec);
  if (ec)
    return error(errc::io, "create " + layout_dir.string() + ": " + ec.message());

  fs::path tmp_layer = layout_dir / "blobs" / "sha256" / ".layer.tmp";
  gzip_sink gz_sink;
  tar_sink t_sink;
  {
    unique_fd fd(::open(tmp_layer.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd)
      return error::from_errno("create " + tmp_layer.string());
    gz_sink.fd = fd.get();
    writer_ptr gz(archive_write_new());
    archive_write_add_filter_gzip(gz.get());
    archive_write_set_format_raw(gz.get());
    archive_write_set_bytes_per_block(gz.get(), 0);
    if (archive_write_open(gz.get(), &gz_sink, nullptr, gzip_out, nullptr) != ARCHIVE_OK)
      return archive_fail(gz.get(), "gzip open");
    std::unique_ptr<archive_entry, void (*)(archive_entry*)> raw(archive_entry_new(),
                                                                 archive_entry_free);
    archive_entry_set_pathname(raw.get(), "layer.tar");
    archive_entry_set_filetype(raw.get(), AE_IFREG);
    if (archive_write_header(gz.get(), raw.get()) != ARCHIVE_OK)
      return archive_fail(gz.get(), "gzip header");

    t_sink.gz = gz.get();
    writer_ptr tar(archive_write_new());
    archive_write_set_format_pax_restricted(tar.get());
    if (archive_write_open(tar.get(), &t_sink, nullptr, tar_out, nullptr) != ARCHIVE_OK)
      return archive_fail(tar.get(), "tar open");
    if (auto err = add_tree(tar.get(), rootfs_dir)) {
      ::unlink(tmp_layer.c_str());
      return err;
    }
    if (archive_write_close(tar.get()) != ARCHIVE_OK)
      return archive_fail(tar.get(), "tar close");
    if (archive_write_close(gz.get()) != ARCHIVE_OK)
      return archive_fail(gz.get(), "gzip close");
    if (::fsync(fd.get()) != 0)
      return error::from_errno("fsync " + tmp_layer.string());
  }
  std::string layer_digest = gz_sink.hash.digest();
  fs::rename(tmp_layer, layout_dir / "blobs" / "sha256" / layer_digest.substr(7), ec);
  if (ec)
    return error(errc::io, "rename layer: " + ec.message());

  detail::config_doc config;
  config.os = "linux";
  config.architecture = "amd64";
  config.config = cfg;
  config.diff_ids = {t_sink.hash.digest()};
  std::string config_text = detail::render_config(config);
  std::string config_digest = detail::sha256_of(config_text);
  if (auto err = write_blob(layout_dir, config_digest, config_text))
    return err;

  detail::manifest_doc m;
  m.media_type = detail::media::oci_manifest;
  m.config = {detail::media::oci_config, config_digest, config_text.size(), {}, {}, {}, {}};
  m.layers.push_back({detail::media::oci_layer_gzip, layer_digest, gz_sink.size, {}, {}, {}, {}});
  std::string manifest_text = detail::render_manifest(m);
  std::string manifest_digest = detail::sha256_of(manifest_text);
  if (auto err = write_blob(layout_dir, manifest_digest, manifest_text))
    return err;

  detail::index_doc idx;
  detail::descriptor d{
      detail::media::oci_manifest, manifest_digest, manifest_text.size(), {}, "linux", "amd64", {}};
  if (!ref_name.empty())
    d.annotations[detail::ref_name_annotation] = ref_name;
  idx.manifests.push_back(d);
  if (auto err = fsutil::write_file_atomic(layout_dir / "index.json", detail::render_index(idx)))
    return err;
  if (auto err =
          fsutil::write_file_atomic(layout_dir / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})"))
    return err;
  return manifest_digest;
}

namespace {

/// Runs `argv` and returns its stdout.
result<std::string> capture(const std::vector<std::string>& argv) {
  common::run_options opts;
  opts.max_output = 1 << 20;
  auto out = common::run_captured(argv, opts);
  if (!out)
    return out.err();
  if (out->truncated)
    return error(errc::too_large, argv[0] + " output: larger than 1048576 bytes");
  if (out->status.code() != 0)
    return error(errc::internal, argv[0] + " failed");
  return std::move(out->out);
}

error write_text(const fs::path& p, const std::string& text, mode_t mode) {
  if (auto err = fsutil::write_file_atomic(p, text))
    return err;
  if (::chmod(p.c_str(), mode) != 0)
    return error::from_errno("chmod " + p.string());
  return {};
}

}  // namespace

error make_busybox_rootfs(const fs::path& dir, const fs::path& busybox) {
  std::error_code ec;
  struct spec {
    const char* name;
    mode_t mode;
  };
  for (const spec& s :
       {spec{"bin", 0755}, spec{"etc", 0755}, spec{"tmp", 01777}, spec{"proc", 0555},
        spec{"sys", 0555}, spec{"dev", 0755}, spec{"root", 0700}}) {
    fs::path p = dir / s.name;
    fs::create_directories(p, ec);
    if (ec)
      return {errc::io, "create " + p.string() + ": " + ec.message()};
    if (::chmod(p.c_str(), s.mode) != 0)
      return error::from_errno("chmod " + p.string());
  }
  fs::path bin = dir / "bin" / "busybox";
  fs::copy_file(busybox, bin, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return {errc::io, "copy " + busybox.string() + ": " + ec.message()};
  if (::chmod(bin.c_str(), 0755) != 0)
    return error::from_errno("chmod " + bin.string());

  auto list = capture({busybox.string(), "--list"});
  if (!list)
    return list.err();
  std::size_t pos = 0;
  while (pos < list->size()) {
    std::size_t nl = list->find('\n', pos);
    if (nl == std::string::npos)
      nl = list->size();
    std::string applet = list->substr(pos, nl - pos);
    pos = nl + 1;
    if (applet.empty() || applet == "busybox" || applet.find('/') != std::string::npos ||
        applet == "." || applet == "..")
      continue;
    fs::path link = dir / "bin" / applet;
    if (::symlink("busybox", link.c_str()) != 0 && errno != EEXIST)
      return error::from_errno("symlink " + link.string());
  }
  if (auto err = write_text(dir / "etc" / "passwd",
                            "root:x:0:0:root:/root:/bin/sh\n"
                            "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
                            0644))
    return err;
  if (auto err = write_text(dir / "etc" / "group", "root:x:0:\nnobody:x:65534:\n", 0644))
    return err;
  return {};
}

}  // namespace deckhand::image

#include "deckhand/image/image_store.hpp"

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <set>

#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/image/reference.hpp"
#include "manifest.hpp"
#include "util.hpp"

namespace deckhand::image {

namespace fs = std::filesystem;
using detail::unique_fd;

namespace {

constexpr int max_index_depth = 4;

/// An exclusive flock on ROOT/index.lock for the lifetime of the object.
class store_lock {
 public:
  static result<store_lock> acquire(const fs::path& file) {
    unique_fd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd)
      return error::from_errno("open " + file.string());
    while (::flock(fd.get(), LOCK_EX) != 0)
      if (errno != EINTR)
        return error::from_errno("flock " + file.string());
    return store_lock(std::move(fd));
  }

 private:
  explicit store_lock(unique_fd fd) : fd_(std::move(fd)) {}
  unique_fd fd_;  // closing it releases the lock
};

std::int64_t unix_ms() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return std::int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

bool exists_in(int dirfd, const char* rel) {
  struct stat st;
  return ::fstatat(dirfd, rel, &st, 0) == 0;
}

bool is_lower_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

/// The layer media type matching a blob's compression, for manifests we
/// synthesize from `docker save` archives.
std::string layer_type_of(const fs::path& blob) {
  unsigned char magic[4] = {};
  unique_fd fd(::open(blob.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd && ::read(fd.get(), magic, sizeof magic) == static_cast<ssize_t>(sizeof magic)) {
    if (magic[0] == 0x1f && magic[1] == 0x8b)
      return detail::media::oci_layer_gzip;
    if (magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd)
      return detail::media::oci_layer_zstd;
  }
  return detail::media::oci_layer;
}

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end())
    v.push_back(s);
}

/// What resolving a reference against the index found.
struct resolved {
  std::string id;
  std::optional<std::string> name;  ///< set when found by name
};

result<resolved> resolve(const std::map<std::string, image_record>& idx, const std::string& ref) {
  if (auto norm = parse_reference(ref)) {
    std::string name = norm->str();
    for (const auto& [id, r] : idx)
      if (std::find(r.names.begin(), r.names.end(), name) != r.names.end())
        return resolved{id, name};
    if (!norm->digest.empty())
      for (const auto& [id, r] : idx)
        if (r.id == norm->digest || r.manifest_digest == norm->digest ||
            std::find(r.blobs.begin(), r.blobs.end(), norm->digest) != r.blobs.end())
          return resolved{id, std::nullopt};
  }
  std::string hex = ref.rfind("sha256:", 0) == 0 ? ref.substr(7) : ref;
  if (hex.size() >= 12 && hex.size() <= 64 && is_lower_hex(hex)) {
    std::vector<std::string> hits;
    for (const auto& [id, r] : idx)
      if (r.id_hex().rfind(hex, 0) == 0 ||
          (r.manifest_digest.size() > 7 && r.manifest_digest.compare(7, hex.size(), hex) == 0))
        hits.push_back(id);
    if (hits.size() == 1)
      return resolved{hits.front(), std::nullopt};
    if (hits.size() > 1)
      return error(errc::conflict, "image reference \"" + ref + "\" is ambiguous");
  }
  return error(errc::not_found, "image \"" + ref + "\" not found");
}

}  // namespace

/// Everything one import collects before it commits.
struct image_store::import_state {
  fs::path work;  ///< ROOT/tmp/import-XXXXXX
  std::vector<std::string> names;
  std::string manifest_digest;
  std::string config_digest;
  detail::config_doc config;
  std::vector<std::string> layer_digests;
  std::uint64_t size = 0;
  int temp_counter = 0;
};

image_store::image_store(fs::path root, store_options opts) : root_(std::move(root)), opts_(opts) {}

result<std::unique_ptr<image_store>> image_store::open(const fs::path& root, store_options opts) {
  std::error_code ec;
  for (const fs::path& d : {root / "blobs" / "sha256", root / "rootfs", root / "tmp"}) {
    fs::create_directories(d, ec);
    if (ec)
      return error(errc::io, "create " + d.string() + ": " + ec.message());
  }
  fs::path abs = fs::absolute(root, ec);
  if (ec)
    return error(errc::io, "absolute " + root.string() + ": " + ec.message());
  return std::unique_ptr<image_store>(new image_store(abs.lexically_normal(), opts));
}

fs::path image_store::rootfs_path(const image_record& record) const {
  return root_ / "rootfs" / record.id_hex();
}

fs::path image_store::blob_path(const std::string& digest) const {
  return root_ / "blobs" / "sha256" / (digest.size() > 7 ? digest.substr(7) : digest);
}

result<image_store::index_map> image_store::load_index() const {
  fs::path file = root_ / "index.json";
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return index_map{};
    return error::from_errno("stat " + file.string());
  }
  std::int64_t mtime_ns = std::int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  std::lock_guard<std::mutex> guard(cache_mu_);
  if (cache_ino_ == st.st_ino && cache_mtime_ns_ == mtime_ns && cache_size_ == st.st_size)
    return cache_;
  // The file is replaced by rename, never rewritten: a read sees one version.
  auto text = fsutil::read_file(file, std::uint64_t{256} << 20);
  if (!text)
    return text.err();
  auto parsed = detail::parse_store_index(*text);
  if (!parsed)
    return parsed.err();
  cache_ = *parsed;
  cache_ino_ = st.st_ino;
  cache_mtime_ns_ = mtime_ns;
  cache_size_ = st.st_size;
  return std::move(*parsed);
}

error image_store::save_index(const index_map& idx) const {
  return fsutil::write_file_atomic(root_ / "index.json", detail::render_store_index(idx));
}

error image_store::collect_garbage(const index_map& idx) const {
  std::set<std::string> blobs, ids;
  for (const auto& [id, r] : idx) {
    ids.insert(r.id_hex());
    for (const auto& b : r.blobs)
      blobs.insert(b.substr(7));
  }
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(root_ / "blobs" / "sha256", ec)) {
    if (blobs.count(ent.path().filename().string()))
      continue;
    if (auto err = detail::remove_tree(ent.path()))
      return err;
  }
  if (ec)
    return error(errc::io, "list blobs: " + ec.message());
  for (const auto& ent : fs::directory_iterator(root_ / "rootfs", ec)) {
    if (ids.count(ent.path().filename().string()))
      continue;
    if (auto err = detail::remove_tree(ent.path()))
      return err;
  }
  if (ec)
    return error(errc::io, "list rootfs: " + ec.message());
  return {};
}

result<std::string> image_store::ingest(import_state& st, int srcfd, const std::string& rel,
                                        const std::string* want_digest,
                                        const std::uint64_t* want_size, std::uint64_t limit,
                                        std::uint64_t* size_out) {
  auto in = detail::open_in_root(srcfd, rel);
  if (!in)
    return in.err();
  struct stat sst;
  if (::fstat(in->get(), &sst) != 0)
    return error::from_errno("stat " + rel);
  if (!S_ISREG(sst.st_mode))
    return error(errc::invalid, rel + ": not a regular file");
  fs::path tmp = st.work / ("blob-" + std::to_string(st.temp_counter++));
  unique_fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!out)
    return error::from_errno("create " + tmp.string());
  detail::sha256 hash;
  std::uint64_t total = 0;
  std::vector<char> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(in->get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return error::from_errno("read " + rel);
    }
    if (n == 0)
      break;
    total += static_cast<std::uint64_t>(n);
    if (want_size && total > *want_size)
      return error(errc::invalid, "blob " + rel + ": larger than its descriptor's size " +
                                      std::to_string(*want_size));
    if (total > limit)
      return error(errc::too_large, "blob " + rel + ": larger than " + std::to_string(limit));
    hash.update(buf.data(), static_cast<std::size_t>(n));
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(out.get(), buf.data() + off, static_cast<std::size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR)
          continue;
        return error::from_errno("write " + tmp.string());
      }
      off += w;
    }
  }
  std::string digest = hash.digest();
  if (want_size && total != *want_size)
    return error(errc::invalid, "blob " + rel + ": size " + std::to_string(total) +
                                    ", descriptor says " + std::to_string(*want_size));
  if (want_digest && digest != *want_digest)
    return error(errc::invalid, "blob " + rel + ": digest mismatch: content is " + digest +
                                    ", descriptor says " + *want_digest);
  if (::fsync(out.get()) != 0)
    return error::from_errno("fsync " + tmp.string());
  out.reset();
  if (::rename(tmp.c_str(), blob_path(digest).c_str()) != 0)
    return error::from_errno("rename " + tmp.string());
  if (size_out)
    *size_out = total;
  return digest;
}

error image_store::ingest_bytes(import_state& st, const std::string& digest,
                                const std::string& bytes) {
  fs::path tmp = st.work / ("blob-" + std::to_string(st.temp_counter++));
  if (auto err = fsutil::write_file_atomic(tmp, bytes))
    return err;
  if (::rename(tmp.c_str(), blob_path(digest).c_str()) != 0)
    return error::from_errno("rename " + tmp.string());
  return {};
}

namespace {

/// Reads and verifies a small JSON blob named by `d` from an OCI layout.
result<std::string> read_layout_blob(int srcfd, const detail::descriptor& d, std::uint64_t max) {
  if (d.size > max)
    return error(errc::too_large, "blob " + d.digest + ": " + std::to_string(d.size) +
                                      " bytes is over the limit for JSON documents");
  auto fd = detail::open_in_root(srcfd, "blobs/sha256/" + d.digest.substr(7));
  if (!fd) {
    if (fd.err().code == errc::not_found)
      return error(errc::invalid, "blob " + d.digest + " missing from the layout");
    return fd.err();
  }
  auto text = detail::read_fd(fd->get(), d.size, "blob " + d.digest);
  if (!text) {
    if (text.err().code == errc::too_large)
      return error(errc::invalid, "blob " + d.digest + ": larger than its descriptor's size");
    return text.err();
  }
  if (text->size() != d.size)
    return error(errc::invalid, "blob " + d.digest + ": size " + std::to_string(text->size()) +
                                    ", descriptor says " + std::to_string(d.size));
  if (auto got = detail::sha256_of(*text); got != d.digest)
    return error(errc::invalid, "blob " + d.digest + ": digest mismatch: content is " + got);
  return text;
}

result<std::string> read_in(int srcfd, const std::string& rel, std::uint64_t max) {
  auto fd = detail::open_in_root(srcfd, rel);
  if (!fd)
    return fd.err();
  return detail::read_fd(fd->get(), max, rel);
}

}  // namespace

error image_store::import_oci(import_state& st, int srcfd) {
  auto layout = read_in(srcfd, "oci-layout", opts_.max_json_size);
  if (!layout)
    return {errc::invalid, "OCI layout without oci-layout file: " + layout.err().message};
  auto index_text = read_in(srcfd, "index.json", opts_.max_json_size);
  if (!index_text)
    return index_text.err();
  auto index = detail::parse_index(*index_text);
  if (!index)
    return index.err();
  if (index->manifests.empty())
    return {errc::invalid, "index.json lists no manifests"};

  // A layout may hold several images; the first entry is the one imported.
  detail::descriptor cur = index->manifests.front();
  for (const char* key : {detail::containerd_name_annotation, detail::ref_name_annotation}) {
    if (auto it = cur.annotations.find(key); it != cur.annotations.end()) {
      if (auto n = normalize_reference(it->second)) {
        st.names.push_back(*n);
        break;
      }
      log::get()->warn("image import: ignoring unusable name annotation={}", it->second);
    }
  }
  std::string text;
  for (int depth = 0;; ++depth) {
    if (depth > max_index_depth)
      return {errc::invalid, "image indexes nested too deeply"};
    auto blob = read_layout_blob(srcfd, cur, opts_.max_json_size);
    if (!blob)
      return blob.err();
    text = std::move(*blob);
    std::string mt = cur.media_type.empty() ? detail::sniff_media_type(text) : cur.media_type;
    if (detail::is_manifest_type(mt))
      break;
    if (!detail::is_index_type(mt))
      return {errc::unsupported, "unsupported manifest media type \"" + mt + "\""};
    auto sub = detail::parse_index(text);
    if (!sub)
      return sub.err();
    auto it = std::find_if(sub->manifests.begin(), sub->manifests.end(), [](const auto& d) {
      return d.os == "linux" && d.architecture == "amd64";
    });
    if (it == sub->manifests.end())
      return {errc::unsupported, "image index " + cur.digest + " has no linux/amd64 manifest"};
    cur = *it;
  }
  auto manifest = detail::parse_manifest(text);
  if (!manifest)
    return manifest.err();
  const auto& cmt = manifest->config.media_type;
  if (!cmt.empty() && cmt != detail::media::oci_config && cmt != detail::media::docker_config)
    return {errc::unsupported, "unsupported config media type \"" + cmt + "\""};
  auto config_text = read_layout_blob(srcfd, manifest->config, opts_.max_json_size);
  if (!config_text)
    return config_text.err();
  auto config = detail::parse_config(*config_text);
  if (!config)
    return config.err();
  if (config->diff_ids.size() != manifest->layers.size())
    return {errc::invalid, "config lists " + std::to_string(config->diff_ids.size()) +
                               " diff_ids for " + std::to_string(manifest->layers.size()) +
                               " layers"};
  for (const auto& l : manifest->layers)
    if (!detail::is_layer_type(l.media_type))
      return {errc::unsupported, "unsupported layer media type \"" + l.media_type + "\""};

  for (const auto& l : manifest->layers) {
    if (l.size > opts_.max_layer_size)
      return {errc::too_large, "layer " + l.digest + ": " + std::to_string(l.size) +
                                   " bytes is over the layer limit"};
    auto d = ingest(st, srcfd, "blobs/sha256/" + l.digest.substr(7), &l.digest, &l.size, l.size,
                    nullptr);
    if (!d)
      return d.err();
    st.layer_digests.push_back(*d);
    st.size += l.size;
  }
  if (auto err = ingest_bytes(st, cur.digest, text))
    return err;
  if (auto err = ingest_bytes(st, manifest->config.digest, *config_text))
    return err;
  st.manifest_digest = cur.digest;
  st.config_digest = manifest->config.digest;
  st.size += manifest->config.size;
  st.config = std::move(*config);
  return {};
}

error image_store::import_docker(import_state& st, int srcfd) {
  auto text = read_in(srcfd, "manifest.json", opts_.max_json_size);
  if (!text)
    return text.err();
  auto entries = detail::parse_docker_save(*text);
  if (!entries)
    return entries.err();
  // `docker save a b` writes one entry per image; the first is imported.
  const auto& e = entries->front();
  for (const auto& tag : e.repo_tags) {
    if (auto n = normalize_reference(tag))
      add_unique(st.names, *n);
    else
      log::get()->warn("image import: ignoring unusable RepoTag tag={}", tag);
  }
  auto config_text = read_in(srcfd, e.config, opts_.max_json_size);
  if (!config_text)
    return config_text.err();
  std::string config_digest = detail::sha256_of(*config_text);
  // Docker names the config after its digest: `<hex>.json` or `blobs/sha256/<hex>`.
  std::string base = fs::path(e.config).filename().string();
  if (base.size() >= 64 && is_lower_hex(base.substr(0, 64)) &&
      base.substr(0, 64) != config_digest.substr(7))
    return {errc::invalid, "config " + e.config + ": digest mismatch: content is " + config_digest};
  auto config = detail::parse_config(*config_text);
  if (!config)
    return config.err();
  if (config->diff_ids.size() != e.layers.size())
    return {errc::invalid, "config lists " + std::to_string(config->diff_ids.size()) +
                               " diff_ids for " + std::to_string(e.layers.size()) + " layers"};
  detail::manifest_doc m;
  m.media_type = detail::media::oci_manifest;
  m.config = {detail::media::oci_config, config_digest, config_text->size(), {}, {}, {}, {}};
  for (const auto& rel : e.layers) {
    std::uint64_t size = 0;
    auto d = ingest(st, srcfd, rel, nullptr, nullptr, opts_.max_layer_size, &size);
    if (!d)
      return d.err();
    st.layer_digests.push_back(*d);
    st.size += size;
    m.layers.push_back({layer_type_of(blob_path(*d)), *d, size, {}, {}, {}, {}});
  }
  std::string manifest_text = detail::render_manifest(m);
  st.manifest_digest = detail::sha256_of(manifest_text);
  if (auto err = ingest_bytes(st, st.manifest_digest, manifest_text))
    return err;
  if (auto err = ingest_bytes(st, config_digest, *config_text))
    return err;
  st.config_digest = config_digest;
  st.size += config_text->size();
  st.config = std::move(*config);
  return {};
}

result<image_record> image_store::import_locked(import_state& st, const fs::path& source,
                                                const std::optional<std::string>& name) {
  struct stat sst;
  if (::stat(source.c_str(), &sst) != 0) {
    auto err = error::from_errno("import " + source.string());
    if (errno == ENOENT)
      err.code = errc::not_found;
    return err;
  }
  fs::path src_dir = source;
  if (S_ISREG(sst.st_mode)) {
    // Archives are untrusted trees like layers: unpack them the same way.
    src_dir = st.work / "archive";
    if (::mkdir(src_dir.c_str(), 0700) != 0)
      return error::from_errno("mkdir " + src_dir.string());
    unpack_options o;
    o.max_uncompressed_size = opts_.max_archive_size;
    o.whiteouts = false;
    o.preserve_owner = false;
    auto unpacked = unpack_layer(source, src_dir, o);
    if (!unpacked) {
      auto err = unpacked.err();
      err.message = source.string() + ": " + err.message;
      return err;
    }
  } else if (!S_ISDIR(sst.st_mode)) {
    return error(errc::invalid, source.string() + ": neither a directory nor an archive");
  }
  unique_fd srcfd(::open(src_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!srcfd)
    return error::from_errno("open " + src_dir.string());
  error err;
  if (exists_in(srcfd.get(), "index.json"))
    err = import_oci(st, srcfd.get());
  else if (exists_in(srcfd.get(), "manifest.json"))
    err = import_docker(st, srcfd.get());
  else
    return error(errc::invalid,
                 source.string() + ": neither an OCI image layout nor a docker save archive");
  if (err)
    return err;
  if (name)
    st.names = {*name};  // normalized by import()
  if (!st.config.os.empty() && st.config.os != "linux")
    return error(errc::unsupported, "image os \"" + st.config.os + "\" is not linux");

  return commit_locked(st, {});
}

result<image_record> image_store::commit_locked(import_state& st, const fs::path& prepared_rootfs) {
  image_record probe;
  probe.id = st.config_digest;
  fs::path dest = rootfs_path(probe);
  if (!prepared_rootfs.empty() && fs::exists(dest)) {
    (void)detail::remove_tree(prepared_rootfs);
  } else if (!prepared_rootfs.empty()) {
    if (::rename(prepared_rootfs.c_str(), dest.c_str()) != 0)
      return error::from_errno("rename " + dest.string());
  } else if (!fs::exists(dest)) {
    fs::path rfs = st.work / "rootfs";
    if (::mkdir(rfs.c_str(), 0755) != 0)
      return error::from_errno("mkdir " + rfs.string());
    unpack_options o;
    o.max_uncompressed_size = opts_.max_layer_size;
    for (std::size_t i = 0; i < st.layer_digests.size(); ++i) {
      auto stats = unpack_layer(blob_path(st.layer_digests[i]), rfs, o);
      if (!stats) {
        auto e = stats.err();
        e.message = "layer " + st.layer_digests[i] + ": " + e.message;
        return e;
      }
      if (stats->diff_id != st.config.diff_ids[i])
        return error(errc::invalid, "layer " + st.layer_digests[i] + ": diff_id " + stats->diff_id +
                                        " does not match the config's " + st.config.diff_ids[i]);
    }
    if (::chmod(rfs.c_str(), 0755) != 0)
      return error::from_errno("chmod " + rfs.string());
    if (::rename(rfs.c_str(), dest.c_str()) != 0)
      return error::from_errno("rename " + dest.string());
  }
  if (auto e = fsutil::sync_dir(root_ / "blobs" / "sha256"))
    return e;
  if (auto e = fsutil::sync_dir(root_ / "rootfs"))
    return e;

  auto idx = load_index();
  if (!idx)
    return idx.err();
  // A name points at one image: moving it to this one untags the old holder.
  for (auto& [id, r] : *idx) {
    if (id == st.config_digest)
      continue;
    std::erase_if(r.names, [&](const std::string& n) {
      return std::find(st.names.begin(), st.names.end(), n) != st.names.end();
    });
  }
  image_record& rec = (*idx)[st.config_digest];
  rec.id = st.config_digest;
  rec.manifest_digest = st.manifest_digest;
  for (const auto& n : st.names)
    add_unique(rec.names, n);
  std::sort(rec.names.begin(), rec.names.end());
  rec.size = st.size;
  rec.os = st.config.os.empty() ? "linux" : st.config.os;
  rec.architecture = st.config.architecture.empty() ? "amd64" : st.config.architecture;
  rec.config = st.config.config;
  add_unique(rec.blobs, st.manifest_digest);
  add_unique(rec.blobs, st.config_digest);
  for (const auto& l : st.layer_digests)
    add_unique(rec.blobs, l);
  rec.last_used = unix_ms();
  image_record out = rec;
  if (auto e = save_index(*idx))
    return e;
  return out;
}

result<image_record> image_store::import(const fs::path& source,
                                         const std::optional<std::string>& name) {
  std::optional<std::string> norm;
  if (name) {
    auto n = normalize_reference(*name);
    if (!n)
      return n.err();
    norm = *n;
  }
  std::lock_guard<std::mutex> guard(mutate_mu_);
  auto lock = store_lock::acquire(root_ / "index.lock");
  if (!lock)
    return lock.err();
  // Whatever is in tmp/ belongs to a holder of the lock that died.
  std::error_code ec;
  for (const auto& ent : fs::directory_iterator(root_ / "tmp", ec))
    (void)detail::remove_tree(ent.path());
  auto work = detail::make_temp_dir(root_ / "tmp", "import-");
  if (!work)
    return work.err();
  import_state st;
  st.work = *work;
  auto rec = import_locked(st, source, norm);
  (void)detail::remove_tree(st.work);
  if (!rec) {
    // Drop the blobs this attempt stored; nothing references them.
    if (auto idx = load_index())
      (void)collect_garbage(*idx);
    log::get()->warn("image import failed source={} error={}", source.string(), rec.err().message);
    return rec;
  }
  log::get()->info("image imported id={} names={} source={}", rec->id, rec->names.size(),
                   source.string());
  return rec;
}

result<image_record> image_store::add_pulled(pulled_image img) {
  auto config = detail::parse_config(img.config);
  if (!config)
    return config.err();
  if (config->diff_ids.size() != img.layers.size())
    return error(errc::invalid, "config lists " + std::to_string(config->diff_ids.size()) +
                                    " diff_ids for " + std::to_string(img.layers.size()) +
                                    " layers");
  if (!config->os.empty() && config->os != "linux")
    return error(errc::unsupported, "image os \"" + config->os + "\" is not linux");
  for (auto& n : img.names) {
    auto norm = normalize_reference(n);
    if (!norm)
      return norm.err();
    n = *norm;
  }
  std::lock_guard<std::mutex> guard(mutate_mu_);
  auto lock = store_lock::acquire(root_ / "index.lock");
  if (!lock)
    return lock.err();
  auto work = detail::make_temp_dir(root_ / "tmp", "pull-");
  if (!work)
    return work.err();
  import_state st;
  st.work = *work;
  st.names = img.names;
  auto commit = [&]() -> result<image_record> {
    for (const auto& [digest, file] : img.layers) {
      if (!is_sha256_digest(digest))
        return error(errc::invalid, "malformed layer digest " + digest);
      fs::path dst = blob_path(digest);
      // Same inode, no copy: the caller verified the file against `digest`.
      if (::link(file.c_str(), dst.c_str()) != 0 && errno != EEXIST)
        return error::from_errno("link " + dst.string());
      struct stat lst;
      if (::stat(dst.c_str(), &lst) != 0)
        return error::from_errno("stat " + dst.string());
      st.layer_digests.push_back(digest);
      st.size += static_cast<std::uint64_t>(lst.st_size);
    }
    if (auto err = ingest_bytes(st, img.manifest_digest, img.manifest))
      return err;
    if (auto err = ingest_bytes(st, img.config_digest, img.config))
      return err;
    st.manifest_digest = img.manifest_digest;
    st.config_digest = img.config_digest;
    st.size += img.config.size();
    st.config = std::move(*config);
    return commit_locked(st, img.rootfs);
  };
  auto rec = commit();
  (void)detail::remove_tree(st.work);
  if (!rec) {
    if (auto idx = load_index())
      (void)collect_garbage(*idx);
    log::get()->warn("image add failed manifest={} error={}", img.manifest_digest,
                     rec.err().message);
    return rec;
  }
  log::get()->info("image added id={} names={} manifest={}", rec->id, rec->names.size(),
                   rec->manifest_digest);
  return rec;
}

result<void> image_store::touch(const std::string& ref) {
  std::lock_guard<std::mutex> guard(mutate_mu_);
  auto lock = store_lock::acquire(root_ / "index.lock");
  if (!lock)
    return lock.err();
  auto idx = load_index();
  if (!idx)
    return idx.err();
  auto r = resolve(*idx, ref);
  if (!r)
    return r.err();
  auto now = unix_ms();
  image_record& rec = idx->at(r->id);
  rec.last_used = now;
  return save_index(*idx);
}

result<image_record> image_store::find(const std::string& ref) const {
  auto idx = load_index();
  if (!idx)
    return idx.err();
  auto r = resolve(*idx, ref);
  if (!r)
    return r.err();
  return idx->at(r->id);
}

std::vector<image_record> image_store::list() const {
  std::vector<image_record> out;
  auto idx = load_index();
  if (!idx) {
    log::get()->error("image store index unreadable error={}", idx.err().message);
    return out;
  }
  for (auto& [id, r] : *idx)
    out.push_back(r);
  return out;
}

result<image_record> image_store::remove(const std::string& ref) {
  std::lock_guard<std::mutex> guard(mutate_mu_);
  auto lock = store_lock::acquire(root_ / "index.lock");
  if (!lock)
    return lock.err();
  auto idx = load_index();
  if (!idx)
    return idx.err();
  auto r = resolve(*idx, ref);
  if (!r)
    return r.err();
  image_record before = idx->at(r->id);
  image_record& rec = idx->at(r->id);
  if (r->name)
    std::erase(rec.names, *r->name);
  if (!r->name || rec.names.empty())
    idx->erase(r->id);
  if (auto e = save_index(*idx))
    return e;
  if (auto e = collect_garbage(*idx))
    return e;
  log::get()->info("image removed ref={} id={}", ref, before.id);
  return before;
}

}  // namespace deckhand::image

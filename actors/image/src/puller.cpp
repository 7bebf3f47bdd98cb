#include "deckhand/image/puller.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

#include <sys/stat.h>
#include <sys/utsname.h>

#include <nlohmann/json.hpp>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/image/layer.hpp"
#include "deckhand/image/reference.hpp"
#include "http.hpp"
#include "manifest.hpp"
#include "registry_auth.hpp"
#include "util.hpp"

namespace deckhand::image {

namespace fs = std::filesystem;
using json = nlohmann::json;
using detail::credential;
using detail::host_of;
using detail::load_credentials;
using detail::max_small_body;
using detail::status_error;
using detail::unique_fd;
using session = detail::registry_session;

namespace {

constexpr int max_index_depth = 4;

const char* const manifest_accept = "Accept: application/vnd.oci.image.index.v1+json, "
                                    "application/vnd.docker.distribution.manifest.list.v2+json, "
                                    "application/vnd.oci.image.manifest.v1+json, "
                                    "application/vnd.docker.distribution.manifest.v2+json";

/// A result shared by every thread waiting for the same piece of work.
template <class T>
struct flight {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<T> value;

  void set(T v) {
    {
      std::lock_guard<std::mutex> g(mu);
      value = std::move(v);
    }
    cv.notify_all();
  }
  T wait() {
    std::unique_lock<std::mutex> l(mu);
    cv.wait(l, [&] { return value.has_value(); });
    return *value;
  }
};

std::string normalize_arch(const std::string& a) {
  if (a == "x86_64" || a == "x86-64")
    return "amd64";
  if (a == "aarch64")
    return "arm64";
  if (a == "i386" || a == "i686")
    return "386";
  return a;
}

/// How well an index entry matches the wanted platform: <0 not at all,
/// higher is better.
int platform_score(const detail::descriptor& d, const std::string& os, const std::string& arch,
                   const std::string& variant) {
  if (d.os != os || normalize_arch(d.architecture) != arch)
    return -1;
  auto norm_variant = [&](const std::string& v) {
    // arm64's only variant is v8, which indexes may or may not spell out.
    return arch == "arm64" && v == "v8" ? std::string() : v;
  };
  std::string have = norm_variant(d.variant), want = norm_variant(variant);
  if (!want.empty())
    return have == want ? 2 : -1;
  return have.empty() ? 2 : 1;
}

/// Reporting progress from one pull, rate-limited so that a fast download
/// does not flood the caller.
class progress_reporter {
 public:
  explicit progress_reporter(const progress_fn& fn) : fn_(fn) {}
  void phase(const std::string& p) {
    state_.phase = p;
    state_.blob.clear();
    state_.blob_done = state_.blob_total = 0;
    emit(true);
  }
  void set_total(std::int64_t t) { state_.total = t; }
  void blob_start(const std::string& digest, std::int64_t size) {
    state_.blob = digest;
    state_.blob_done = 0;
    state_.blob_total = size;
    emit(true);
  }
  void blob_bytes(std::int64_t n) {
    state_.blob_done += n;
    state_.done += n;
    emit(false);
  }
  /// A blob that needed no download (already present, or fetched by another pull).
  void blob_skipped(const std::string& digest, std::int64_t size) {
    state_.blob = digest;
    state_.blob_done = state_.blob_total = size;
    state_.done += size;
    emit(true);
  }
  void blob_end() { emit(true); }

 private:
  void emit(bool force) {
    if (!fn_)
      return;
    auto now = std::chrono::steady_clock::now();
    if (!force && now - last_ < std::chrono::milliseconds(100))
      return;
    last_ = now;
    fn_(state_);
  }
  const progress_fn& fn_;
  pull_progress state_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

std::string host_architecture() {
  utsname u{};
  if (::uname(&u) != 0)
    return "amd64";
  std::string m = u.machine;
  if (m == "x86_64")
    return "amd64";
  if (m == "aarch64" || m == "arm64")
    return "arm64";
  if (m.rfind("armv", 0) == 0 || m == "arm")
    return "arm";
  if (m == "i386" || m == "i486" || m == "i586" || m == "i686")
    return "386";
  return m;  // ppc64le, s390x, riscv64, mips64 are already OCI names
}

struct puller::impl {
  image_store& store;
  pull_options opts;
  fs::path incoming;  ///< ROOT/incoming: this puller's scratch space
  fs::path partial;   ///< downloads in progress
  fs::path staged;    ///< verified blobs awaiting their image's commit
  std::atomic<std::uint64_t> counter{0};

  std::mutex mu;
  std::map<std::string, std::shared_ptr<flight<error>>> blob_flights;
  std::map<std::string, std::shared_ptr<flight<result<image_record>>>> image_flights;
  /// How many running pulls hold each staged blob; the file goes at zero.
  std::map<std::string, int> staged_refs;

  impl(image_store& s, pull_options o) : store(s), opts(std::move(o)) {
    if (opts.architecture.empty())
      opts.architecture = host_architecture();
    opts.architecture = normalize_arch(opts.architecture);
    incoming = store.root() / "incoming";
    partial = incoming / "partial";
    staged = incoming / "blobs";
    // Whatever is here was left by a pull that died: nothing refers to it.
    (void)detail::remove_tree(incoming);
    std::error_code ec;
    fs::create_directories(partial, ec);
    fs::create_directories(staged, ec);
    if (ec)
      log::get()->error("image puller: cannot create dir={} error={}", incoming.string(),
                        ec.message());
  }

  fs::path staged_path(const std::string& digest) const { return staged / digest.substr(7); }

  void acquire(const std::vector<std::string>& digests) {
    std::lock_guard<std::mutex> g(mu);
    for (const auto& d : digests)
      ++staged_refs[d];
  }
  void release(const std::vector<std::string>& digests) {
    std::lock_guard<std::mutex> g(mu);
    for (const auto& d : digests) {
      auto it = staged_refs.find(d);
      if (it == staged_refs.end() || --it->second > 0)
        continue;
      staged_refs.erase(it);
      // Committed blobs live on as the store's hard links.
      ::unlink(staged_path(d).c_str());
    }
  }

  bool is_insecure(const std::string& domain) const {
    std::string host = host_of(domain);
    if (host == "127.0.0.1" || host == "localhost" || host == "[::1]")
      return true;
    for (const auto& e : opts.insecure_registries) {
      if (e.empty())
        continue;
      if (e == domain)
        return true;
      // An entry without a port covers every port of its host.
      bool has_port =
          e.front() == '[' ? e.find("]:") != std::string::npos : e.find(':') != std::string::npos;
      if (!has_port && e == host)
        return true;
    }
    return false;
  }

  result<image_record> pull_once(const reference& ref, const std::vector<std::string>& secrets,
                                 progress_reporter& progress);
};

namespace {

struct fetched_manifest {
  std::string digest;
  std::string media_type;
  std::string bytes;
};

result<fetched_manifest> fetch_manifest(session& s, const std::string& target,
                                        const std::string& want_digest, std::uint64_t want_size,
                                        std::uint64_t max) {
  if (want_size > max)
    return error(errc::too_large, "manifest " + target + ": " + std::to_string(want_size) +
                                      " bytes is over the limit");
  auto r = s.get("/manifests/" + target, {manifest_accept}, {}, max);
  if (!r)
    return r.err();
  if (r->status != 200)
    return status_error(*r, "manifest " + target);
  fetched_manifest m;
  m.bytes = std::move(r->body);
  m.digest = detail::sha256_of(m.bytes);
  if (!want_digest.empty() && m.digest != want_digest)
    return error(errc::invalid, "manifest " + target + ": digest mismatch: content is " + m.digest);
  if (want_size && m.bytes.size() != want_size)
    return error(errc::invalid, "manifest " + target + ": size " + std::to_string(m.bytes.size()) +
                                    ", descriptor says " + std::to_string(want_size));
  if (auto h = r->headers.find("docker-content-digest");
      want_digest.empty() && h != r->headers.end() && h->second.rfind("sha256:", 0) == 0 &&
      h->second != m.digest)
    return error(errc::invalid, "manifest " + target + ": registry says its digest is " +
                                    h->second + " but the content is " + m.digest);
  // The document's own mediaType beats a generic Content-Type.
  m.media_type = detail::sniff_media_type(m.bytes);
  if (m.media_type.empty())
    if (auto ct = r->headers.find("content-type"); ct != r->headers.end())
      m.media_type = ct->second.substr(0, ct->second.find(';'));
  return m;
}

}  // namespace

namespace {

/// Fetches the blob `d` into the puller's staging area (once per digest,
/// whoever asks), verifying size and digest while it streams.
error ensure_blob(puller::impl& p, session& s, const detail::descriptor& d,
                  progress_reporter& progress) {
  fs::path dst = p.staged_path(d.digest);
  std::shared_ptr<flight<error>> f;
  bool leader = false;
  bool staged_already = false;
  {
    std::lock_guard<std::mutex> g(p.mu);
    struct stat st;
    staged_already = ::stat(dst.c_str(), &st) == 0;
    auto it = p.blob_flights.find(d.digest);
    if (staged_already) {
      // Another pull holding it staged fetched it: nothing to do.
    } else if (it != p.blob_flights.end()) {
      f = it->second;
    } else {
      f = std::make_shared<flight<error>>();
      p.blob_flights.emplace(d.digest, f);
      leader = true;
    }
  }
  // Progress callbacks run outside the lock: they are the caller's code.
  if (staged_already) {
    progress.blob_skipped(d.digest, static_cast<std::int64_t>(d.size));
    return {};
  }
  if (!leader) {
    error err = f->wait();
    if (!err)
      progress.blob_skipped(d.digest, static_cast<std::int64_t>(d.size));
    return err;
  }
  auto fetch = [&]() -> error {
    // Already in the store (another image has it): a hard link pins it
    // against the store's garbage collection until our image is committed.
    fs::path have = p.store.blob_path(d.digest);
    struct stat st;
    if (::stat(have.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) == d.size &&
        ::link(have.c_str(), dst.c_str()) == 0) {
      progress.blob_skipped(d.digest, static_cast<std::int64_t>(d.size));
      return {};
    }
    if (d.size > p.opts.max_blob_bytes)
      return {errc::too_large, "blob " + d.digest + ": " + std::to_string(d.size) +
                                   " bytes is over the limit of " +
                                   std::to_string(p.opts.max_blob_bytes)};
    fs::path tmp = p.partial / (d.digest.substr(7) + "." + std::to_string(++p.counter));
    unique_fd out(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!out)
      return error::from_errno("create " + tmp.string());
    detail::sha256 hash;
    std::uint64_t got = 0;
    progress.blob_start(d.digest, static_cast<std::int64_t>(d.size));
    auto sink = [&](const char* data, std::size_t n) -> error {
      got += n;
      if (got > d.size)
        return {errc::invalid, "blob " + d.digest + ": registry sent more than the " +
                                   std::to_string(d.size) + " bytes its descriptor says"};
      hash.update(data, n);
      for (std::size_t off = 0; off < n;) {
        ssize_t w = ::write(out.get(), data + off, n - off);
        if (w < 0) {
          if (errno == EINTR)
            continue;
          return error::from_errno("write " + tmp.string());
        }
        off += static_cast<std::size_t>(w);
      }
      progress.blob_bytes(static_cast<std::int64_t>(n));
      return {};
    };
    auto verify = [&]() -> error {
      auto r = s.get("/blobs/" + d.digest, {}, sink, max_small_body);
      if (!r)
        return r.err();
      if (r->status != 200)
        return status_error(*r, "blob " + d.digest);
      if (got != d.size)
        return {errc::invalid, "blob " + d.digest + ": got " + std::to_string(got) +
                                   " bytes, descriptor says " + std::to_string(d.size)};
      std::string digest = hash.digest();
      if (digest != d.digest)
        return {errc::invalid, "blob " + d.digest + ": digest mismatch: content is " + digest};
      if (::fsync(out.get()) != 0)
        return error::from_errno("fsync " + tmp.string());
      out.reset();
      if (::rename(tmp.c_str(), dst.c_str()) != 0)
        return error::from_errno("rename " + dst.string());
      return {};
    };
    error err = verify();
    if (err)
      ::unlink(tmp.c_str());  // an interrupted or corrupt download leaves nothing
    progress.blob_end();
    return err;
  };
  error err = fetch();
  {
    std::lock_guard<std::mutex> g(p.mu);
    p.blob_flights.erase(d.digest);
  }
  f->set(err);
  return err;
}

}  // namespace

result<image_record> puller::impl::pull_once(const reference& ref,
                                             const std::vector<std::string>& secrets,
                                             progress_reporter& progress) {
  progress.phase("resolving");
  auto creds = load_credentials(opts.credentials_file, ref.domain, secrets);
  if (!creds)
    return creds.err();
  std::vector<std::optional<credential>> candidates(creds->begin(), creds->end());
  if (candidates.empty())
    candidates.emplace_back(std::nullopt);

  // Resolve the reference with the first credentials the registry accepts.
  std::unique_ptr<session> s;
  fetched_manifest top;
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    auto cand =
        std::make_unique<session>(ref, candidates[i], is_insecure(ref.domain), opts.timeout);
    auto m = fetch_manifest(*cand, ref.digest.empty() ? ref.tag : ref.digest, ref.digest, 0,
                            opts.max_manifest_bytes);
    if (m) {
      s = std::move(cand);
      top = std::move(*m);
      break;
    }
    if (!cand->unauthorized() || i + 1 == candidates.size())
      return m.err();
    log::get()->info("image pull: credentials rejected, trying the next ref={} source={}",
                     ref.str(), candidates[i]->source);
  }

  fetched_manifest cur = std::move(top);
  for (int depth = 0;; ++depth) {
    if (depth > max_index_depth)
      return error(errc::invalid, "image indexes nested too deeply");
    if (detail::is_manifest_type(cur.media_type))
      break;
    if (cur.media_type == "application/vnd.docker.distribution.manifest.v1+prettyjws" ||
        cur.media_type == "application/vnd.docker.distribution.manifest.v1+json")
      return error(errc::unsupported, ref.str() + ": Docker schema 1 manifests are not supported");
    if (!detail::is_index_type(cur.media_type))
      return error(errc::unsupported,
                   ref.str() + ": unsupported manifest media type \"" + cur.media_type + "\"");
    auto idx = detail::parse_index(cur.bytes);
    if (!idx)
      return idx.err();
    const detail::descriptor* best = nullptr;
    int best_score = -1;
    for (const auto& d : idx->manifests) {
      int sc = platform_score(d, opts.os, opts.architecture, opts.variant);
      if (sc > best_score) {
        best = &d;
        best_score = sc;
      }
    }
    if (!best) {
      std::string have;
      for (const auto& d : idx->manifests)
        if (!d.os.empty())
          have += (have.empty() ? "" : ", ") + d.os + "/" + d.architecture +
                  (d.variant.empty() ? "" : "/" + d.variant);
      std::string want =
          opts.os + "/" + opts.architecture + (opts.variant.empty() ? "" : "/" + opts.variant);
      return error(errc::not_found, ref.str() + ": no manifest for platform " + want +
                                        " (image has " + (have.empty() ? "none" : have) + ")");
    }
    auto next = fetch_manifest(*s, best->digest, best->digest, best->size, opts.max_manifest_bytes);
    if (!next)
      return next.err();
    if (next->media_type.empty())
      next->media_type = best->media_type;
    cur = std::move(*next);
  }

  auto manifest = detail::parse_manifest(cur.bytes);
  if (!manifest)
    return manifest.err();
  const auto& cmt = manifest->config.media_type;
  if (!cmt.empty() && cmt != detail::media::oci_config && cmt != detail::media::docker_config)
    return error(errc::unsupported, "unsupported config media type \"" + cmt + "\"");
  if (manifest->config.size > opts.max_manifest_bytes)
    return error(errc::too_large, "config " + manifest->config.digest + " is over the limit");
  std::int64_t total = static_cast<std::int64_t>(manifest->config.size);
  for (const auto& l : manifest->layers) {
    if (!detail::is_layer_type(l.media_type))
      return error(errc::unsupported, "unsupported layer media type \"" + l.media_type + "\"");
    if (l.size > opts.max_blob_bytes)
      return error(errc::too_large, "layer " + l.digest + ": " + std::to_string(l.size) +
                                        " bytes is over the limit");
    total += static_cast<std::int64_t>(l.size);
  }
  progress.set_total(total);
  progress.phase("downloading");

  std::vector<std::string> held{manifest->config.digest};
  for (const auto& l : manifest->layers)
    if (std::find(held.begin(), held.end(), l.digest) == held.end())
      held.push_back(l.digest);
  acquire(held);
  struct releaser {
    impl& p;
    const std::vector<std::string>& d;
    ~releaser() { p.release(d); }
  } release_on_exit{*this, held};

  if (auto err = ensure_blob(*this, *s, manifest->config, progress))
    return err;
  auto config_text =
      fsutil::read_file(staged_path(manifest->config.digest), opts.max_manifest_bytes);
  if (!config_text)
    return config_text.err();
  auto config = detail::parse_config(*config_text);
  if (!config)
    return config.err();
  if (config->diff_ids.size() != manifest->layers.size())
    return error(errc::invalid, "config lists " + std::to_string(config->diff_ids.size()) +
                                    " diff_ids for " + std::to_string(manifest->layers.size()) +
                                    " layers");
  if (!config->os.empty() && config->os != "linux")
    return error(errc::unsupported, "image os \"" + config->os + "\" is not linux");
  for (const auto& l : manifest->layers)
    if (auto err = ensure_blob(*this, *s, l, progress))
      return err;

  pulled_image img;
  img.names = {ref.str()};
  img.manifest_digest = cur.digest;
  img.manifest = cur.bytes;
  img.config_digest = manifest->config.digest;
  img.config = *config_text;
  for (const auto& l : manifest->layers)
    img.layers.emplace_back(l.digest, staged_path(l.digest));

  image_record probe;
  probe.id = img.config_digest;
  if (!fs::exists(store.rootfs_path(probe))) {
    progress.phase("unpacking");
    auto scratch = detail::make_temp_dir(incoming, "rootfs-");
    if (!scratch)
      return scratch.err();
    img.rootfs = *scratch;
    unpack_options uo;
    uo.max_uncompressed_size = opts.max_unpacked_layer_bytes;
    for (std::size_t i = 0; i < manifest->layers.size(); ++i) {
      const auto& l = manifest->layers[i];
      auto stats = unpack_layer(staged_path(l.digest), img.rootfs, uo);
      error err;
      if (!stats)
        err = error(stats.err().code, "layer " + l.digest + ": " + stats.err().message);
      else if (stats->diff_id != config->diff_ids[i])
        err = error(errc::invalid, "layer " + l.digest + ": diff_id " + stats->diff_id +
                                       " does not match the config's " + config->diff_ids[i]);
      if (err) {
        (void)detail::remove_tree(img.rootfs);
        return err;
      }
    }
    if (::chmod(img.rootfs.c_str(), 0755) != 0) {
      auto err = error::from_errno("chmod " + img.rootfs.string());
      (void)detail::remove_tree(img.rootfs);
      return err;
    }
  }
  fs::path scratch = img.rootfs;
  auto rec = store.add_pulled(std::move(img));
  if (!scratch.empty())
    (void)detail::remove_tree(scratch);  // gone when adopted
  return rec;
}

puller::puller(image_store& store, pull_options opts)
    : impl_(std::make_unique<impl>(store, std::move(opts))) {}

puller::~puller() = default;

result<image_record> puller::pull(const std::string& ref_text,
                                  const std::vector<std::string>& secrets,
                                  const progress_fn& progress_cb) {
  auto ref = parse_reference(ref_text);
  if (!ref)
    return ref.err();
  std::string key = ref->str();
  for (const auto& s : secrets)
    key += "\n" + s;
  std::shared_ptr<flight<result<image_record>>> f;
  bool leader = false;
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    auto it = impl_->image_flights.find(key);
    if (it != impl_->image_flights.end()) {
      f = it->second;
    } else {
      f = std::make_shared<flight<result<image_record>>>();
      impl_->image_flights.emplace(key, f);
      leader = true;
    }
  }
  progress_reporter progress(progress_cb);
  if (!leader) {
    progress.phase("resolving");
    auto r = f->wait();
    if (r)
      progress.phase("done");
    return r;
  }
  auto start = std::chrono::steady_clock::now();
  log::get()->info("image pull started ref={}", key.substr(0, key.find('\n')));
  auto r = impl_->pull_once(*ref, secrets, progress);
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    impl_->image_flights.erase(key);
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start)
                .count();
  if (r) {
    progress.phase("done");
    log::get()->info("image pulled ref={} id={} ms={}", ref->str(), r->id, ms);
  } else {
    log::get()->warn("image pull failed ref={} error={} ms={}", ref->str(), r.err().message, ms);
  }
  f->set(r);
  return r;
}

}  // namespace deckhand::image

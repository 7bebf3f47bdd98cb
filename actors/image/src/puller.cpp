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
#include "util.hpp"

namespace deckhand::image {

namespace fs = std::filesystem;
using json = nlohmann::json;
using detail::unique_fd;

namespace {

constexpr int max_index_depth = 4;
/// Token server and error bodies are small; anything bigger is not one.
constexpr std::uint64_t max_small_body = 1 << 20;

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

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// `host` of `host[:port]` (brackets kept for IPv6 literals).
std::string host_of(const std::string& domain) {
  if (!domain.empty() && domain.front() == '[') {
    auto e = domain.find(']');
    return e == std::string::npos ? domain : domain.substr(0, e + 1);
  }
  return domain.substr(0, domain.find(':'));
}

/// The host a credentials-file key names: docker writes URLs
/// ("https://index.docker.io/v1/") as well as bare hosts.
std::string auth_key_host(std::string k) {
  for (const char* scheme : {"https://", "http://"})
    if (k.rfind(scheme, 0) == 0)
      k = k.substr(std::strlen(scheme));
  return lower(k.substr(0, k.find('/')));
}

bool auth_key_matches(const std::string& key, const std::string& domain) {
  std::string h = auth_key_host(key);
  if (h == domain)
    return true;
  if (domain == "docker.io")
    return h == "index.docker.io" || h == "registry-1.docker.io" || h == "registry.hub.docker.com";
  return false;
}

/// Credentials for one registry, and where they came from (for messages:
/// never the secret itself).
struct credential {
  std::string username, password;
  std::string source;
};

/// Reads the credentials in `auths` (an object keyed by registry) that
/// apply to `domain`.
error collect_auths(const json& auths, const std::string& domain, const std::string& file,
                    const std::string& source, std::vector<credential>& out) {
  if (!auths.is_object())
    return {errc::invalid,
            "credentials file " + file + ": \"auths\" of " + source + " is not an object"};
  for (const auto& [key, entry] : auths.items()) {
    if (!auth_key_matches(key, domain))
      continue;
    std::string where = "credentials file " + file + ": entry \"" + key + "\" of " + source;
    if (!entry.is_object())
      return {errc::invalid, where + " is not an object"};
    credential c;
    c.source = source + " (" + key + ")";
    auto str = [&](const char* k) -> std::optional<std::string> {
      auto it = entry.find(k);
      if (it == entry.end() || it->is_null())
        return std::string();
      if (!it->is_string())
        return std::nullopt;
      return it->get<std::string>();
    };
    auto auth = str("auth"), user = str("username"), pass = str("password");
    if (!auth || !user || !pass)
      return {errc::invalid, where + " has a non-string field"};
    if (!auth->empty()) {
      std::string decoded;
      auto colon = std::string::npos;
      if (detail::base64_decode(*auth, decoded))
        colon = decoded.find(':');
      if (colon == std::string::npos)
        return {errc::invalid, where + ": \"auth\" is not base64 of user:password"};
      c.username = decoded.substr(0, colon);
      c.password = decoded.substr(colon + 1);
    } else if (!user->empty()) {
      c.username = *user;
      c.password = *pass;
    } else {
      continue;  // e.g. only an identitytoken: not supported, treat as absent
    }
    out.push_back(std::move(c));
  }
  return {};
}

/// The credentials to try for `domain`, in order: those of the named
/// secrets, then the node-wide ones.
result<std::vector<credential>> load_credentials(const fs::path& file, const std::string& domain,
                                                 const std::vector<std::string>& secrets) {
  std::vector<credential> out;
  if (file.empty())
    return out;
  auto text = fsutil::read_file(file, 4 << 20);
  if (!text) {
    if (text.err().code == errc::not_found)
      return out;
    return error(text.err().code, "credentials file " + file.string() + ": " + text.err().message);
  }
  // No exceptions: a parse error message would quote part of the file.
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return error(errc::invalid, "credentials file " + file.string() + ": not a JSON object");
  if (auto s = j.find("secrets"); s != j.end()) {
    if (!s->is_object())
      return error(errc::invalid,
                   "credentials file " + file.string() + ": \"secrets\" is not an object");
    for (const auto& name : secrets) {
      auto it = s->find(name);
      if (it == s->end()) {
        log::get()->warn("image pull secret not found secret={} file={}", name, file.string());
        continue;
      }
      if (!it->is_object() || !it->contains("auths"))
        return error(errc::invalid, "credentials file " + file.string() + ": secret \"" + name +
                                        "\" has no \"auths\" object");
      if (auto err =
              collect_auths((*it)["auths"], domain, file.string(), "secret \"" + name + "\"", out))
        return err;
    }
  }
  if (auto a = j.find("auths"); a != j.end())
    if (auto err = collect_auths(*a, domain, file.string(), "node credentials", out))
      return err;
  return out;
}

/// The `message` of a registry's JSON error body, if any.
std::string registry_message(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return {};
  auto errs = j.find("errors");
  if (errs == j.end() || !errs->is_array() || errs->empty() || !(*errs)[0].is_object())
    return {};
  const auto& e = (*errs)[0];
  std::string out;
  if (auto c = e.find("code"); c != e.end() && c->is_string())
    out = c->get<std::string>();
  if (auto m = e.find("message"); m != e.end() && m->is_string())
    out += (out.empty() ? "" : ": ") + m->get<std::string>();
  return out;
}

error status_error(const detail::http_response& r, const std::string& what) {
  std::string detail = registry_message(r.body);
  std::string msg = what + ": HTTP " + std::to_string(r.status) +
                    (detail.empty() ? std::string() : " (" + detail + ")");
  if (r.status == 404)
    return {errc::not_found, what + ": not found" + (detail.empty() ? "" : " (" + detail + ")")};
  if (r.status == 403)
    return {errc::unavailable, "denied: " + msg};
  return {errc::unavailable, msg};
}

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
  /// A blob that needed no download (already present, or fetched by another
  /// pull).
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

/// One conversation with one registry for one repository, with one set of
/// credentials (or none). Keeps the Authorization it earned across requests.
class session {
 public:
  session(puller::impl& p, const reference& ref, std::optional<credential> cred)
      : ref_(ref), cred_(std::move(cred)), http_(p.opts.timeout) {
    std::string host = ref.domain == "docker.io" ? "registry-1.docker.io" : ref.domain;
    base_ = (p.is_insecure(ref.domain) ? "http://" : "https://") + host + "/v2/" + ref.path;
  }

  bool unauthorized() const { return unauthorized_; }
  std::string who() const {
    return cred_ ? "the credentials of " + cred_->source
                 : std::string("anonymous access (no credentials for this registry)");
  }

  /// GET base/<rel>, authenticating on a 401 challenge.
  result<detail::http_response> get(const std::string& rel, std::vector<std::string> headers,
                                    const detail::body_sink& sink, std::uint64_t max_body) {
    std::string url = base_ + rel;
    for (int attempt = 0;; ++attempt) {
      auto hdrs = headers;
      if (!authorization_.empty())
        hdrs.push_back("Authorization: " + authorization_);
      auto r = http_.get(url, hdrs, sink, max_body);
      if (!r || r->status != 401)
        return r;
      // A second 401 (or the first with credentials that already worked
      // once and now fail twice) means the registry refuses us.
      if (attempt >= 1)
        break;
      auto it = r->headers.find("www-authenticate");
      if (it == r->headers.end())
        break;
      if (auto err = authenticate(detail::parse_challenge(it->second)))
        return err;
    }
    unauthorized_ = true;
    return error(errc::unavailable, "unauthorized: registry " + ref_.domain + " refused " + who() +
                                        " for " + ref_.repository());
  }

 private:
  error authenticate(const detail::auth_challenge& ch) {
    if (ch.scheme == "basic") {
      if (!cred_)
        return fail("requires a login");
      authorization_ = "Basic " + detail::base64_encode(cred_->username + ":" + cred_->password);
      return {};
    }
    if (ch.scheme != "bearer")
      return fail("asks for unsupported auth scheme \"" + ch.scheme + "\"");
    auto realm = ch.params.find("realm");
    if (realm == ch.params.end() ||
        (realm->second.rfind("https://", 0) != 0 && realm->second.rfind("http://", 0) != 0))
      return {errc::invalid,
              "registry " + ref_.domain + ": bearer challenge without an http(s) realm"};
    std::string url = realm->second + (realm->second.find('?') == std::string::npos ? "?" : "&");
    bool first = true;
    auto add = [&](const std::string& k, const std::string& v) {
      url += (first ? "" : "&") + k + "=" + detail::url_escape(v);
      first = false;
    };
    if (auto s = ch.params.find("service"); s != ch.params.end())
      add("service", s->second);
    auto scope = ch.params.find("scope");
    add("scope", scope != ch.params.end() ? scope->second : "repository:" + ref_.path + ":pull");
    std::vector<std::string> hdrs;
    if (cred_)
      hdrs.push_back("Authorization: Basic " +
                     detail::base64_encode(cred_->username + ":" + cred_->password));
    auto r = http_.get(url, hdrs, {}, max_small_body);
    if (!r)
      return r.err();
    if (r->status == 401 || r->status == 403) {
      unauthorized_ = true;
      return {errc::unavailable, "unauthorized: token server " + realm->second + " refused " +
                                     who() + " for " + ref_.repository()};
    }
    if (r->status != 200)
      return status_error(*r, "token server " + realm->second);
    json j = json::parse(r->body, nullptr, false);
    std::string token;
    if (j.is_object())
      for (const char* k : {"token", "access_token"})
        if (auto t = j.find(k); t != j.end() && t->is_string() && !t->get<std::string>().empty()) {
          token = t->get<std::string>();
          break;
        }
    if (token.empty())
      return {errc::invalid, "token server " + realm->second + ": response holds no token"};
    authorization_ = "Bearer " + token;
    return {};
  }

  error fail(const std::string& why) {
    unauthorized_ = true;
    return {errc::unavailable,
            "unauthorized: registry " + ref_.domain + " " + why + "; tried " + who()};
  }

  reference ref_;
  std::optional<credential> cred_;
  detail::http_client http_;
  std::string base_;
  std::string authorization_;
  bool unauthorized_ = false;
};

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
    auto cand = std::make_unique<session>(*this, ref, candidates[i]);
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

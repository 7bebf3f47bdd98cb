#pragma once

/// Test helpers for pulls: a real registry (Debian's docker-registry) in a
/// child process, a client that pushes images to it over the distribution
/// API, a counting/faulting proxy in front of it, and a JWT token server.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include "fixtures.hpp"

namespace deckhand::image::test {

/// A TCP port the OS just handed out on 127.0.0.1 (closed again: the caller
/// binds it and retries on the rare collision).
inline int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

inline std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

inline std::string base64url(const std::string& in) {
  std::string s = base64(in);
  for (auto& c : s)
    c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!s.empty() && s.back() == '=')
    s.pop_back();
  return s;
}

/// `docker-registry serve` in a child process, killed (and reaped) by the
/// destructor; its log goes to DIR/registry.log.
class registry_process {
 public:
  /// `auth_yaml`: an `auth:` section (indented by two spaces), or empty.
  registry_process(const fs::path& dir, const fs::path& storage,
                   const std::string& auth_yaml = {}) {
    fs::create_directories(dir);
    log_ = dir / "registry.log";
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_port();
      fs::path cfg = dir / "config.yml";
      std::string yml =
          "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
          "storage:\n  filesystem:\n    rootdirectory: " +
          storage.string() +
          "\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:" + std::to_string(port_) +
          "\n  secret: deckhand-test\n";
      if (!auth_yaml.empty())
        yml += "auth:\n" + auth_yaml;
      write_file(cfg, yml);
      spawn(cfg);
      if (wait_ready())
        return;
      stop();
    }
    throw std::runtime_error("docker-registry did not start; log:\n" + read_file(log_));
  }
  ~registry_process() { stop(); }
  registry_process(const registry_process&) = delete;
  registry_process& operator=(const registry_process&) = delete;

  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const { return read_file(log_); }

  /// How many requests the registry logged for `path` (its access log).
  int requests_for(const std::string& path) const {
    std::string text = log();
    std::string needle = "\"GET " + path + " HTTP";
    int n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
      ++n;
    return n;
  }

  void stop() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGKILL);
    int st;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  void spawn(const fs::path& cfg) {
    int logfd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
      throw std::runtime_error("open registry log failed");
    pid_t pid = ::fork();
    if (pid < 0)
      throw std::runtime_error("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      ::dup2(logfd, 1);
      ::dup2(logfd, 2);
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0)
        ::dup2(devnull, 0);
      ::execl("/usr/bin/docker-registry", "docker-registry", "serve", cfg.c_str(),
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(logfd);
    pid_ = pid;
  }

  bool wait_ready() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline) {
      int st;
      if (::waitpid(pid_, &st, WNOHANG) == pid_) {
        pid_ = -1;
        return false;  // e.g. the port was taken meanwhile
      }
      httplib::Client c("127.0.0.1", port_);
      c.set_connection_timeout(std::chrono::milliseconds(200));
      if (auto r = c.Get("/v2/"); r && (r->status == 200 || r->status == 401))
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  fs::path log_;
  int port_ = 0;
  pid_t pid_ = -1;
};

/// An image as the bytes a registry holds.
struct test_image {
  std::string manifest;
  std::string manifest_type;
  std::string config;
  std::vector<std::string> layers;  ///< blob bytes, in order
  std::string digest() const { return sha256_hex(manifest); }
  std::string config_digest() const { return sha256_hex(config); }
};

/// An image of uncompressed tar layers with the given config fields.
inline test_image make_image(const std::vector<std::string>& layer_tars,
                             const std::string& arch = "amd64",
                             const std::vector<std::string>& cmd = {"/bin/sh"}) {
  using json = nlohmann::json;
  test_image img;
  json diff_ids = json::array();
  json layers = json::array();
  for (const auto& l : layer_tars) {
    diff_ids.push_back(sha256_hex(l));
    layers.push_back({{"mediaType", "application/vnd.oci.image.layer.v1.tar"},
                      {"digest", sha256_hex(l)},
                      {"size", l.size()}});
    img.layers.push_back(l);
  }
  img.config = json({{"architecture", arch},
                     {"os", "linux"},
                     {"config", {{"Cmd", cmd}, {"Env", {"PATH=/bin"}}}},
                     {"rootfs", {{"type", "layers"}, {"diff_ids", diff_ids}}}})
                   .dump();
  img.manifest_type = "application/vnd.oci.image.manifest.v1+json";
  img.manifest = json({{"schemaVersion", 2},
                       {"mediaType", img.manifest_type},
                       {"config",
                        {{"mediaType", "application/vnd.oci.image.config.v1+json"},
                         {"digest", img.config_digest()},
                         {"size", img.config.size()}}},
                       {"layers", layers}})
                     .dump();
  return img;
}

/// Pushes over the distribution API with monolithic uploads.
class pusher {
 public:
  explicit pusher(int port) : c_("127.0.0.1", port) {
    c_.set_connection_timeout(std::chrono::seconds(5));
    c_.set_read_timeout(std::chrono::seconds(30));
    c_.set_write_timeout(std::chrono::seconds(30));
  }

  void blob(const std::string& repo, const std::string& data) {
    auto r = c_.Post(("/v2/" + repo + "/blobs/uploads/").c_str(), "", "application/octet-stream");
    if (!r || r->status != 202)
      throw std::runtime_error("upload start failed for " + repo);
    std::string loc = r->get_header_value("Location");
    if (auto p = loc.find("://"); p != std::string::npos)
      loc = loc.substr(loc.find('/', p + 3));
    loc += (loc.find('?') == std::string::npos ? "?" : "&") + std::string("digest=") +
           sha256_hex(data);
    auto put = c_.Put(loc.c_str(), data, "application/octet-stream");
    if (!put || put->status != 201)
      throw std::runtime_error("blob upload failed: " + std::to_string(put ? put->status : -1) +
                               " " + (put ? put->body : std::string()));
  }

  void manifest(const std::string& repo, const std::string& ref, const std::string& bytes,
                const std::string& type) {
    auto r = c_.Put(("/v2/" + repo + "/manifests/" + ref).c_str(), bytes, type.c_str());
    if (!r || r->status != 201)
      throw std::runtime_error("manifest push failed: " + std::to_string(r ? r->status : -1) + " " +
                               (r ? r->body : std::string()));
  }

  void image(const std::string& repo, const std::string& tag, const test_image& img) {
    blob(repo, img.config);
    for (const auto& l : img.layers)
      blob(repo, l);
    manifest(repo, tag, img.manifest, img.manifest_type);
  }

 private:
  httplib::Client c_;
};

/// An httplib server on a free loopback port, running in its own thread.
class http_server {
 public:
  httplib::Server srv;

  void start() {
    port_ = srv.bind_to_any_port("127.0.0.1");
    if (port_ <= 0)
      throw std::runtime_error("bind failed");
    thread_ = std::thread([this] { srv.listen_after_bind(); });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!srv.is_running() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~http_server() {
    srv.stop();
    if (thread_.joinable())
      thread_.join();
  }
  int port() const { return port_; }
  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  std::thread thread_;
};

/// A proxy in front of a registry that counts GETs per path and can corrupt
/// or truncate chosen blobs.
class registry_proxy : public http_server {
 public:
  explicit registry_proxy(int upstream_port) : upstream_(upstream_port) {
    srv.Get(".*",
            [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
    start();
  }

  int count(const std::string& path) {
    std::lock_guard<std::mutex> g(mu_);
    return counts_[path];
  }
  void corrupt(const std::string& digest) {
    std::lock_guard<std::mutex> g(mu_);
    corrupt_ = digest;
  }
  /// The next `times` GETs of `digest` send half the blob and close.
  void truncate(const std::string& digest, int times) {
    std::lock_guard<std::mutex> g(mu_);
    truncate_ = digest;
    truncate_times_ = times;
  }

 private:
  void handle(const httplib::Request& req, httplib::Response& res) {
    bool corrupt = false, truncate = false;
    {
      std::lock_guard<std::mutex> g(mu_);
      ++counts_[req.path];
      auto is_blob = [&](const std::string& d) {
        return !d.empty() && req.path.size() > d.size() &&
               req.path.compare(req.path.size() - d.size(), d.size(), d) == 0 &&
               req.path.find("/blobs/") != std::string::npos;
      };
      corrupt = is_blob(corrupt_);
      if (is_blob(truncate_) && truncate_times_ > 0) {
        truncate = true;
        --truncate_times_;
      }
    }
    httplib::Client up("127.0.0.1", upstream_);
    httplib::Headers h;
    for (const char* k : {"Accept", "Authorization"})
      if (req.has_header(k))
        h.emplace(k, req.get_header_value(k));
    auto r = up.Get(req.path.c_str(), h);
    if (!r) {
      res.status = 502;
      return;
    }
    res.status = r->status;
    for (const char* k : {"Docker-Content-Digest", "WWW-Authenticate"})
      if (r->has_header(k))
        res.set_header(k, r->get_header_value(k));
    std::string ct = r->get_header_value("Content-Type");
    std::string body = r->body;
    if (corrupt && !body.empty())
      body[body.size() / 2] ^= 0x5a;
    if (truncate) {
      auto data = std::make_shared<std::string>(std::move(body));
      res.set_content_provider(data->size(), ct, [data](size_t, size_t, httplib::DataSink& sink) {
        sink.write(data->data(), data->size() / 2);
        return false;  // drop the connection mid-blob
      });
      return;
    }
    res.set_content(body, ct.c_str());
  }

  int upstream_;
  std::mutex mu_;
  std::map<std::string, int> counts_;
  std::string corrupt_, truncate_;
  int truncate_times_ = 0;
};

/// An RSA key and a self-signed certificate for it, as the registry's
/// `rootcertbundle` and the token server's signing key.
class signing_key {
 public:
  signing_key() {
    key_ = EVP_RSA_gen(2048);
    cert_ = X509_new();
    X509_set_version(cert_, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert_), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert_), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert_), 3600 * 24);
    X509_set_pubkey(cert_, key_);
    X509_NAME* name = X509_get_subject_name(cert_);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("deckhand-test-token"), -1,
                               -1, 0);
    X509_set_issuer_name(cert_, name);
    X509_sign(cert_, key_, EVP_sha256());
  }
  ~signing_key() {
    X509_free(cert_);
    EVP_PKEY_free(key_);
  }
  signing_key(const signing_key&) = delete;
  signing_key& operator=(const signing_key&) = delete;

  void write_cert(const fs::path& p) const {
    FILE* f = std::fopen(p.c_str(), "w");
    PEM_write_X509(f, cert_);
    std::fclose(f);
  }

  std::string cert_der() const {
    unsigned char* buf = nullptr;
    int n = i2d_X509(cert_, &buf);
    std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(n));
    OPENSSL_free(buf);
    return out;
  }

  std::string sign(const std::string& input) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    std::size_t len = 0;
    EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key_);
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    sig.resize(len);
    EVP_MD_CTX_free(ctx);
    return sig;
  }

 private:
  EVP_PKEY* key_ = nullptr;
  X509* cert_ = nullptr;
};

/// A token server for the registry's `auth: token:` mode: checks Basic
/// credentials and hands out RS256 JWTs with an `x5c` header.
class token_server : public http_server {
 public:
  token_server(const signing_key& key, std::string user, std::string password)
      : key_(key), user_(std::move(user)), password_(std::move(password)) {
    srv.Get("/token",
            [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
    start();
  }

  static constexpr const char* issuer = "deckhand-test-issuer";
  static constexpr const char* service = "deckhand-test-registry";

  std::string realm() const { return "http://" + host() + "/token"; }
  int requests() const { return requests_; }
  std::string last_scope() {
    std::lock_guard<std::mutex> g(mu_);
    return last_scope_;
  }

  /// A token for `scope` (`repository:NAME:ACTIONS`), for the test's own pushes.
  std::string token_for(const std::string& scope) const {
    using json = nlohmann::json;
    json access = json::array();
    auto c1 = scope.find(':'), c2 = scope.rfind(':');
    if (c1 != std::string::npos && c2 > c1) {
      json actions = json::array();
      std::string acts = scope.substr(c2 + 1);
      for (std::size_t i = 0; i <= acts.size();) {
        auto j = acts.find(',', i);
        if (j == std::string::npos)
          j = acts.size();
        actions.push_back(acts.substr(i, j - i));
        i = j + 1;
      }
      access.push_back({{"type", scope.substr(0, c1)},
                        {"name", scope.substr(c1 + 1, c2 - c1 - 1)},
                        {"actions", actions}});
    }
    auto now = static_cast<std::int64_t>(::time(nullptr));
    json header = {{"typ", "JWT"}, {"alg", "RS256"}, {"x5c", {base64(key_.cert_der())}}};
    json claims = {{"iss", issuer},
                   {"sub", user_},
                   {"aud", service},
                   {"exp", now + 600},
                   {"nbf", now - 60},
                   {"iat", now},
                   {"jti", std::to_string(++jti_)},
                   {"access", access}};
    std::string input = base64url(header.dump()) + "." + base64url(claims.dump());
    return input + "." + base64url(key_.sign(input));
  }

 private:
  void handle(const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    {
      std::lock_guard<std::mutex> g(mu_);
      last_scope_ = req.get_param_value("scope");
    }
    std::string want = "Basic " + base64(user_ + ":" + password_);
    if (req.get_header_value("Authorization") != want) {
      res.status = 401;
      res.set_content(R"({"details":"bad credentials"})", "application/json");
      return;
    }
    nlohmann::json j = {{"token", token_for(req.get_param_value("scope"))}, {"expires_in", 600}};
    res.set_content(j.dump(), "application/json");
  }

  const signing_key& key_;
  std::string user_, password_;
  std::atomic<int> requests_{0};
  mutable std::atomic<int> jti_{0};
  std::mutex mu_;
  std::string last_scope_;
};

}  // namespace deckhand::image::test

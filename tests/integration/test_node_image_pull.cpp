// End-to-end image pulls: a real registry (Debian's docker-registry) on a
// loopback port chosen by the OS, a busybox image pushed to it with skopeo,
// and a real node pulling from it through the runtime.
#define BOOST_TEST_MODULE deckhand_node_image_pull
#include <boost/test/unit_test.hpp>

#include "deckhand/testing/skip.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <httplib.h>

#include "deckhand/image/builder.hpp"
#include "node_fixture.hpp"

using namespace deckhand::testing;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

int free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0)
    ::close(fd);
  return port;
}

/// A temporary directory with docker-registry serving from it, and the
/// busybox image pushed as the given repositories. Everything is killed and
/// removed by the destructor, also when a test fails.
class registry {
 public:
  explicit registry(const std::vector<std::string>& repos) {
    char tmpl[] = "/tmp/dh-reg-XXXXXX";
    if (!::mkdtemp(tmpl))
      throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    for (int attempt = 0; attempt < 5 && pid_ <= 0; ++attempt)
      start();
    if (pid_ <= 0)
      throw std::runtime_error("docker-registry did not start: " + log());
    push(repos);
  }
  ~registry() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      ::waitpid(pid_, &st, 0);
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  std::string host() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string log() const {
    std::ifstream in(dir_ / "registry.log");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

 private:
  void start() {
    port_ = free_loopback_port();
    auto cfg = dir_ / "config.yml";
    std::ofstream(cfg) << "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
                          "    rootdirectory: "
                       << (dir_ / "storage").string() << "\nhttp:\n  addr: 127.0.0.1:" << port_
                       << "\n  secret: deckhand-test\n";
    auto logfile = dir_ / "registry.log";
    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      int fd = ::open(logfile.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execlp("docker-registry", "docker-registry", "serve", cfg.c_str(),
               static_cast<char*>(nullptr));
      _exit(127);
    }
    pid_ = pid;
    httplib::Client c("127.0.0.1", port_);
    c.set_connection_timeout(1);
    bool up = eventually(
        [&] {
          int st = 0;
          if (::waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;  // exited: the port was taken meanwhile
            return true;
          }
          auto r = c.Get("/v2/");
          return r && r->status == 200;
        },
        15s);
    if (!up && pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }

  void push(const std::vector<std::string>& repos) {
    auto rootfs = dir_ / "rootfs";
    fs::create_directories(rootfs);
    if (auto err = deckhand::image::make_busybox_rootfs(rootfs))
      throw std::runtime_error("make_busybox_rootfs: " + err.message);
    deckhand::image::image_config cfg;
    cfg.cmd = {"sh"};
    cfg.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
    auto layout = dir_ / "layout";
    auto built = deckhand::image::build_layout(rootfs, layout, "deckhand.local/busybox:push", cfg);
    if (!built)
      throw std::runtime_error("build_layout: " + built.err().message);
    for (const auto& repo : repos) {
      auto r = run_program({"skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false",
                            "oci:" + layout.string(), "docker://" + host() + "/" + repo},
                           120s);
      if (r.exit_code != 0)
        throw std::runtime_error("skopeo copy to " + repo + " failed: " + r.err + r.out);
    }
  }

  fs::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

std::string pod_manifest(const std::string& name, const std::string& image) {
  return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name +
         "\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n"
         "    image: " +
         image + "\n    command: [\"sh\", \"-c\", \"exec sleep 100000\"]\n";
}

std::string waiting_reason(const json& pod) {
  return pod.is_null()
             ? ""
             : pod.value("/status/containerStatuses/0/state/waiting/reason"_json_pointer, "");
}

/// The API server's base URL.
std::string api_url(const node& n) {
  std::ifstream in(n.data() / "run" / "apiserver.url");
  std::string url;
  std::getline(in, url);
  BOOST_REQUIRE_MESSAGE(!url.empty(), "no apiserver.url");
  return url;
}

/// The resourceVersion of the default namespace's pod list: a watch from
/// it sees every later change, however late it connects.
std::string pods_revision(const node& n) {
  httplib::Client c(api_url(n));
  auto r = c.Get("/api/v1/namespaces/default/pods");
  BOOST_REQUIRE_MESSAGE(r && r->status == 200, "listing pods failed");
  auto list = json::parse(r->body, nullptr, false);
  auto rv = list.is_discarded() ? std::string()
                                : list.value("/metadata/resourceVersion"_json_pointer, "");
  BOOST_REQUIRE_MESSAGE(!rv.empty(), "no resourceVersion in " << r->body);
  return rv;
}

/// The waiting reasons of pod `name`'s first container, in the order the API
/// server's watch (from `resource_version`) reports them, until `stop`
/// returns true or `deadline`. `last` gets the pod of the event that made
/// `stop` true (or of the last event).
std::vector<std::string>
watch_reasons(const node& n, const std::string& name, const std::string& resource_version,
              const std::function<bool(const std::vector<std::string>&)>& stop,
              std::chrono::seconds deadline, json* last) {
  httplib::Client c(api_url(n));
  c.set_read_timeout(deadline);
  std::vector<std::string> reasons;
  std::string buf;
  bool done = false;
  auto end = std::chrono::steady_clock::now() + deadline;
  c.Get(("/api/v1/namespaces/default/pods?watch=true&resourceVersion=" + resource_version +
         "&fieldSelector=metadata.name%3D" + name)
            .c_str(),
        [&](const char* data, size_t len) {
          buf.append(data, len);
          for (auto nl = buf.find('\n'); !done && nl != std::string::npos; nl = buf.find('\n')) {
            auto ev = json::parse(buf.substr(0, nl), nullptr, false);
            buf.erase(0, nl + 1);
            if (ev.is_discarded() || !ev.contains("object"))
              continue;
            *last = ev["object"];
            auto reason = waiting_reason(ev["object"]);
            if (!reason.empty() && (reasons.empty() || reasons.back() != reason))
              reasons.push_back(reason);
            done = stop(reasons);
          }
          return !done && std::chrono::steady_clock::now() < end;
        });
  return reasons;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(image_pull_suite,
                      *deckhand::testing::skip_unless(deckhand::testing::containers(),
                                                      deckhand::testing::program("docker-registry"),
                                                      deckhand::testing::program("skopeo")))

// `deckhand image pull` fetches an image through the runtime and prints its
// id; `image ls` lists it. A pod whose image is only in the registry gets it
// pulled and runs; removing an image that pod uses is refused, and allowed
// once the pod is gone.
BOOST_AUTO_TEST_CASE(pull_run_and_remove) {
  registry reg({"test/busybox:1.0", "test/app:2.0"});
  node n;
  auto pulled = n.cli({"image", "pull", reg.host() + "/test/busybox:1.0"}, {}, 300s);
  BOOST_REQUIRE_MESSAGE(pulled.exit_code == 0, pulled.err + pulled.out);
  BOOST_TEST(pulled.out.rfind("sha256:", 0) == 0u, pulled.out);
  auto id = pulled.out.substr(0, pulled.out.find('\n'));
  auto ls = n.cli({"image", "ls"});
  BOOST_TEST(ls.exit_code == 0);
  BOOST_TEST(ls.out.find(reg.host() + "/test/busybox:1.0") != std::string::npos, ls.out);
  BOOST_TEST(ls.out.find(id.substr(7, 12)) != std::string::npos, ls.out);

  const auto app = reg.host() + "/test/app:2.0";
  n.apply(pod_manifest("puller", app));
  auto pod = n.wait_phase("puller", "Running", 180s);
  BOOST_TEST(pod.value("/status/containerStatuses/0/image"_json_pointer, "") == app);

  auto rm = n.cli({"image", "rm", app});
  BOOST_TEST(rm.exit_code != 0);
  BOOST_TEST(rm.err.find("in use by pod default/puller") != std::string::npos, rm.err);
  BOOST_TEST(n.cli({"image", "ls"}).out.find(app) != std::string::npos);

  auto del = n.cli({"delete", "pod", "puller"}, {}, 120s);
  BOOST_REQUIRE_MESSAGE(del.exit_code == 0, del.err);
  BOOST_REQUIRE(eventually([&] { return n.pod("puller").is_null(); }, 60s));
  // The sandbox goes shortly after the object.
  bool removed = eventually([&] { return n.cli({"image", "rm", app}).exit_code == 0; }, 30s);
  BOOST_TEST(removed);
  BOOST_TEST(n.cli({"image", "ls"}).out.find(app) == std::string::npos);
}

// A pod whose image the registry does not have shows ErrImagePull, then
// ImagePullBackOff, and stays Pending.
BOOST_AUTO_TEST_CASE(missing_image_backs_off) {
  registry reg({"test/busybox:1.0"});
  node n;
  // The watch starts from before the pod exists: ErrImagePull shows for
  // about one relist period (200 ms), a window a watch connected after the
  // apply could miss.
  auto rv = pods_revision(n);
  n.apply(pod_manifest("ghost", reg.host() + "/test/does-not-exist:1"));
  // The pod as of the first ImagePullBackOff: the back-off ends in 10 s and
  // the retry shows ErrImagePull again, so a later read could see that.
  json pod;
  auto reasons = watch_reasons(
      n, "ghost", rv,
      [](const std::vector<std::string>& r) {
        auto e = std::find(r.begin(), r.end(), "ErrImagePull");
        return e != r.end() && std::find(e, r.end(), "ImagePullBackOff") != r.end();
      },
      60s, &pod);
  auto err_pull = std::find(reasons.begin(), reasons.end(), "ErrImagePull");
  auto backoff = std::find(reasons.begin(), reasons.end(), "ImagePullBackOff");
  BOOST_TEST((err_pull != reasons.end()), "reasons seen: " << json(reasons).dump());
  BOOST_TEST((backoff != reasons.end() && err_pull < backoff),
             "reasons seen: " << json(reasons).dump());
  BOOST_REQUIRE_MESSAGE(waiting_reason(pod) == "ImagePullBackOff",
                        "reasons seen: " << json(reasons).dump());
  BOOST_TEST(pod.value("/status/phase"_json_pointer, "") == "Pending");
  BOOST_TEST(pod.value("/status/containerStatuses/0/state/waiting/message"_json_pointer, "") ==
             "Back-off pulling image \"" + reg.host() + "/test/does-not-exist:1\"");
}

BOOST_AUTO_TEST_SUITE_END()

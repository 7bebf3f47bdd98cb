#include "bench_node.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <numeric>
#include <sstream>

#include <httplib.h>

#include "deckhand/image/builder.hpp"

namespace deckhand::bench {

using namespace std::chrono_literals;

// -- processes ---------------------------------------------------------------------

fs::path self_dir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::current_path() : exe.parent_path();
}

namespace {
std::atomic<bool> g_interrupted{false};
extern "C" void on_signal(int) { g_interrupted = true; }
}  // namespace

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

bool interrupted() { return g_interrupted.load(); }

std::string host_line() {
  struct utsname u {};
  ::uname(&u);
  double la[3] = {0, 0, 0};
  ::getloadavg(la, 3);
  char when[32];
  std::time_t t = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M", std::localtime(&t));
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s  host %s  kernel %s  cpus %ld  load average %.2f %.2f %.2f",
                when, u.nodename, u.release, ::sysconf(_SC_NPROCESSORS_ONLN), la[0], la[1], la[2]);
  return buf;
}

summary summarize(std::vector<double> v) {
  summary s;
  s.n = v.size();
  if (v.empty())
    return s;
  std::sort(v.begin(), v.end());
  auto rank = [&](double p) {
    // Nearest rank: the smallest value with at least p of the sample at or below it.
    auto k = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size())));
    return v[std::clamp<std::size_t>(k, 1, v.size()) - 1];
  };
  s.min = v.front();
  s.max = v.back();
  s.p50 = rank(0.50);
  s.p90 = rank(0.90);
  s.p99 = rank(0.99);
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  return s;
}

// -- images and bundles ----------------------------------------------------------------

std::string make_busybox_image(const fs::path& dir, const std::string& ref) {
  auto rootfs = dir / "rootfs";
  std::error_code ec;
  fs::create_directories(rootfs, ec);
  if (auto err = image::make_busybox_rootfs(rootfs))
    return "make_busybox_rootfs: " + err.message;
  image::image_config cfg;
  cfg.cmd = {"sh"};
  cfg.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  auto built = image::build_layout(rootfs, dir / "layout", ref, cfg);
  if (!built)
    return "build_layout: " + built.err().message;
  return {};
}

std::string make_runc_bundle(const fs::path& bundle, const fs::path& rootfs,
                             const std::vector<std::string>& args) {
  std::error_code ec;
  fs::create_directories(bundle, ec);
  auto r = run_program({"runc", "spec", "--bundle", bundle.string()}, 10s);
  if (r.exit_code != 0)
    return "runc spec: " + r.err;
  nlohmann::json cfg;
  try {
    std::ifstream in(bundle / "config.json");
    cfg = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    return std::string("runc spec output: ") + e.what();
  }
  cfg["root"]["path"] = fs::absolute(rootfs).string();
  cfg["root"]["readonly"] = false;
  cfg["process"]["terminal"] = false;
  cfg["process"]["args"] = args;
  std::ofstream out(bundle / "config.json");
  out << cfg.dump(2);
  return out ? std::string{} : "cannot write config.json";
}

// -- HTTP ---------------------------------------------------------------------------

struct api_client::impl {
  explicit impl(const std::string& url) : cli(url) {
    cli.set_keep_alive(true);
    // As kubectl (Go sets TCP_NODELAY) and curl do: without it the request
    // body waits for the ACK of the headers (Nagle), which the server's
    // delayed ACK holds back for 40 ms.
    cli.set_tcp_nodelay(true);
    cli.set_connection_timeout(5, 0);
    cli.set_read_timeout(60, 0);
    cli.set_write_timeout(10, 0);
  }
  httplib::Client cli;
};

api_client::api_client(std::string base_url) : impl_(std::make_unique<impl>(base_url)) {}

api_client::~api_client() = default;

namespace {
api_client::response to_response(const httplib::Result& r) {
  api_client::response out;
  if (!r) {
    out.error = httplib::to_string(r.error());
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  return out;
}
}  // namespace

api_client::response api_client::get(const std::string& path) {
  return to_response(impl_->cli.Get(path.c_str()));
}

api_client::response api_client::post(const std::string& path, const nlohmann::json& body) {
  return to_response(impl_->cli.Post(path.c_str(), body.dump(), "application/json"));
}

api_client::response api_client::del(const std::string& path, const nlohmann::json& body) {
  if (body.is_null())
    return to_response(impl_->cli.Delete(path.c_str()));
  return to_response(impl_->cli.Delete(path.c_str(), body.dump(), "application/json"));
}

pod_watch::pod_watch(std::string base_url, std::string path_and_query, handler on_event)
    : base_url_(std::move(base_url)),
      path_(std::move(path_and_query)),
      on_event_(std::move(on_event)) {
  thread_ = std::thread([this] { run(); });
}

pod_watch::~pod_watch() { stop(); }

bool pod_watch::wait_open(std::chrono::milliseconds deadline) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, deadline, [&] { return open_; });
}

void pod_watch::stop() {
  stop_ = true;
  {
    std::lock_guard lock(mu_);
    if (client_)
      static_cast<httplib::Client*>(client_)->stop();
  }
  if (thread_.joinable())
    thread_.join();
}

void pod_watch::run() {
  while (!stop_) {
    httplib::Client cli(base_url_);
    cli.set_connection_timeout(5, 0);
    cli.set_tcp_nodelay(true);
    // The server writes nothing while nothing changes; it ends the stream
    // after timeoutSeconds, so a read timeout above that is never hit.
    cli.set_read_timeout(60, 0);
    {
      std::lock_guard lock(mu_);
      if (stop_)
        return;
      client_ = &cli;
    }
    std::string path =
        path_ + (path_.find('?') == std::string::npos ? "?" : "&") + "watch=true&timeoutSeconds=30";
    if (!resource_version_.empty())
      path += "&resourceVersion=" + resource_version_;
    std::string buf;
    auto res = cli.Get(
        path.c_str(), httplib::Headers{},
        [&](const httplib::Response& r) {
          if (r.status == 200) {
            std::lock_guard lock(mu_);
            open_ = true;
            cv_.notify_all();
          }
          return r.status == 200;
        },
        [&](const char* data, size_t len) {
          auto at = clock_type::now();
          buf.append(data, len);
          std::size_t start = 0;
          for (auto nl = buf.find('\n', start); nl != std::string::npos;
               nl = buf.find('\n', start)) {
            std::string line = buf.substr(start, nl - start);
            start = nl + 1;
            if (line.empty())
              continue;
            try {
              auto ev = nlohmann::json::parse(line);
              auto type = ev.value("type", "");
              const auto& obj = ev["object"];
              if (type == "ERROR") {
                resource_version_.clear();  // expired: start over from "now"
                continue;
              }
              auto rv = obj.value("/metadata/resourceVersion"_json_pointer, std::string{});
              if (!rv.empty())
                resource_version_ = rv;
              on_event_(type, obj, at);
            } catch (const std::exception&) {
              // A torn or foreign line: ignore it; the benchmark's deadline catches a stall.
            }
          }
          buf.erase(0, start);
          return !stop_;
        });
    {
      std::lock_guard lock(mu_);
      client_ = nullptr;
    }
    (void)res;
    if (!stop_ && !res)
      std::this_thread::sleep_for(100ms);  // the server is (re)starting
  }
}

// -- node ---------------------------------------------------------------------------

node::node(node_options opts) : opts_(std::move(opts)) {
  char tmpl[] = "/tmp/dh-bench-node-XXXXXX";
  if (!::mkdtemp(tmpl))
    throw std::runtime_error("mkdtemp failed");
  data_ = tmpl;
  config_ = data_.string() + ".up.yaml";
}

node::~node() { shutdown(); }

std::string node::start(std::chrono::milliseconds deadline) {
  {
    std::ofstream cfg(config_);
    cfg << "restartBackoff:\n  initialMilliseconds: 100\n  maxMilliseconds: 1000\n"
           "stopTimeoutSeconds: 20\n"
           "cleanupTimeoutSeconds: 600\n"
           "components:\n"
           "  kubelet:\n    args: [\"--node-name="
        << opts_.node_name << "\"";
    for (const auto& a : opts_.kubelet_args)
      cfg << ", " << nlohmann::json(a).dump();
    cfg << "]\n" << opts_.extra_config;
    if (!cfg)
      return "cannot write " + config_.string();
  }
  std::vector<std::string> argv = {(opts_.bin_dir / "deckhand").string(),
                                   "up",
                                   "--data-dir",
                                   data_.string(),
                                   "--config",
                                   config_.string(),
                                   "--bin-dir",
                                   opts_.bin_dir.string()};
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  auto log = up_log();
  up_pid_ = ::fork();
  if (up_pid_ < 0)
    return std::string("fork: ") + std::strerror(errno);
  if (up_pid_ == 0) {
    ::setpgid(0, 0);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::dup2(devnull, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    ::execv(args[0], args.data());
    _exit(127);
  }
  auto end = clock_type::now() + deadline;
  // The API server's URL, then the node object (the kubelet registered).
  while (true) {
    if (interrupted())
      return "interrupted";
    int status = 0;
    if (::waitpid(up_pid_, &status, WNOHANG) == up_pid_) {
      up_pid_ = -1;
      return "deckhand up exited during start; see " + log.string();
    }
    if (api_url_.empty()) {
      std::ifstream in(data_ / "run" / "apiserver.url");
      std::string url;
      if (in && std::getline(in, url) && !url.empty())
        api_url_ = url;
    }
    if (!api_url_.empty()) {
      api_client api(api_url_);
      auto r = api.get("/api/v1/nodes/" + opts_.node_name);
      if (r.status == 200)
        return {};
    }
    if (clock_type::now() >= end)
      return "node did not register in time; see " + log.string();
    std::this_thread::sleep_for(50ms);
  }
}

command_result node::cli(std::vector<std::string> args, std::chrono::milliseconds deadline) {
  std::vector<std::string> argv = {(opts_.bin_dir / "deckhand").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--data-dir");
  argv.push_back(data_.string());
  return run_program(argv, deadline);
}

std::string node::import_image(const fs::path& layout, const std::string& name) {
  auto r = cli({"image", "import", layout.string(), "--name", name}, 300s);
  if (r.exit_code != 0)
    return "deckhand image import failed: " + r.err + r.out;
  return {};
}

std::string proc_cmdline(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(s.begin(), s.end(), '\0', ' ');
  while (!s.empty() && s.back() == ' ')
    s.pop_back();
  return s;
}

std::string proc_argv0(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string a0;
  std::getline(in, a0, '\0');
  return fs::path(a0).filename().string();
}

std::map<pid_t, std::string> node::processes() const {
  std::map<pid_t, std::string> out;
  const std::string needle = "--data-dir " + data_.string();
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const auto name = e.path().filename().string();
    if (name.empty() || !std::all_of(name.begin(), name.end(), ::isdigit))
      continue;
    pid_t pid = std::stoi(name);
    auto cmd = proc_cmdline(pid) + " ";
    // The supervisor zygote carries the data dir in its socket path only.
    bool zygote = cmd.find(" --zygote " + (data_ / "run").string() + "/") != std::string::npos;
    if (!zygote && cmd.find(needle + " ") == std::string::npos)
      continue;
    out[pid] = zygote ? std::string("supervisor zygote") : proc_argv0(pid);
  }
  return out;
}

std::vector<std::string> node::leftovers() const {
  std::vector<std::string> out;
  auto root = data_ / "runtime" / "runc";
  std::error_code ec;
  if (fs::exists(root, ec)) {
    auto r = run_program({"runc", "--root", root.string(), "list", "-q"}, 30s);
    std::istringstream ids(r.out);
    for (std::string id; std::getline(ids, id);)
      if (!id.empty())
        out.push_back("runc container " + id);
  }
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);)
    if (line.find(data_.string() + "/") != std::string::npos)
      out.push_back("mount " + line);
  for (const auto& [pid, name] : processes())
    out.push_back("process " + std::to_string(pid) + " " + name);
  return out;
}

std::vector<std::string> node::shutdown() {
  if (shut_down_)
    return {};
  shut_down_ = true;
  // 1. deckhand up's own path: stop the components, remove the pods.
  if (up_pid_ > 0) {
    ::kill(up_pid_, SIGTERM);
    int status = 0;
    auto end = clock_type::now() + 15min;
    while (true) {
      auto r = ::waitpid(up_pid_, &status, WNOHANG);
      if (r == up_pid_ || (r < 0 && errno == ECHILD))
        break;
      if (clock_type::now() >= end) {
        ::kill(up_pid_, SIGKILL);
        ::waitpid(up_pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
    up_pid_ = -1;
  }
  // 2. Whatever is left: kill this node's processes by pid, remove pods.
  auto kill_left = [&] {
    for (const auto& [pid, name] : processes())
      ::kill(pid, SIGKILL);
    std::this_thread::sleep_for(200ms);
  };
  auto left = leftovers();
  if (!left.empty()) {
    kill_left();
    run_program({(opts_.bin_dir / "deckhand-runtime").string(), "--data-dir", data_.string(),
                 "--cleanup-all"},
                10min);
    kill_left();
    left = leftovers();
  }
  if (left.empty() && !opts_.keep_data) {
    std::error_code ec;
    fs::remove_all(data_, ec);
    fs::remove(config_, ec);
    fs::remove(up_log(), ec);
  }
  return left;
}

// -- memory ------------------------------------------------------------------------

namespace {
long status_field_kib(const std::string& file, const std::string& key) {
  std::ifstream in(file);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) {
      std::istringstream ss(line.substr(key.size()));
      long v = -1;
      ss >> v;
      return v;
    }
  }
  return -1;
}
}  // namespace

long pss_kib(pid_t pid) {
  return status_field_kib("/proc/" + std::to_string(pid) + "/smaps_rollup", "Pss:");
}

long rss_kib(pid_t pid) {
  return status_field_kib("/proc/" + std::to_string(pid) + "/status", "VmRSS:");
}

double cpu_seconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // comm (field 2) may hold spaces: count fields after its closing paren.
  auto close = text.rfind(')');
  if (close == std::string::npos)
    return -1;
  std::istringstream ss(text.substr(close + 2));
  std::string f;
  unsigned long long utime = 0, stime = 0;
  for (int field = 3; field <= 15 && ss >> f; ++field) {
    if (field == 14)
      utime = std::stoull(f);
    else if (field == 15)
      stime = std::stoull(f);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace deckhand::bench

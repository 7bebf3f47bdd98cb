#include "node_fixture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "deckhand/image/builder.hpp"

namespace deckhand::testing {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

fs::path bin_dir() {
  if (const char* d = std::getenv("DECKHAND_BIN_DIR"); d && *d)
    return d;
  return fs::path("build") / "bin";
}

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds deadline) {
  auto end = clock_type::now() + deadline;
  while (true) {
    if (pred())
      return true;
    if (clock_type::now() >= end)
      return false;
    std::this_thread::sleep_for(50ms);
  }
}

namespace {

/// The busybox OCI layout, built once per test process.
fs::path busybox_layout() {
  static std::once_flag once;
  static fs::path layout;
  std::call_once(once, [] {
    char tmpl[] = "/tmp/dh-img-XXXXXX";
    fs::path dir = ::mkdtemp(tmpl);
    auto rootfs = dir / "rootfs";
    fs::create_directories(rootfs);
    if (auto err = image::make_busybox_rootfs(rootfs))
      throw std::runtime_error("make_busybox_rootfs: " + err.message);
    image::image_config cfg;
    cfg.cmd = {"sh"};
    cfg.env = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
    auto built = image::build_layout(rootfs, dir / "layout", "deckhand.local/busybox:test", cfg);
    if (!built)
      throw std::runtime_error("build_layout: " + built.err().message);
    layout = dir / "layout";
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(layout.parent_path(), ec);
    });
  });
  return layout;
}

}  // namespace

node::node(const std::string& extra_config) {
  char tmpl[] = "/tmp/dhn-XXXXXX";
  data_ = ::mkdtemp(tmpl);
  config_ = data_.string() + ".up.yaml";
  reconfigure(extra_config);
  start_up({});
}

void node::reconfigure(const std::string& extra_config) {
  std::ofstream cfg(config_);
  cfg << "restartBackoff:\n  initialMilliseconds: 100\n  maxMilliseconds: 1000\n"
         "stopTimeoutSeconds: 10\n"
         "components:\n"
         "  apiserver:\n    args: [\"--feed-heartbeat-ms=200\"]\n"
         "  runtime:\n    args: [\"--supervisor-arg=--backoff-initial-ms=200\","
         " \"--supervisor-arg=--backoff-max-ms=2000\"]\n"
         "  kubelet:\n    args: [\"--relist-period-ms=200\", \"--node-status-period-ms=1000\","
         " \"--feed-silence-ms=1000\", \"--node-name=test-node\"]\n"
      << extra_config;
}

void node::start_up(const std::vector<std::string>& extra_args) {
  std::vector<std::string> argv = {(bin_dir() / "deckhand").string(),
                                   "up",
                                   "--data-dir",
                                   data_.string(),
                                   "--config",
                                   config_.string()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(a.data());
  args.push_back(nullptr);
  auto log = data_.string() + ".up.log";
  up_pid_ = ::fork();
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
    ::execv(args[0], args.data());
    _exit(127);
  }
  bool up = eventually([&] { return cli({"status"}, {}, 5s).exit_code == 0; }, 60s);
  if (!up) {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    throw std::runtime_error("deckhand up did not become healthy; its log:\n" + ss.str());
  }
}

void node::restart_up(const std::vector<std::string>& extra_args) { start_up(extra_args); }

int node::stop(int sig, std::chrono::milliseconds deadline) {
  if (up_pid_ <= 0)
    return 0;
  ::kill(up_pid_, sig);
  int status = 0;
  auto end = clock_type::now() + deadline;
  while (true) {
    auto r = ::waitpid(up_pid_, &status, WNOHANG);
    if (r == up_pid_)
      break;
    if (clock_type::now() >= end) {
      ::kill(-up_pid_, SIGKILL);
      ::kill(up_pid_, SIGKILL);
      ::waitpid(up_pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  up_pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

node::~node() {
  stop(SIGTERM);
  // Whatever a failed test left behind: kill the node's processes, remove pods.
  run_program({"pkill", "-KILL", "-f", "--", "--data-dir " + data_.string()}, 10s);
  run_program(
      {(bin_dir() / "deckhand-runtime").string(), "--data-dir", data_.string(), "--cleanup-all"},
      120s);
  run_program({"pkill", "-KILL", "-f", "--", "--data-dir " + data_.string()}, 10s);
  if (leftovers().empty()) {
    std::error_code ec;
    fs::remove_all(data_, ec);
    fs::remove(config_, ec);
    fs::remove(data_.string() + ".up.log", ec);
  }
}

command_result node::cli(std::vector<std::string> args, const std::string& input,
                         std::chrono::milliseconds deadline) {
  std::vector<std::string> argv = {(bin_dir() / "deckhand").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--data-dir");
  argv.push_back(data_.string());
  return run_program(argv, deadline, input);
}

void node::import_busybox(const std::string& name) {
  auto r = cli({"image", "import", busybox_layout().string(), "--name", name}, {}, 120s);
  if (r.exit_code != 0)
    throw std::runtime_error("image import failed: " + r.err + r.out);
}

void node::apply(const std::string& manifest) {
  auto r = cli({"apply", "-f", "-"}, manifest);
  if (r.exit_code != 0)
    throw std::runtime_error("apply failed: " + r.err + r.out);
}

nlohmann::json node::pod(const std::string& name, const std::string& ns) {
  auto r = cli({"get", "pod", name, "-n", ns, "-o", "json"}, {}, 10s);
  if (r.exit_code != 0)
    return nullptr;
  try {
    return nlohmann::json::parse(r.out);
  } catch (...) {
    return nullptr;
  }
}

nlohmann::json node::wait_phase(const std::string& name, const std::string& phase,
                                std::chrono::milliseconds deadline) {
  nlohmann::json last;
  bool ok = eventually(
      [&] {
        last = pod(name);
        return !last.is_null() && last.value("/status/phase"_json_pointer, "") == phase;
      },
      deadline);
  if (!ok)
    throw std::runtime_error("pod " + name + " did not reach " + phase + "; last: " + last.dump());
  return last;
}

pid_t node::component_pid(const std::string& name) {
  std::ifstream in(data_ / "run" / "up.json");
  if (!in)
    return 0;
  try {
    auto j = nlohmann::json::parse(in);
    for (const auto& c : j.at("components")) {
      if (c.value("name", "") == name)
        return c.value("pid", 0);
    }
    if (j.at("components").contains(name))
      return j["components"][name].value("pid", 0);
  } catch (...) {
  }
  return 0;
}

nlohmann::json node::container_state(const std::string& pod_uid, const std::string& container) {
  auto r = run_program(
      {"runc", "--root", (data_ / "runtime" / "runc").string(), "state", pod_uid + "-" + container},
      10s);
  if (r.exit_code != 0)
    return nullptr;
  try {
    return nlohmann::json::parse(r.out);
  } catch (...) {
    return nullptr;
  }
}

std::vector<std::string> node::leftovers() {
  std::vector<std::string> out;
  auto root = data_ / "runtime" / "runc";
  if (fs::exists(root)) {
    auto r = run_program({"runc", "--root", root.string(), "list", "-q"}, 10s);
    std::istringstream ids(r.out);
    for (std::string id; std::getline(ids, id);)
      if (!id.empty())
        out.push_back("runc container " + id);
  }
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);)
    if (line.find(data_.string()) != std::string::npos)
      out.push_back("mount " + line);
  auto p = run_program({"pgrep", "-f", "--", "--data-dir " + data_.string()}, 10s);
  std::istringstream pids(p.out);
  for (std::string pid; std::getline(pids, pid);)
    if (!pid.empty())
      out.push_back("process " + pid);
  return out;
}

}  // namespace deckhand::testing

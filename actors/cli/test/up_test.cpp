/// `deckhand up` with real processes: fake component executables (shell
/// scripts that record their starts and stops) in a temporary --bin-dir.

#define BOOST_TEST_MODULE deckhand_cli_up
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

fs::path deckhand_binary() { return DECKHAND_BINARY; }

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// A fake component: records `start NAME`, and `stop NAME` on SIGTERM; the
/// runtime records `cleanup` when run with --cleanup-all, the proxy
/// `proxy-cleanup` with --cleanup.
std::string fake_component(const std::string& name) {
  return "#!/bin/sh\n"
         "data=\"$2\"\n"
         "if [ \"$3\" = \"--cleanup-all\" ]; then echo cleanup >> \"$data/events\"; exit 0; fi\n"
         "if [ \"$3\" = \"--cleanup\" ]; then echo proxy-cleanup >> \"$data/events\"; exit 0; fi\n"
         "trap 'echo \"stop " +
         name +
         "\" >> \"$data/events\"; exit 0' TERM\n"
         "echo \"start " +
         name +
         "\" >> \"$data/events\"\n"
         "while true; do sleep 0.05 & wait $!; done\n";
}

/// The node under test: a data dir, a bin dir, and the `up` process. Kills
/// whatever is left on destruction, so a failing test leaks nothing.
struct node_fixture {
  fs::path root;
  fs::path data;
  fs::path bin;
  pid_t up_pid = -1;

  node_fixture() {
    std::string tmpl = (fs::temp_directory_path() / "deckhand-up-test.XXXXXX").string();
    BOOST_REQUIRE(::mkdtemp(tmpl.data()));
    root = tmpl;
    data = root / "data";
    bin = root / "bin";
    fs::create_directories(data);
    fs::create_directories(bin);
    for (auto name : {"apiserver", "runtime", "kubelet", "proxy"}) {
      auto file = bin / (std::string("deckhand-") + name);
      std::ofstream(file) << fake_component(name);
      fs::permissions(file, fs::perms::owner_all);
    }
  }

  ~node_fixture() {
    auto status = up_status();
    if (up_pid > 0) {
      ::kill(up_pid, SIGKILL);
      ::waitpid(up_pid, nullptr, 0);
    }
    if (status && status->contains("components"))
      for (auto& [name, c] : (*status)["components"].items())
        if (c.value("pid", 0) > 0)
          ::kill(c["pid"].get<pid_t>(), SIGKILL);
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  pid_t spawn(const std::vector<std::string>& args, const fs::path& output) {
    pid_t pid = ::fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::vector<char*> argv;
      for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return pid;
  }

  void start_up(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        deckhand_binary().string(), "up", "--data-dir", data.string(), "--bin-dir", bin.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    up_pid = spawn(args, root / "up.log");
  }

  std::optional<json> up_status() const {
    auto text = read_file(data / "run" / "up.json");
    auto j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      return std::nullopt;
    return j;
  }

  /// Polls up.json until `pred` holds (bounded).
  template <class Pred>
  std::optional<json> wait_status(Pred pred, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (auto s = up_status(); s && pred(*s))
        return s;
      std::this_thread::sleep_for(20ms);
    }
    BOOST_TEST_MESSAGE("up.log:\n" << read_file(root / "up.log"));
    return std::nullopt;
  }

  static bool all_running(const json& s) {
    for (auto name : {"apiserver", "runtime", "kubelet", "proxy"})
      if (!s["components"].contains(name) || s["components"][name]["pid"].get<int>() <= 0)
        return false;
    return true;
  }

  /// Waits for `pid` to exit (bounded); its exit status, or nullopt.
  std::optional<int> wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid)
        return status;
      std::this_thread::sleep_for(20ms);
    }
    return std::nullopt;
  }

  std::vector<std::string> events() const {
    std::vector<std::string> out;
    std::istringstream in(read_file(data / "events"));
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  }

  /// Waits until every component has recorded `start NAME` `n` times: only
  /// then does it handle SIGTERM (a pid in up.json comes earlier).
  bool wait_started(int n = 1) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto all = events();
      bool ok = true;
      for (auto name : {"apiserver", "runtime", "kubelet", "proxy"})
        if (std::count(all.begin(), all.end(), std::string("start ") + name) < n)
          ok = false;
      if (ok)
        return true;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  std::vector<std::string> events_after(const std::string& marker) const {
    auto all = events();
    auto it = std::find(all.begin(), all.end(), marker);
    return {it == all.end() ? all.end() : it + 1, all.end()};
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(up, node_fixture)

BOOST_AUTO_TEST_CASE(restarts_a_killed_component_and_stops_in_order) {
  start_up();
  auto s = wait_status(all_running);
  BOOST_REQUIRE(s);
  BOOST_REQUIRE(wait_started());
  BOOST_CHECK_EQUAL((*s)["pid"].get<pid_t>(), up_pid);

  // A second launcher on the same data dir refuses to start.
  auto second = spawn(
      {deckhand_binary().string(), "up", "--data-dir", data.string(), "--bin-dir", bin.string()},
      root / "second.log");
  auto second_status = wait_exit(second, 10s);
  BOOST_REQUIRE(second_status);
  BOOST_CHECK(WIFEXITED(*second_status) && WEXITSTATUS(*second_status) != 0);
  BOOST_CHECK(read_file(root / "second.log").find("already running") != std::string::npos);

  // kill -9 the kubelet: it comes back with a new pid and one restart.
  auto old_pid = (*s)["components"]["kubelet"]["pid"].get<pid_t>();
  BOOST_REQUIRE_EQUAL(::kill(old_pid, SIGKILL), 0);
  auto after = wait_status([&](const json& j) {
    const auto& k = j["components"]["kubelet"];
    return k["pid"].get<pid_t>() > 0 && k["pid"].get<pid_t>() != old_pid &&
           k["restarts"].get<int>() == 1;
  });
  BOOST_REQUIRE(after);
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto all = events();
    if (std::count(all.begin(), all.end(), "start kubelet") == 2)
      break;
    std::this_thread::sleep_for(20ms);
  }
  BOOST_CHECK((*after)["components"]["kubelet"]["lastExit"].get<std::string>().find("signal 9") ==
              0);
  BOOST_CHECK_EQUAL((*after)["components"]["apiserver"]["restarts"].get<int>(), 0);

  // Ordered shutdown on SIGTERM: kubelet, proxy, runtime, cleanup (pods, then
  // the proxy's Service rules), apiserver.
  std::ofstream(data / "events", std::ios::app) << "-- shutdown\n";
  BOOST_REQUIRE_EQUAL(::kill(up_pid, SIGTERM), 0);
  auto status = wait_exit(up_pid, 30s);
  BOOST_REQUIRE(status);
  up_pid = -1;
  BOOST_CHECK(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  auto order = events_after("-- shutdown");
  std::vector<std::string> want = {"stop kubelet", "stop proxy",    "stop runtime",
                                   "cleanup",      "proxy-cleanup", "stop apiserver"};
  BOOST_CHECK_EQUAL_COLLECTIONS(order.begin(), order.end(), want.begin(), want.end());
  BOOST_CHECK(!fs::exists(data / "run" / "up.json"));
}

BOOST_AUTO_TEST_CASE(keep_pods_skips_the_cleanup) {
  start_up({"--keep-pods"});
  BOOST_REQUIRE(wait_status(all_running));
  BOOST_REQUIRE(wait_started());
  std::ofstream(data / "events", std::ios::app) << "-- shutdown\n";
  BOOST_REQUIRE_EQUAL(::kill(up_pid, SIGINT), 0);
  auto status = wait_exit(up_pid, 30s);
  BOOST_REQUIRE(status);
  up_pid = -1;
  BOOST_CHECK(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  auto order = events_after("-- shutdown");
  std::vector<std::string> want = {"stop kubelet", "stop proxy", "stop runtime", "stop apiserver"};
  BOOST_CHECK_EQUAL_COLLECTIONS(order.begin(), order.end(), want.begin(), want.end());
}

BOOST_AUTO_TEST_CASE(a_new_launcher_stops_what_a_killed_one_left_running) {
  start_up();
  auto first = wait_status(all_running);
  BOOST_REQUIRE(first);
  BOOST_REQUIRE(wait_started());
  BOOST_REQUIRE_EQUAL(::kill(up_pid, SIGKILL), 0);
  BOOST_REQUIRE(wait_exit(up_pid, 10s));
  std::vector<pid_t> old_pids;
  for (auto& [name, c] : (*first)["components"].items())
    old_pids.push_back(c["pid"].get<pid_t>());
  for (auto pid : old_pids)
    BOOST_CHECK_EQUAL(::kill(pid, 0), 0);  // components outlive their launcher

  std::ofstream(data / "events", std::ios::app) << "-- restart\n";
  start_up();
  auto second = wait_status([&](const json& j) {
    if (!all_running(j))
      return false;
    for (auto& [name, c] : j["components"].items())
      if (std::find(old_pids.begin(), old_pids.end(), c["pid"].get<pid_t>()) != old_pids.end())
        return false;
    return j["pid"].get<pid_t>() == up_pid;
  });
  BOOST_REQUIRE(second);
  auto events = events_after("-- restart");
  for (auto name : {"apiserver", "runtime", "kubelet", "proxy"}) {
    auto stop = std::find(events.begin(), events.end(), std::string("stop ") + name);
    auto start = std::find(events.begin(), events.end(), std::string("start ") + name);
    BOOST_CHECK_MESSAGE(stop != events.end() && start != events.end() && stop < start,
                        name << ": the old instance stops before the new one starts");
  }
  for (auto pid : old_pids)
    BOOST_CHECK(::kill(pid, 0) != 0);
}

BOOST_AUTO_TEST_CASE(a_crashing_component_is_restarted_with_back_off) {
  { std::ofstream(bin / "deckhand-proxy") << "#!/bin/sh\nexit 3\n"; }
  start_up();
  // 200 + 400 + 800 ms of back-off: three restarts take well over a second.
  auto t0 = std::chrono::steady_clock::now();
  auto s = wait_status(
      [](const json& j) { return j["components"]["proxy"]["restarts"].get<int>() >= 3; });
  BOOST_REQUIRE(s);
  BOOST_CHECK(std::chrono::steady_clock::now() - t0 >= 1400ms);
  BOOST_CHECK_EQUAL((*s)["components"]["proxy"]["lastExit"].get<std::string>(), "exit 3");
  BOOST_REQUIRE_EQUAL(::kill(up_pid, SIGTERM), 0);
  auto status = wait_exit(up_pid, 30s);
  BOOST_REQUIRE(status);
  up_pid = -1;
  BOOST_CHECK(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

BOOST_AUTO_TEST_SUITE_END()

#include <boost/test/unit_test.hpp>

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

#include "deckhand/cli/launcher.hpp"

using namespace deckhand::cli;
using namespace std::chrono;
namespace fs = std::filesystem;

namespace {

/// A temporary directory removed with everything in it.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "deckhand-cli-test.XXXXXX").string();
    BOOST_REQUIRE(::mkdtemp(tmpl.data()));
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(launcher)

BOOST_AUTO_TEST_CASE(backoff_doubles_from_200ms_up_to_10s) {
  deckhand::common::backoff b(up_options{}.backoff);
  steady_clock::time_point t{};
  std::vector<int64_t> delays;
  for (int i = 0; i < 9; ++i) {
    auto started = t;
    t += seconds(1);  // crashes after one second, every time
    auto d = restart_delay(b, started, t);
    delays.push_back(d.count());
    t += d;
  }
  std::vector<int64_t> want = {200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000};
  BOOST_CHECK_EQUAL_COLLECTIONS(delays.begin(), delays.end(), want.begin(), want.end());
}

BOOST_AUTO_TEST_CASE(backoff_resets_after_30s_of_uptime) {
  deckhand::common::backoff b(up_options{}.backoff);
  steady_clock::time_point t{};
  for (int i = 0; i < 4; ++i) {
    auto started = t;
    t += milliseconds(10);
    t += restart_delay(b, started, t);
  }
  BOOST_CHECK_EQUAL(b.peek().count(), 3200);
  auto started = t;
  t += seconds(29);
  BOOST_CHECK_EQUAL(restart_delay(b, started, t).count(), 3200);  // not healthy long enough
  t += seconds(4);
  started = t;
  t += seconds(30);
  BOOST_CHECK_EQUAL(restart_delay(b, started, t).count(), 200);
  BOOST_CHECK_EQUAL(b.peek().count(), 400);
}

BOOST_AUTO_TEST_CASE(backoff_without_a_start_keeps_growing) {
  // A binary that cannot even be started never reaches "started".
  deckhand::common::backoff b({milliseconds(100), milliseconds(250), seconds(1)});
  steady_clock::time_point t{};
  BOOST_CHECK_EQUAL(restart_delay(b, std::nullopt, t).count(), 100);
  BOOST_CHECK_EQUAL(restart_delay(b, std::nullopt, t + hours(1)).count(), 200);
  BOOST_CHECK_EQUAL(restart_delay(b, std::nullopt, t + hours(2)).count(), 250);
}

BOOST_AUTO_TEST_CASE(component_argv_has_binary_data_dir_and_extra_args) {
  up_options opts;
  opts.data_dir = "/var/lib/deckhand";
  opts.bin_dir = "/opt/deckhand/bin";
  component_spec spec{"kubelet", {"--node-name", "n1"}, true};
  // The kubelet gets deckhand up's local eviction thresholds first...
  std::vector<std::string> want = {"/opt/deckhand/bin/deckhand-kubelet",
                                   "--data-dir",
                                   "/var/lib/deckhand",
                                   std::string("--eviction-hard=") + local_eviction_hard,
                                   "--node-name",
                                   "n1"};
  auto got = component_argv(opts, spec);
  BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), want.begin(), want.end());
  // ...unless its args set their own.
  component_spec own{"kubelet", {"--eviction-hard=memory.available<1Gi"}, true};
  std::vector<std::string> want_own = {"/opt/deckhand/bin/deckhand-kubelet", "--data-dir",
                                       "/var/lib/deckhand", "--eviction-hard=memory.available<1Gi"};
  auto got_own = component_argv(opts, own);
  BOOST_CHECK_EQUAL_COLLECTIONS(got_own.begin(), got_own.end(), want_own.begin(), want_own.end());
  component_spec proxy{"proxy", {"--mode", "log"}, true};
  auto got_proxy = component_argv(opts, proxy);
  BOOST_TEST(got_proxy.size() == 5u);
  std::vector<std::string> cleanup = {"/opt/deckhand/bin/deckhand-runtime", "--data-dir",
                                      "/var/lib/deckhand", "--cleanup-all"};
  auto c = cleanup_argv(opts);
  BOOST_CHECK_EQUAL_COLLECTIONS(c.begin(), c.end(), cleanup.begin(), cleanup.end());
}

BOOST_AUTO_TEST_CASE(default_components_start_apiserver_first_and_stop_it_last) {
  up_options opts;
  std::vector<std::string> names;
  for (const auto& c : opts.components)
    names.push_back(c.name);
  std::vector<std::string> start = {"apiserver", "runtime", "kubelet", "proxy"};
  BOOST_CHECK_EQUAL_COLLECTIONS(names.begin(), names.end(), start.begin(), start.end());
  std::vector<std::string> stop = {"kubelet", "proxy", "runtime"};
  BOOST_CHECK_EQUAL_COLLECTIONS(stop_order().begin(), stop_order().end(), stop.begin(), stop.end());
}

BOOST_AUTO_TEST_CASE(config_file_sets_backoff_and_components) {
  temp_dir dir;
  auto file = dir.path / "up.yaml";
  std::ofstream(file) << R"(restartBackoff:
  initialMilliseconds: 50
  maxMilliseconds: 400
  resetAfterSeconds: 2
stopTimeoutSeconds: 1
components:
  apiserver:
    args: ["--listen", "127.0.0.1:0"]
  proxy:
    enabled: false
)";
  auto opts = load_up_config(file, up_options{});
  BOOST_REQUIRE(opts.ok());
  BOOST_CHECK_EQUAL(opts->backoff.initial.count(), 50);
  BOOST_CHECK_EQUAL(opts->backoff.max.count(), 400);
  BOOST_CHECK_EQUAL(opts->backoff.reset_after.count(), 2000);
  BOOST_CHECK_EQUAL(opts->stop_timeout.count(), 1000);
  BOOST_CHECK_EQUAL(opts->components[0].extra_args.size(), 2u);
  BOOST_CHECK(!opts->components[3].enabled);

  std::ofstream(file) << "components:\n  scheduler: {}\n";
  auto bad = load_up_config(file, up_options{});
  BOOST_REQUIRE(!bad.ok());
  BOOST_CHECK(bad.err().message.find("unknown component \"scheduler\"") != std::string::npos);
  std::ofstream(file) << "restartBackoff: {initialMilliseconds: [\n";
  BOOST_CHECK(!load_up_config(file, up_options{}).ok());

  // staticPodPath reaches the kubelet as --static-pod-path, after its own args.
  std::ofstream(file) << "components:\n  kubelet: {args: [\"--x\"]}\n"
                         "staticPodPath: /etc/deckhand/manifests\n";
  auto sp = load_up_config(file, up_options{});
  BOOST_REQUIRE(sp.ok());
  const auto& kubelet_args = sp->components[2].extra_args;
  BOOST_REQUIRE_EQUAL(kubelet_args.size(), 2u);
  BOOST_CHECK_EQUAL(kubelet_args[1], "--static-pod-path=/etc/deckhand/manifests");
}

BOOST_AUTO_TEST_CASE(wait_statuses_are_described) {
  pid_t pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0)
    ::_exit(3);
  int status = 0;
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  BOOST_CHECK_EQUAL(describe_wait_status(status), "exit 3");
  pid = ::fork();
  BOOST_REQUIRE(pid >= 0);
  if (pid == 0) {
    ::pause();
    ::_exit(0);
  }
  ::kill(pid, SIGKILL);
  BOOST_REQUIRE_EQUAL(::waitpid(pid, &status, 0), pid);
  BOOST_CHECK_EQUAL(describe_wait_status(status), "signal 9 (Killed)");
}

BOOST_AUTO_TEST_SUITE_END()

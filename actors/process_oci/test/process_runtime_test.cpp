// deckhand-process-oci, driven the way the pod supervisor drives runc: through
// deckhand::oci::runc with the shim as the binary, from a subreaper that
// collects exit codes with waitpid(). Nothing here needs root; the cases that
// show root-only behaviour (process.user) say so, and one case drops to
// `nobody` when run as root to show the whole path works unprivileged.

#define BOOST_TEST_MODULE deckhand_oci_process_runtime
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/test/unit_test.hpp>

#include "deckhand/testing/skip.hpp"
#include <nlohmann/json.hpp>

#include "deckhand/common/process.hpp"
#include "deckhand/oci/bundle.hpp"
#include "deckhand/oci/runc.hpp"
#include "deckhand/process_oci/process_runtime.hpp"

using namespace deckhand;
using namespace deckhand::oci;
using namespace deckhand::process_oci;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace utf = boost::unit_test;

namespace deckhand::oci {
inline std::ostream& operator<<(std::ostream& os, container_status s) { return os << to_string(s); }
}  // namespace deckhand::oci

namespace {

#define REQUIRE_OK(expr)                                                                           \
  do {                                                                                             \
    auto&& r_ = (expr);                                                                            \
    BOOST_REQUIRE_MESSAGE(r_.ok(), #expr << ": " << (r_ ? std::string() : r_.err().message));      \
  } while (0)

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

pid_t read_pid(const fs::path& pid_file) {
  return static_cast<pid_t>(std::stol(read_file(pid_file)));
}

/// Polls `pred` until it holds or `timeout` passes: for waiting on a real
/// process, with a bound.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = 10s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred())
      return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

/// Alive and not a zombie.
bool alive(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

fs::path make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "deckhand-prococi-XXXXXX").string();
  if (!::mkdtemp(tmpl.data()))
    throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

/// A temporary directory, a runtime root inside it and the runc driver
/// pointed at the shim. Whatever a test leaves behind (containers,
/// processes re-parented to this subreaper, files) goes on destruction.
struct shim_sandbox {
  fs::path dir;
  fs::path root;
  runc rt;
  std::vector<std::string> ids;

  explicit shim_sandbox(std::string binary = DECKHAND_PROCESS_OCI)
      : dir(make_temp_dir()), root(dir / "root"), rt(root, std::move(binary), 20s) {
    auto r = common::set_child_subreaper();
    BOOST_REQUIRE_MESSAGE(r.ok(), (r ? "" : r.err().message));
  }

  ~shim_sandbox() {
    for (auto& id : ids)
      if (auto r = rt.remove(id, true); !r)
        BOOST_TEST_MESSAGE("cleanup " << id << ": " << r.err().message);
    int st;
    while (::waitpid(-1, &st, WNOHANG) > 0) {
    }
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  std::string new_id() {
    static int counter = 0;
    ids.push_back("p" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    return ids.back();
  }

  /// A bundle as deckhand's runtime writes it (namespaces and all, which the
  /// shim ignores), with `args` as the process.
  fs::path bundle(std::vector<std::string> args, const std::string& name = "bundle",
                  void (*tweak)(bundle_spec&) = nullptr) {
    bundle_spec spec;
    spec.args = std::move(args);
    spec.rootfs = dir / "rootfs";  // never created: the shim runs on the host
    spec.hostname = "ignored";
    spec.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "FROM_SPEC=spec"};
    if (::geteuid() != 0) {
      spec.uid = ::geteuid();
      spec.gid = ::getegid();
    }
    if (tweak)
      tweak(spec);
    fs::path b = dir / name;
    auto r = write_bundle(b, spec);
    BOOST_REQUIRE_MESSAGE(r.ok(), (r ? "" : r.err().message));
    return b;
  }

  common::unique_fd output(const std::string& name) {
    auto fd = common::open_fd(dir / name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    BOOST_REQUIRE_MESSAGE(fd.ok(), (fd ? "" : fd.err().message));
    return std::move(*fd);
  }

  /// run -d of `args` with stdout and stderr to file `out`; returns the pid.
  pid_t run(const std::string& id, std::vector<std::string> args, const std::string& out = "out") {
    auto b = bundle(std::move(args), "bundle-" + id);
    auto fd = output(out);
    auto r = rt.run_detached(id, b, common::stdio_fds{-1, fd.get(), fd.get()}, dir / (id + ".pid"));
    BOOST_REQUIRE_MESSAGE(r.ok(), (r ? "" : r.err().message));
    return read_pid(dir / (id + ".pid"));
  }

  bool listed(const std::string& id, container_status* status = nullptr) {
    auto all = rt.list();
    BOOST_REQUIRE_MESSAGE(all.ok(), (all ? "" : all.err().message));
    for (auto& c : *all)
      if (c.id == id) {
        if (status)
          *status = c.status;
        return true;
      }
    return false;
  }
};

common::exit_status wait_exit(pid_t pid) {
  auto st = common::wait_with_deadline(pid, 20s);
  BOOST_REQUIRE_MESSAGE(st.ok(), (st ? "" : st.err().message));
  return *st;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(process_runtime_cli)

BOOST_AUTO_TEST_CASE(signals_parse_as_runc_accepts_them) {
  BOOST_TEST(*parse_signal("KILL") == SIGKILL);
  BOOST_TEST(*parse_signal("SIGTERM") == SIGTERM);
  BOOST_TEST(*parse_signal("term") == SIGTERM);
  BOOST_TEST(*parse_signal("9") == 9);
  BOOST_TEST(*parse_signal("15") == 15);
  BOOST_TEST(*parse_signal("SIGUSR1") == SIGUSR1);
  BOOST_TEST(!parse_signal("NOPE").ok());
  BOOST_TEST(!parse_signal("0").ok());
  BOOST_TEST(!parse_signal("").ok());
  BOOST_TEST(!parse_signal("99999").ok());
}

BOOST_AUTO_TEST_CASE(container_ids_cannot_be_paths) {
  BOOST_TEST(valid_container_id("web-0_a.b+c"));
  BOOST_TEST(!valid_container_id(""));
  BOOST_TEST(!valid_container_id("."));
  BOOST_TEST(!valid_container_id(".."));
  BOOST_TEST(!valid_container_id("a/b"));
  BOOST_TEST(!valid_container_id("../x"));
  BOOST_TEST(!valid_container_id("a b"));
  BOOST_TEST(!valid_container_id(std::string(1025, 'a')));
}

BOOST_AUTO_TEST_CASE(config_errors_name_the_field) {
  auto parse = [](const std::string& text) { return parse_host_process_spec(text, "/b"); };
  auto msg = [&](const std::string& text) {
    auto r = parse(text);
    BOOST_REQUIRE(!r.ok());
    return r.err().message;
  };
  BOOST_TEST(msg("garbage").find("not valid JSON") != std::string::npos);
  BOOST_TEST(msg("[]").find("not a JSON object") != std::string::npos);
  BOOST_TEST(msg("{}").find("process is missing") != std::string::npos);
  BOOST_TEST(msg(R"({"process":{"args":[]}})").find("args must not be empty") != std::string::npos);
  BOOST_TEST(msg(R"({"process":{"args":["a",1]}})").find("args[1]") != std::string::npos);
  BOOST_TEST(msg(R"({"process":{"args":["a"],"terminal":true}})").find("terminal") !=
             std::string::npos);
  BOOST_TEST(msg(R"({"process":{"args":["a"],"user":{"uid":-1}}})").find("uid") !=
             std::string::npos);
  BOOST_TEST(msg(R"({"process":{"args":["a"],"rlimits":[{"type":"RLIMIT_X","hard":1,"soft":1}]}})")
                 .find("RLIMIT_X") != std::string::npos);

  auto ok = parse(R"({"process":{"args":["sh"],"env":["A=1"],"cwd":"/x",
      "user":{"uid":7,"gid":8,"additionalGids":[9],"umask":18},
      "rlimits":[{"type":"RLIMIT_NOFILE","hard":100,"soft":50}],
      "noNewPrivileges":true,"oomScoreAdj":500},
      "root":{"path":"rootfs"},"annotations":{"k":"v"}})");
  REQUIRE_OK(ok);
  BOOST_TEST(ok->args == std::vector<std::string>{"sh"});
  BOOST_TEST(ok->uid == 7u);
  BOOST_TEST(ok->gid == 8u);
  BOOST_TEST(ok->additional_gids.size() == 1u);
  BOOST_TEST(*ok->umask == 18u);
  BOOST_TEST(ok->rlimits.size() == 1u);
  BOOST_TEST(ok->rlimits[0].resource == RLIMIT_NOFILE);
  BOOST_TEST(ok->no_new_privileges);
  BOOST_TEST(*ok->oom_score_adj == 500);
  BOOST_TEST(ok->rootfs == fs::path("/b/rootfs"));
  BOOST_TEST(ok->annotations.at("k") == "v");
}

BOOST_AUTO_TEST_CASE(working_dir_is_the_host_dir_or_the_bundle) {
  host_process_spec spec;
  spec.cwd = "/";
  BOOST_TEST(host_working_dir(spec, "/b") == fs::path("/"));
  spec.cwd = "/no/such/dir/here";
  BOOST_TEST(host_working_dir(spec, "/b") == fs::path("/b"));
  spec.cwd = "relative";
  BOOST_TEST(host_working_dir(spec, "/b") == fs::path("/b"));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(process_runtime_driven_like_runc)

BOOST_AUTO_TEST_CASE(create_start_exit_code_comes_back_through_subreaper) {
  shim_sandbox sb;
  auto b = sb.bundle({"sh", "-c", "echo out; echo err >&2; exit 7"});
  auto out = sb.output("out");
  auto err = sb.output("err");
  auto id = sb.new_id();
  REQUIRE_OK(sb.rt.create(id, b, common::stdio_fds{-1, out.get(), err.get()}, sb.dir / "pid"));
  pid_t pid = read_pid(sb.dir / "pid");

  auto st = sb.rt.state(id);
  REQUIRE_OK(st);
  BOOST_TEST(st->status == container_status::created);
  BOOST_TEST(st->pid == pid);
  BOOST_TEST(st->bundle == b);
  BOOST_TEST(read_file(sb.dir / "out").empty());  // waiting before exec

  REQUIRE_OK(sb.rt.start(id));
  auto ex = wait_exit(pid);
  BOOST_TEST(ex.exited());
  BOOST_TEST(ex.code() == 7);
  BOOST_TEST(read_file(sb.dir / "out") == "out\n");
  BOOST_TEST(read_file(sb.dir / "err") == "err\n");

  st = sb.rt.state(id);
  REQUIRE_OK(st);
  BOOST_TEST(st->status == container_status::stopped);
  BOOST_TEST(st->pid == 0);
  // Starting twice is runc's error, not a second run.
  BOOST_TEST(!sb.rt.start(id).ok());
  REQUIRE_OK(sb.rt.remove(id));
  BOOST_TEST(!sb.listed(id));
  BOOST_TEST(!fs::exists(sb.root / id));
}

BOOST_AUTO_TEST_CASE(state_goes_created_running_stopped_and_kill_term_gives_15) {
  shim_sandbox sb;
  auto b = sb.bundle({"sleep", "100"});
  auto id = sb.new_id();
  REQUIRE_OK(sb.rt.create(id, b, common::stdio_fds{}, sb.dir / "pid"));
  pid_t pid = read_pid(sb.dir / "pid");
  container_status s{};
  BOOST_TEST(sb.listed(id, &s));
  BOOST_TEST(s == container_status::created);
  REQUIRE_OK(sb.rt.start(id));
  auto st = sb.rt.state(id);
  REQUIRE_OK(st);
  BOOST_TEST(st->status == container_status::running);
  BOOST_TEST(st->pid == pid);
  // The process leads a session of its own, away from the caller's group.
  BOOST_TEST(::getsid(pid) == pid);

  REQUIRE_OK(sb.rt.kill(id, SIGTERM));
  auto ex = wait_exit(pid);
  BOOST_TEST(ex.signaled());
  BOOST_TEST(ex.term_signal() == SIGTERM);
  st = sb.rt.state(id);
  REQUIRE_OK(st);
  BOOST_TEST(st->status == container_status::stopped);
  // Signalling a stopped container is runc's "not running".
  auto k = sb.rt.kill(id, SIGTERM);
  BOOST_REQUIRE(!k.ok());
  BOOST_TEST(k.err().code == errc::conflict);
}

BOOST_AUTO_TEST_CASE(delete_refuses_running_unless_forced) {
  shim_sandbox sb;
  auto id = sb.new_id();
  pid_t pid = sb.run(id, {"sleep", "100"});
  auto r = sb.rt.remove(id);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::conflict);
  BOOST_TEST(alive(pid));

  REQUIRE_OK(sb.rt.remove(id, true));
  auto ex = wait_exit(pid);
  BOOST_TEST(ex.term_signal() == SIGKILL);
  BOOST_TEST(!sb.listed(id));
  // Deleting what is not there succeeds through the driver (runc's error
  // is "does not exist", which it treats as done), forced or not.
  REQUIRE_OK(sb.rt.remove(id));
  REQUIRE_OK(sb.rt.remove(id, true));
  auto gone = sb.rt.state(id);
  BOOST_REQUIRE(!gone.ok());
  BOOST_TEST(gone.err().code == errc::not_found);
}

BOOST_AUTO_TEST_CASE(delete_of_created_container_kills_it) {
  shim_sandbox sb;
  auto b = sb.bundle({"sh", "-c", "echo must-not-run"});
  auto out = sb.output("out");
  auto id = sb.new_id();
  REQUIRE_OK(sb.rt.create(id, b, common::stdio_fds{-1, out.get(), out.get()}, sb.dir / "pid"));
  pid_t pid = read_pid(sb.dir / "pid");
  REQUIRE_OK(sb.rt.remove(id));
  auto ex = wait_exit(pid);
  BOOST_TEST(ex.term_signal() == SIGKILL);
  BOOST_TEST(read_file(sb.dir / "out").empty());
}

BOOST_AUTO_TEST_CASE(kill_all_reaches_every_process_of_the_session) {
  shim_sandbox sb;
  auto id = sb.new_id();
  const fs::path bg_file = sb.dir / "bg.pid";
  pid_t pid = sb.run(id, {"sh", "-c", "sleep 100 & echo $! > " + bg_file.string() + "; wait"});
  BOOST_REQUIRE(eventually([&] { return read_file(bg_file).find('\n') != std::string::npos; }));
  pid_t bg = read_pid(bg_file);
  REQUIRE_OK(sb.rt.kill(id, SIGKILL, true));
  BOOST_TEST(wait_exit(pid).term_signal() == SIGKILL);
  // The background sleep was re-parented to us when sh died.
  BOOST_TEST(wait_exit(bg).term_signal() == SIGKILL);
}

BOOST_AUTO_TEST_CASE(delete_removes_what_a_stopped_container_left_running) {
  shim_sandbox sb;
  auto id = sb.new_id();
  const fs::path bg_file = sb.dir / "bg.pid";
  pid_t pid = sb.run(id, {"sh", "-c", "sleep 100 & echo $! > " + bg_file.string()});
  BOOST_TEST(wait_exit(pid).code() == 0);
  BOOST_REQUIRE(eventually([&] { return read_file(bg_file).find('\n') != std::string::npos; }));
  pid_t bg = read_pid(bg_file);
  BOOST_TEST(alive(bg));
  REQUIRE_OK(sb.rt.remove(id));
  BOOST_TEST(wait_exit(bg).term_signal() == SIGKILL);
}

BOOST_AUTO_TEST_CASE(list_reports_every_container) {
  shim_sandbox sb;
  auto a = sb.new_id();
  auto b = sb.new_id();
  auto all = sb.rt.list();
  REQUIRE_OK(all);
  BOOST_TEST(all->empty());  // an empty or missing root lists nothing
  pid_t pa = sb.run(a, {"sleep", "100"}, "out-a");
  pid_t pb = sb.run(b, {"true"}, "out-b");
  BOOST_TEST(wait_exit(pb).code() == 0);
  all = sb.rt.list();
  REQUIRE_OK(all);
  BOOST_REQUIRE(all->size() == 2u);
  for (auto& c : *all) {
    if (c.id == a) {
      BOOST_TEST(c.status == container_status::running);
      BOOST_TEST(c.pid == pa);
    } else {
      BOOST_TEST(c.id == b);
      BOOST_TEST(c.status == container_status::stopped);
    }
  }
  // The driver's exec pid files live in the root too; list ignores files.
  write_file(sb.root / ".exec-1-1.pid", "1");
  all = sb.rt.list();
  REQUIRE_OK(all);
  BOOST_TEST(all->size() == 2u);
}

BOOST_AUTO_TEST_CASE(a_reused_pid_reads_as_stopped_and_is_never_signalled) {
  shim_sandbox sb;
  auto id = sb.new_id();
  pid_t pid = sb.run(id, {"sleep", "100"});
  // Pretend the process died and its pid went to another process: the
  // recorded start time no longer matches the live process.
  const fs::path state_file = sb.root / id / "state.json";
  auto j = nlohmann::json::parse(read_file(state_file));
  j["pid_start_time"] = j["pid_start_time"].get<std::uint64_t>() + 1;
  write_file(state_file, j.dump());

  auto st = sb.rt.state(id);
  REQUIRE_OK(st);
  BOOST_TEST(st->status == container_status::stopped);
  BOOST_TEST(st->pid == 0);
  BOOST_TEST(!sb.rt.kill(id, SIGKILL).ok());
  REQUIRE_OK(sb.rt.kill(id, SIGKILL, true));
  REQUIRE_OK(sb.rt.remove(id, true));
  BOOST_TEST(alive(pid));  // not ours any more as far as the runtime knows

  ::kill(pid, SIGKILL);
  BOOST_TEST(wait_exit(pid).term_signal() == SIGKILL);
}

BOOST_AUTO_TEST_CASE(bad_bundles_are_clear_errors_and_leave_nothing) {
  shim_sandbox sb;
  auto id = sb.new_id();
  const fs::path b = sb.dir / "bad";
  fs::create_directories(b);
  auto create_error = [&] {
    auto r = sb.rt.create(id, b, common::stdio_fds{});
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(!sb.listed(id));
    BOOST_TEST(!fs::exists(sb.root / id));
    return r.err().message;
  };
  std::string m = create_error();
  BOOST_TEST_MESSAGE(m);
  BOOST_TEST(m.find("config.json") != std::string::npos);

  write_file(b / "config.json", "{ this is not json");
  m = create_error();
  BOOST_TEST_MESSAGE(m);
  BOOST_TEST(m.find("config.json is not valid JSON") != std::string::npos);

  write_file(b / "config.json", R"({"ociVersion":"1.0.2","process":{"args":[]}})");
  m = create_error();
  BOOST_TEST(m.find("process.args must not be empty") != std::string::npos);

  write_file(b / "config.json", R"({"process":{"args":["no-such-program-xyz"],"cwd":"/"}})");
  m = create_error();
  BOOST_TEST(m.find("executable file not found") != std::string::npos);

  // The same id twice.
  auto good = sb.bundle({"sleep", "100"});
  REQUIRE_OK(sb.rt.create(id, good, common::stdio_fds{}));
  auto again = sb.rt.create(id, good, common::stdio_fds{});
  BOOST_REQUIRE(!again.ok());
  BOOST_TEST(again.err().code == errc::already_exists);
}

BOOST_AUTO_TEST_CASE(cwd_is_the_host_dir_else_the_bundle) {
  shim_sandbox sb;
  auto id = sb.new_id();
  auto b = sb.bundle({"pwd"}, "b1", [](bundle_spec& s) { s.cwd = "/no/such/dir"; });
  auto out = sb.output("out");
  REQUIRE_OK(
      sb.rt.run_detached(id, b, common::stdio_fds{-1, out.get(), out.get()}, sb.dir / "pid"));
  BOOST_TEST(wait_exit(read_pid(sb.dir / "pid")).code() == 0);
  BOOST_TEST(read_file(sb.dir / "out") == b.string() + "\n");

  auto id2 = sb.new_id();
  auto b2 = sb.bundle({"pwd"}, "b2", [](bundle_spec& s) { s.cwd = "/"; });
  auto out2 = sb.output("out2");
  REQUIRE_OK(
      sb.rt.run_detached(id2, b2, common::stdio_fds{-1, out2.get(), out2.get()}, sb.dir / "pid2"));
  BOOST_TEST(wait_exit(read_pid(sb.dir / "pid2")).code() == 0);
  BOOST_TEST(read_file(sb.dir / "out2") == "/\n");
}

BOOST_AUTO_TEST_CASE(env_rlimits_and_no_new_privileges_apply) {
  shim_sandbox sb;
  auto id = sb.new_id();
  auto b = sb.bundle({"sh", "-c", "echo $FROM_SPEC; ulimit -n; grep NoNewPrivs /proc/self/status"},
                     "b", [](bundle_spec& s) {
                       s.nofile_limit = 512;
                       s.no_new_privileges = true;
                     });
  auto out = sb.output("out");
  REQUIRE_OK(
      sb.rt.run_detached(id, b, common::stdio_fds{-1, out.get(), out.get()}, sb.dir / "pid"));
  BOOST_TEST(wait_exit(read_pid(sb.dir / "pid")).code() == 0);
  BOOST_TEST(read_file(sb.dir / "out") == "spec\n512\nNoNewPrivs:\t1\n");
}

BOOST_AUTO_TEST_CASE(exec_runs_with_the_containers_env_and_passes_the_exit_code) {
  shim_sandbox sb;
  auto id = sb.new_id();
  pid_t pid = sb.run(id, {"sleep", "100"});

  exec_options o;
  o.args = {"sh", "-c", "echo $FROM_SPEC $EXTRA; pwd; cat; exit 9"};
  o.env = {"EXTRA=x"};
  o.cwd = sb.dir.string();
  o.stdin_data = "in";
  o.timeout = 20s;
  auto r = sb.rt.exec(id, o);
  REQUIRE_OK(r);
  BOOST_TEST(r->exit_code == 9);
  BOOST_TEST(r->out == "spec x\n" + sb.dir.string() + "\nin");
  BOOST_TEST(!r->timed_out);

  exec_options killed;
  killed.args = {"sh", "-c", "kill -TERM $$"};
  r = sb.rt.exec(id, killed);
  REQUIRE_OK(r);
  BOOST_TEST(r->exit_code == 128 + SIGTERM);

  exec_options missing;
  missing.args = {"no-such-program-xyz"};
  auto m = sb.rt.exec(id, missing);
  BOOST_REQUIRE(!m.ok());
  BOOST_TEST(m.err().message.find("executable file not found") != std::string::npos);

  exec_options slow;
  slow.args = {"sleep", "100"};
  slow.timeout = 200ms;
  r = sb.rt.exec(id, slow);
  REQUIRE_OK(r);
  BOOST_TEST(r->timed_out);

  REQUIRE_OK(sb.rt.kill(id, SIGKILL));
  BOOST_TEST(wait_exit(pid).term_signal() == SIGKILL);
  exec_options late;
  late.args = {"true"};
  auto stopped = sb.rt.exec(id, late);
  BOOST_REQUIRE(!stopped.ok());
  BOOST_TEST(stopped.err().code == errc::conflict);
}

BOOST_AUTO_TEST_CASE(foreground_run_returns_the_exit_code_and_cleans_up) {
  shim_sandbox sb;
  auto b = sb.bundle({"sh", "-c", "exit 3"});
  auto out = common::run_captured(
      {DECKHAND_PROCESS_OCI, "--root", sb.root.string(), "run", "--bundle", b.string(), "fg"});
  REQUIRE_OK(out);
  BOOST_TEST(out->status.code() == 3);
  BOOST_TEST(!sb.listed("fg"));
}

BOOST_AUTO_TEST_CASE(process_user_applies_as_root,
                     *deckhand::testing::skip_unless(deckhand::testing::root())) {
  shim_sandbox sb;
  auto id = sb.new_id();
  auto b = sb.bundle({"sh", "-c", "id -u; id -g; id -G"}, "b", [](bundle_spec& s) {
    s.uid = 65534;
    s.gid = 65534;
    s.additional_gids = {65534};
  });
  auto out = sb.output("out");
  REQUIRE_OK(
      sb.rt.run_detached(id, b, common::stdio_fds{-1, out.get(), out.get()}, sb.dir / "pid"));
  BOOST_TEST(wait_exit(read_pid(sb.dir / "pid")).code() == 0);
  BOOST_TEST(read_file(sb.dir / "out") == "65534\n65534\n65534\n");
}

namespace {

/// The supervisor's use of the back-end end to end, as whoever runs it.
/// Returns "" or what went wrong (no Boost.Test here: it may run in a
/// forked child).
std::string unprivileged_scenario(const fs::path& dir, const std::string& shim) {
  if (auto r = common::set_child_subreaper(); !r)
    return r.err().message;
  runc rt(dir / "root", shim, 20s);
  bundle_spec spec;
  spec.args = {"sh", "-c", "id -u; exit 5"};
  spec.rootfs = dir / "rootfs";
  spec.uid = ::geteuid();
  spec.gid = ::getegid();
  spec.env = {"PATH=/usr/bin:/bin"};
  if (auto r = write_bundle(dir / "bundle", spec); !r)
    return r.err().message;
  auto fd = common::open_fd(dir / "out", O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (!fd)
    return fd.err().message;
  if (auto r =
          rt.create("c1", dir / "bundle", common::stdio_fds{-1, fd->get(), fd->get()}, dir / "pid");
      !r)
    return "create: " + r.err().message;
  if (auto r = rt.start("c1"); !r)
    return "start: " + r.err().message;
  auto ex = common::wait_with_deadline(read_pid(dir / "pid"), 20s);
  if (!ex || ex->code() != 5)
    return "exit code: " + (ex ? ex->describe() : ex.err().message);
  std::string uid = std::to_string(::geteuid()) + "\n";
  if (read_file(dir / "out") != uid)
    return "output: " + read_file(dir / "out");

  spec.args = {"sleep", "100"};
  if (auto r = write_bundle(dir / "bundle", spec); !r)
    return r.err().message;
  if (auto r = rt.run_detached("c2", dir / "bundle", common::stdio_fds{}, dir / "pid2"); !r)
    return "run: " + r.err().message;
  exec_options o;
  o.args = {"id", "-u"};
  auto e = rt.exec("c2", o);
  if (!e || e->exit_code != 0 || e->out != uid)
    return "exec: " + (e ? e->out : e.err().message);
  if (auto r = rt.kill("c2", SIGTERM); !r)
    return "kill: " + r.err().message;
  auto ex2 = common::wait_with_deadline(read_pid(dir / "pid2"), 20s);
  if (!ex2 || ex2->term_signal() != SIGTERM)
    return "kill result: " + (ex2 ? ex2->describe() : ex2.err().message);
  for (auto id : {"c1", "c2"})
    if (auto r = rt.remove(id); !r)
      return "delete: " + r.err().message;
  auto all = rt.list();
  if (!all || !all->empty())
    return "list not empty after delete";
  return "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(needs_no_privileges) {
  shim_sandbox sb;
  if (::geteuid() != 0) {
    std::string err = unprivileged_scenario(sb.dir, DECKHAND_PROCESS_OCI);
    BOOST_TEST(err.empty(), err);
    return;
  }
  // As root: do it all as nobody, with a copy of the shim nobody can run.
  uid_t uid = 65534;
  gid_t gid = 65534;
  if (auto* pw = ::getpwnam("nobody")) {
    uid = pw->pw_uid;
    gid = pw->pw_gid;
  }
  const fs::path work = sb.dir / "nobody";
  fs::create_directories(work);
  const fs::path shim = work / "deckhand-process-oci";
  fs::copy_file(DECKHAND_PROCESS_OCI, shim);
  ::chmod(shim.c_str(), 0755);
  ::chmod(sb.dir.c_str(), 0755);
  BOOST_REQUIRE(::chown(work.c_str(), uid, gid) == 0);

  auto report = common::make_pipe();
  REQUIRE_OK(report);
  pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    std::string err;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0) {
      err = "cannot become nobody";
    } else {
      // A credential change makes us undumpable, which would hide our
      // /proc/self/fd (the driver's --log memfd) from the shim.
      ::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
      err = unprivileged_scenario(work, shim.string());
      if (err.empty() && ::geteuid() == 0)
        err = "still root";
    }
    ssize_t n = ::write(report->second.get(), err.data(), err.size());
    (void)n;
    ::_exit(err.empty() ? 0 : 1);
  }
  report->second.reset();
  auto ex = wait_exit(child);
  // Whatever a failed scenario left running (root may delete it).
  runc as_root(work / "root", DECKHAND_PROCESS_OCI, 20s);
  for (auto id : {"c1", "c2"})
    (void)as_root.remove(id, true);
  std::string err;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(report->first.get(), buf, sizeof buf)) > 0)
    err.append(buf, static_cast<std::size_t>(n));
  BOOST_TEST(ex.code() == 0, err);
  BOOST_TEST(read_file(work / "out") == std::to_string(uid) + "\n");
}

BOOST_AUTO_TEST_SUITE_END()

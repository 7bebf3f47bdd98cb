#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "deckhand/common/process.hpp"

using namespace deckhand;
using namespace deckhand::common;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// A temporary directory, removed with everything in it.
struct sandbox {
  fs::path dir;
  sandbox() {
    std::string tmpl = (fs::temp_directory_path() / "deckhand-process-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
  }
  ~sandbox() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  unique_fd open_output(const fs::path& p) const {
    return unique_fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  }
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(process)

BOOST_AUTO_TEST_CASE(spawn_reports_exit_code) {
  auto pid = spawn({"sh", "-c", "exit 3"});
  BOOST_REQUIRE(pid.ok());
  auto st = wait_with_deadline(*pid, 10s);
  BOOST_REQUIRE(st.ok());
  BOOST_TEST(st->exited());
  BOOST_TEST(st->code() == 3);
}

BOOST_AUTO_TEST_CASE(signal_death_maps_to_128_plus_signal) {
  auto pid = spawn({"sh", "-c", "kill -9 $$"});
  BOOST_REQUIRE(pid.ok());
  auto st = wait_with_deadline(*pid, 10s);
  BOOST_REQUIRE(st.ok());
  BOOST_TEST(st->signaled());
  BOOST_TEST(st->term_signal() == SIGKILL);
  BOOST_TEST(st->code() == 137);
}

BOOST_AUTO_TEST_CASE(child_gets_only_the_given_fds_and_env) {
  sandbox sb;
  // Deliberately not close-on-exec: spawn must still keep it from the child.
  int leaky = ::open("/dev/null", O_RDONLY);
  BOOST_REQUIRE(leaky >= 0);
  auto out = sb.open_output(sb.dir / "out");
  auto pid = spawn({"sh", "-c",
                    "echo FOO=$FOO; test -e /proc/self/fd/" + std::to_string(leaky) +
                        " && echo leaked || echo closed"},
                   stdio_fds{-1, out.get(), out.get()},
                   std::vector<std::string>{"FOO=bar", "PATH=/usr/bin:/bin"});
  ::close(leaky);
  BOOST_REQUIRE(pid.ok());
  auto st = wait_with_deadline(*pid, 10s);
  BOOST_REQUIRE(st.ok());
  BOOST_TEST(st->code() == 0);
  BOOST_TEST(read_file(sb.dir / "out") == "FOO=bar\nclosed\n");
}

BOOST_AUTO_TEST_CASE(stdio_sources_in_the_0_to_2_range_are_not_clobbered) {
  // stdout of the child wired to the caller's fd 2 and stderr to fd 1: the
  // dup order must not make both point at the same place.
  sandbox sb;
  auto out = sb.open_output(sb.dir / "out");
  auto pid = spawn({"sh", "-c", "echo a; echo b >&2"}, stdio_fds{-1, out.get(), out.get()});
  BOOST_REQUIRE(pid.ok());
  BOOST_REQUIRE(wait_with_deadline(*pid, 10s).ok());
  BOOST_TEST(read_file(sb.dir / "out") == "a\nb\n");
}

BOOST_AUTO_TEST_CASE(extra_fds_become_3_and_up) {
  sandbox sb;
  auto out = sb.open_output(sb.dir / "out");
  auto extra = sb.open_output(sb.dir / "extra");
  spawn_options so;
  so.extra_fds = {extra.get()};
  auto pid =
      spawn({"sh", "-c", "echo three >&3; test -e /proc/self/fd/4 && echo leaked || echo ok"},
            stdio_fds{-1, out.get(), out.get()}, std::nullopt, so);
  BOOST_REQUIRE(pid.ok());
  BOOST_REQUIRE(wait_with_deadline(*pid, 10s).ok());
  BOOST_TEST(read_file(sb.dir / "extra") == "three\n");
  BOOST_TEST(read_file(sb.dir / "out") == "ok\n");
}

BOOST_AUTO_TEST_CASE(spawn_of_missing_program_fails_without_a_child) {
  auto pid = spawn({"deckhand-no-such-program"});
  BOOST_REQUIRE(!pid.ok());
  BOOST_TEST(pid.err().code == errc::not_found);
  auto pid2 = spawn({"/nonexistent/prog"});
  BOOST_REQUIRE(!pid2.ok());
  BOOST_TEST(pid2.err().message.find("execve") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(wait_with_deadline_times_out_and_leaves_child) {
  auto pid = spawn({"sleep", "100"});
  BOOST_REQUIRE(pid.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto st = wait_with_deadline(*pid, 100ms);
  BOOST_REQUIRE(!st.ok());
  BOOST_TEST(st.err().code == errc::unavailable);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 5s));
  BOOST_TEST(::kill(*pid, 0) == 0);  // still there
  kill_and_reap(*pid, false);
  BOOST_TEST(::kill(*pid, 0) == -1);
}

BOOST_AUTO_TEST_CASE(run_captured_collects_both_streams) {
  auto r = run_captured({"sh", "-c", "echo out; echo err >&2; exit 3"});
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->status.code() == 3);
  BOOST_TEST(r->out == "out\n");
  BOOST_TEST(r->err == "err\n");
}

BOOST_AUTO_TEST_CASE(run_captured_feeds_stdin) {
  run_options opts;
  opts.input = std::string(1 << 20, 'x') + "\n";
  auto r = run_captured({"wc", "-c"}, opts);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->status.code() == 0);
  BOOST_TEST(std::stol(r->out) == (1 << 20) + 1);
}

BOOST_AUTO_TEST_CASE(run_captured_survives_a_command_that_ignores_stdin) {
  run_options opts;
  opts.input = std::string(1 << 20, 'x');
  auto r = run_captured({"true"}, opts);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->status.code() == 0);
}

BOOST_AUTO_TEST_CASE(run_captured_bounds_output) {
  run_options opts;
  opts.max_output = 10;
  auto r = run_captured({"sh", "-c", "echo 0123456789abcdef"}, opts);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->out == "0123456789");
  BOOST_TEST(r->truncated);
}

BOOST_AUTO_TEST_CASE(run_captured_kills_a_hung_command) {
  run_options opts;
  opts.timeout = 200ms;
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_captured({"sh", "-c", "sleep 100; true"}, opts);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::unavailable);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 5s));
}

BOOST_AUTO_TEST_CASE(run_captured_does_not_wait_for_grandchildren_holding_the_pipe) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_captured({"sh", "-c", "sleep 100 & echo $!"});
  BOOST_REQUIRE(r.ok());
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < 5s));
  pid_t bg = static_cast<pid_t>(std::stol(r->out));
  BOOST_TEST(::kill(bg, SIGKILL) == 0);
  // The background sleep may have been re-parented to us (subreaper) or init.
  int st;
  ::waitpid(bg, &st, 0);
}

BOOST_AUTO_TEST_CASE(subreaper_collects_orphaned_grandchild) {
  BOOST_REQUIRE(set_child_subreaper().ok());
  // The backgrounded subshell blocks reading `gate` (its fd 2) until we close
  // the write end, so it surely outlives sh and is re-parented to us.
  auto gate = make_pipe();
  auto out = make_pipe();
  BOOST_REQUIRE(gate.ok());
  BOOST_REQUIRE(out.ok());
  auto sh = spawn({"sh", "-c", "(read x <&2; exit 7) & echo $!"},
                  stdio_fds{-1, out->second.get(), gate->first.get()});
  BOOST_REQUIRE(sh.ok());
  out->second.reset();
  gate->first.reset();
  auto sh_st = wait_with_deadline(*sh, 10s);
  BOOST_REQUIRE(sh_st.ok());
  BOOST_TEST(sh_st->code() == 0);
  std::string line;
  char c;
  while (::read(out->first.get(), &c, 1) == 1 && c != '\n')
    line += c;
  pid_t orphan = static_cast<pid_t>(std::stol(line));
  gate->second.reset();
  auto st = wait_with_deadline(orphan, 10s);
  BOOST_REQUIRE_MESSAGE(st.ok(), (st ? "" : st.err().message));
  BOOST_TEST(st->code() == 7);
}

BOOST_AUTO_TEST_CASE(unique_fd_closes_and_moves) {
  auto p = make_pipe();
  BOOST_REQUIRE(p.ok());
  int raw = p->first.get();
  unique_fd moved = std::move(p->first);
  BOOST_TEST(!p->first);
  BOOST_TEST(moved.get() == raw);
  moved.reset();
  BOOST_TEST(::fcntl(raw, F_GETFD) == -1);
}

BOOST_AUTO_TEST_CASE(unique_fd_release_and_reset) {
  auto p = make_pipe();
  BOOST_REQUIRE(p.ok());
  int raw = p->first.release();
  BOOST_TEST(!p->first);
  BOOST_TEST(::fcntl(raw, F_GETFD) != -1);
  unique_fd owner;
  owner.reset(raw);
  BOOST_TEST(owner.get() == raw);
  owner.reset(raw);  // taking the same descriptor again does not close it
  BOOST_TEST(::fcntl(raw, F_GETFD) != -1);
}

BOOST_AUTO_TEST_CASE(unique_fd_close_preserves_errno) {
  auto p = make_pipe();
  BOOST_REQUIRE(p.ok());
  errno = ENOENT;
  p->first.reset();
  BOOST_TEST(errno == ENOENT);
}

BOOST_AUTO_TEST_SUITE_END()

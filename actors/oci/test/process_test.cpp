#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>

#include "fixture.hpp"

using namespace deckhand;
using namespace deckhand::oci;
using namespace deckhand::oci::test;
using namespace std::chrono_literals;

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

BOOST_AUTO_TEST_SUITE_END()

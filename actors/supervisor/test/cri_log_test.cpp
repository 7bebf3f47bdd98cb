#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <sstream>

#include <boost/test/unit_test.hpp>

#include "deckhand/supervisor/cri_log.hpp"
#include "deckhand/supervisor/log_pump.hpp"

using namespace deckhand;
using namespace deckhand::supervisor;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// 2023-11-14T22:13:20Z
const time_point t0 = wall_clock::from_time_t(1'700'000'000);

struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "dhcri-XXXXXX").string();
    if (!::mkdtemp(tmpl.data()))
      throw std::runtime_error("mkdtemp failed");
    path = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> names_in(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    out.insert(e.path().filename().string());
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    out.push_back(line);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(cri_log)

BOOST_AUTO_TEST_CASE(timestamps_are_rfc3339_nano_in_utc) {
  BOOST_TEST(cri_timestamp(t0) == "2023-11-14T22:13:20Z");
  BOOST_TEST(cri_timestamp(t0 + 123456789ns) == "2023-11-14T22:13:20.123456789Z");
  BOOST_TEST(cri_timestamp(t0 + 100ms) == "2023-11-14T22:13:20.1Z");  // zeros trimmed
  BOOST_TEST(cri_timestamp(t0 + 1us) == "2023-11-14T22:13:20.000001Z");
}

BOOST_AUTO_TEST_CASE(full_lines_are_tagged_f) {
  cri_framer f("stdout");
  std::vector<std::string> out;
  f.feed("hello\nworld\r\n\n", t0, out);
  BOOST_REQUIRE(out.size() == 3u);
  BOOST_TEST(out[0] == "2023-11-14T22:13:20Z stdout F hello\n");
  BOOST_TEST(out[1] == "2023-11-14T22:13:20Z stdout F world\n");  // \r\n like bufio.ReadLine
  BOOST_TEST(out[2] == "2023-11-14T22:13:20Z stdout F \n");       // an empty line stays one
  BOOST_TEST(f.pending() == 0u);
}

BOOST_AUTO_TEST_CASE(a_line_split_across_reads_is_one_line) {
  cri_framer f("stderr");
  std::vector<std::string> out;
  f.feed("par", t0, out);
  BOOST_TEST(out.empty());
  BOOST_TEST(f.pending() == 3u);
  f.feed("tial\nnext", t0 + 1s, out);
  BOOST_REQUIRE(out.size() == 1u);
  // Stamped when the line ended.
  BOOST_TEST(out[0] == "2023-11-14T22:13:21Z stderr F partial\n");
  // The stream ends without a newline: a P line, as containerd writes it.
  f.flush(t0 + 2s, out);
  BOOST_REQUIRE(out.size() == 2u);
  BOOST_TEST(out[1] == "2023-11-14T22:13:22Z stderr P next\n");
  f.flush(t0 + 3s, out);
  BOOST_TEST(out.size() == 2u);
}

BOOST_AUTO_TEST_CASE(long_lines_are_cut_into_partial_chunks) {
  cri_framer f("stdout", 4);
  std::vector<std::string> out;
  f.feed("abcd\n", t0, out);  // exactly the limit: still one full line
  f.feed("0123456789", t0, out);
  f.feed("ab\n", t0, out);
  std::vector<std::string> want{
      "2023-11-14T22:13:20Z stdout F abcd\n", "2023-11-14T22:13:20Z stdout P 0123\n",
      "2023-11-14T22:13:20Z stdout P 4567\n",
      // Exactly the limit when the newline comes: a full line, as containerd.
      "2023-11-14T22:13:20Z stdout F 89ab\n"};
  BOOST_TEST(out == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(default_line_limit_is_16_kib) {
  cri_framer f("stdout");
  std::vector<std::string> out;
  std::string big(40000, 'x');
  f.feed(big + "\n", t0, out);
  BOOST_REQUIRE(out.size() == 3u);
  BOOST_TEST(out[0].find(" stdout P ") != std::string::npos);
  BOOST_TEST(out[0].size() == std::string("2023-11-14T22:13:20Z stdout P \n").size() + 16384);
  BOOST_TEST(out[1].find(" stdout P ") != std::string::npos);
  BOOST_TEST(out[2].find(" stdout F ") != std::string::npos);
  BOOST_TEST(out[2].size() ==
             std::string("2023-11-14T22:13:20Z stdout F \n").size() + 40000 - 2 * 16384);
}

BOOST_AUTO_TEST_CASE(sizes_parse_like_kubelet_quantities) {
  BOOST_TEST(*parse_log_size("10Mi") == 10u << 20);
  BOOST_TEST(*parse_log_size("512Ki") == 512u << 10);
  BOOST_TEST(*parse_log_size("1000") == 1000u);
  BOOST_TEST(*parse_log_size("2M") == 2'000'000u);
  BOOST_TEST(*parse_log_size("1Gi") == 1ull << 30);
  BOOST_TEST(!parse_log_size("").ok());
  BOOST_TEST(!parse_log_size("Mi").ok());
  BOOST_TEST(!parse_log_size("10MB").ok());
  BOOST_TEST(!parse_log_size("-1").ok());
}

BOOST_AUTO_TEST_CASE(rotation_by_size_keeps_max_files) {
  temp_dir tmp;
  auto dir = tmp.path / "app";
  log_limits limits;
  limits.max_size = 100;
  limits.max_files = 3;
  rotating_log log(limits);
  BOOST_REQUIRE(log.open(dir / "0.log", 0).ok());
  cri_framer f("stdout");
  time_point t = t0;
  std::vector<std::string> all;
  for (int i = 0; i < 20; ++i) {
    std::vector<std::string> lines;
    f.feed("line " + std::to_string(i) + "\n", t, lines);  // 34 bytes framed
    all.insert(all.end(), lines.begin(), lines.end());
    BOOST_REQUIRE(log.write(lines, t).ok());
    t += 1s;
  }
  auto names = names_in(dir);
  BOOST_TEST(names.size() == 3u);
  BOOST_TEST(names.count("0.log") == 1u);
  // The live file holds the newest lines and is never past the limit.
  auto live = read_text(dir / "0.log");
  BOOST_TEST(live.size() <= 100u);
  BOOST_TEST(live.find("line 19\n") != std::string::npos);
  std::vector<std::string> rotated;
  for (const auto& n : names)
    if (n != "0.log") {
      BOOST_TEST(n.rfind("0.log.2023", 0) == 0u);
      rotated.push_back(n);
    }
  // Nothing lost between the files kept: the newest rotated file ends where
  // the live one begins.
  std::sort(rotated.begin(), rotated.end());
  auto kept = lines_of(read_text(dir / rotated[0]) + read_text(dir / rotated[1]) + live);
  BOOST_REQUIRE(!kept.empty());
  std::vector<std::string> tail;
  for (std::size_t i = all.size() - kept.size(); i < all.size(); ++i)
    tail.push_back(all[i].substr(0, all[i].size() - 1));
  BOOST_TEST(kept == tail, boost::test_tools::per_element());
  for (const auto& r : rotated)
    BOOST_TEST(fs::file_size(dir / r) <= 100u);
}

BOOST_AUTO_TEST_CASE(rotations_within_one_instant_do_not_collide) {
  temp_dir tmp;
  log_limits limits;
  limits.max_size = 40;
  limits.max_files = 10;
  rotating_log log(limits);
  BOOST_REQUIRE(log.open(tmp.path / "c" / "2.log", 2).ok());
  cri_framer f("stdout");
  std::vector<std::string> lines;
  f.feed("a\nb\nc\nd\n", t0, lines);
  BOOST_REQUIRE(log.write(lines, t0).ok());
  BOOST_TEST(names_in(tmp.path / "c").size() == 4u);
  std::string joined;
  for (const auto& n : names_in(tmp.path / "c"))
    joined += read_text(tmp.path / "c" / n);
  BOOST_TEST(lines_of(joined).size() == 4u);

  // With pruning in between, names still sort by age (a pruned name is
  // never reused for a newer file).
  limits.max_files = 2;
  rotating_log small(limits);
  BOOST_REQUIRE(small.open(tmp.path / "d" / "0.log", 0).ok());
  lines.clear();
  f.feed("1\n2\n3\n4\n5\n", t0, lines);
  BOOST_REQUIRE(small.write(lines, t0).ok());
  auto kept = names_in(tmp.path / "d");
  BOOST_REQUIRE(kept.size() == 2u);
  std::string rotated = *kept.begin() == "0.log" ? *kept.rbegin() : *kept.begin();
  BOOST_TEST(read_text(tmp.path / "d" / rotated).find(" F 4\n") != std::string::npos);
  BOOST_TEST(read_text(tmp.path / "d" / "0.log").find(" F 5\n") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(pruning_keeps_the_previous_instance_only) {
  temp_dir tmp;
  auto dir = tmp.path;
  for (auto n :
       {"0.log", "1.log", "1.log.20231114-221320.000000", "2.log", "2.log.20231114-221320.000000",
        "2.log.20231114-221321.000000", "3.log", "notes.txt"})
    std::ofstream(dir / n) << "x\n";
  prune_container_logs(dir, 3, 3);
  std::set<std::string> want{"2.log", "2.log.20231114-221321.000000", "3.log", "notes.txt"};
  BOOST_TEST(names_in(dir) == want, boost::test_tools::per_element());
  prune_container_logs(dir, 3, 2);
  want = {"2.log", "3.log", "notes.txt"};
  BOOST_TEST(names_in(dir) == want, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(pump_copies_both_streams_and_drains_on_finish) {
  temp_dir tmp;
  auto out_fifo = tmp.path / "io" / "app.stdout";
  auto err_fifo = tmp.path / "io" / "app.stderr";
  auto out_fd = open_container_stream(out_fifo);
  auto err_fd = open_container_stream(err_fifo);
  BOOST_REQUIRE(out_fd.ok());
  BOOST_REQUIRE(err_fd.ok());

  time_point now = t0;
  log_pump pump(log_limits{}, "test", [&now] { return now; });
  pump.start();
  // Written before the pump attaches: waits in the pipe, not lost.
  BOOST_REQUIRE(::write(out_fd->get(), "early\n", 6) == 6);
  pump.attach("app", out_fifo, err_fifo, tmp.path / "logs" / "app" / "0.log", 0);
  BOOST_REQUIRE(::write(err_fd->get(), "oops\n", 5) == 5);
  BOOST_REQUIRE(::write(out_fd->get(), "no newline", 10) == 10);
  out_fd->reset();
  err_fd->reset();
  // finish() drains before it returns, so no waiting on luck here.
  BOOST_REQUIRE(pump.finish("app").wait_for(10s) == std::future_status::ready);
  auto lines = lines_of(read_text(tmp.path / "logs" / "app" / "0.log"));
  std::sort(lines.begin(), lines.end());
  std::vector<std::string> want{"2023-11-14T22:13:20Z stderr F oops",
                                "2023-11-14T22:13:20Z stdout F early",
                                "2023-11-14T22:13:20Z stdout P no newline"};
  BOOST_TEST(lines == want, boost::test_tools::per_element());

  // The next instance writes into the same FIFOs and its own file.
  auto again = open_container_stream(out_fifo);
  BOOST_REQUIRE(again.ok());
  now = t0 + 5s;
  pump.attach("app", out_fifo, err_fifo, tmp.path / "logs" / "app" / "1.log", 1);
  BOOST_REQUIRE(::write(again->get(), "second\n", 7) == 7);
  BOOST_REQUIRE(pump.finish("app").wait_for(10s) == std::future_status::ready);
  BOOST_TEST(read_text(tmp.path / "logs" / "app" / "1.log") ==
             "2023-11-14T22:13:25Z stdout F second\n");
  BOOST_TEST(lines_of(read_text(tmp.path / "logs" / "app" / "0.log")).size() == 3u);
  pump.stop();
}

// The pod supervisor's mode: the pump shares the runner's thread (one thread
// less per pod) and is driven by that thread's poll loop.
BOOST_AUTO_TEST_CASE(shared_thread_pump_runs_in_the_callers_poll_loop) {
  temp_dir tmp;
  auto out_fifo = tmp.path / "io" / "app.stdout";
  auto err_fifo = tmp.path / "io" / "app.stderr";
  auto out_fd = open_container_stream(out_fifo);
  auto err_fd = open_container_stream(err_fifo);
  BOOST_REQUIRE(out_fd.ok());
  BOOST_REQUIRE(err_fd.ok());
  const auto log_dir = tmp.path / "logs" / "app";

  time_point now = t0;
  log_pump pump(log_limits{}, "test", [&now] { return now; });
  BOOST_REQUIRE(pump.share_thread());
  // One turn of a loop like the runner's: its own descriptors first (one
  // here, ignored by poll), then the pump's.
  auto turn = [&pump] {
    std::vector<struct pollfd> fds{{-1, POLLIN, 0}};
    pump.fill_pollfds(fds);
    BOOST_REQUIRE(fds.size() > 1u);
    // Only ever called with something already readable: no waiting on luck.
    BOOST_REQUIRE(::poll(fds.data(), fds.size(), 10'000) > 0);
    pump.on_ready(fds.data() + 1, fds.data() + fds.size());
  };

  BOOST_REQUIRE(::write(out_fd->get(), "early\n", 6) == 6);
  pump.attach("app", out_fifo, err_fifo, log_dir / "0.log", 0);
  BOOST_REQUIRE(::write(out_fd->get(), "one\n", 4) == 4);
  BOOST_REQUIRE(::write(err_fd->get(), "oops\n", 5) == 5);
  turn();
  std::vector<std::string> want{"2023-11-14T22:13:20Z stdout F early",
                                "2023-11-14T22:13:20Z stdout F one",
                                "2023-11-14T22:13:20Z stderr F oops"};
  auto lines = lines_of(read_text(log_dir / "0.log"));
  std::sort(lines.begin(), lines.end());
  std::sort(want.begin(), want.end());
  BOOST_TEST(lines == want, boost::test_tools::per_element());

  // A call from another thread waits for the pump's thread: the wake fd
  // ends its poll and on_ready() runs the call.
  BOOST_REQUIRE(::write(out_fd->get(), "no newline", 10) == 10);
  auto done = std::async(std::launch::async, [&pump] { return pump.finish("app"); }).get();
  BOOST_TEST((done.wait_for(0s) == std::future_status::timeout));
  turn();
  BOOST_REQUIRE(done.wait_for(0s) == std::future_status::ready);
  BOOST_TEST(lines_of(read_text(log_dir / "0.log")).back() ==
             "2023-11-14T22:13:20Z stdout P no newline");

  // On the pump's own thread finish() drains at once: a caller waiting on
  // its future (the runner after an exit) cannot deadlock.
  now = t0 + 5s;
  pump.attach("app", out_fifo, err_fifo, log_dir / "1.log", 1);
  BOOST_REQUIRE(::write(out_fd->get(), "second\n", 7) == 7);
  BOOST_REQUIRE(pump.finish("app").wait_for(0s) == std::future_status::ready);
  BOOST_TEST(read_text(log_dir / "1.log") == "2023-11-14T22:13:25Z stdout F second\n");

  // stop() on the pump's thread (its loop done) copies what is left.
  pump.attach("app", out_fifo, err_fifo, log_dir / "2.log", 2);
  BOOST_REQUIRE(::write(err_fd->get(), "tail", 4) == 4);
  pump.stop();
  BOOST_TEST(read_text(log_dir / "2.log") == "2023-11-14T22:13:25Z stderr P tail\n");
  std::vector<struct pollfd> after;
  pump.fill_pollfds(after);
  BOOST_TEST(after.empty());
}

BOOST_AUTO_TEST_SUITE_END()

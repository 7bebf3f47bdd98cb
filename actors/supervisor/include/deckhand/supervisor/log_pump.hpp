#pragma once

/// Copies containers' stdout and stderr into their CRI log files.
///
/// Each container writes into two FIFOs in the pod directory
/// (pod_dir::log_fifo); see pod_dir.hpp for why FIFOs. The pump holds their
/// read ends open (O_RDWR, so it never sees EOF between container instances),
/// timestamps and tags every line (cri_framer) and appends it to the current
/// instance's file (rotating_log).
///
/// Two ways to run it:
///   - shared (the pod supervisor): share_thread() makes the calling thread
///     the pump's; that thread's poll loop (the runner's) adds the pump's
///     descriptors (fill_pollfds) and calls on_ready() after each poll. This
///     is for memory density: a thread costs a pod 12-16 kB of dirty stack
///     plus TLS, and a node runs hundreds of supervisors. The price is that
///     output waits while the runner is in a runc call (the pipes' 1 MiB
///     buffers absorb it; see open_container_stream);
///   - own thread: start() runs the same loop on a thread of the pump's.
///
/// attach()/finish() are called in order with launches and exits: attach
/// before a container (re)starts or is adopted, finish after it has exited
/// (all its output is then in the pipe: finish drains it into the old file
/// before the next attach switches files). Called on the pump's thread they
/// run at once (finish()'s future is then ready when it returns, so the
/// runner may wait on it); called on another thread they are queued for it.

#include <poll.h>

#include <atomic>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "deckhand/common/process.hpp"
#include "deckhand/common/result.hpp"
#include "deckhand/supervisor/cri_log.hpp"

namespace deckhand::supervisor {

/// Creates the FIFO at `path` (and its directory) unless it exists.
result<void> ensure_fifo(const std::filesystem::path& path);

/// The descriptor a container gets as its stdout or stderr: the FIFO opened
/// O_RDWR and blocking, so that the pipe keeps a reader (the container
/// itself) while no supervisor runs; a full pipe then blocks the writer
/// rather than killing it with SIGPIPE. Also enlarges the pipe buffer.
result<common::unique_fd> open_container_stream(const std::filesystem::path& fifo);

class log_pump {
 public:
  using clock_fn = std::function<time_point()>;

  /// `log_fields` ("pod=NS/NAME uid=UID") starts every log line.
  explicit log_pump(
      log_limits limits, std::string log_fields = {},
      clock_fn clock = [] { return wall_clock::now(); });
  ~log_pump();
  log_pump(const log_pump&) = delete;
  log_pump& operator=(const log_pump&) = delete;

  /// Own-thread mode: runs the pump on a thread of its own.
  void start();
  /// Copies what is readable right now, then stops: joins the pump's own
  /// thread, or (shared mode) drains on the calling thread, which must be
  /// the pump's thread once its poll loop has returned. Containers keep
  /// their pipes; a later supervisor continues from where this one stopped.
  /// Idempotent.
  void stop();

  /// Shared mode: makes the calling thread the pump's thread, which from now
  /// on drives the pump through fill_pollfds()/on_ready() in its own poll
  /// loop. False (and nothing changes) when start() gave the pump a thread.
  bool share_thread();
  /// Shared mode: appends the descriptors to poll for POLLIN (the wake
  /// eventfd for calls from other threads, then each attached pipe).
  void fill_pollfds(std::vector<struct pollfd>& fds);
  /// Shared mode: after poll(), handles the entries the last fill_pollfds()
  /// appended (`begin`..`end`, with revents set): copies up to a turn's
  /// budget from each readable pipe (so a chatty container cannot starve
  /// the loop), then runs calls queued by other threads.
  void on_ready(const struct pollfd* begin, const struct pollfd* end);
  /// Shared mode: copies what is readable right now (a poll with no wait),
  /// within the same per-turn budget; lets a loop busy with other work keep
  /// output flowing between tasks.
  void pump_ready_now();

  /// Container `name`'s output from now on goes to `log_file` (instance
  /// `instance`). Opens the FIFOs' read ends before it returns (creating the
  /// FIFOs if needed), so that output written from then on is never lost; a
  /// file attached before is finished first.
  void attach(const std::string& name, const std::filesystem::path& stdout_fifo,
              const std::filesystem::path& stderr_fifo, const std::filesystem::path& log_file,
              int64_t instance);

  /// Drains what `name`'s pipes hold into its file, ends an unterminated last
  /// line (as a `P` line), and closes file and pipes. The future is ready
  /// once that is done.
  std::future<void> finish(const std::string& name);

 private:
  struct stream {
    common::unique_fd fd;
    cri_framer framer;
    explicit stream(std::string name, std::size_t max_line) : framer(std::move(name), max_line) {}
  };
  struct container_io {
    stream out;
    stream err;
    rotating_log file;
    explicit container_io(const log_limits& l)
        : out("stdout", l.max_line), err("stderr", l.max_line), file(l) {}
  };

  /// Which pipe an entry of the last fill_pollfds() was.
  struct polled {
    std::string name;
    bool err = false;
  };

  /// Runs `cmd` now on the pump's thread, else queues it for that thread.
  void post(std::function<void()> cmd);
  bool on_pump_thread() const { return owner_.load() == std::this_thread::get_id(); }
  void loop();
  /// Appends the attached pipes to `fds`, and what each is to `who`.
  void collect(std::vector<struct pollfd>& fds, std::vector<polled>& who) const;
  /// Pumps the streams of `who` whose entries in `begin`..`end` are
  /// readable, up to a turn's budget each.
  void pump_ready(const std::vector<polled>& who, const struct pollfd* begin,
                  const struct pollfd* end);
  /// Runs queued calls; true once stop() was asked for.
  bool run_queued();
  /// The final copy on stop: what is readable now, and unfinished lines.
  void drain_all();
  /// Reads `s` until it would block (or `budget` bytes); false on a hard error.
  bool pump(const std::string& name, container_io& c, stream& s, std::size_t budget);
  void write_lines(const std::string& name, container_io& c, const std::vector<std::string>& lines);
  void do_finish(const std::string& name);

  log_limits limits_;
  std::string log_fields_;
  clock_fn clock_;
  std::mutex mu_;
  std::deque<std::function<void()>> cmds_;
  bool stop_ = false;
  common::unique_fd wake_;
  /// The thread that owns io_: the own thread, or the sharing one.
  std::atomic<std::thread::id> owner_{};
  bool shared_ = false;
  bool stopped_ = false;                                     ///< shared mode
  std::map<std::string, std::unique_ptr<container_io>> io_;  ///< pump thread only
  std::vector<polled> polled_;   ///< pump thread only: the last fill_pollfds()'s pipes
  bool polled_wake_ = false;     ///< pump thread only: ... after the wake fd
  std::unique_ptr<char[]> buf_;  ///< pump thread only
  std::thread thread_;
};

}  // namespace deckhand::supervisor

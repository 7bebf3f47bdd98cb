#pragma once

/// The thread that copies containers' stdout and stderr into their CRI log
/// files.
///
/// Each container writes into two FIFOs in the pod directory
/// (pod_dir::log_fifo); see pod_dir.hpp for why FIFOs. The pump holds their
/// read ends open (O_RDWR, so it never sees EOF between container instances),
/// timestamps and tags every line (cri_framer) and appends it to the current
/// instance's file (rotating_log). It runs apart from the runner so that a
/// slow runc call never stalls a container's output.
///
/// attach()/finish() are called by the runner thread, in order with launches
/// and exits: attach before a container (re)starts or is adopted, finish
/// after it has exited (all its output is then in the pipe: finish drains it
/// into the old file before the next attach switches files).

#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "deckhand/common/result.hpp"
#include "deckhand/oci/process.hpp"
#include "deckhand/supervisor/cri_log.hpp"

namespace deckhand::supervisor {

/// Creates the FIFO at `path` (and its directory) unless it exists.
result<void> ensure_fifo(const std::filesystem::path& path);

/// The descriptor a container gets as its stdout or stderr: the FIFO opened
/// O_RDWR and blocking, so that the pipe keeps a reader (the container
/// itself) while no supervisor runs; a full pipe then blocks the writer
/// rather than killing it with SIGPIPE. Also enlarges the pipe buffer.
result<oci::unique_fd> open_container_stream(const std::filesystem::path& fifo);

class log_pump {
 public:
  using clock_fn = std::function<time_point()>;

  /// `log_fields` ("pod=NS/NAME uid=UID") starts every log line.
  explicit log_pump(log_limits limits, std::string log_fields = {},
                    clock_fn clock = [] { return wall_clock::now(); });
  ~log_pump();
  log_pump(const log_pump&) = delete;
  log_pump& operator=(const log_pump&) = delete;

  void start();
  /// Copies what is readable right now, then stops. Containers keep their
  /// pipes; a later supervisor continues from where this one stopped.
  void stop();

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
    oci::unique_fd fd;
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

  void post(std::function<void()> cmd);
  void loop();
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
  oci::unique_fd wake_;
  std::map<std::string, std::unique_ptr<container_io>> io_;  ///< pump thread only
  std::unique_ptr<char[]> buf_;                                ///< pump thread only
  std::thread thread_;
};

} // namespace deckhand::supervisor

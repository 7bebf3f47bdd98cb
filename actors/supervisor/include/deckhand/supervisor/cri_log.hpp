#pragma once

/// Container log files in the CRI log format, as containerd and CRI-O write
/// them and the kubelet (and `kubectl logs`) read them:
///
///   2024-05-01T12:00:00.123456789Z stdout F a whole line
///   2024-05-01T12:00:00.2Z stderr P the first 16 KiB of a longer line
///
/// One file per container instance, `<pod log dir>/<container>/<restartCount>.log`,
/// rotated by size to `N.log.<timestamp>`.
///
/// Pure logic plus plain file I/O: time is passed in, so tests drive it.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "deckhand/common/process.hpp"
#include "deckhand/common/result.hpp"
#include "deckhand/supervisor/backoff.hpp"

namespace deckhand::supervisor {

/// Log limits; the defaults are the kubelet's (containerLogMaxSize 10Mi,
/// containerLogMaxFiles 5) and containerd's max_container_log_line_size.
struct log_limits {
  uint64_t max_size = 10u << 20;     ///< a file is rotated before it grows past this
  int max_files = 5;                 ///< files kept per container, the live ones included
  std::size_t max_line = 16u << 10;  ///< longer lines are split into P chunks
};

/// `time` as Go's time.RFC3339Nano prints it in UTC: nanoseconds with
/// trailing zeros dropped ("2024-05-01T12:00:00.1Z", "2024-05-01T12:00:00Z").
std::string cri_timestamp(time_point t);

/// A size as the kubelet's --container-log-max-size takes it: a resource
/// quantity ("10Mi", "512Ki", "2M", "1000"), in bytes rounded up.
result<uint64_t> parse_log_size(const std::string& text);

/// Cuts one stream's bytes into CRI lines. A line ends at '\n' (a '\r'
/// before it is dropped, as Go's bufio.ReadLine does) and becomes an `F`
/// line; a line longer than `max_line` is cut into `P` chunks of exactly
/// `max_line` bytes followed by the rest as `F`.
class cri_framer {
 public:
  /// `stream` is "stdout" or "stderr".
  explicit cri_framer(std::string stream, std::size_t max_line = log_limits{}.max_line);

  /// Frames `data`; each finished line, with its trailing '\n', is appended
  /// to `out`. An unterminated tail is kept for the next call.
  void feed(std::string_view data, time_point now, std::vector<std::string>& out);

  /// Emits a kept unterminated tail as a `P` line (what containerd does when
  /// the stream ends without a newline).
  void flush(time_point now, std::vector<std::string>& out);

  std::size_t pending() const { return buf_.size(); }
  const std::string& stream() const { return stream_; }

 private:
  void emit(std::string_view text, char tag, const std::string& stamp,
            std::vector<std::string>& out) const;

  std::string stream_;
  std::size_t max_line_;
  std::string buf_;
};

/// The log file of one container instance, rotated by size.
///
/// Rotation renames `N.log` to `N.log.<UTC YYYYMMDD-HHMMSS.uuuuuu>` (the
/// kubelet's name with microseconds, so that names sort by age; rotations
/// within one microsecond get `-0001`, `-0002`, ...) and starts a new
/// `N.log`; then
/// prune_container_logs() keeps the directory within `max_files`.
class rotating_log {
 public:
  explicit rotating_log(log_limits limits = {}) : limits_(limits) {}

  /// Opens (appending to) `file`, whose name must be `<instance>.log`;
  /// creates its directory. Closes any file open before.
  result<void> open(const std::filesystem::path& file, int64_t instance);

  /// Appends `lines` (whole CRI lines), rotating first whenever the next
  /// line would take a non-empty file past max_size.
  result<void> write(const std::vector<std::string>& lines, time_point now);

  void close();
  bool is_open() const { return static_cast<bool>(fd_); }
  const std::filesystem::path& path() const { return path_; }
  uint64_t size() const { return size_; }

 private:
  result<void> rotate(time_point now);
  result<void> write_all(const std::string& data);

  log_limits limits_;
  std::filesystem::path path_;
  int64_t instance_ = 0;
  common::unique_fd fd_;
  uint64_t size_ = 0;
  std::string rotation_stamp_;  ///< stamp of the last rotation
  int rotation_seq_ = 0;        ///< rotations so far within that stamp
};

/// Keeps a container's log directory within bounds: removes every file of
/// instances older than `current - 1` (the kubelet keeps one dead container
/// per container name), then the oldest rotated files until at most
/// `max_files` remain. `current.log` and `(current - 1).log` are never
/// removed: they are what `logs` and `logs --previous` read.
void prune_container_logs(const std::filesystem::path& dir, int64_t current, int max_files);

}  // namespace deckhand::supervisor

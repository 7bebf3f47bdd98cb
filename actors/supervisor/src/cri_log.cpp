#include "deckhand/supervisor/cri_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>

#include "deckhand/api/quantity.hpp"
#include "deckhand/api/time.hpp"

namespace deckhand::supervisor {

namespace fs = std::filesystem;

namespace {

struct utc_parts {
  std::tm tm{};
  int64_t nanos = 0;
};

utc_parts split(time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  int64_t secs = ns / 1'000'000'000;
  int64_t frac = ns % 1'000'000'000;
  if (frac < 0) {
    frac += 1'000'000'000;
    --secs;
  }
  utc_parts p;
  std::time_t tt = static_cast<std::time_t>(secs);
  ::gmtime_r(&tt, &p.tm);
  p.nanos = frac;
  return p;
}

/// `N` of a file named `N.log` or `N.log.<stamp>`, and the stamp ("" for the
/// live file); false for anything else.
bool parse_log_name(const std::string& name, int64_t& instance, std::string& stamp) {
  auto dot = name.find(".log");
  if (dot == 0 || dot == std::string::npos || dot > 18)
    return false;
  if (!std::all_of(name.begin(), name.begin() + static_cast<long>(dot),
                   [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  auto rest = name.substr(dot + 4);
  if (!rest.empty() && (rest[0] != '.' || rest.size() < 2))
    return false;
  instance = std::stoll(name.substr(0, dot));
  stamp = rest.empty() ? std::string{} : rest.substr(1);
  return true;
}

}  // namespace

std::string cri_timestamp(time_point t) { return api::format_rfc3339_nano(t); }

result<uint64_t> parse_log_size(const std::string& text) {
  auto q = api::quantity::parse(text);
  if (!q)
    return error{errc::invalid, "not a size: " + q.err().message};
  if (q->sign() < 0)
    return error{errc::invalid, "not a size: \"" + text + "\" is negative"};
  auto bytes = q->value();
  if (!bytes)
    return error{errc::invalid, "log size too large: " + text};
  return static_cast<uint64_t>(*bytes);
}

// -- framing ----------------------------------------------------------------------

cri_framer::cri_framer(std::string stream, std::size_t max_line)
    : stream_(std::move(stream)), max_line_(max_line == 0 ? 1 : max_line) {}

void cri_framer::emit(std::string_view text, char tag, const std::string& stamp,
                      std::vector<std::string>& out) const {
  std::string line;
  line.reserve(stamp.size() + stream_.size() + text.size() + 5);
  line += stamp;
  line += ' ';
  line += stream_;
  line += ' ';
  line += tag;
  line += ' ';
  line.append(text);
  line += '\n';
  out.push_back(std::move(line));
}

void cri_framer::feed(std::string_view data, time_point now, std::vector<std::string>& out) {
  const std::string stamp = cri_timestamp(now);
  while (!data.empty()) {
    auto nl = data.find('\n');
    auto piece = data.substr(0, nl);
    buf_.append(piece);
    // Lines longer than the limit leave in fixed chunks as soon as they are
    // known to be too long.
    std::size_t done = 0;
    while (buf_.size() - done > max_line_) {
      emit(std::string_view(buf_).substr(done, max_line_), 'P', stamp, out);
      done += max_line_;
    }
    if (done)
      buf_.erase(0, done);
    if (nl == std::string_view::npos)
      break;
    std::string_view line = buf_;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    emit(line, 'F', stamp, out);
    buf_.clear();
    data.remove_prefix(nl + 1);
  }
}

void cri_framer::flush(time_point now, std::vector<std::string>& out) {
  if (buf_.empty())
    return;
  emit(buf_, 'P', cri_timestamp(now), out);
  buf_.clear();
}

// -- files ------------------------------------------------------------------------

result<void> rotating_log::open(const fs::path& file, int64_t instance) {
  close();
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  if (ec)
    return error{errc::io, "create " + file.parent_path().string() + ": " + ec.message()};
  auto fd = common::open_fd(file, O_WRONLY | O_CREAT | O_APPEND, 0640);
  if (!fd)
    return fd.err();
  struct stat st {};
  if (::fstat(fd->get(), &st) != 0)
    return error::from_errno("fstat " + file.string());
  fd_ = std::move(*fd);
  size_ = static_cast<uint64_t>(st.st_size);
  path_ = file;
  instance_ = instance;
  return {};
}

void rotating_log::close() {
  fd_.reset();
  size_ = 0;
}

result<void> rotating_log::write_all(const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd_.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return error::from_errno("write " + path_.string());
    }
    off += static_cast<std::size_t>(n);
    size_ += static_cast<uint64_t>(n);
  }
  return {};
}

result<void> rotating_log::rotate(time_point now) {
  auto p = split(now);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d-%02d%02d%02d.%06lld", p.tm.tm_year + 1900,
                p.tm.tm_mon + 1, p.tm.tm_mday, p.tm.tm_hour, p.tm.tm_min, p.tm.tm_sec,
                static_cast<long long>(p.nanos / 1000));
  // Several rotations in one microsecond (one large read): numbered so that
  // names keep sorting by age even after older ones were pruned.
  if (rotation_stamp_ == buf) {
    ++rotation_seq_;
  } else {
    rotation_stamp_ = buf;
    rotation_seq_ = 0;
  }
  auto name_for = [&](int seq) {
    std::string n = path_.string() + "." + buf;
    if (seq > 0) {
      char sfx[16];
      std::snprintf(sfx, sizeof sfx, "-%04d", seq);
      n += sfx;
    }
    return fs::path(n);
  };
  std::error_code ec;
  fs::path target = name_for(rotation_seq_);
  while (fs::exists(target, ec) && rotation_seq_ < 9999)
    target = name_for(++rotation_seq_);
  fs::rename(path_, target, ec);
  if (ec)
    return error{errc::io, "rotate " + path_.string() + ": " + ec.message()};
  auto file = path_;
  if (auto r = open(file, instance_); !r)
    return r;
  prune_container_logs(file.parent_path(), instance_, limits_.max_files);
  return {};
}

result<void> rotating_log::write(const std::vector<std::string>& lines, time_point now) {
  if (!fd_)
    return error{errc::invalid, "log file not open"};
  std::string batch;
  for (const auto& line : lines) {
    uint64_t pending = size_ + batch.size();
    if (limits_.max_size > 0 && pending > 0 && pending + line.size() > limits_.max_size) {
      if (auto r = write_all(batch); !r)
        return r;
      batch.clear();
      if (auto r = rotate(now); !r)
        return r;
    }
    batch += line;
  }
  return write_all(batch);
}

void prune_container_logs(const fs::path& dir, int64_t current, int max_files) {
  struct entry {
    int64_t instance;
    std::string stamp;
    fs::path path;
  };
  std::vector<entry> live, rotated;
  std::error_code ec;
  for (const auto& de : fs::directory_iterator(dir, ec)) {
    int64_t n = 0;
    std::string stamp;
    auto name = de.path().filename().string();
    if (!parse_log_name(name, n, stamp))
      continue;
    if (n < current - 1 || n > current) {
      // Older instances; a newer one cannot exist unless the status was lost,
      // and then it is not ours to keep either.
      if (n < current - 1)
        fs::remove(de.path(), ec);
      continue;
    }
    (stamp.empty() ? live : rotated).push_back({n, stamp, de.path()});
  }
  std::sort(rotated.begin(), rotated.end(), [](const entry& a, const entry& b) {
    return a.instance != b.instance ? a.instance < b.instance : a.stamp < b.stamp;
  });
  std::size_t total = live.size() + rotated.size();
  std::size_t keep = static_cast<std::size_t>(std::max(max_files, 1));
  for (const auto& r : rotated) {
    if (total <= keep)
      break;
    fs::remove(r.path, ec);
    --total;
  }
}

}  // namespace deckhand::supervisor

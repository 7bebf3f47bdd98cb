#include "deckhand/apiserver/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <system_error>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"
#include "deckhand/common/unique_fd.hpp"

namespace deckhand::apiserver {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* snapshot_name = "snapshot.db";
constexpr const char* snapshot_tmp_name = "snapshot.db.tmp";
constexpr const char* wal_name = "wal.log";
constexpr std::size_t header_bytes = 8;
constexpr int snapshot_format = 1;
/// The snapshot and the WAL are read whole, however large they have grown.
constexpr std::size_t no_size_limit = std::numeric_limits<std::size_t>::max();

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

std::uint32_t get_u32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i)
    v |= static_cast<std::uint32_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

/// Appends one framed record (length, crc32c over length and payload, payload).
void frame_record(std::string& out, const std::vector<std::uint8_t>& payload) {
  std::string len;
  put_u32(len, static_cast<std::uint32_t>(payload.size()));
  std::uint32_t crc = crc32c(len.data(), len.size());
  crc = crc32c(payload.data(), payload.size(), crc);
  out += len;
  put_u32(out, crc);
  out.append(reinterpret_cast<const char*>(payload.data()), payload.size());
}

enum class frame_status { ok, torn, corrupt };

/// Checks the record at `off`; on success sets `payload_len`.
frame_status check_frame(const std::string& buf, std::size_t off, std::uint32_t max_len,
                         std::uint32_t& payload_len) {
  if (buf.size() - off < header_bytes)
    return frame_status::torn;
  payload_len = get_u32(buf.data() + off);
  std::uint32_t crc = get_u32(buf.data() + off + 4);
  // A zero length would make an all-zero tail (size extended, data never
  // written) look like a valid record, since crc32c of nothing is 0.
  if (payload_len == 0 || payload_len > max_len)
    return frame_status::corrupt;
  if (buf.size() - off - header_bytes < payload_len)
    return frame_status::torn;
  std::uint32_t want = crc32c(buf.data() + off, 4);
  want = crc32c(buf.data() + off + header_bytes, payload_len, want);
  return want == crc ? frame_status::ok : frame_status::corrupt;
}

std::optional<json> decode_payload(const std::string& buf, std::size_t off, std::uint32_t len) {
  try {
    auto first = reinterpret_cast<const std::uint8_t*>(buf.data() + off + header_bytes);
    json j = json::from_msgpack(first, first + len);
    if (!j.is_object())
      return std::nullopt;
    return j;
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

error write_all_at(int fd, const char* data, std::size_t n, off_t off, const fs::path& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, off);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      return error::from_errno("write " + path.string());
    }
    data += w;
    n -= static_cast<std::size_t>(w);
    off += w;
  }
  return {};
}

}  // namespace

struct store::impl {
  fs::path dir;
  store_options opts;
  mutable std::mutex mu;
  std::map<std::string, stored_value> data;
  std::uint64_t rev = 0;
  common::unique_fd wal;
  std::uint64_t wal_size = 0;
  store_stats st;
  /// Set when a write could not be undone or synced: the on-disk state is then
  /// unknown, so no further write may be acknowledged.
  std::optional<error> broken;

  fs::path wal_path() const { return dir / wal_name; }

  error load_snapshot();
  error replay_wal(bool& created);
  result<std::uint64_t> append(bool is_put, const std::string& key, const json* value);
  void apply(bool is_put, const std::string& key, const json* value, std::uint64_t r);
  error write_snapshot();
};

error store::impl::load_snapshot() {
  fs::path path = dir / snapshot_name;
  auto buf = fsutil::read_file(path, no_size_limit);
  if (!buf)
    return buf.err().code == errc::not_found ? error{} : buf.err();
  // The snapshot only ever appears through an atomic rename after fsync, so
  // any damage here is media corruption, not a crash: refuse to guess.
  auto corrupt = [&](std::size_t off, const char* what) {
    return error{errc::io, "snapshot " + path.string() + " corrupt at offset " +
                               std::to_string(off) + ": " + what};
  };
  std::size_t off = 0;
  std::uint32_t len = 0;
  if (check_frame(*buf, off, opts.max_record_bytes, len) != frame_status::ok)
    return corrupt(off, "bad header record");
  auto header = decode_payload(*buf, off, len);
  if (!header || header->value("format", 0) != snapshot_format)
    return corrupt(off, "unknown format");
  std::uint64_t snap_rev = header->value("rev", std::uint64_t{0});
  std::uint64_t count = header->value("count", std::uint64_t{0});
  off += header_bytes + len;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (off >= buf->size() ||
        check_frame(*buf, off, opts.max_record_bytes, len) != frame_status::ok)
      return corrupt(off, "bad entry record");
    auto e = decode_payload(*buf, off, len);
    if (!e || !e->contains("k") || !e->contains("v"))
      return corrupt(off, "bad entry");
    stored_value sv;
    sv.value = std::move((*e)["v"]);
    sv.mod_revision = e->value("m", std::uint64_t{0});
    sv.create_revision = e->value("c", std::uint64_t{0});
    data[(*e)["k"].get<std::string>()] = std::move(sv);
    off += header_bytes + len;
  }
  if (off != buf->size())
    return corrupt(off, "trailing bytes");
  rev = snap_rev;
  return {};
}

error store::impl::replay_wal(bool& created) {
  fs::path path = wal_path();
  created = !fs::exists(path);
  wal = common::unique_fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!wal)
    return error::from_errno("open " + path.string());
  if (::flock(wal.get(), LOCK_EX | LOCK_NB) != 0)
    return error::from_errno("lock " + path.string() + " (is another apiserver using " +
                             dir.string() + "?)");
  auto buf = fsutil::read_file(path, no_size_limit);
  if (!buf)
    return buf.err();

  std::size_t off = 0;
  std::uint64_t records = 0;
  while (off < buf->size()) {
    std::uint32_t len = 0;
    frame_status status = check_frame(*buf, off, opts.max_record_bytes, len);
    std::optional<json> rec;
    if (status == frame_status::ok) {
      rec = decode_payload(*buf, off, len);
      if (rec && (!rec->contains("k") || !rec->contains("r") || !rec->contains("o")))
        rec.reset();
    }
    if (!rec) {
      // A crash interrupts at most the last record. If an intact record
      // follows this one, the damage is in the middle of acknowledged history.
      if (status != frame_status::torn && len > 0 && len <= opts.max_record_bytes) {
        std::size_t next = off + header_bytes + len;
        std::uint32_t next_len = 0;
        if (next < buf->size() &&
            check_frame(*buf, next, opts.max_record_bytes, next_len) == frame_status::ok)
          return error{errc::io, "wal " + path.string() + " corrupt at offset " +
                                     std::to_string(off) + " with intact records after it"};
      }
      std::uint64_t cut = buf->size() - off;
      log::get()->warn("apiserver store: truncating wal tail path={} offset={} bytes={} reason={}",
                       path.string(), off, cut, status == frame_status::torn ? "torn" : "corrupt");
      if (::ftruncate(wal.get(), static_cast<off_t>(off)) != 0)
        return error::from_errno("truncate " + path.string());
      if (::fsync(wal.get()) != 0)
        return error::from_errno("fsync " + path.string());
      st.truncated_bytes_on_open = cut;
      break;
    }
    std::uint64_t r = (*rec)["r"].get<std::uint64_t>();
    // Records at or below the snapshot revision were already compacted into
    // it (a crash between snapshot rename and WAL reset leaves them behind).
    if (r > rev) {
      bool is_put = (*rec)["o"] == "p";
      const json* v = is_put && rec->contains("v") ? &(*rec)["v"] : nullptr;
      if (is_put && !v)
        return error{errc::io, "wal " + path.string() + " put without value at offset " +
                                   std::to_string(off)};
      apply(is_put, (*rec)["k"].get<std::string>(), v, r);
    }
    off += header_bytes + len;
    ++records;
  }
  wal_size = off;
  st.wal_records = records;
  st.wal_bytes = off;
  return {};
}

void store::impl::apply(bool is_put, const std::string& key, const json* value, std::uint64_t r) {
  if (is_put) {
    auto it = data.find(key);
    if (it == data.end()) {
      data.emplace(key, stored_value{*value, r, r});
    } else {
      it->second.value = *value;
      it->second.mod_revision = r;
    }
  } else {
    data.erase(key);
  }
  rev = r;
}

result<std::uint64_t> store::impl::append(bool is_put, const std::string& key, const json* value) {
  if (broken)
    return error{errc::io, "store is unusable after an earlier failure: " + broken->message};
  std::uint64_t r = rev + 1;
  json rec = {{"o", is_put ? "p" : "d"}, {"k", key}, {"r", r}};
  if (is_put)
    rec["v"] = *value;
  std::vector<std::uint8_t> payload = json::to_msgpack(rec);
  if (payload.size() > opts.max_record_bytes)
    return error{errc::too_large, "value for " + key + " is " + std::to_string(payload.size()) +
                                      " bytes, over the limit of " +
                                      std::to_string(opts.max_record_bytes)};
  std::string frame;
  frame.reserve(header_bytes + payload.size());
  frame_record(frame, payload);
  if (auto err = write_all_at(wal.get(), frame.data(), frame.size(), static_cast<off_t>(wal_size),
                              wal_path())) {
    // Cut off whatever part made it, so the next record does not follow garbage.
    if (::ftruncate(wal.get(), static_cast<off_t>(wal_size)) != 0)
      broken = err;
    return err;
  }
  if (opts.sync && ::fdatasync(wal.get()) != 0) {
    // After a failed fsync the kernel may have dropped the dirty pages: what is
    // on disk is unknown, so stop acknowledging writes (restart re-reads it).
    auto err = error::from_errno("fdatasync " + wal_path().string());
    broken = err;
    return err;
  }
  wal_size += frame.size();
  ++st.wal_records;
  st.wal_bytes = wal_size;
  apply(is_put, key, value, r);
  if (st.wal_records >= opts.snapshot_after_records || st.wal_bytes >= opts.snapshot_after_bytes) {
    // The write is already durable; a failed compaction only delays the next.
    if (auto err = write_snapshot())
      log::get()->error("apiserver store: compaction failed: {}", err.message);
  }
  return r;
}

error store::impl::write_snapshot() {
  fs::path tmp = dir / snapshot_tmp_name;
  common::unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd)
    return error::from_errno("open " + tmp.string());
  std::string buf;
  off_t off = 0;
  auto flush = [&]() -> error {
    if (auto err = write_all_at(fd.get(), buf.data(), buf.size(), off, tmp))
      return err;
    off += static_cast<off_t>(buf.size());
    buf.clear();
    return {};
  };
  frame_record(buf, json::to_msgpack(
                        json{{"format", snapshot_format}, {"rev", rev}, {"count", data.size()}}));
  for (const auto& [k, v] : data) {
    frame_record(
        buf, json::to_msgpack(
                 json{{"k", k}, {"v", v.value}, {"m", v.mod_revision}, {"c", v.create_revision}}));
    if (buf.size() >= (1u << 20))
      if (auto err = flush())
        return err;
  }
  if (auto err = flush())
    return err;
  if (::fsync(fd.get()) != 0)
    return error::from_errno("fsync " + tmp.string());
  fd.reset();
  if (::rename(tmp.c_str(), (dir / snapshot_name).c_str()) != 0)
    return error::from_errno("rename " + tmp.string());
  if (auto err = fsutil::sync_dir(dir))
    return err;
  // From here the snapshot holds everything; the old WAL records are redundant
  // (and skipped by revision if the truncation below does not happen).
  if (::ftruncate(wal.get(), 0) != 0)
    return error::from_errno("truncate " + wal_path().string());
  if (::fsync(wal.get()) != 0) {
    auto err = error::from_errno("fsync " + wal_path().string());
    broken = err;
    return err;
  }
  wal_size = 0;
  st.wal_records = 0;
  st.wal_bytes = 0;
  ++st.snapshots_written;
  log::get()->info("apiserver store: snapshot written rev={} keys={}", rev, data.size());
  return {};
}

result<store> store::open(const fs::path& dir, store_options opts) {
  auto p = std::make_unique<impl>();
  p->dir = dir;
  p->opts = opts;
  std::error_code ec;
  bool existed = fs::exists(dir, ec);
  fs::create_directories(dir, ec);
  if (ec)
    return error{errc::io, "create " + dir.string() + ": " + ec.message()};
  if (!existed && dir.has_parent_path())
    if (auto err = fsutil::sync_dir(fs::absolute(dir).parent_path()))
      return err;
  fs::remove(dir / snapshot_tmp_name, ec);
  if (auto err = p->load_snapshot())
    return err;
  bool created = false;
  if (auto err = p->replay_wal(created))
    return err;
  if (created)
    if (auto err = fsutil::sync_dir(dir))
      return err;
  log::get()->info("apiserver store: opened dir={} rev={} keys={} wal_records={}", dir.string(),
                   p->rev, p->data.size(), p->st.wal_records);
  return store(std::move(p));
}

store::store(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
store::store(store&&) noexcept = default;
store& store::operator=(store&&) noexcept = default;
store::~store() = default;

result<std::uint64_t> store::put(const std::string& key, const json& value) {
  std::lock_guard lock(impl_->mu);
  return impl_->append(true, key, &value);
}

result<std::uint64_t> store::put_if(const std::string& key, const json& value,
                                    std::uint64_t expected_revision) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->data.find(key);
  std::uint64_t have = it == impl_->data.end() ? 0 : it->second.mod_revision;
  if (have != expected_revision)
    return error{errc::conflict, "key " + key + ": expected revision " +
                                     std::to_string(expected_revision) + ", found " +
                                     std::to_string(have)};
  return impl_->append(true, key, &value);
}

result<std::uint64_t> store::remove(const std::string& key) {
  std::lock_guard lock(impl_->mu);
  if (!impl_->data.count(key))
    return error{errc::not_found, "key " + key + " not found"};
  return impl_->append(false, key, nullptr);
}

result<std::uint64_t> store::remove_if(const std::string& key, std::uint64_t expected_revision) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->data.find(key);
  if (it == impl_->data.end())
    return error{errc::not_found, "key " + key + " not found"};
  if (it->second.mod_revision != expected_revision)
    return error{errc::conflict, "key " + key + ": expected revision " +
                                     std::to_string(expected_revision) + ", found " +
                                     std::to_string(it->second.mod_revision)};
  return impl_->append(false, key, nullptr);
}

std::optional<stored_value> store::get(const std::string& key) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->data.find(key);
  if (it == impl_->data.end())
    return std::nullopt;
  return it->second;
}

stored_list store::list(const std::string& prefix) const {
  std::lock_guard lock(impl_->mu);
  stored_list out;
  out.revision = impl_->rev;
  for (auto it = impl_->data.lower_bound(prefix);
       it != impl_->data.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it)
    out.entries.push_back({it->first, it->second});
  return out;
}

std::uint64_t store::revision() const {
  std::lock_guard lock(impl_->mu);
  return impl_->rev;
}

error store::compact() {
  std::lock_guard lock(impl_->mu);
  if (impl_->broken)
    return *impl_->broken;
  return impl_->write_snapshot();
}

store_stats store::stats() const {
  std::lock_guard lock(impl_->mu);
  store_stats s = impl_->st;
  s.keys = impl_->data.size();
  return s;
}

const fs::path& store::dir() const { return impl_->dir; }

}  // namespace deckhand::apiserver

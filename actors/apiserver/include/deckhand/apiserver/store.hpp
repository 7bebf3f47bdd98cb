#pragma once

/// The API server's durable key-value store: an in-memory map made durable by
/// a write-ahead log plus periodic snapshots in one directory.
///
/// On disk (DIR is usually DATA/apiserver):
///
///   DIR/snapshot.db   the state as of some revision (written to .tmp, fsynced,
///                     renamed, directory fsynced)
///   DIR/wal.log       records written after that snapshot
///
/// Both files are sequences of records: u32 length (LE), u32 crc32c (LE) of the
/// length bytes and the payload, then the payload (msgpack). A write returns
/// only after its record was fdatasync'ed, so an acknowledged write survives a
/// crash. On open, a torn or corrupt record at the tail of the WAL (the one a
/// crash interrupted) is cut off and logged; damage followed by intact records
/// is reported as an error instead, since cutting there would lose acknowledged
/// writes.
///
/// Every mutation advances one global revision (Kubernetes' resourceVersion),
/// which is persisted with the data and never goes backwards, also across
/// compaction and reopen.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deckhand/common/result.hpp"

namespace deckhand::apiserver {

/// Tuning of a store.
struct store_options {
  /// Compact (write a snapshot, start a new WAL) once the WAL holds this many
  /// records...
  std::uint64_t snapshot_after_records = 10000;
  /// ...or this many bytes, whichever comes first.
  std::uint64_t snapshot_after_bytes = 64ull << 20;
  /// Largest accepted record; bigger writes fail with errc::too_large.
  std::uint32_t max_record_bytes = 16u << 20;
  /// fdatasync every write. Only benchmarks that measure something else turn
  /// this off; without it the store is not durable.
  bool sync = true;
};

/// A value with the revisions of its last modification and its creation.
struct stored_value {
  nlohmann::json value;
  std::uint64_t mod_revision = 0;
  std::uint64_t create_revision = 0;
};

/// A key and its value, as returned by list().
struct stored_entry {
  std::string key;
  stored_value data;
};

/// The result of list(): the matching entries (sorted by key) and the store
/// revision they were read at.
struct stored_list {
  std::vector<stored_entry> entries;
  std::uint64_t revision = 0;
};

/// Counters for tests and metrics.
struct store_stats {
  std::uint64_t wal_records = 0;
  std::uint64_t wal_bytes = 0;
  std::uint64_t snapshots_written = 0;
  std::uint64_t keys = 0;
  /// Bytes cut from the WAL tail when it was opened (torn/corrupt record).
  std::uint64_t truncated_bytes_on_open = 0;
};

/// Durable, thread-safe key-value store. Keys are plain strings such as
/// "pods/NS/NAME"; values are JSON documents.
class store {
 public:
  /// Opens (creating if needed) the store in `dir`: loads the snapshot, replays
  /// the WAL and repairs a torn tail.
  static result<store> open(const std::filesystem::path& dir, store_options opts = {});

  store(store&&) noexcept;
  store& operator=(store&&) noexcept;
  ~store();

  /// Writes `value` at `key`; returns the new revision once it is durable.
  result<std::uint64_t> put(const std::string& key, const nlohmann::json& value);

  /// Compare-and-swap: writes only if the key's mod_revision equals
  /// `expected_revision` (0 means: the key must not exist). errc::conflict
  /// otherwise.
  result<std::uint64_t> put_if(const std::string& key, const nlohmann::json& value,
                               std::uint64_t expected_revision);

  /// Removes `key`; errc::not_found if absent. Returns the new revision.
  result<std::uint64_t> remove(const std::string& key);

  /// Removes `key` only if its mod_revision equals `expected_revision`.
  result<std::uint64_t> remove_if(const std::string& key, std::uint64_t expected_revision);

  /// The value at `key`, if any.
  std::optional<stored_value> get(const std::string& key) const;

  /// All entries whose key starts with `prefix`, sorted by key.
  stored_list list(const std::string& prefix) const;

  /// The revision of the latest write (0 for a new store).
  std::uint64_t revision() const;

  /// Writes a snapshot and starts a new WAL now.
  error compact();

  store_stats stats() const;

  const std::filesystem::path& dir() const;

 private:
  struct impl;
  explicit store(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// CRC-32C (Castagnoli) of `n` bytes, continuing from `crc` (0 to start).
std::uint32_t crc32c(const void* data, std::size_t n, std::uint32_t crc = 0);

}  // namespace deckhand::apiserver

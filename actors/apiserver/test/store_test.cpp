#include <fstream>

#include <boost/test/unit_test.hpp>

#include "deckhand/apiserver/store.hpp"
#include "support.hpp"

using deckhand::errc;
using deckhand::apiserver::crc32c;
using deckhand::apiserver::store;
using deckhand::apiserver::store_options;
using deckhand::apiserver::test::temp_dir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

store open_store(const fs::path& dir, store_options opts = {}) {
  auto s = store::open(dir, opts);
  BOOST_REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.err().message));
  return std::move(*s);
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_all(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

/// Offsets at which each WAL record starts (length-prefixed framing).
std::vector<std::size_t> record_offsets(const std::string& wal) {
  std::vector<std::size_t> out;
  std::size_t off = 0;
  while (off + 8 <= wal.size()) {
    out.push_back(off);
    std::uint32_t len = 0;
    for (int i = 0; i < 4; ++i)
      len |= static_cast<std::uint32_t>(static_cast<unsigned char>(wal[off + i])) << (8 * i);
    off += 8 + len;
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(store_suite)

BOOST_AUTO_TEST_CASE(crc32c_known_vector) {
  // The standard check value of CRC-32C.
  BOOST_TEST(crc32c("123456789", 9) == 0xE3069283u);
}

BOOST_AUTO_TEST_CASE(data_and_revision_survive_reopen) {
  temp_dir tmp;
  {
    auto s = open_store(tmp.path());
    BOOST_TEST(s.revision() == 0u);
    BOOST_TEST(*s.put("pods/default/a", json{{"x", 1}}) == 1u);
    BOOST_TEST(*s.put("pods/default/b", json{{"x", 2}}) == 2u);
    BOOST_TEST(*s.put("pods/default/a", json{{"x", 3}}) == 3u);
    BOOST_TEST(*s.remove("pods/default/b") == 4u);
  }
  auto s = open_store(tmp.path());
  BOOST_TEST(s.revision() == 4u);
  auto a = s.get("pods/default/a");
  BOOST_REQUIRE(a);
  BOOST_TEST(a->value == (json{{"x", 3}}));
  BOOST_TEST(a->mod_revision == 3u);
  BOOST_TEST(a->create_revision == 1u);
  BOOST_TEST(!s.get("pods/default/b"));
  BOOST_TEST(*s.put("pods/default/c", json{{"x", 4}}) == 5u);
}

BOOST_AUTO_TEST_CASE(list_by_prefix_is_sorted_and_scoped) {
  temp_dir tmp;
  auto s = open_store(tmp.path());
  (void)s.put("pods/ns2/b", json{{"n", 1}});
  (void)s.put("pods/ns1/z", json{{"n", 2}});
  (void)s.put("pods/ns1/a", json{{"n", 3}});
  (void)s.put("services/ns1/a", json{{"n", 4}});
  auto l = s.list("pods/ns1/");
  BOOST_REQUIRE(l.entries.size() == 2u);
  BOOST_TEST(l.entries[0].key == "pods/ns1/a");
  BOOST_TEST(l.entries[1].key == "pods/ns1/z");
  BOOST_TEST(l.revision == 4u);
  BOOST_TEST(s.list("pods/").entries.size() == 3u);
}

BOOST_AUTO_TEST_CASE(compare_and_swap_conflicts) {
  temp_dir tmp;
  auto s = open_store(tmp.path());
  BOOST_TEST(*s.put_if("k", json{{"v", 1}}, 0) == 1u);
  auto again = s.put_if("k", json{{"v", 2}}, 0);
  BOOST_REQUIRE(!again.ok());
  BOOST_TEST(again.err().code == errc::conflict);
  auto stale = s.put_if("k", json{{"v", 2}}, 7);
  BOOST_REQUIRE(!stale.ok());
  BOOST_TEST(stale.err().code == errc::conflict);
  BOOST_TEST(*s.put_if("k", json{{"v", 2}}, 1) == 2u);
  BOOST_TEST(s.remove_if("k", 1).err().code == errc::conflict);
  BOOST_TEST(*s.remove_if("k", 2) == 3u);
  BOOST_TEST(s.remove("k").err().code == errc::not_found);
  // Failed attempts do not advance the revision.
  BOOST_TEST(s.revision() == 3u);
}

BOOST_AUTO_TEST_CASE(torn_tail_is_truncated_and_earlier_records_kept) {
  temp_dir tmp;
  {
    auto s = open_store(tmp.path());
    for (int i = 1; i <= 3; ++i)
      (void)s.put("k" + std::to_string(i), json{{"i", i}});
  }
  fs::path wal = tmp.path() / "wal.log";
  std::string data = read_all(wal);
  auto offs = record_offsets(data);
  BOOST_REQUIRE(offs.size() == 3u);
  // A crash in the middle of writing the third record.
  write_all(wal, data.substr(0, offs[2] + 11));
  {
    auto s = open_store(tmp.path());
    BOOST_TEST(s.revision() == 2u);
    BOOST_TEST(s.get("k1").has_value());
    BOOST_TEST(s.get("k2").has_value());
    BOOST_TEST(!s.get("k3").has_value());
    BOOST_TEST(s.stats().truncated_bytes_on_open == 11u);
    BOOST_TEST(fs::file_size(wal) == offs[2]);
    // New writes continue from the repaired log.
    BOOST_TEST(*s.put("k4", json{{"i", 4}}) == 3u);
  }
  auto s = open_store(tmp.path());
  BOOST_TEST(s.revision() == 3u);
  BOOST_TEST(s.get("k4").has_value());
  BOOST_TEST(s.stats().truncated_bytes_on_open == 0u);
}

BOOST_AUTO_TEST_CASE(torn_header_and_zero_filled_tail_are_truncated) {
  temp_dir tmp;
  {
    auto s = open_store(tmp.path());
    (void)s.put("k1", json{{"i", 1}});
  }
  fs::path wal = tmp.path() / "wal.log";
  std::string good = read_all(wal);
  write_all(wal, good + std::string(3, '\x07'));
  {
    auto s = open_store(tmp.path());
    BOOST_TEST(s.revision() == 1u);
  }
  // Size extended but the data never reached the disk: zeros.
  write_all(wal, good + std::string(4096, '\0'));
  auto s = open_store(tmp.path());
  BOOST_TEST(s.revision() == 1u);
  BOOST_TEST(fs::file_size(wal) == good.size());
}

BOOST_AUTO_TEST_CASE(corrupt_crc_on_last_record_is_detected_and_dropped) {
  temp_dir tmp;
  {
    auto s = open_store(tmp.path());
    (void)s.put("k1", json{{"i", 1}});
    (void)s.put("k2", json{{"i", 2}});
  }
  fs::path wal = tmp.path() / "wal.log";
  std::string data = read_all(wal);
  auto offs = record_offsets(data);
  data[offs[1] + 10] ^= 0x5A;
  write_all(wal, data);
  auto s = open_store(tmp.path());
  BOOST_TEST(s.revision() == 1u);
  BOOST_TEST(s.get("k1").has_value());
  BOOST_TEST(!s.get("k2").has_value());
  BOOST_TEST(s.stats().truncated_bytes_on_open == data.size() - offs[1]);
}

BOOST_AUTO_TEST_CASE(corruption_before_intact_records_refuses_to_open) {
  temp_dir tmp;
  {
    auto s = open_store(tmp.path());
    for (int i = 1; i <= 3; ++i)
      (void)s.put("k" + std::to_string(i), json{{"i", i}});
  }
  fs::path wal = tmp.path() / "wal.log";
  std::string data = read_all(wal);
  auto offs = record_offsets(data);
  data[offs[1] + 10] ^= 0x5A;
  write_all(wal, data);
  auto s = store::open(tmp.path());
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.err().code == errc::io);
  BOOST_TEST(s.err().message.find("corrupt") != std::string::npos);
  // Nothing was cut: acknowledged records are still on disk for a human to look at.
  BOOST_TEST(fs::file_size(wal) == data.size());
}

BOOST_AUTO_TEST_CASE(compaction_and_reopen) {
  temp_dir tmp;
  store_options opts;
  opts.snapshot_after_records = 5;
  {
    auto s = open_store(tmp.path(), opts);
    for (int i = 1; i <= 12; ++i)
      (void)s.put("k" + std::to_string(i % 4), json{{"i", i}});
    (void)s.remove("k0");
    auto st = s.stats();
    BOOST_TEST(st.snapshots_written == 2u);
    BOOST_TEST(st.wal_records == 3u);
    BOOST_TEST(fs::exists(tmp.path() / "snapshot.db"));
    BOOST_TEST(!fs::exists(tmp.path() / "snapshot.db.tmp"));
  }
  auto s = open_store(tmp.path(), opts);
  BOOST_TEST(s.revision() == 13u);
  BOOST_TEST(!s.get("k0").has_value());
  BOOST_TEST(s.get("k1")->value == (json{{"i", 9}}));
  BOOST_TEST(s.get("k3")->value == (json{{"i", 11}}));
  BOOST_TEST(s.get("k2")->mod_revision == 10u);
  BOOST_TEST(s.get("k2")->create_revision == 2u);
  BOOST_TEST(s.stats().keys == 3u);
}

BOOST_AUTO_TEST_CASE(crash_between_snapshot_and_wal_reset_replays_nothing_twice) {
  temp_dir tmp;
  fs::path wal = tmp.path() / "wal.log";
  std::string old_wal;
  {
    auto s = open_store(tmp.path());
    (void)s.put("a", json{{"i", 1}});
    (void)s.put("b", json{{"i", 2}});
    (void)s.remove("a");
    old_wal = read_all(wal);
    BOOST_REQUIRE(!s.compact());
    BOOST_TEST(fs::file_size(wal) == 0u);
  }
  // As if the process died after renaming the snapshot but before the WAL
  // was reset: the old records are still there.
  write_all(wal, old_wal);
  auto s = open_store(tmp.path());
  BOOST_TEST(s.revision() == 3u);
  BOOST_TEST(!s.get("a").has_value());
  BOOST_TEST(s.get("b")->value == (json{{"i", 2}}));
  BOOST_TEST(*s.put("c", json{{"i", 3}}) == 4u);
}

BOOST_AUTO_TEST_CASE(corrupt_snapshot_refuses_to_open) {
  temp_dir tmp;
  {
    auto s = open_store(tmp.path());
    (void)s.put("a", json{{"i", 1}});
    BOOST_REQUIRE(!s.compact());
  }
  fs::path snap = tmp.path() / "snapshot.db";
  std::string data = read_all(snap);
  data[data.size() - 2] ^= 0x01;
  write_all(snap, data);
  auto s = store::open(tmp.path());
  BOOST_REQUIRE(!s.ok());
  BOOST_TEST(s.err().message.find("snapshot") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(second_open_of_same_directory_is_refused) {
  temp_dir tmp;
  auto first = open_store(tmp.path());
  auto second = store::open(tmp.path());
  BOOST_REQUIRE(!second.ok());
  BOOST_TEST(second.err().message.find("lock") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(oversized_value_is_rejected_without_advancing) {
  temp_dir tmp;
  store_options opts;
  opts.max_record_bytes = 1024;
  auto s = open_store(tmp.path(), opts);
  auto r = s.put("big", json{{"blob", std::string(4096, 'x')}});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::too_large);
  BOOST_TEST(s.revision() == 0u);
  BOOST_TEST(*s.put("small", json{{"v", 1}}) == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

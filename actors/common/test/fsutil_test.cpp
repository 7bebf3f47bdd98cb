#include <sys/stat.h>

#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <filesystem>

#include "deckhand/common/fsutil.hpp"

using namespace deckhand;
namespace fs = std::filesystem;

namespace {

struct temp_dir {
  fs::path dir;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "deckhand-fsutil-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(fsutil_atomic)

BOOST_AUTO_TEST_CASE(write_replaces_whole_and_leaves_no_temp_file) {
  temp_dir t;
  auto p = t.dir / "state.json";
  BOOST_REQUIRE(!fsutil::write_file_atomic(p, "old"));
  BOOST_REQUIRE(!fsutil::write_file_atomic(p, "new content", fsutil::durability::process_crash));
  auto back = fsutil::read_file(p);
  BOOST_REQUIRE(back.ok());
  BOOST_TEST(*back == "new content");
  BOOST_TEST(std::distance(fs::directory_iterator(t.dir), fs::directory_iterator{}) == 1);
}

BOOST_AUTO_TEST_CASE(write_uses_the_given_mode) {
  temp_dir t;
  auto p = t.dir / "secret";
  ::umask(022);
  BOOST_REQUIRE(!fsutil::write_file_atomic(p, "x", fsutil::durability::machine_crash, 0600));
  struct stat st {};
  BOOST_REQUIRE(::stat(p.c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 0777) == 0600u);
}

BOOST_AUTO_TEST_CASE(errors_name_the_path) {
  temp_dir t;
  auto p = t.dir / "missing-dir" / "f";
  auto err = fsutil::write_file_atomic(p, "x");
  BOOST_REQUIRE(err);
  BOOST_TEST(err.code == errc::io);
  BOOST_TEST(err.message.find("missing-dir") != std::string::npos);
  BOOST_TEST(err.message.find("No such file") != std::string::npos);
  auto r = fsutil::read_file(p);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::not_found);
}

BOOST_AUTO_TEST_SUITE_END()

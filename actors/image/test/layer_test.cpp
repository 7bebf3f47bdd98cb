#include <boost/test/unit_test.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include "deckhand/image/layer.hpp"
#include "fixtures.hpp"

using namespace deckhand;
using namespace deckhand::image;
using namespace deckhand::image::test;
using T = tar_entry;

namespace {

/// A root to unpack into next to an "outside" directory holding one file, so
/// each test can check that nothing escaped.
struct layer_fixture {
  temp_dir tmp;
  fs::path root = tmp / "root";
  fs::path outside = tmp / "outside";
  layer_fixture() {
    fs::create_directories(root);
    fs::create_directories(outside);
    write_file(outside / "target", "precious");
  }
  result<layer_stats> apply(const std::vector<tar_entry>& entries, bool gzip = false,
                            unpack_options opts = {}) {
    std::string tar = make_tar(entries, gzip);
    return unpack_layer(tar.data(), tar.size(), root, opts);
  }
  void check_outside_untouched() {
    BOOST_TEST(entries_of(outside) == std::vector<std::string>{"target"});
    BOOST_TEST(read_file(outside / "target") == "precious");
    BOOST_TEST(entries_of(tmp.path()) == (std::vector<std::string>{"outside", "root"}));
    struct stat st;
    BOOST_REQUIRE(::stat((outside / "target").c_str(), &st) == 0);
    BOOST_TEST(st.st_nlink == 1u);
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(layer, layer_fixture)

BOOST_AUTO_TEST_CASE(unpacks_files_dirs_links_with_metadata) {
  T f{"usr/bin/tool", T::file, "#!/bin/sh\n"};
  f.mode = 04755;
  f.uid = 1234;
  f.gid = 567;
  f.mtime = 1600000000;
  T d{"etc", T::dir};
  d.mode = 0750;
  d.mtime = 1500000000;
  auto r = apply({d, T{"etc/hostname", T::file, "box\n"}, f,
                  T{"bin/sh", T::symlink, "", "/usr/bin/tool"},
                  T{"usr/bin/alias", T::hardlink, "", "usr/bin/tool"}, T{"run/fifo", T::fifo}});
  BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
  BOOST_TEST(r->entries == 6u);
  BOOST_TEST(read_file(root / "etc/hostname") == "box\n");
  struct stat st;
  BOOST_REQUIRE(::lstat((root / "usr/bin/tool").c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 04755u);
  BOOST_TEST(st.st_uid == 1234u);
  BOOST_TEST(st.st_gid == 567u);
  BOOST_TEST(st.st_mtime == 1600000000);
  BOOST_TEST(st.st_nlink == 2u);
  BOOST_REQUIRE(::lstat((root / "etc").c_str(), &st) == 0);
  BOOST_TEST((st.st_mode & 07777) == 0750u);
  BOOST_TEST(st.st_mtime == 1500000000);  // restored after its children were written
  BOOST_TEST(fs::is_symlink(root / "bin/sh"));
  BOOST_TEST(fs::read_symlink(root / "bin/sh") == "/usr/bin/tool");
  BOOST_TEST(fs::is_fifo(root / "run/fifo"));
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(diff_id_is_digest_of_uncompressed_stream) {
  std::vector<T> entries{T{"a", T::file, "hello"}, T{"b/c", T::file, std::string(100000, 'x')}};
  std::string plain = make_tar(entries);
  auto r1 = unpack_layer(plain.data(), plain.size(), root);
  BOOST_REQUIRE(r1.ok());
  BOOST_TEST(r1->diff_id == sha256_hex(plain));
  BOOST_TEST(r1->uncompressed_size == plain.size());
  fs::path root2 = tmp / "root2";
  fs::create_directories(root2);
  std::string gz = make_tar(entries, true);
  BOOST_TEST(gz.size() < plain.size());
  auto r2 = unpack_layer(gz.data(), gz.size(), root2);
  BOOST_REQUIRE(r2.ok());
  BOOST_TEST(r2->diff_id == sha256_hex(gunzip(gz)));
  BOOST_TEST(r2->uncompressed_size == gunzip(gz).size());
  BOOST_TEST(read_file(root2 / "b/c") == std::string(100000, 'x'));
  fs::remove_all(root2);
}

BOOST_AUTO_TEST_CASE(whiteout_removes_lower_entries) {
  BOOST_REQUIRE(apply({T{"a/x", T::file, "x"}, T{"a/y", T::file, "y"}, T{"b/deep/z", T::file, "z"},
                       T{"c", T::file, "c"}})
                    .ok());
  auto r = apply({T{"a/.wh.x", T::file}, T{".wh.b", T::file}, T{".wh.missing", T::file}});
  BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
  BOOST_TEST(!fs::exists(root / "a/x"));
  BOOST_TEST(fs::exists(root / "a/y"));
  BOOST_TEST(!fs::exists(root / "b"));
  BOOST_TEST(fs::exists(root / "c"));
  BOOST_TEST(!fs::exists(root / "a/.wh.x"));
}

BOOST_AUTO_TEST_CASE(opaque_dir_hides_lower_contents_only) {
  BOOST_REQUIRE(apply({T{"d/1", T::file, "1"}, T{"d/sub/2", T::file, "2"}, T{"e", T::file}}).ok());
  auto r = apply({T{"d", T::dir}, T{"d/new-before", T::file, "n"}, T{"d/.wh..wh..opq", T::file},
                  T{"d/new-after", T::file, "m"}});
  BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
  BOOST_TEST(entries_of(root / "d") == (std::vector<std::string>{"new-after", "new-before"}));
  BOOST_TEST(fs::exists(root / "e"));
}

BOOST_AUTO_TEST_CASE(whiteouts_are_plain_files_when_disabled) {
  unpack_options o;
  o.whiteouts = false;
  BOOST_REQUIRE(apply({T{".wh.x", T::file, "data"}}, false, o).ok());
  BOOST_TEST(read_file(root / ".wh.x") == "data");
}

BOOST_AUTO_TEST_CASE(rejects_dotdot) {
  auto r = apply({T{"ok", T::file, "1"}, T{"../outside/evil", T::file, "pwned"}});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::invalid);
  BOOST_TEST(r.err().message.find("..") != std::string::npos);
  auto r2 = apply({T{"a/b/../../../outside/evil", T::file, "pwned"}});
  BOOST_TEST(!r2.ok());
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(rejects_absolute_path) {
  auto r = apply({T{(outside / "evil").string(), T::file, "pwned"}});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::invalid);
  BOOST_TEST(r.err().message.find("absolute") != std::string::npos);
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(rejects_writing_through_symlink) {
  // The absolute link itself is fine: it means the container's own path.
  auto r = apply({T{"link", T::symlink, "", outside.string()}, T{"link/evil", T::file, "pwned"}});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::invalid);
  BOOST_TEST(r.err().message.find("symlink") != std::string::npos);
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(rejects_writing_through_symlink_from_lower_layer) {
  BOOST_REQUIRE(apply({T{"link", T::symlink, "", outside.string()}}).ok());
  for (auto e : {T{"link/target", T::file, "pwned"}, T{"link/sub/evil", T::file, "pwned"},
                 T{"link/.wh.target", T::file}, T{"link/.wh..wh..opq", T::file},
                 T{"link/d", T::dir}, T{"link/s", T::symlink, "", "/x"}}) {
    auto r = apply({e});
    BOOST_TEST(!r.ok(), e.path);
  }
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(writes_through_symlinks_resolve_inside_the_root) {
  // usrmerge-style links from a lower layer, relative and absolute, and a
  // link loop back to the root: all resolve as the container would see them.
  BOOST_REQUIRE(
      apply({T{"usr/bin/", T::dir}, T{"etc/", T::dir}, T{"bin", T::symlink, "", "usr/bin"},
             T{"cfg", T::symlink, "", "/etc"}, T{"d/up", T::symlink, "", ".."}})
          .ok());
  auto r = apply({T{"bin/tool", T::file, "tool"}, T{"cfg/app.conf", T::file, "conf"},
                  T{"d/up/d/up/top", T::file, "top"}, T{"bin/sub/deep", T::file, "deep"},
                  T{"cfg/.wh.gone", T::file}});
  BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
  BOOST_TEST(read_file(root / "usr/bin/tool") == "tool");
  BOOST_TEST(read_file(root / "usr/bin/sub/deep") == "deep");
  BOOST_TEST(read_file(root / "etc/app.conf") == "conf");
  BOOST_TEST(read_file(root / "top") == "top");
  BOOST_TEST(fs::is_symlink(root / "bin"));
  // A link to a file is not a directory to write into.
  BOOST_REQUIRE(apply({T{"file", T::file, "x"}, T{"flink", T::symlink, "", "/file"}}).ok());
  auto bad = apply({T{"flink/x", T::file, "x"}});
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.err().code == errc::invalid);
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(replacing_a_symlink_does_not_follow_it) {
  BOOST_REQUIRE(apply({T{"link", T::symlink, "", (outside / "target").string()}}).ok());
  BOOST_REQUIRE(apply({T{"link", T::file, "mine"}}).ok());
  BOOST_TEST(!fs::is_symlink(root / "link"));
  BOOST_TEST(read_file(root / "link") == "mine");
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(rejects_relative_symlink_escaping_root) {
  auto r = apply({T{"a/esc", T::symlink, "", "../../outside"}});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().message.find("escapes") != std::string::npos);
  BOOST_TEST(apply({T{"a/fine", T::symlink, "", "../b/./c"}}).ok());
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(rejects_escaping_hardlink) {
  auto r = apply({T{"hl", T::hardlink, "", "../outside/target"}});
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::invalid);
  auto r2 = apply({T{"hl", T::hardlink, "", (outside / "target").string()}});
  BOOST_TEST(!r2.ok());
  // Through a symlink the layer planted: link -> /abs/outside, hl -> link/target.
  auto r3 = apply(
      {T{"link", T::symlink, "", outside.string()}, T{"hl2", T::hardlink, "", "link/target"}});
  BOOST_REQUIRE(!r3.ok());
  BOOST_TEST(r3.err().message.find("symlink") != std::string::npos);
  BOOST_TEST(!fs::exists(fs::symlink_status(root / "hl2")));
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(hardlink_to_symlink_links_the_symlink_itself) {
  auto r =
      apply({T{"s", T::symlink, "", (outside / "target").string()}, T{"h", T::hardlink, "", "s"}});
  BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
  BOOST_TEST(fs::is_symlink(root / "h"));
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(rejects_device_nodes) {
  for (auto kind : {T::chr, T::blk}) {
    auto r = apply({T{"dev/null", kind}});
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.err().code == errc::invalid);
    BOOST_TEST(r.err().message.find("device") != std::string::npos);
    BOOST_TEST(!fs::exists(root / "dev/null"));
  }
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(rejects_oversized_layer) {
  unpack_options o;
  o.max_uncompressed_size = 1 << 20;
  auto r = apply({T{"big", T::file, std::string(2 << 20, 'a')}}, false, o);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::too_large);
  // A gzip bomb: tiny compressed, large uncompressed.
  auto r2 = apply({T{"bomb", T::file, std::string(64 << 20, '\0')}}, true, o);
  BOOST_REQUIRE(!r2.ok());
  BOOST_TEST(r2.err().code == errc::too_large);
  // A header that claims more than the limit, before any data.
  T claim{"claim", T::file, "x"};
  claim.declared_size = std::int64_t{8} << 20;
  auto r3 = apply({claim}, false, o);
  BOOST_TEST(!r3.ok());
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(garbage_and_truncation_are_errors) {
  std::string junk = "this is not a tar archive at all, not even close........";
  junk.resize(4096, 'q');
  auto r = unpack_layer(junk.data(), junk.size(), root);
  BOOST_TEST(!r.ok());
  for (bool gz : {false, true}) {
    std::string tar = make_tar({T{"f", T::file, std::string(50000, 'z')}}, gz);
    // Cut inside the file's data; for gzip also inside the trailer.
    std::vector<std::size_t> cuts{tar.size() / 2, gz ? tar.size() - 1 : std::size_t{30000}};
    for (std::size_t n : cuts) {
      auto r2 = unpack_layer(tar.data(), n, root);
      BOOST_TEST(!r2.ok(), "truncated to " << n << " of " << tar.size() << " gzip=" << gz);
    }
  }
  auto r3 = unpack_layer("", 0, root);
  BOOST_TEST(!r3.ok());
  check_outside_untouched();
}

BOOST_AUTO_TEST_SUITE_END()

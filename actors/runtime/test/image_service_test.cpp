#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <filesystem>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/image/builder.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/runtime/image_service.hpp"

using namespace deckhand;
using namespace deckhand::runtime;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

BOOST_AUTO_TEST_SUITE(image_service_suite)

// Progress goes out at most once per interval per pull, but a phase change
// always goes out at once.
BOOST_AUTO_TEST_CASE(progress_is_rate_limited_except_phase_changes) {
  progress_throttle t(100ms);
  progress_throttle::clock::time_point t0{std::chrono::seconds(1000)};
  BOOST_TEST(t.admit("resolving", t0));
  BOOST_TEST(t.admit("downloading", t0 + 1ms));
  int admitted = 0;
  for (int ms = 2; ms < 1000; ++ms)
    admitted += t.admit("downloading", t0 + std::chrono::milliseconds(ms));
  BOOST_TEST(admitted == 9);  // one per 100 ms
  BOOST_TEST(t.admit("unpacking", t0 + 1000ms + 1ms));
}

BOOST_AUTO_TEST_CASE(gc_period_durations) {
  BOOST_TEST(parse_duration("5m")->count() == 300000);
  BOOST_TEST(parse_duration("1h30m")->count() == 5400000);
  BOOST_TEST(parse_duration("500ms")->count() == 500);
  BOOST_TEST(parse_duration("90")->count() == 90000);
  BOOST_TEST(parse_duration("0")->count() == 0);
  BOOST_TEST(!parse_duration("five"));
  BOOST_TEST(!parse_duration("5x"));
  BOOST_TEST(!parse_duration(""));
}

// An image is in use while a sandbox on the node names it in its pod.json;
// other images are not.
BOOST_AUTO_TEST_CASE(images_in_use_come_from_the_node_s_sandboxes) {
  std::string tmpl = (fs::temp_directory_path() / "dh-imgsvc-XXXXXX").string();
  BOOST_REQUIRE(::mkdtemp(tmpl.data()));
  fs::path dir = tmpl;
  struct cleanup {
    fs::path d;
    ~cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } guard{dir};
  auto store = image::image_store::open(dir / "images");
  BOOST_REQUIRE(store);
  auto rootfs = dir / "rootfs";
  fs::create_directories(rootfs / "bin");
  BOOST_REQUIRE(!fsutil::write_file_atomic(rootfs / "bin" / "hello", "hi\n"));
  auto built = image::build_layout(rootfs, dir / "layout", "example.test/app:1", {});
  BOOST_REQUIRE(built);
  auto rec = (*store)->import(dir / "layout");
  BOOST_REQUIRE(rec);

  runtime_options opts;
  opts.data_dir = dir;
  BOOST_TEST(images_in_use(opts, **store).empty());

  wire::pod p;
  p.metadata.name = "web";
  p.metadata.namespace_ = "shop";
  p.metadata.uid = "uid-1";
  wire::container c;
  c.name = "main";
  c.image = "example.test/app:1";
  p.spec.containers.push_back(c);
  auto pd = pod_dir::root(dir, "uid-1");
  fs::create_directories(pd);
  BOOST_REQUIRE(!fsutil::write_file_atomic(pod_dir::pod_json(pd), wire::to_json(p).dump()));
  auto used = images_in_use(opts, **store);
  BOOST_REQUIRE(used.count(rec->id) == 1u);
  BOOST_TEST(*used[rec->id].begin() == "shop/web");
}

BOOST_AUTO_TEST_SUITE_END()

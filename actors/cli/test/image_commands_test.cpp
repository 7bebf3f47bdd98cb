/// `deckhand image pull` and `image rm` against a stand-in for the runtime: a
/// ROUTER at the node's runtime endpoint and a PUB at its progress endpoint,
/// in a temporary data directory.

#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <mutex>
#include <sstream>

#include "deckhand/cli/image_commands.hpp"
#include "deckhand/common/paths.hpp"
#include "deckhand/messages/bridge.hpp"
#include "deckhand/messages/codec.hpp"

using namespace deckhand;
using namespace deckhand::cli;
namespace fs = std::filesystem;

namespace {

const std::string busybox_id = "sha256:" + std::string(64, 'b');

class fake_runtime {
 public:
  explicit fake_runtime(const fs::path& data) : bus_(config()) {
    fs::create_directories(paths::run_dir(data));
    auto r = bus_.bind_router(paths::ipc_endpoint(data, "runtime"),
                              [this](transport::inbound_request req) { on_request(req); });
    auto p = bus_.bind_pub(paths::runtime_pub_endpoint(data));
    BOOST_REQUIRE(r && p);
    pub_ = *p;
    bus_.start();
  }
  ~fake_runtime() { bus_.stop(); }

  std::mutex mu;
  std::vector<wire::image_pull_request> pulls;
  std::vector<std::string> removes;

 private:
  static transport::bridge_config config() {
    transport::bridge_config c;
    c.component = "fake-runtime";
    return c;
  }

  void on_request(const transport::inbound_request& req) {
    std::lock_guard lk(mu);
    if (req.env.hdr.type == wire::image_pull_request::type_id) {
      auto m = wire::decode_body<wire::image_pull_request>(req.env.body);
      pulls.push_back(*m);
      if (m->image == "registry.test/missing:1") {
        bus_.reply_error(req, {errc::not_found, "manifest unknown: registry.test/missing:1"});
        return;
      }
      wire::image_pull_progress p;
      p.image = "docker.io/library/busybox:latest";
      p.phase = "done";
      bus_.publish(pub_, "pull", wire::make_envelope(p));
      wire::image_pull_reply rep;
      rep.image.id = busybox_id;
      rep.image.names = {"docker.io/library/busybox:latest"};
      rep.pulled = true;
      bus_.reply(req, wire::make_envelope(rep));
    } else if (req.env.hdr.type == wire::image_remove_request::type_id) {
      auto m = wire::decode_body<wire::image_remove_request>(req.env.body);
      removes.push_back(m->image);
      if (m->image == "in-use:1") {
        bus_.reply_error(req, {errc::conflict, "image \"in-use:1\" (bbbbbbbbbbbb) is in use by "
                                               "pod default/web; delete the pod first"});
        return;
      }
      wire::image_remove_reply rep;
      if (m->image != "two-names:1")
        rep.removed = {busybox_id};
      bus_.reply(req, wire::make_envelope(rep));
    } else {
      bus_.reply_error(req, {errc::unsupported, "fake"});
    }
  }

  transport::bridge bus_;
  int pub_ = -1;
};

struct image_world {
  image_world() {
    std::string tmpl = (fs::temp_directory_path() / "dh-cli-img-XXXXXX").string();
    BOOST_REQUIRE(::mkdtemp(tmpl.data()));
    dir = tmpl;
    rt = std::make_unique<fake_runtime>(dir);
  }
  ~image_world() {
    rt.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  fs::path dir;
  std::unique_ptr<fake_runtime> rt;
  std::ostringstream out, err;
  std::istringstream in;
  io_streams io{out, err, in};
};

}  // namespace

BOOST_AUTO_TEST_SUITE(image_commands)

// `image pull` sends the reference and the secrets to the runtime and prints
// the image id on stdout (scripts capture it), nothing else.
BOOST_FIXTURE_TEST_CASE(pull_prints_the_image_id, image_world) {
  image_pull_options o;
  o.node.data_dir = dir;
  o.ref = "busybox";
  o.secrets = {"regcred"};
  BOOST_TEST(image_pull_command(o, io) == 0);
  BOOST_TEST(out.str() == busybox_id + "\n");
  std::lock_guard lk(rt->mu);
  BOOST_REQUIRE(rt->pulls.size() == 1u);
  BOOST_TEST(rt->pulls[0].image == "busybox");
  BOOST_TEST(!rt->pulls[0].if_not_present);
  BOOST_TEST(rt->pulls[0].secrets == std::vector<std::string>{"regcred"},
             boost::test_tools::per_element());
}

// A failed pull: the runtime's error, non-zero exit, no id.
BOOST_FIXTURE_TEST_CASE(pull_failure_reports_the_error, image_world) {
  image_pull_options o;
  o.node.data_dir = dir;
  o.ref = "registry.test/missing:1";
  BOOST_TEST(image_pull_command(o, io) == 1);
  BOOST_TEST(out.str().empty());
  BOOST_TEST(err.str().find("error: manifest unknown") != std::string::npos);
}

// An invalid reference is refused before anything is sent.
BOOST_FIXTURE_TEST_CASE(pull_rejects_a_bad_reference, image_world) {
  image_pull_options o;
  o.node.data_dir = dir;
  o.ref = "UPPER/Case";
  BOOST_TEST(image_pull_command(o, io) == 1);
  std::lock_guard lk(rt->mu);
  BOOST_TEST(rt->pulls.empty());
}

// `image rm` prints docker's lines; an image in use is refused with the
// runtime's reason, the other references are still removed.
BOOST_FIXTURE_TEST_CASE(rm_reports_each_image, image_world) {
  node_options o;
  o.data_dir = dir;
  BOOST_TEST(
      image_remove_command(o, {"busybox:1", "in-use:1", "two-names:1", "bbbbbbbbbbbb"}, io) == 1);
  BOOST_TEST(out.str() == "Untagged: busybox:1\nDeleted: " + busybox_id +
                              "\nUntagged: two-names:1\n"
                              "Deleted: " +
                              busybox_id + "\n");
  BOOST_TEST(err.str().find("is in use by pod default/web") != std::string::npos);
}

// The terminal line: phase, bar and sizes once the total is known.
BOOST_AUTO_TEST_CASE(progress_line) {
  wire::image_pull_progress p;
  p.image = "docker.io/library/busybox:latest";
  p.phase = "resolving";
  BOOST_TEST(format_pull_progress(p, 10) == "docker.io/library/busybox:latest: resolving");
  p.phase = "downloading";
  p.done = 512;
  p.total = 1024;
  auto line = format_pull_progress(p, 10);
  BOOST_TEST(line.find("downloading [#####     ]") != std::string::npos, line);
  BOOST_TEST(format_pull_progress(p, 0).find('[') == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

#include <boost/test/unit_test.hpp>

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/host/pod_dir.hpp"
#include "deckhand/messages/json.hpp"
#include "deckhand/runtime/sandbox_ops.hpp"
#include "deckhand/runtime/sandbox_record.hpp"
#include "deckhand/runtime/supervisor_process.hpp"

using namespace deckhand;
using namespace deckhand::runtime;
namespace fs = std::filesystem;

namespace {

struct data_dir_fixture {
  runtime_options opts;
  data_dir_fixture() {
    char tmpl[] = "/tmp/deckhand-rt-sandbox-XXXXXX";
    opts.data_dir = mkdtemp(tmpl);
    opts.oci_runtime = "/bin/false";  // never reached: no container exists
  }
  ~data_dir_fixture() { fs::remove_all(opts.data_dir); }

  wire::pod make_pod(const std::string& uid) {
    wire::pod p;
    p.metadata.uid = uid;
    p.metadata.name = "web";
    p.metadata.namespace_ = "default";
    wire::container c;
    c.name = "main";
    c.image = "busybox";
    p.spec.containers.push_back(c);
    return p;
  }

  /// A pod dir as the runtime leaves it once ready, with no supervisor.
  fs::path write_pod(const std::string& uid, const std::string& state) {
    auto dir = pod_dir::root(opts.data_dir, uid);
    fs::create_directories(dir);
    fsutil::write_file_atomic(pod_dir::pod_json(dir), wire::to_json(make_pod(uid)).dump());
    sandbox_record rec;
    rec.uid = uid;
    rec.namespace_ = "default";
    rec.name = "web";
    rec.state = state;
    rec.containers = {"main"};
    fsutil::write_file_atomic(pod_dir::sandbox_json(dir), encode_sandbox_record(rec));
    return dir;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(sandbox_suite)

BOOST_AUTO_TEST_CASE(record_round_trip) {
  sandbox_record rec;
  rec.uid = "0f3c-uid";
  rec.namespace_ = "kube-system";
  rec.name = "dns";
  rec.state = "ready";
  rec.netns = "/var/lib/deckhand/runtime/pods/0f3c-uid/netns";
  rec.host_network = false;
  rec.created_at = now_rfc3339();
  rec.containers = {"a", "b"};
  auto back = decode_sandbox_record(encode_sandbox_record(rec));
  BOOST_REQUIRE(back);
  BOOST_TEST(back->uid == rec.uid);
  BOOST_TEST(back->namespace_ == rec.namespace_);
  BOOST_TEST(back->name == rec.name);
  BOOST_TEST(back->state == rec.state);
  BOOST_TEST(back->netns == rec.netns);
  BOOST_TEST(back->host_network == rec.host_network);
  BOOST_TEST(back->created_at == rec.created_at);
  BOOST_TEST(back->containers == rec.containers, boost::test_tools::per_element());
  BOOST_TEST(rec.created_at.size() == 20u);
  BOOST_TEST(!decode_sandbox_record("{not json"));
  BOOST_TEST(!decode_sandbox_record(R"({"containers": 3})"));
}

BOOST_AUTO_TEST_CASE(startup_decisions) {
  sandbox_record ready;
  ready.state = "ready";
  sandbox_record creating;
  creating.state = "creating";
  sandbox_record stopped;
  stopped.state = "stopped";
  using A = startup_action;
  auto d = [](bool pod_json, std::optional<sandbox_record> rec, bool alive, bool stopping) {
    return decide_startup(pod_json, rec, alive, stopping);
  };
  // Half-created: no pod.json, no record, or a record still "creating".
  BOOST_TEST((d(false, std::nullopt, false, false) == A::sweep));
  BOOST_TEST((d(false, ready, true, false) == A::sweep));
  BOOST_TEST((d(true, std::nullopt, false, false) == A::sweep));
  BOOST_TEST((d(true, creating, false, false) == A::sweep));
  // Complete.
  BOOST_TEST((d(true, ready, true, false) == A::adopt));
  BOOST_TEST((d(true, ready, true, true) == A::adopt));
  BOOST_TEST((d(true, ready, false, false) == A::start_supervisor));
  BOOST_TEST((d(true, ready, false, true) == A::leave_stopped));
  BOOST_TEST((d(true, stopped, false, false) == A::leave_stopped));
}

BOOST_AUTO_TEST_CASE(recovery_sweeps_half_created_and_keeps_complete) {
  data_dir_fixture fx;
  auto half = pod_dir::root(fx.opts.data_dir, "half");
  fs::create_directories(half / "containers" / "main" / "upper");
  auto creating = fx.write_pod("creating-uid", "creating");
  auto complete = fx.write_pod("complete-uid", "ready");
  auto stopped = fx.write_pod("stopped-uid", "stopped");
  fs::create_directories(paths::pod_log_dir(fx.opts.data_dir, "default", "web", "creating-uid"));

  auto found = recover_sandboxes(fx.opts);
  BOOST_REQUIRE_EQUAL(found.size(), 2u);
  BOOST_TEST(found[0].uid == "complete-uid");
  BOOST_TEST((found[0].action == startup_action::start_supervisor));
  BOOST_TEST(found[1].uid == "stopped-uid");
  BOOST_TEST((found[1].action == startup_action::leave_stopped));
  BOOST_TEST(!fs::exists(half));
  BOOST_TEST(!fs::exists(creating));
  BOOST_TEST(!fs::exists(paths::pod_log_dir(fx.opts.data_dir, "default", "web", "creating-uid")));
  BOOST_TEST(fs::exists(complete));
}

BOOST_AUTO_TEST_CASE(read_and_list_from_files) {
  data_dir_fixture fx;
  fx.write_pod("b-uid", "ready");
  auto a = fx.write_pod("a-uid", "ready");
  fsutil::write_file_atomic(pod_dir::stopping_marker(a), "x");
  // A pid that is not a supervisor of this pod: not alive.
  fsutil::write_file_atomic(pod_dir::supervisor_pid(a), "999999\n");

  auto list = list_sandboxes(fx.opts);
  BOOST_REQUIRE_EQUAL(list.size(), 2u);
  BOOST_TEST(list[0].uid == "a-uid");
  BOOST_TEST(list[0].state == "stopping");
  BOOST_TEST(list[0].supervisor_pid == 999999);
  BOOST_TEST(!list[0].supervisor_alive);
  BOOST_TEST(list[1].state == "ready");
  BOOST_REQUIRE_EQUAL(list[1].containers.size(), 1u);
  BOOST_TEST(list[1].containers[0].runtime_id == "b-uid-main");
  BOOST_TEST(list[1].containers[0].status.state.waiting.reason == "ContainerCreating");

  BOOST_TEST(!read_sandbox(fx.opts, "missing"));
  BOOST_TEST(!read_sandbox(fx.opts, "../escape"));
}

BOOST_AUTO_TEST_CASE(validation) {
  data_dir_fixture fx;
  BOOST_TEST(!validate_pod(fx.make_pod("ok-uid")));
  BOOST_TEST(static_cast<bool>(validate_pod(fx.make_pod(""))));
  BOOST_TEST(static_cast<bool>(validate_pod(fx.make_pod("../x"))));
  auto p = fx.make_pod("u");
  p.metadata.name.clear();
  BOOST_TEST(static_cast<bool>(validate_pod(p)));
  p = fx.make_pod("u");
  p.spec.containers.clear();
  BOOST_TEST(static_cast<bool>(validate_pod(p)));
  p = fx.make_pod("u");
  p.spec.containers.push_back(p.spec.containers[0]);
  BOOST_TEST(static_cast<bool>(validate_pod(p)));
  p = fx.make_pod("u");
  p.spec.containers[0].name = "Bad/Name";
  BOOST_TEST(static_cast<bool>(validate_pod(p)));
  // Init containers share the containers' name space and rules.
  p = fx.make_pod("u");
  auto init = p.spec.containers[0];
  init.name = "setup";
  p.spec.init_containers = {init};
  BOOST_TEST(!validate_pod(p));
  p.spec.init_containers[0].name = "main";
  BOOST_TEST(static_cast<bool>(validate_pod(p)));
  p.spec.init_containers[0].name = "setup";
  p.spec.init_containers[0].image.clear();
  BOOST_TEST(static_cast<bool>(validate_pod(p)));
}

BOOST_AUTO_TEST_CASE(remove_is_idempotent_and_only_removes_its_pod) {
  data_dir_fixture fx;
  auto a = fx.write_pod("a-uid", "ready");
  auto b = fx.write_pod("b-uid", "ready");
  auto logs = paths::pod_log_dir(fx.opts.data_dir, "default", "web", "a-uid");
  fs::create_directories(logs / "main");
  BOOST_TEST(!remove_sandbox(fx.opts, "a-uid"));
  BOOST_TEST(!fs::exists(a));
  BOOST_TEST(!fs::exists(logs));
  BOOST_TEST(fs::exists(b));
  BOOST_TEST(!remove_sandbox(fx.opts, "a-uid"));
  BOOST_TEST(static_cast<bool>(remove_sandbox(fx.opts, "..")));
}

BOOST_AUTO_TEST_CASE(supervisor_identity_by_cmdline) {
  BOOST_TEST(!process_alive(0));
  BOOST_TEST(process_alive(getpid()));
  BOOST_TEST(!is_supervisor_of(getpid(), "some-uid"));
}

BOOST_AUTO_TEST_SUITE_END()

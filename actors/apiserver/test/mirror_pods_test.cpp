// Mirror pods (the API server's copies of static pods) written through
// wire::mirror_pod_update: created, left alone when unchanged, replaced when
// the static pod changed, removed at once by a user's delete, removed by the
// kubelet, never a user's own pod; and the static pod's status reaching it.

#include <boost/test/unit_test.hpp>

#include "deckhand/apiserver/mirror_pods.hpp"
#include "deckhand/apiserver/registry.hpp"
#include "deckhand/messages/json.hpp"
#include "support.hpp"

using namespace deckhand;
using namespace deckhand::apiserver;
using deckhand::apiserver::test::temp_dir;
using nlohmann::json;

namespace {

wire::pod mirror(const std::string& hash, const std::string& image = "busybox") {
  wire::pod p;
  p.metadata.name = "web-node-1";
  p.metadata.namespace_ = "default";
  p.metadata.annotations = {{"kubernetes.io/config.mirror", hash},
                            {"kubernetes.io/config.hash", hash},
                            {"kubernetes.io/config.source", "file"}};
  p.spec.node_name = "node-1";
  wire::container c;
  c.name = "web";
  c.image = image;
  p.spec.containers.push_back(c);
  return p;
}

struct mirror_fixture {
  temp_dir tmp;
  store st{store::open(tmp.path() / "apiserver").value()};
  registry reg{st};

  std::uint64_t apply(const wire::pod& p, bool remove = false) {
    wire::mirror_pod_update u;
    u.pod_ = p;
    u.remove = remove;
    auto r = apply_mirror_pod_update(reg, u);
    BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.err().message));
    return *r;
  }
  json get() {
    auto r = reg.get("pods", "default", "web-node-1");
    return r ? *r : json();
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(mirror_pods, mirror_fixture)

BOOST_AUTO_TEST_CASE(create_is_idempotent_and_keeps_the_server_uid) {
  auto rev = apply(mirror("aaaa"));
  auto p = get();
  BOOST_REQUIRE(!p.is_null());
  BOOST_TEST(is_mirror_pod(p));
  BOOST_TEST(p["metadata"]["annotations"]["kubernetes.io/config.mirror"] == "aaaa");
  BOOST_TEST(p["spec"]["nodeName"] == "node-1");
  auto uid = p["metadata"]["uid"].get<std::string>();
  BOOST_TEST(!uid.empty());
  BOOST_TEST(uid != "aaaa");
  // The same mirror again: nothing changes.
  BOOST_TEST(apply(mirror("aaaa")) == rev);
  BOOST_TEST(get()["metadata"]["uid"] == uid);
}

BOOST_AUTO_TEST_CASE(a_changed_static_pod_replaces_the_mirror) {
  apply(mirror("aaaa"));
  auto old_uid = get()["metadata"]["uid"];
  apply(mirror("bbbb", "busybox:2"));
  auto p = get();
  BOOST_TEST(p["metadata"]["annotations"]["kubernetes.io/config.mirror"] == "bbbb");
  BOOST_TEST(p["spec"]["containers"][0]["image"] == "busybox:2");
  BOOST_TEST(p["metadata"]["uid"] != old_uid);
}

BOOST_AUTO_TEST_CASE(status_of_the_static_pod_reaches_the_mirror) {
  apply(mirror("aaaa"));
  wire::pod_status_update u;
  u.namespace_ = "default";
  u.name = "web-node-1";
  u.uid = "aaaa";  // the kubelet's uid of the static pod: the config hash
  u.status.phase = "Running";
  auto r = update_pod_status(reg, u);
  BOOST_REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.err().message));
  BOOST_TEST(get()["status"]["phase"] == "Running");
  // Any other uid is still a conflict.
  u.uid = "cccc";
  auto bad = update_pod_status(reg, u);
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(static_cast<int>(bad.err().code) == static_cast<int>(errc::conflict));
}

BOOST_AUTO_TEST_CASE(a_user_delete_removes_the_mirror_at_once) {
  apply(mirror("aaaa"));
  auto r = reg.remove("pods", "default", "web-node-1");
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->removed);
  BOOST_TEST(get().is_null());
  // The kubelet creates it again.
  apply(mirror("aaaa"));
  BOOST_TEST(!get().is_null());
}

BOOST_AUTO_TEST_CASE(remove_only_takes_the_mirror_of_the_given_hash) {
  apply(mirror("bbbb"));
  apply(mirror("aaaa"), true);  // stale: another hash
  BOOST_TEST(!get().is_null());
  apply(mirror("bbbb"), true);
  BOOST_TEST(get().is_null());
  apply(mirror("bbbb"), true);  // absent is success
}

BOOST_AUTO_TEST_CASE(a_users_pod_of_the_same_name_is_never_touched) {
  json own = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", "web-node-1"}}},
              {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "x"}}})}}}};
  BOOST_REQUIRE(reg.create("pods", "default", own).ok());
  wire::mirror_pod_update u;
  u.pod_ = mirror("aaaa");
  auto r = apply_mirror_pod_update(reg, u);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(static_cast<int>(r.err().code) == static_cast<int>(errc::already_exists));
  u.remove = true;
  BOOST_TEST(!apply_mirror_pod_update(reg, u).ok());
  BOOST_TEST(!is_mirror_pod(get()));
}

BOOST_AUTO_TEST_CASE(malformed_updates_are_refused) {
  wire::mirror_pod_update u;
  BOOST_TEST(!apply_mirror_pod_update(reg, u).ok());  // no name
  u.pod_ = mirror("aaaa");
  u.pod_.metadata.annotations.clear();
  BOOST_TEST(!apply_mirror_pod_update(reg, u).ok());  // not a mirror
  u.pod_ = mirror("aaaa");
  u.pod_.spec.node_name.clear();
  BOOST_TEST(!apply_mirror_pod_update(reg, u).ok());  // no node
  BOOST_TEST(get().is_null());
}

BOOST_AUTO_TEST_SUITE_END()

// Static pods from manifest files: parsing (YAML and JSON), Kubernetes'
// naming and annotations, the config hash as uid (stable, content- and
// node-dependent), bad manifests isolated, directory reading, and the mirror
// pod reconciler (create, idempotence against a lagging feed, recreate after a
// user's delete, replace, remove, retry).
#define BOOST_TEST_MODULE static_pods
#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <fstream>

#include "deckhand/common/log.hpp"
#include "deckhand/kubelet/static_pods.hpp"

using namespace deckhand;
using namespace deckhand::kubelet;
namespace fs = std::filesystem;

namespace {

struct quiet_logs {
  quiet_logs() { log::init("static-pods-test", "warn"); }
};
BOOST_TEST_GLOBAL_FIXTURE(quiet_logs);

const char* web_yaml = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  containers:
  - name: web
    image: busybox
    command: ["sleep", "3600"]
)";

const char* web_json = R"({"apiVersion":"v1","kind":"Pod",
  "metadata":{"name":"api","namespace":"kube-system"},
  "spec":{"containers":[{"name":"c","image":"busybox"}]}})";

struct temp_dir {
  fs::path path;
  temp_dir() {
    char tmpl[] = "/tmp/dh-static-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  void write(const std::string& name, const std::string& content) const {
    std::ofstream(path / name) << content;
  }
};

std::string ann(const wire::pod& p, const char* key) {
  auto it = p.metadata.annotations.find(key);
  return it == p.metadata.annotations.end() ? "" : it->second;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(manifests)

BOOST_AUTO_TEST_CASE(yaml_manifest_becomes_a_named_static_pod) {
  auto p = parse_static_pod(web_yaml, "web.yaml", "Node-1");
  BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.err().message));
  BOOST_TEST(p->metadata.name == "web-node-1");
  BOOST_TEST(p->metadata.namespace_ == "default");
  BOOST_TEST(p->spec.node_name == "node-1");
  BOOST_TEST(p->metadata.uid == static_pod_hash(web_yaml, "Node-1"));
  BOOST_TEST(ann(*p, config_hash_annotation) == p->metadata.uid);
  BOOST_TEST(ann(*p, config_source_annotation) == "file");
  BOOST_TEST(!is_mirror_pod(*p));
  BOOST_TEST(p->metadata.labels.at("app") == "web");
  // Kubernetes' defaults are applied, as the API server would.
  BOOST_TEST(p->spec.restart_policy == "Always");
  BOOST_TEST(p->spec.containers.at(0).image_pull_policy == "Always");
}

BOOST_AUTO_TEST_CASE(json_manifest_keeps_its_namespace) {
  auto p = parse_static_pod(web_json, "api.json", "node-1");
  BOOST_REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.err().message));
  BOOST_TEST(p->metadata.name == "api-node-1");
  BOOST_TEST(p->metadata.namespace_ == "kube-system");
}

BOOST_AUTO_TEST_CASE(config_hash_is_stable_and_depends_on_content_and_node) {
  auto h = static_pod_hash(web_yaml, "node-1");
  BOOST_TEST(h.size() == 32u);
  BOOST_TEST(h.find_first_not_of("0123456789abcdef") == std::string::npos);
  BOOST_TEST(static_pod_hash(web_yaml, "node-1") == h);
  BOOST_TEST(static_pod_hash(web_yaml, "NODE-1") == h);
  BOOST_TEST(static_pod_hash(web_yaml, "node-2") != h);
  BOOST_TEST(static_pod_hash(std::string(web_yaml) + "\n", "node-1") != h);
}

BOOST_AUTO_TEST_CASE(bad_manifests_say_what_is_wrong) {
  auto check = [](const std::string& text, const std::string& want) {
    auto p = parse_static_pod(text, "bad.yaml", "node-1");
    BOOST_REQUIRE(!p.ok());
    BOOST_TEST_INFO("message: " << p.err().message);
    BOOST_TEST(p.err().message.find("bad.yaml") != std::string::npos);
    BOOST_TEST(p.err().message.find(want) != std::string::npos);
  };
  check("kind: Pod\n  bad: [indent\n", "yaml");
  check(std::string(web_yaml) + "---\n" + web_yaml, "exactly one Pod");
  check("apiVersion: v1\nkind: Service\nmetadata: {name: s}\n", "kind Pod");
  check("apiVersion: v1\nkind: Pod\nspec: {containers: [{name: c, image: i}]}\n", "metadata.name");
  check("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec: {containers: [{name: c}]}\n",
        "spec.containers[0].image");
  check("", "exactly one Pod");
}

BOOST_AUTO_TEST_CASE(a_bad_file_does_not_affect_the_others) {
  std::vector<manifest_file> files = {{"a.yaml", web_yaml, ""},
                                      {"b.yaml", "kind: [", ""},
                                      {"c.json", web_json, ""},
                                      {"d.yaml", "", "d.yaml: cannot read the file"},
                                      {"e.yaml", std::string(web_yaml) + "# same pod\n", ""}};
  auto set = desired_static_pods(files, "node-1");
  BOOST_REQUIRE_EQUAL(set.pods.size(), 2u);
  BOOST_TEST(set.pods[0].file == "a.yaml");
  BOOST_TEST(set.pods[1].file == "c.json");
  BOOST_REQUIRE_EQUAL(set.problems.size(), 3u);
  BOOST_TEST(set.problems[0].file == "b.yaml");
  BOOST_TEST(set.problems[1].file == "d.yaml");
  // Same namespace/name as a.yaml: the later file loses.
  BOOST_TEST(set.problems[2].file == "e.yaml");
  BOOST_TEST(set.problems[2].message.find("a.yaml") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(an_edit_is_a_new_pod_and_a_rewrite_is_not) {
  auto a = desired_static_pods({{"a.yaml", web_yaml, ""}}, "node-1");
  auto same = desired_static_pods({{"a.yaml", web_yaml, ""}}, "node-1");
  std::string edited = web_yaml;
  edited.replace(edited.find("3600"), 4, "7200");
  auto changed = desired_static_pods({{"a.yaml", edited, ""}}, "node-1");
  BOOST_TEST(a.pods.at(0).pod.metadata.uid == same.pods.at(0).pod.metadata.uid);
  BOOST_TEST(a.pods.at(0).pod.metadata.uid != changed.pods.at(0).pod.metadata.uid);
  BOOST_TEST(a.pods.at(0).pod.metadata.name == changed.pods.at(0).pod.metadata.name);
}

BOOST_AUTO_TEST_CASE(directory_reading_skips_hidden_files_and_directories) {
  temp_dir d;
  d.write("b.yaml", web_yaml);
  d.write("a.json", web_json);
  d.write(".b.yaml.swp", "garbage");
  fs::create_directory(d.path / "sub");
  d.write("big.yaml", std::string(max_manifest_bytes + 1, '#'));
  auto files = read_manifest_dir(d.path);
  BOOST_REQUIRE(files.ok());
  BOOST_REQUIRE_EQUAL(files->size(), 3u);
  BOOST_TEST((*files)[0].name == "a.json");
  BOOST_TEST((*files)[0].content == web_json);
  BOOST_TEST((*files)[1].name == "b.yaml");
  BOOST_TEST((*files)[2].name == "big.yaml");
  BOOST_TEST(!(*files)[2].read_error.empty());
  auto missing = read_manifest_dir(d.path / "nope");
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(static_cast<int>(missing.err().code) == static_cast<int>(errc::not_found));
}

BOOST_AUTO_TEST_CASE(mirror_pod_carries_the_hash) {
  auto p = parse_static_pod(web_yaml, "web.yaml", "node-1");
  BOOST_REQUIRE(p.ok());
  auto m = mirror_pod_of(*p);
  BOOST_TEST(is_mirror_pod(m));
  BOOST_TEST(ann(m, config_mirror_annotation) == p->metadata.uid);
  BOOST_TEST(m.metadata.uid.empty());
  BOOST_TEST(m.metadata.name == "web-node-1");
  BOOST_TEST(m.spec.node_name == "node-1");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(mirrors)

namespace {
wire::pod static_pod(const std::string& content) {
  return parse_static_pod(content, "f.yaml", "node-1").value();
}
wire::pod observed_mirror(const wire::pod& sp) { return mirror_pod_of(sp); }
}  // namespace

BOOST_AUTO_TEST_CASE(creates_once_and_trusts_its_own_write_over_a_lagging_feed) {
  mirror_reconciler r;
  auto sp = static_pod(web_yaml);
  r.set_desired({sp});
  auto acts = r.next();
  BOOST_REQUIRE_EQUAL(acts.size(), 1u);
  BOOST_TEST(!acts[0].update.remove);
  BOOST_TEST(acts[0].key == "default/web-node-1");
  BOOST_TEST(ann(acts[0].update.pod_, config_mirror_annotation) == sp.metadata.uid);
  BOOST_TEST(r.next().empty());  // in flight
  r.acknowledged(acts[0], 10);
  BOOST_TEST(r.next().empty());
  // A snapshot taken before the write does not trigger another.
  r.observe_snapshot({}, 9);
  BOOST_TEST(r.next().empty());
  r.observe_event("ADDED", observed_mirror(sp), 10);
  BOOST_TEST(r.next().empty());
}

BOOST_AUTO_TEST_CASE(a_deleted_mirror_is_created_again) {
  mirror_reconciler r;
  auto sp = static_pod(web_yaml);
  r.set_desired({sp});
  auto acts = r.next();
  r.acknowledged(acts.at(0), 10);
  r.observe_event("ADDED", observed_mirror(sp), 10);
  r.observe_event("DELETED", observed_mirror(sp), 11);
  auto again = r.next();
  BOOST_REQUIRE_EQUAL(again.size(), 1u);
  BOOST_TEST(!again[0].update.remove);
  // A mirror marked for deletion is written again too.
  r.acknowledged(again[0], 12);
  auto deleting = observed_mirror(sp);
  deleting.metadata.deletion_timestamp = "2026-01-01T00:00:00Z";
  r.observe_event("MODIFIED", deleting, 13);
  BOOST_TEST(r.next().size() == 1u);
}

BOOST_AUTO_TEST_CASE(an_edited_static_pod_replaces_a_stale_mirror) {
  mirror_reconciler r;
  auto old_sp = static_pod(web_yaml);
  auto new_sp = static_pod(std::string(web_yaml) + "# v2\n");
  r.observe_snapshot({observed_mirror(old_sp)}, 5);
  r.set_desired({new_sp});
  auto acts = r.next();
  BOOST_REQUIRE_EQUAL(acts.size(), 1u);
  BOOST_TEST(!acts[0].update.remove);
  BOOST_TEST(acts[0].hash == new_sp.metadata.uid);
}

BOOST_AUTO_TEST_CASE(mirrors_without_a_static_pod_are_removed) {
  mirror_reconciler r;
  auto sp = static_pod(web_yaml);
  r.set_desired({});
  r.observe_snapshot({observed_mirror(sp)}, 5);  // left over from before a restart
  auto acts = r.next();
  BOOST_REQUIRE_EQUAL(acts.size(), 1u);
  BOOST_TEST(acts[0].update.remove);
  BOOST_TEST(acts[0].update.pod_.metadata.name == "web-node-1");
  BOOST_TEST(ann(acts[0].update.pod_, config_mirror_annotation) == sp.metadata.uid);
  r.acknowledged(acts[0], 6);
  BOOST_TEST(r.next().empty());
  r.observe_event("DELETED", observed_mirror(sp), 6);
  BOOST_TEST(r.next().empty());
}

BOOST_AUTO_TEST_CASE(failures_wait_for_the_retry_timer) {
  mirror_reconciler r;
  r.set_desired({static_pod(web_yaml)});
  auto acts = r.next();
  BOOST_REQUIRE_EQUAL(acts.size(), 1u);
  r.failed(acts[0].key);
  BOOST_TEST(r.next().empty());
  r.retry_failed();
  BOOST_TEST(r.next().size() == 1u);
}

BOOST_AUTO_TEST_SUITE_END()

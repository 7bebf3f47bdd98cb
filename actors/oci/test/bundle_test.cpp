#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "fixture.hpp"

using namespace deckhand;
using namespace deckhand::oci;
using namespace deckhand::oci::test;
using json = nlohmann::json;

namespace {

bundle_spec sample() {
  bundle_spec s;
  s.args = {"/bin/sh", "-c", "echo hi"};
  s.env = {"FOO=bar"};
  s.cwd = "/work";
  s.uid = 1000;
  s.gid = 1001;
  s.additional_gids = {10, 20};
  s.rootfs = "/var/lib/deckhand/x/rootfs";
  s.readonly_rootfs = true;
  s.hostname = "pod-a";
  s.netns_path = "/run/deckhand/netns/pod-a";
  s.mounts = {{"/srv/data", "/data", true}, {"/srv/cache", "/cache", false}};
  s.cgroups_path = "/deckhand/pod-a/c1";
  s.oom_score_adj = 999;
  s.nofile_limit = 1048576;
  return s;
}

json render(const bundle_spec& s) {
  auto text = render_config(s);
  BOOST_REQUIRE_MESSAGE(text.ok(), (text ? "" : text.err().message));
  return json::parse(*text);
}

std::vector<std::string> caps_of(const json& j) {
  return j["process"]["capabilities"]["bounding"].get<std::vector<std::string>>();
}

std::vector<std::string> ns_types(const json& j) {
  std::vector<std::string> types;
  for (auto& ns : j["linux"]["namespaces"])
    types.push_back(ns["type"]);
  return types;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(bundle)

BOOST_AUTO_TEST_CASE(config_has_the_process_root_and_namespaces) {
  auto j = render(sample());
  BOOST_TEST(j["ociVersion"] == "1.0.2");
  auto& p = j["process"];
  BOOST_TEST(p["terminal"] == false);
  BOOST_TEST(p["args"] == json({"/bin/sh", "-c", "echo hi"}));
  BOOST_TEST(p["cwd"] == "/work");
  BOOST_TEST(p["user"]["uid"] == 1000);
  BOOST_TEST(p["user"]["gid"] == 1001);
  BOOST_TEST(p["user"]["additionalGids"] == json({10, 20}));
  BOOST_TEST(p["env"][0].get<std::string>().rfind("PATH=", 0) == 0u);
  BOOST_TEST(p["env"][1] == "FOO=bar");
  BOOST_TEST(p["noNewPrivileges"] == false);  // Kubernetes' default
  BOOST_TEST(p["oomScoreAdj"] == 999);
  BOOST_TEST(p["rlimits"] ==
             json::parse(R"([{"type":"RLIMIT_NOFILE","hard":1048576,"soft":1048576}])"));
  BOOST_TEST(caps_of(j) == default_capabilities());
  BOOST_TEST(p["capabilities"]["effective"] == p["capabilities"]["bounding"]);
  BOOST_TEST(p["capabilities"]["permitted"] == p["capabilities"]["bounding"]);

  BOOST_TEST(j["root"]["path"] == "/var/lib/deckhand/x/rootfs");
  BOOST_TEST(j["root"]["readonly"] == true);
  BOOST_TEST(j["hostname"] == "pod-a");
  BOOST_TEST(j["linux"]["cgroupsPath"] == "/deckhand/pod-a/c1");

  BOOST_TEST((ns_types(j) == std::vector<std::string>{"pid", "ipc", "uts", "mount", "network"}));
  for (auto& ns : j["linux"]["namespaces"]) {
    if (ns["type"] == "network")
      BOOST_TEST(ns["path"] == "/run/deckhand/netns/pod-a");
    else
      BOOST_TEST(!ns.contains("path"));
  }
  BOOST_TEST(j["linux"]["maskedPaths"].size() == 10u);
  BOOST_TEST(j["linux"]["readonlyPaths"].size() == 5u);
}

BOOST_AUTO_TEST_CASE(mounts_are_standard_then_binds) {
  auto j = render(sample());
  std::vector<std::string> dests;
  for (auto& m : j["mounts"])
    dests.push_back(m["destination"]);
  BOOST_TEST(
      (dests == std::vector<std::string>{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                         "/sys", "/sys/fs/cgroup", "/data", "/cache"}));
  auto& sys = j["mounts"][5];
  BOOST_TEST(
      (std::find(sys["options"].begin(), sys["options"].end(), "ro") != sys["options"].end()));
  BOOST_TEST(j["mounts"][6]["type"] == "cgroup");
  auto& data = j["mounts"][7];
  BOOST_TEST(data["type"] == "bind");
  BOOST_TEST(data["source"] == "/srv/data");
  BOOST_TEST(data["options"] == json({"rbind", "rprivate", "ro"}));
  BOOST_TEST(j["mounts"][8]["options"] == json({"rbind", "rprivate", "rw"}));
}

BOOST_AUTO_TEST_CASE(host_network_has_no_network_namespace) {
  auto s = sample();
  s.netns_path.clear();
  s.host_network = true;
  auto j = render(s);
  BOOST_TEST((ns_types(j) == std::vector<std::string>{"pid", "ipc", "uts", "mount"}));
}

BOOST_AUTO_TEST_CASE(no_netns_path_gives_a_fresh_network_namespace) {
  auto s = sample();
  s.netns_path.clear();
  auto j = render(s);
  BOOST_TEST(j["linux"]["namespaces"][4] == json({{"type", "network"}}));
}

BOOST_AUTO_TEST_CASE(optional_fields_are_omitted) {
  bundle_spec s;
  s.args = {"true"};
  s.rootfs = "/r";
  auto j = render(s);
  BOOST_TEST(!j.contains("hostname"));
  BOOST_TEST(!j["linux"].contains("cgroupsPath"));
  BOOST_TEST(!j["process"].contains("oomScoreAdj"));
  BOOST_TEST(!j["process"]["user"].contains("additionalGids"));
  BOOST_TEST(j["process"]["cwd"] == "/");
  // Unset: 1048576, or what this process may set without CAP_SYS_RESOURCE.
  auto nofile = j["process"]["rlimits"][0]["hard"].get<std::uint64_t>();
  BOOST_TEST(nofile <= 1048576u);
  BOOST_TEST(nofile > 0u);
  BOOST_TEST(j["process"]["rlimits"][0]["soft"] == nofile);
}

BOOST_AUTO_TEST_CASE(capabilities_add_and_drop) {
  auto s = sample();
  s.cap_drop = {"net_raw", "CAP_MKNOD"};
  s.cap_add = {"SYS_ADMIN"};
  auto caps = caps_of(render(s));
  auto has = [&](const std::string& c) {
    return std::find(caps.begin(), caps.end(), c) != caps.end();
  };
  BOOST_TEST(has("CAP_SYS_ADMIN"));
  BOOST_TEST(!has("CAP_NET_RAW"));
  BOOST_TEST(!has("CAP_MKNOD"));
  BOOST_TEST(has("CAP_CHOWN"));
  BOOST_TEST(caps.size() == default_capabilities().size() - 1);

  s.cap_drop = {"ALL"};
  s.cap_add = {"NET_BIND_SERVICE"};
  BOOST_TEST((caps_of(render(s)) == std::vector<std::string>{"CAP_NET_BIND_SERVICE"}));

  s.cap_drop = {};
  s.cap_add = {"ALL"};  // every capability this host's bounding set has
  auto all = caps_of(render(s));
  BOOST_TEST(all.size() >= default_capabilities().size());
  BOOST_TEST(all.size() <= 41u);
}

BOOST_AUTO_TEST_CASE(resources_are_rendered) {
  auto s = sample();
  s.resources.memory_limit_bytes = 64 << 20;
  s.resources.cpu_shares = 512;
  s.resources.cpu_quota_us = 50000;
  s.resources.cpu_period_us = 100000;
  s.resources.pids_limit = 100;
  auto r = render(s)["linux"]["resources"];
  BOOST_TEST(r["memory"]["limit"] == 64 << 20);
  BOOST_TEST(r["cpu"]["shares"] == 512);
  BOOST_TEST(r["cpu"]["quota"] == 50000);
  BOOST_TEST(r["cpu"]["period"] == 100000);
  BOOST_TEST(r["pids"]["limit"] == 100);
  BOOST_TEST(r["devices"][0]["allow"] == false);
}

BOOST_AUTO_TEST_CASE(invalid_specs_are_rejected) {
  auto check = [](bundle_spec s, const std::string& what) {
    auto r = render_config(s);
    BOOST_TEST_CONTEXT(what) {
      BOOST_REQUIRE(!r.ok());
      BOOST_TEST(r.err().code == errc::invalid);
    }
  };
  auto s = sample();
  s.rootfs = "relative/rootfs";
  check(s, "relative rootfs");
  s = sample();
  s.args.clear();
  check(s, "empty args");
  s = sample();
  s.cap_add = {"CAP_NOT_A_CAP"};
  check(s, "unknown capability");
  s = sample();
  s.host_network = true;
  check(s, "host network with netns path");
  s = sample();
  s.mounts = {{"/a", "relative", false}};
  check(s, "relative mount destination");
}

BOOST_AUTO_TEST_CASE(write_bundle_writes_config_json) {
  sandbox sb;
  auto dir = sb.dir / "bundles" / "c1";
  auto r = write_bundle(dir, sample());
  BOOST_REQUIRE_MESSAGE(r.ok(), (r ? "" : r.err().message));
  BOOST_TEST(json::parse(read_file(dir / "config.json")) == render(sample()));
  BOOST_TEST(!fs::exists(dir / "config.json.tmp"));
  auto bad = sample();
  bad.args.clear();
  BOOST_TEST(!write_bundle(sb.dir / "bad", bad).ok());
  BOOST_TEST(!fs::exists(sb.dir / "bad" / "config.json"));
}

BOOST_AUTO_TEST_SUITE_END()

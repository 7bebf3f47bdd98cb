#define BOOST_TEST_MODULE deckhand_image_pull
#include <boost/test/unit_test.hpp>

#include <crypt.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "deckhand/image/builder.hpp"
#include "deckhand/image/image_store.hpp"
#include "deckhand/image/puller.hpp"
#include "fixtures.hpp"
#include "registry_fixture.hpp"

using namespace deckhand;
using namespace deckhand::image;
using namespace deckhand::image::test;
using T = tar_entry;
using json = nlohmann::json;

namespace {

/// The busybox image of the builder, as registry blobs; built once.
struct busybox_image {
  temp_dir tmp;
  test_image oci;     ///< OCI manifest, gzip layer
  test_image docker;  ///< the same blobs under a Docker v2 schema 2 manifest

  busybox_image() {
    fs::path rootfs = tmp / "rootfs";
    if (auto err = make_busybox_rootfs(rootfs))
      throw std::runtime_error(err.message);
    image_config cfg;
    cfg.cmd = {"/bin/sh"};
    cfg.env = {"PATH=/bin"};
    auto d = build_layout(rootfs, tmp / "layout", "busybox", cfg);
    if (!d)
      throw std::runtime_error(d.err().message);
    auto blob = [&](const std::string& digest) {
      return read_file(tmp / "layout/blobs/sha256" / digest.substr(7));
    };
    oci.manifest = blob(*d);
    oci.manifest_type = "application/vnd.oci.image.manifest.v1+json";
    json m = json::parse(oci.manifest);
    oci.config = blob(m["config"]["digest"]);
    for (const auto& l : m["layers"])
      oci.layers.push_back(blob(l["digest"]));

    docker = oci;
    docker.manifest_type = "application/vnd.docker.distribution.manifest.v2+json";
    json dm = {{"schemaVersion", 2},
               {"mediaType", docker.manifest_type},
               {"config",
                {{"mediaType", "application/vnd.docker.container.image.v1+json"},
                 {"digest", m["config"]["digest"]},
                 {"size", m["config"]["size"]}}},
               {"layers", json::array()}};
    for (const auto& l : m["layers"])
      dm["layers"].push_back({{"mediaType", "application/vnd.docker.image.rootfs.diff.tar.gzip"},
                              {"digest", l["digest"]},
                              {"size", l["size"]}});
    docker.manifest = dm.dump();
  }
};

const busybox_image& busybox() {
  static busybox_image img;
  return img;
}

/// The same image built for another architecture (its config differs).
test_image for_arch(const test_image& base, const std::string& arch) {
  test_image img = base;
  json cfg = json::parse(base.config);
  cfg["architecture"] = arch;
  img.config = cfg.dump();
  json m = json::parse(base.manifest);
  m["config"]["digest"] = img.config_digest();
  m["config"]["size"] = img.config.size();
  img.manifest = m.dump();
  return img;
}

/// A store, a registry (anonymous unless configured) and a proxy.
struct pull_fixture {
  temp_dir tmp;
  fs::path root = tmp / "images";
  fs::path outside = tmp / "outside";
  std::unique_ptr<image_store> store;

  pull_fixture() {
    auto s = image_store::open(root);
    BOOST_REQUIRE_MESSAGE(s.ok(), why(s));
    store = std::move(*s);
    fs::create_directories(outside);
  }

  /// Nothing of a failed pull remains: no image, blob, rootfs or scratch file.
  void expect_store_empty() {
    BOOST_TEST(store->list().empty());
    BOOST_TEST(entries_of(root / "blobs/sha256").empty());
    BOOST_TEST(entries_of(root / "rootfs").empty());
    BOOST_TEST(entries_of(root / "incoming/blobs").empty());
    BOOST_TEST(entries_of(root / "incoming/partial").empty());
    for (const auto& e : entries_of(root / "incoming"))
      BOOST_TEST((e == "blobs" || e == "partial"), "left in incoming: " << e);
  }
};

std::string msg(const result<image_record>& r) { return r.ok() ? "ok" : r.err().message; }

}  // namespace

BOOST_AUTO_TEST_SUITE(pull)

BOOST_FIXTURE_TEST_CASE(anonymous_oci_and_docker_manifests, pull_fixture) {
  registry_process reg(tmp / "reg", tmp / "storage");
  pusher push(reg.port());
  push.image("test/busybox", "oci", busybox().oci);
  push.image("test/busybox", "docker", busybox().docker);

  puller p(*store, {});
  std::vector<pull_progress> seen;
  auto r = p.pull(reg.host() + "/test/busybox:oci", {},
                  [&](const pull_progress& pr) { seen.push_back(pr); });
  BOOST_REQUIRE_MESSAGE(r.ok(), msg(r));
  BOOST_TEST(r->id == busybox().oci.config_digest());
  BOOST_TEST(r->manifest_digest == busybox().oci.digest());
  BOOST_TEST(r->names == std::vector<std::string>{reg.host() + "/test/busybox:oci"});
  BOOST_TEST(r->config.cmd == std::vector<std::string>{"/bin/sh"});
  BOOST_TEST(r->last_used > 0);
  fs::path rootfs = store->rootfs_path(*r);
  BOOST_TEST(fs::is_regular_file(rootfs / "bin/busybox"));
  BOOST_TEST(fs::is_symlink(rootfs / "bin/sh"));
  // Staged copies are gone; the store holds the blobs.
  BOOST_TEST(entries_of(root / "incoming/blobs").empty());
  BOOST_TEST(fs::exists(store->blob_path(busybox().oci.config_digest())));
  BOOST_REQUIRE(!seen.empty());
  BOOST_TEST(seen.front().phase == "resolving");
  BOOST_TEST(seen.back().phase == "done");
  BOOST_TEST(seen.back().total > 0);
  BOOST_TEST(seen.back().done == seen.back().total);
  bool unpacked = false;
  for (const auto& s : seen)
    unpacked |= s.phase == "unpacking";
  BOOST_TEST(unpacked);

  // The Docker manifest names the same config and layer: no new download or
  // unpack, the image gains a name.
  auto d = p.pull(reg.host() + "/test/busybox:docker");
  BOOST_REQUIRE_MESSAGE(d.ok(), msg(d));
  BOOST_TEST(d->id == r->id);
  BOOST_TEST(d->manifest_digest == busybox().docker.digest());
  BOOST_TEST(d->names.size() == 2u);
  BOOST_TEST(store->find(reg.host() + "/test/busybox:oci").ok());

  // By digest.
  auto byd = p.pull(reg.host() + "/test/busybox@" + busybox().oci.digest());
  BOOST_REQUIRE_MESSAGE(byd.ok(), msg(byd));
  BOOST_TEST(byd->id == r->id);

  auto missing = p.pull(reg.host() + "/test/busybox:nope");
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.err().code == errc::not_found);
}

BOOST_FIXTURE_TEST_CASE(index_picks_the_node_platform, pull_fixture) {
  registry_process reg(tmp / "reg", tmp / "storage");
  pusher push(reg.port());
  test_image amd64 = for_arch(busybox().oci, "amd64");
  test_image arm64 = for_arch(busybox().oci, "arm64");
  test_image s390x = for_arch(busybox().oci, "s390x");
  json idx = {{"schemaVersion", 2},
              {"mediaType", "application/vnd.oci.image.index.v1+json"},
              {"manifests", json::array()}};
  for (const auto* img : {&s390x, &arm64, &amd64}) {
    push.image("test/multi", img->digest(), *img);
    json cfg = json::parse(img->config);
    idx["manifests"].push_back(
        {{"mediaType", img->manifest_type},
         {"digest", img->digest()},
         {"size", img->manifest.size()},
         {"platform", {{"os", "linux"}, {"architecture", cfg["architecture"]}}}});
  }
  // An attestation manifest, as buildkit adds them: never a candidate.
  idx["manifests"].push_back({{"mediaType", "application/vnd.oci.image.manifest.v1+json"},
                              {"digest", amd64.digest()},
                              {"size", amd64.manifest.size()},
                              {"platform", {{"os", "unknown"}, {"architecture", "unknown"}}}});
  std::string index = idx.dump();
  push.manifest("test/multi", "latest", index, "application/vnd.oci.image.index.v1+json");

  {
    puller p(*store, {});
    auto r = p.pull(reg.host() + "/test/multi");
    BOOST_REQUIRE_MESSAGE(r.ok(), msg(r));
    BOOST_TEST(host_architecture() == "amd64");  // the machines this runs on
    BOOST_TEST(r->architecture == "amd64");
    BOOST_TEST(r->manifest_digest == amd64.digest());
  }
  {
    pull_options o;
    o.architecture = "aarch64";  // uname spelling, normalized
    puller p(*store, o);
    auto r = p.pull(reg.host() + "/test/multi:latest");
    BOOST_REQUIRE_MESSAGE(r.ok(), msg(r));
    BOOST_TEST(r->architecture == "arm64");
    BOOST_TEST(r->id == arm64.config_digest());
  }
  {
    // A Docker manifest list works the same way.
    pusher push2(reg.port());
    push2.image("test/list", busybox().docker.digest(), busybox().docker);
    json list = {{"schemaVersion", 2},
                 {"mediaType", "application/vnd.docker.distribution.manifest.list.v2+json"},
                 {"manifests",
                  {{{"mediaType", busybox().docker.manifest_type},
                    {"digest", busybox().docker.digest()},
                    {"size", busybox().docker.manifest.size()},
                    {"platform", {{"os", "linux"}, {"architecture", "amd64"}}}}}}};
    push2.manifest("test/list", "v1", list.dump(),
                   "application/vnd.docker.distribution.manifest.list.v2+json");
    puller p(*store, {});
    auto r = p.pull(reg.host() + "/test/list:v1");
    BOOST_REQUIRE_MESSAGE(r.ok(), msg(r));
    BOOST_TEST(r->manifest_digest == busybox().docker.digest());
  }
  {
    pull_options o;
    o.architecture = "riscv64";
    puller p(*store, o);
    auto r = p.pull(reg.host() + "/test/multi:latest");
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.err().code == errc::not_found);
    BOOST_TEST(r.err().message.find("linux/riscv64") != std::string::npos, r.err().message);
  }
}

BOOST_FIXTURE_TEST_CASE(basic_auth_with_htpasswd, pull_fixture) {
  {
    registry_process open_reg(tmp / "reg-open", tmp / "storage");
    pusher(open_reg.port()).image("private/busybox", "v1", busybox().oci);
  }
  char salt_buf[CRYPT_GENSALT_OUTPUT_SIZE];
  BOOST_REQUIRE(crypt_gensalt_rn("$2b$", 5, nullptr, 0, salt_buf, sizeof salt_buf));
  crypt_data cd{};
  const char* hash = crypt_r("s3cret-pw", salt_buf, &cd);
  BOOST_REQUIRE(hash && hash[0] == '$');
  write_file(tmp / "htpasswd", std::string("alice:") + hash + "\n");
  registry_process reg(
      tmp / "reg", tmp / "storage",
      "  htpasswd:\n    realm: deckhand-test\n    path: " + (tmp / "htpasswd").string() + "\n");
  std::string ref = reg.host() + "/private/busybox:v1";

  // No credentials at all.
  {
    puller p(*store, {});
    auto r = p.pull(ref);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.err().message.find("unauthorized") != std::string::npos, r.err().message);
  }
  pull_options o;
  o.credentials_file = tmp / "creds.json";
  // Wrong password: a clear error that never shows the password.
  write_file(o.credentials_file,
             json({{"auths", {{reg.host(), {{"auth", base64("alice:wrong-pw")}}}}}}).dump());
  {
    puller p(*store, o);
    auto r = p.pull(ref);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.err().message.find("unauthorized") != std::string::npos, r.err().message);
    BOOST_TEST(r.err().message.find("wrong-pw") == std::string::npos);
    expect_store_empty();
  }
  // A pull secret with the right password is tried first.
  write_file(o.credentials_file,
             json({{"auths", {{reg.host(), {{"auth", base64("alice:wrong-pw")}}}}},
                   {"secrets",
                    {{"regcred",
                      {{"auths",
                        {{"http://" + reg.host() + "/v2/",
                          {{"username", "alice"}, {"password", "s3cret-pw"}}}}}}}}}})
                 .dump());
  {
    puller p(*store, o);
    auto r = p.pull(ref, {"missing-secret", "regcred"});
    BOOST_REQUIRE_MESSAGE(r.ok(), msg(r));
    BOOST_TEST(fs::is_regular_file(store->rootfs_path(*r) / "bin/busybox"));
    // Without the secret only the node's (wrong) credentials remain.
    auto r2 = p.pull(ref, {});
    BOOST_REQUIRE(!r2.ok());
    BOOST_TEST(r2.err().message.find("unauthorized") != std::string::npos, r2.err().message);
  }
  // Node-wide credentials.
  write_file(o.credentials_file,
             json({{"auths", {{reg.host(), {{"auth", base64("alice:s3cret-pw")}}}}}}).dump());
  {
    puller p(*store, o);
    auto r = p.pull(ref);
    BOOST_REQUIRE_MESSAGE(r.ok(), msg(r));
  }
  // A broken file is named in the error, and its content never shown.
  write_file(o.credentials_file, "{\"auths\": {\"x\": {\"auth\": \"s3cret-pw");
  {
    puller p(*store, o);
    auto r = p.pull(ref);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.err().code == errc::invalid);
    BOOST_TEST(r.err().message.find(o.credentials_file.string()) != std::string::npos,
               r.err().message);
    BOOST_TEST(r.err().message.find("s3cret") == std::string::npos);
  }
  write_file(o.credentials_file,
             json({{"auths", {{reg.host(), {{"auth", "!!not base64!!"}}}}}}).dump());
  {
    puller p(*store, o);
    auto r = p.pull(ref);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.err().code == errc::invalid);
    BOOST_TEST(r.err().message.find(o.credentials_file.string()) != std::string::npos);
  }
}

BOOST_FIXTURE_TEST_CASE(bearer_token_flow, pull_fixture) {
  {
    registry_process open_reg(tmp / "reg-open", tmp / "storage");
    pusher(open_reg.port()).image("private/busybox", "v1", busybox().oci);
  }
  signing_key key;
  key.write_cert(tmp / "token.crt");
  token_server tokens(key, "bob", "hunter2");
  registry_process reg(tmp / "reg", tmp / "storage",
                       "  token:\n    realm: " + tokens.realm() + "\n    service: " +
                           token_server::service + "\n    issuer: " + token_server::issuer +
                           "\n    rootcertbundle: " + (tmp / "token.crt").string() + "\n");
  std::string ref = reg.host() + "/private/busybox:v1";

  // The real registry accepts the token server's JWTs.
  {
    httplib::Client c("127.0.0.1", reg.port());
    auto r =
        c.Get("/v2/private/busybox/manifests/v1",
              {{"Authorization", "Bearer " + tokens.token_for("repository:private/busybox:pull")},
               {"Accept", busybox().oci.manifest_type}});
    BOOST_REQUIRE(r);
    BOOST_REQUIRE_MESSAGE(r->status == 200, "registry refused the test token: " << r->status << " "
                                                                                << r->body << "\n"
                                                                                << reg.log());
  }
  {
    puller p(*store, {});
    auto r = p.pull(ref);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.err().message.find("unauthorized") != std::string::npos, r.err().message);
  }
  pull_options o;
  o.credentials_file = tmp / "creds.json";
  write_file(o.credentials_file,
             json({{"auths", {{reg.host(), {{"username", "bob"}, {"password", "nope"}}}}}}).dump());
  {
    puller p(*store, o);
    auto r = p.pull(ref);
    BOOST_REQUIRE(!r.ok());
    BOOST_TEST(r.err().message.find("unauthorized") != std::string::npos, r.err().message);
    BOOST_TEST(r.err().message.find("nope") == std::string::npos);
  }
  write_file(o.credentials_file,
             json({{"auths", {{reg.host(), {{"auth", base64("bob:hunter2")}}}}}}).dump());
  int before = tokens.requests();
  {
    puller p(*store, o);
    auto r = p.pull(ref);
    BOOST_REQUIRE_MESSAGE(r.ok(), msg(r));
    BOOST_TEST(fs::is_regular_file(store->rootfs_path(*r) / "bin/busybox"));
  }
  // One token, reused for the manifest, config and layer requests.
  BOOST_TEST(tokens.requests() - before == 1);
  BOOST_TEST(tokens.last_scope() == "repository:private/busybox:pull");
}

BOOST_FIXTURE_TEST_CASE(corrupt_blob_is_rejected, pull_fixture) {
  registry_process reg(tmp / "reg", tmp / "storage");
  pusher(reg.port()).image("test/busybox", "v1", busybox().oci);
  registry_proxy proxy(reg.port());
  std::string layer = sha256_hex(busybox().oci.layers.at(0));
  proxy.corrupt(layer);
  puller p(*store, {});
  auto r = p.pull(proxy.host() + "/test/busybox:v1");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::invalid);
  BOOST_TEST(r.err().message.find("digest mismatch") != std::string::npos, r.err().message);
  expect_store_empty();
  proxy.corrupt("");
  auto ok = p.pull(proxy.host() + "/test/busybox:v1");
  BOOST_REQUIRE_MESSAGE(ok.ok(), msg(ok));
}

BOOST_FIXTURE_TEST_CASE(interrupted_pull_then_retry, pull_fixture) {
  registry_process reg(tmp / "reg", tmp / "storage");
  pusher(reg.port()).image("test/busybox", "v1", busybox().oci);
  registry_proxy proxy(reg.port());
  std::string layer = sha256_hex(busybox().oci.layers.at(0));
  proxy.truncate(layer, 1);
  puller p(*store, {});
  auto r = p.pull(proxy.host() + "/test/busybox:v1");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::unavailable, r.err().message);
  // The verified config stays out of the store too: nothing names it.
  expect_store_empty();
  auto again = p.pull(proxy.host() + "/test/busybox:v1");
  BOOST_REQUIRE_MESSAGE(again.ok(), msg(again));
  BOOST_TEST(proxy.count("/v2/test/busybox/blobs/" + layer) == 2);

  // The registry going away mid-pull is an error too, and leaves no scratch.
  pull_fixture other;
  puller p2(*other.store, {});
  reg.stop();
  auto down = p2.pull(proxy.host() + "/test/busybox:v1");
  BOOST_REQUIRE(!down.ok());
  other.expect_store_empty();
}

BOOST_FIXTURE_TEST_CASE(leftovers_are_cleaned_at_open, pull_fixture) {
  fs::create_directories(root / "incoming/partial");
  write_file(root / "incoming/partial/deadbeef.1", "half a blob");
  fs::create_directories(root / "incoming/rootfs-abc/etc");
  puller p(*store, {});
  BOOST_TEST(entries_of(root / "incoming/partial").empty());
  BOOST_TEST(!fs::exists(root / "incoming/rootfs-abc"));
}

BOOST_FIXTURE_TEST_CASE(limits, pull_fixture) {
  registry_process reg(tmp / "reg", tmp / "storage");
  pusher(reg.port()).image("test/busybox", "v1", busybox().oci);
  pull_options o;
  o.max_blob_bytes = 1000;
  puller p(*store, o);
  auto r = p.pull(reg.host() + "/test/busybox:v1");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::too_large, r.err().message);
  pull_options o2;
  o2.max_manifest_bytes = 100;
  puller p2(*store, o2);
  auto r2 = p2.pull(reg.host() + "/test/busybox:v1");
  BOOST_REQUIRE(!r2.ok());
  BOOST_TEST(r2.err().code == errc::too_large, r2.err().message);
  expect_store_empty();
}

BOOST_FIXTURE_TEST_CASE(malicious_layers_are_rejected, pull_fixture) {
  registry_process reg(tmp / "reg", tmp / "storage");
  pusher push(reg.port());
  fs::path victim = outside / "victim";
  fs::create_directories(victim);
  write_file(outside / "passwd", "root:x:0:0::/root:/bin/sh\n");
  struct bad {
    std::string name;
    std::vector<T> entries;
  };
  std::vector<bad> cases = {
      {"dotdot", {T{"ok", T::file, "fine"}, T{"../../../outside/victim/pwned", T::file, "x"}}},
      {"abs", {T{"/" + (victim / "pwned").relative_path().string(), T::file, "x"}}},
      {"symlink-escape", {T{"esc", T::symlink, "", victim.string()}, T{"esc/pwned", T::file, "x"}}},
      {"symlink-rel-escape",
       {T{"esc", T::symlink, "", "../../../../../../" + victim.relative_path().string()},
        T{"esc/pwned", T::file, "x"}}},
      {"hardlink-abs", {T{"pw", T::hardlink, "", (outside / "passwd").string()}}},
      {"hardlink-etc", {T{"pw", T::hardlink, "", "/etc/passwd"}}},
      {"hardlink-dotdot", {T{"pw", T::hardlink, "", "../../../../../../etc/passwd"}}},
      {"chardev", {T{"dev/mem", T::chr}}},
      {"blockdev", {T{"dev/sda", T::blk}}},
  };
  puller p(*store, {});
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT(c.name) {
      test_image img = make_image({make_tar(c.entries)});
      push.image("evil/" + c.name, "v1", img);
      auto r = p.pull(reg.host() + "/evil/" + c.name + ":v1");
      BOOST_REQUIRE(!r.ok());
      BOOST_TEST(r.err().code == errc::invalid, r.err().message);
      BOOST_TEST(r.err().message.find("layer") != std::string::npos, r.err().message);
      BOOST_TEST(entries_of(victim).empty());
      BOOST_TEST(read_file(outside / "passwd") == "root:x:0:0::/root:/bin/sh\n");
      expect_store_empty();
    }
  }
  // A layer over the unpack limit.
  pull_options o;
  o.max_unpacked_layer_bytes = 1 << 16;
  puller small(*store, o);
  test_image big = make_image({make_tar({T{"big", T::file, std::string(1 << 17, 'x')}})});
  push.image("evil/big", "v1", big);
  auto r = small.pull(reg.host() + "/evil/big:v1");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::too_large, r.err().message);
  expect_store_empty();
}

BOOST_FIXTURE_TEST_CASE(whiteouts_and_symlinks_inside_the_root, pull_fixture) {
  registry_process reg(tmp / "reg", tmp / "storage");
  std::string l1 = make_tar({T{"usr/bin/", T::dir}, T{"bin", T::symlink, "", "usr/bin"},
                             T{"abs", T::symlink, "", "/usr"}, T{"etc/old", T::file, "old"},
                             T{"etc/keep", T::file, "keep"}, T{"opq/a", T::file, "a"},
                             T{"opq/b", T::file, "b"}});
  std::string l2 = make_tar({T{"bin/hello", T::file, "through a relative symlink"},
                             T{"abs/bin/world", T::file, "through an absolute symlink"},
                             T{"etc/.wh.old", T::file}, T{"opq/.wh..wh..opq", T::file},
                             T{"opq/c", T::file, "c"}});
  test_image img = make_image({l1, l2});
  pusher(reg.port()).image("test/layers", "v1", img);
  puller p(*store, {});
  auto r = p.pull(reg.host() + "/test/layers:v1");
  BOOST_REQUIRE_MESSAGE(r.ok(), msg(r));
  fs::path rfs = store->rootfs_path(*r);
  BOOST_TEST(read_file(rfs / "usr/bin/hello") == "through a relative symlink");
  BOOST_TEST(read_file(rfs / "usr/bin/world") == "through an absolute symlink");
  BOOST_TEST(fs::is_symlink(rfs / "bin"));
  BOOST_TEST(!fs::exists(rfs / "etc/old"));
  BOOST_TEST(fs::exists(rfs / "etc/keep"));
  BOOST_TEST(entries_of(rfs / "opq") == std::vector<std::string>{"c"});
}

BOOST_FIXTURE_TEST_CASE(concurrent_pulls_fetch_each_blob_once, pull_fixture) {
  registry_process reg(tmp / "reg", tmp / "storage");
  pusher push(reg.port());
  push.image("test/busybox", "v1", busybox().oci);
  // A second image sharing the layer.
  test_image other = busybox().oci;
  {
    json cfg = json::parse(other.config);
    cfg["config"]["Cmd"] = {"/bin/echo", "other"};
    other.config = cfg.dump();
    json m = json::parse(other.manifest);
    m["config"]["digest"] = other.config_digest();
    m["config"]["size"] = other.config.size();
    other.manifest = m.dump();
  }
  push.image("test/other", "v1", other);
  registry_proxy proxy(reg.port());
  puller p(*store, {});
  std::vector<std::thread> threads;
  std::vector<std::optional<result<image_record>>> results(6);
  for (std::size_t i = 0; i < results.size(); ++i)
    threads.emplace_back([&, i] {
      std::string ref = proxy.host() + (i % 3 == 2 ? "/test/other:v1" : "/test/busybox:v1");
      results[i] = p.pull(ref);
    });
  for (auto& t : threads)
    t.join();
  for (const auto& r : results)
    BOOST_REQUIRE_MESSAGE(r->ok(), msg(*r));
  std::string layer = sha256_hex(busybox().oci.layers.at(0));
  BOOST_TEST(proxy.count("/v2/test/busybox/blobs/" + layer) +
                 proxy.count("/v2/test/other/blobs/" + layer) ==
             1);
  BOOST_TEST(proxy.count("/v2/test/busybox/blobs/" + busybox().oci.config_digest()) == 1);
  BOOST_TEST(proxy.count("/v2/test/other/blobs/" + other.config_digest()) == 1);
  BOOST_TEST(store->list().size() == 2u);
  BOOST_TEST(entries_of(root / "incoming/blobs").empty());
}

BOOST_FIXTURE_TEST_CASE(image_gc_removes_least_recently_used, pull_fixture) {
  registry_process reg(tmp / "reg", tmp / "storage");
  pusher push(reg.port());
  puller p(*store, {});
  std::vector<image_record> recs;
  for (int i = 0; i < 4; ++i) {
    test_image img =
        make_image({make_tar({T{"f" + std::to_string(i), T::file, std::string(100 + i, 'x')}})});
    push.image("gc/img" + std::to_string(i), "v1", img);
    auto r = p.pull(reg.host() + "/gc/img" + std::to_string(i) + ":v1");
    BOOST_REQUIRE_MESSAGE(r.ok(), msg(r));
    recs.push_back(*r);
  }
  // Use order: 2, 0, 3, 1 (1 most recent). 0 is in use.
  for (int i : {2, 0, 3, 1}) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // distinct timestamps
    BOOST_REQUIRE(store->touch(recs[static_cast<std::size_t>(i)].id).ok());
  }
  {
    // Durable: a store opened afresh sees the same times.
    auto again = image_store::open(root);
    BOOST_REQUIRE(again.ok());
    auto r2 = (*again)->find(recs[1].id);
    BOOST_REQUIRE(r2.ok());
    BOOST_TEST(r2->last_used == store->find(recs[1].id)->last_used);
    BOOST_TEST(r2->last_used > store->find(recs[2].id)->last_used);
  }
  gc_policy pol;  // 85 / 80
  // Below the high threshold: nothing happens.
  auto none = collect_images(*store, pol, {}, [] { return 84; });
  BOOST_REQUIRE(none.ok());
  BOOST_TEST(none->removed.empty());
  BOOST_TEST(store->list().size() == 4u);

  int usage = 90;
  auto rep = collect_images(*store, pol, {recs[0].id}, [&] {
    int u = usage;
    usage -= 5;
    return u;
  });
  BOOST_REQUIRE_MESSAGE(rep.ok(), why(rep));
  // 90 -> remove 2 (85) -> remove 3 (80): at the low threshold.
  BOOST_TEST(rep->removed == (std::vector<std::string>{recs[2].id, recs[3].id}));
  BOOST_TEST(rep->usage_percent_before == 90u);
  BOOST_TEST(rep->usage_percent_after == 80u);
  BOOST_TEST(rep->freed_bytes > 0u);
  BOOST_TEST(!store->find(recs[2].id).ok());
  BOOST_TEST(store->find(recs[0].id).ok());
  BOOST_TEST(store->find(recs[1].id).ok());
  BOOST_TEST(!fs::exists(store->rootfs_path(recs[2])));

  // Nothing removable left but the in-use image: stops, keeps it.
  auto rest = collect_images(*store, pol, {recs[0].id, recs[1].id}, [] { return 99; });
  BOOST_REQUIRE(rest.ok());
  BOOST_TEST(rest->removed.empty());
  BOOST_TEST(store->list().size() == 2u);

  // The real statvfs path runs.
  auto real = collect_images(*store, {100, 100}, {});
  BOOST_REQUIRE(real.ok());
  BOOST_TEST(real->usage_percent_before <= 100u);
  BOOST_TEST(!collect_images(*store, {50, 60}, {}).ok());
}

BOOST_AUTO_TEST_SUITE_END()

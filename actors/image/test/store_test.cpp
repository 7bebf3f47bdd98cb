#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <nlohmann/json.hpp>

#include "deckhand/image/builder.hpp"
#include "deckhand/image/image_store.hpp"
#include "deckhand/testing/skip.hpp"
#include "fixtures.hpp"

using namespace deckhand;
using namespace deckhand::image;
using namespace deckhand::image::test;
using T = tar_entry;
using json = nlohmann::json;

namespace {

int run(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

struct store_fixture {
  temp_dir tmp;
  fs::path root = tmp / "data/images";
  fs::path outside = tmp / "outside";
  std::unique_ptr<image_store> store;
  image_config cfg;

  store_fixture() {
    auto s = image_store::open(root);
    BOOST_REQUIRE_MESSAGE(s.ok(), why(s));
    store = std::move(*s);
    fs::create_directories(outside);
    write_file(outside / "target", "precious");
    cfg.entrypoint = {"/bin/sh", "-c"};
    cfg.cmd = {"echo hello"};
    cfg.env = {"PATH=/bin", "GREETING=hi"};
    cfg.working_dir = "/tmp";
    cfg.user = "65534:65534";
    cfg.stop_signal = "SIGINT";
    cfg.exposed_ports = {"8080/tcp"};
  }

  /// An OCI layout of a busybox root filesystem named `ref`.
  fs::path busybox_layout(const std::string& dir, const std::string& ref) {
    fs::path rootfs = tmp / "busybox-rootfs";
    if (!fs::exists(rootfs)) {
      auto err = make_busybox_rootfs(rootfs);
      BOOST_REQUIRE_MESSAGE(!err, err.message);
    }
    fs::path layout = tmp / dir;
    auto d = build_layout(rootfs, layout, ref, cfg);
    BOOST_REQUIRE_MESSAGE(d.ok(), why(d));
    return layout;
  }

  /// A one-file image, different from busybox.
  fs::path tiny_layout(const std::string& dir, const std::string& ref, const std::string& content) {
    fs::path rootfs = tmp / (dir + "-rootfs");
    fs::create_directories(rootfs / "etc");
    write_file(rootfs / "etc/message", content);
    fs::path layout = tmp / dir;
    auto d = build_layout(rootfs, layout, ref, image_config{});
    BOOST_REQUIRE_MESSAGE(d.ok(), why(d));
    return layout;
  }

  /// An OCI layout whose single uncompressed layer is `layer` (any bytes).
  fs::path raw_layout(const std::string& dir, const std::string& layer, const std::string& ref) {
    fs::path layout = tmp / dir;
    fs::create_directories(layout / "blobs/sha256");
    auto blob = [&](const std::string& bytes) {
      std::string d = sha256_hex(bytes);
      write_file(layout / "blobs/sha256" / d.substr(7), bytes);
      return json{{"digest", d}, {"size", bytes.size()}};
    };
    json ldesc = blob(layer);
    ldesc["mediaType"] = "application/vnd.oci.image.layer.v1.tar";
    std::string config = json{{"os", "linux"},
                              {"architecture", "amd64"},
                              {"config", json::object()},
                              {"rootfs", {{"type", "layers"}, {"diff_ids", {sha256_hex(layer)}}}}}
                             .dump();
    json cdesc = blob(config);
    cdesc["mediaType"] = "application/vnd.oci.image.config.v1+json";
    std::string manifest = json{
        {"schemaVersion", 2},
        {"mediaType", "application/vnd.oci.image.manifest.v1+json"},
        {"config", cdesc},
        {"layers", {ldesc}}}.dump();
    json mdesc = blob(manifest);
    mdesc["mediaType"] = "application/vnd.oci.image.manifest.v1+json";
    mdesc["annotations"] = {{"org.opencontainers.image.ref.name", ref}};
    write_file(layout / "index.json", json{{"schemaVersion", 2}, {"manifests", {mdesc}}}.dump());
    write_file(layout / "oci-layout", R"({"imageLayoutVersion":"1.0.0"})");
    return layout;
  }

  json index_json(const fs::path& layout) { return json::parse(read_file(layout / "index.json")); }

  fs::path blob_file(const fs::path& layout, const std::string& digest) {
    return layout / "blobs/sha256" / digest.substr(7);
  }

  /// Nothing registered, no blob, no rootfs, no scratch left behind.
  void check_store_empty() {
    BOOST_TEST(store->list().empty());
    BOOST_TEST(entries_of(root / "blobs/sha256").empty());
    BOOST_TEST(entries_of(root / "rootfs").empty());
    BOOST_TEST(entries_of(root / "tmp").empty());
  }

  void check_outside_untouched() {
    BOOST_TEST(entries_of(outside) == std::vector<std::string>{"target"});
    BOOST_TEST(read_file(outside / "target") == "precious");
  }
};

}  // namespace

BOOST_FIXTURE_TEST_SUITE(store, store_fixture)

BOOST_AUTO_TEST_CASE(imports_oci_layout_directory) {
  fs::path layout = busybox_layout("layout", "busybox:test");
  std::string manifest_digest = index_json(layout)["manifests"][0]["digest"];
  auto rec = store->import(layout);
  BOOST_REQUIRE_MESSAGE(rec.ok(), why(rec));
  BOOST_TEST(rec->names == std::vector<std::string>{"docker.io/library/busybox:test"});
  BOOST_TEST(rec->manifest_digest == manifest_digest);
  BOOST_TEST(rec->id.rfind("sha256:", 0) == 0u);
  BOOST_TEST(rec->size > 500000u);
  BOOST_TEST((rec->config == cfg));
  BOOST_TEST(rec->os == "linux");
  BOOST_TEST(rec->architecture == "amd64");

  fs::path rootfs = store->rootfs_path(*rec);
  BOOST_TEST(rootfs == root / "rootfs" / rec->id_hex());
  BOOST_TEST(fs::is_regular_file(rootfs / "bin/busybox"));
  BOOST_TEST(fs::file_size(rootfs / "bin/busybox") == fs::file_size("/bin/busybox"));
  BOOST_TEST(((fs::status(rootfs / "bin/busybox").permissions() & fs::perms::owner_exec) !=
              fs::perms::none));
  BOOST_TEST(fs::read_symlink(rootfs / "bin/sh") == "busybox");
  BOOST_TEST(read_file(rootfs / "etc/passwd").find("root:x:0:0") == 0u);
  BOOST_TEST(fs::is_directory(rootfs / "proc"));
  BOOST_TEST(fs::is_regular_file(store->blob_path(rec->id)));
  BOOST_TEST(fs::is_regular_file(store->blob_path(manifest_digest)));
  // The image actually runs: a static busybox needs nothing else.
  BOOST_TEST(run("chroot " + rootfs.string() + " /bin/sh -c 'test -f /etc/passwd'") == 0);

  for (const std::string& ref : std::vector<std::string>{
           std::string("busybox:test"), std::string("docker.io/library/busybox:test"), rec->id,
           rec->id_hex().substr(0, 12), "sha256:" + rec->id_hex().substr(0, 16), manifest_digest,
           manifest_digest.substr(7, 12), "busybox@" + manifest_digest}) {
    auto f = store->find(ref);
    BOOST_TEST(f.ok(), ref << ": " << why(f));
    if (f.ok())
      BOOST_TEST(f->id == rec->id);
  }
  for (const std::string& ref :
       std::vector<std::string>{std::string("busybox"), std::string("busybox:other"),
                                rec->id_hex().substr(0, 8), std::string("Not A Ref")}) {
    auto f = store->find(ref);
    BOOST_TEST(!f.ok(), ref);
    if (!f.ok())
      BOOST_TEST(f.err().code == errc::not_found);
  }
  BOOST_TEST(store->list().size() == 1u);
  BOOST_TEST(entries_of(root / "tmp").empty());
}

BOOST_AUTO_TEST_CASE(skopeo_accepts_built_layout,
                     *deckhand::testing::skip_unless(deckhand::testing::program("skopeo"))) {
  fs::path layout = busybox_layout("layout", "busybox:test");
  BOOST_TEST(run("skopeo inspect oci:" + layout.string()) == 0);
  BOOST_TEST(run("skopeo inspect --config oci:" + layout.string()) == 0);
}

BOOST_AUTO_TEST_CASE(imports_oci_archive_and_is_idempotent) {
  fs::path layout = busybox_layout("layout", "busybox:test");
  auto first = store->import(layout);
  BOOST_REQUIRE_MESSAGE(first.ok(), why(first));
  auto blobs = entries_of(root / "blobs/sha256");
  fs::path archive = tmp / "busybox-oci.tar";
  write_file(archive, tar_directory(layout));
  auto second = store->import(archive);
  BOOST_REQUIRE_MESSAGE(second.ok(), why(second));
  BOOST_TEST(second->id == first->id);
  BOOST_TEST(second->names == first->names);
  auto third = store->import(layout);
  BOOST_REQUIRE(third.ok());
  BOOST_TEST(store->list().size() == 1u);
  BOOST_TEST(entries_of(root / "blobs/sha256") == blobs);
  BOOST_TEST(entries_of(root / "rootfs").size() == 1u);
  BOOST_TEST(entries_of(root / "tmp").empty());
  // An override name adds to the names the image already has.
  auto named = store->import(archive, std::string("localhost:5000/x:1"));
  BOOST_REQUIRE(named.ok());
  BOOST_TEST(named->names ==
             (std::vector<std::string>{"docker.io/library/busybox:test", "localhost:5000/x:1"}));
  BOOST_TEST(store->find("localhost:5000/x:1").ok());
  BOOST_TEST(!store->import(layout, std::string("Bad Name")).ok());
}

BOOST_AUTO_TEST_CASE(imports_docker_save_archive,
                     *deckhand::testing::skip_unless(deckhand::testing::program("skopeo"))) {
  fs::path layout = busybox_layout("layout", "busybox:test");
  fs::path archive = tmp / "busybox-docker.tar";
  BOOST_REQUIRE(run("skopeo --insecure-policy copy oci:" + layout.string() + " docker-archive:" +
                    archive.string() + ":localhost:5000/tools/busybox:docker") == 0);
  auto rec = store->import(archive);
  BOOST_REQUIRE_MESSAGE(rec.ok(), why(rec));
  BOOST_TEST(rec->names == std::vector<std::string>{"localhost:5000/tools/busybox:docker"});
  BOOST_TEST((rec->config == cfg));
  fs::path rootfs = store->rootfs_path(*rec);
  BOOST_TEST(fs::file_size(rootfs / "bin/busybox") == fs::file_size("/bin/busybox"));
  BOOST_TEST(fs::read_symlink(rootfs / "bin/ls") == "busybox");
  BOOST_TEST(store->find(rec->manifest_digest).ok());
  // The same config as the OCI original: the same image, one rootfs.
  auto oci = store->import(layout);
  BOOST_REQUIRE(oci.ok());
  BOOST_TEST(oci->id == rec->id);
  BOOST_TEST(entries_of(root / "rootfs").size() == 1u);
}

BOOST_AUTO_TEST_CASE(imports_through_image_index_choosing_linux_amd64) {
  fs::path layout = busybox_layout("layout", "");
  json top = index_json(layout);
  json amd64 = top["manifests"][0];
  json arm64 = amd64;
  arm64["platform"] = {{"os", "linux"}, {"architecture", "arm64"}};
  amd64["platform"] = {{"os", "linux"}, {"architecture", "amd64"}};
  auto write_index = [&](json entries) {
    std::string nested = json{
        {"schemaVersion", 2},
        {"mediaType", "application/vnd.oci.image.index.v1+json"},
        {"manifests",
         entries}}.dump();
    std::string d = sha256_hex(nested);
    write_file(blob_file(layout, d), nested);
    json ref = {{"mediaType", "application/vnd.oci.image.index.v1+json"},
                {"digest", d},
                {"size", nested.size()},
                {"annotations", {{"org.opencontainers.image.ref.name", "multi:1"}}}};
    write_file(layout / "index.json", json{{"schemaVersion", 2}, {"manifests", {ref}}}.dump());
  };
  write_index(json::array({arm64}));
  auto none = store->import(layout);
  BOOST_REQUIRE(!none.ok());
  BOOST_TEST(none.err().code == errc::unsupported);
  check_store_empty();

  write_index(json::array({arm64, amd64}));
  auto rec = store->import(layout);
  BOOST_REQUIRE_MESSAGE(rec.ok(), why(rec));
  BOOST_TEST(rec->manifest_digest == amd64["digest"].get<std::string>());
  BOOST_TEST(rec->names == std::vector<std::string>{"docker.io/library/multi:1"});
}

BOOST_AUTO_TEST_CASE(rejects_digest_and_size_mismatch) {
  fs::path layout = busybox_layout("layout", "busybox:test");
  json manifest_desc = index_json(layout)["manifests"][0];
  json manifest = json::parse(read_file(blob_file(layout, manifest_desc["digest"])));
  fs::path layer = blob_file(layout, manifest["layers"][0]["digest"]);
  std::string good = read_file(layer);

  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x01;
  write_file(layer, flipped);
  auto r = store->import(layout);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::invalid);
  BOOST_TEST(r.err().message.find("digest mismatch") != std::string::npos, r.err().message);
  check_store_empty();

  write_file(layer, good + "x");
  r = store->import(layout);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().message.find("size") != std::string::npos, r.err().message);
  check_store_empty();

  write_file(layer, good);
  fs::path config = blob_file(layout, manifest["config"]["digest"]);
  std::string cfg_text = read_file(config);
  write_file(config, cfg_text + " ");
  BOOST_TEST(!store->import(layout).ok());
  check_store_empty();
  write_file(config, cfg_text);

  // A layer whose uncompressed content does not match the config's diff_id.
  fs::path evil = raw_layout("evil", make_tar({T{"a", T::file, "1"}}), "evil:1");
  json idx = index_json(evil);
  std::string md = idx["manifests"][0]["digest"];
  json m = json::parse(read_file(blob_file(evil, md)));
  json c = json::parse(read_file(blob_file(evil, m["config"]["digest"])));
  c["rootfs"]["diff_ids"][0] = "sha256:" + std::string(64, '0');
  std::string ctext = c.dump();
  write_file(blob_file(evil, sha256_hex(ctext)), ctext);
  m["config"]["digest"] = sha256_hex(ctext);
  m["config"]["size"] = ctext.size();
  std::string mtext = m.dump();
  write_file(blob_file(evil, sha256_hex(mtext)), mtext);
  idx["manifests"][0]["digest"] = sha256_hex(mtext);
  idx["manifests"][0]["size"] = mtext.size();
  write_file(evil / "index.json", idx.dump());
  r = store->import(evil);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().message.find("diff_id") != std::string::npos, r.err().message);
  check_store_empty();

  BOOST_TEST(store->import(layout).ok());
}

BOOST_AUTO_TEST_CASE(rejects_malicious_layers_leaving_nothing) {
  T hl("hl", T::hardlink, "", "../outside/target");
  std::vector<std::pair<std::string, std::vector<T>>> cases = {
      {"dotdot", {T{"ok", T::file, "1"}, T{"../../../outside/evil", T::file, "pwned"}}},
      {"absolute", {T{(outside / "evil").string(), T::file, "pwned"}}},
      {"through-symlink",
       {T{"link", T::symlink, "", outside.string()}, T{"link/evil", T::file, "pwned"}}},
      {"escaping-symlink", {T{"esc", T::symlink, "", "../../../../outside"}}},
      {"escaping-hardlink", {hl}},
      {"hardlink-via-symlink",
       {T{"l", T::symlink, "", outside.string()}, T{"h", T::hardlink, "", "l/target"}}},
      {"char-device", {T{"dev/mem", T::chr}}},
      {"block-device", {T{"dev/sda", T::blk}}},
  };
  for (const auto& [name, entries] : cases) {
    fs::path layout = raw_layout(name, make_tar(entries), name + ":1");
    auto r = store->import(layout);
    BOOST_TEST(!r.ok(), name << " was accepted");
    if (!r.ok())
      BOOST_TEST(r.err().code == errc::invalid, name << ": " << r.err().message);
    check_store_empty();
    check_outside_untouched();
  }

  // Oversized: a store with a small layer limit.
  auto small =
      image_store::open(tmp / "small", store_options{1 << 20, std::uint64_t{1} << 30, 1 << 20});
  BOOST_REQUIRE(small.ok());
  fs::path big =
      raw_layout("big", make_tar({T{"big", T::file, std::string(3 << 20, 'b')}}), "big:1");
  auto r = (*small)->import(big);
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::too_large, r.err().message);
  BOOST_TEST((*small)->list().empty());
  BOOST_TEST(entries_of(tmp / "small/rootfs").empty());
  BOOST_TEST(entries_of(tmp / "small/blobs/sha256").empty());
}

BOOST_AUTO_TEST_CASE(malicious_outer_archive_is_rejected) {
  fs::path archive = tmp / "evil.tar";
  write_file(archive,
             make_tar({T{"oci-layout", T::file, "{}"}, T{"../outside/evil", T::file, "x"}}));
  BOOST_TEST(!store->import(archive).ok());
  write_file(archive, make_tar({T{"blobs", T::symlink, "", "/"}, T{"index.json", T::file, "{}"},
                                T{"oci-layout", T::file, "{}"}}));
  BOOST_TEST(!store->import(archive).ok());
  write_file(archive, "not an archive");
  BOOST_TEST(!store->import(archive).ok());
  BOOST_TEST(!store->import(tmp / "missing").ok());
  check_store_empty();
  check_outside_untouched();
}

BOOST_AUTO_TEST_CASE(remove_drops_names_then_collects_garbage) {
  auto a = store->import(busybox_layout("a", "busybox:a"));
  BOOST_REQUIRE_MESSAGE(a.ok(), why(a));
  auto a2 = store->import(busybox_layout("a", "busybox:a"), std::string("busybox:b"));
  BOOST_REQUIRE(a2.ok());
  auto b = store->import(tiny_layout("b", "tiny:1", "hello"));
  BOOST_REQUIRE_MESSAGE(b.ok(), why(b));
  BOOST_TEST(store->list().size() == 2u);

  auto r = store->remove("busybox:a");
  BOOST_REQUIRE_MESSAGE(r.ok(), why(r));
  auto still = store->find("busybox:b");
  BOOST_REQUIRE(still.ok());
  BOOST_TEST(still->names == std::vector<std::string>{"docker.io/library/busybox:b"});
  BOOST_TEST(fs::exists(store->rootfs_path(*a)));
  BOOST_TEST(!store->find("busybox:a").ok());

  BOOST_REQUIRE(store->remove("docker.io/library/busybox:b").ok());
  BOOST_TEST(!store->find(a->id).ok());
  BOOST_TEST(!fs::exists(store->rootfs_path(*a)));
  for (const auto& d : a->blobs)
    BOOST_TEST(!fs::exists(store->blob_path(d)), d);
  for (const auto& d : b->blobs)
    BOOST_TEST(fs::exists(store->blob_path(d)), d);
  BOOST_TEST(read_file(store->rootfs_path(*b) / "etc/message") == "hello");

  auto missing = store->remove("busybox:a");
  BOOST_REQUIRE(!missing.ok());
  BOOST_TEST(missing.err().code == errc::not_found);

  BOOST_REQUIRE(store->remove(b->id_hex().substr(0, 12)).ok());
  check_store_empty();
}

BOOST_AUTO_TEST_CASE(a_name_moves_to_the_newest_image) {
  auto old_img = store->import(tiny_layout("v1", "app:1", "v1"));
  BOOST_REQUIRE(old_img.ok());
  auto new_img = store->import(tiny_layout("v2", "app:1", "v2"));
  BOOST_REQUIRE(new_img.ok());
  BOOST_TEST(old_img->id != new_img->id);
  BOOST_TEST(store->find("app:1")->id == new_img->id);
  auto dangling = store->find(old_img->id);
  BOOST_REQUIRE(dangling.ok());
  BOOST_TEST(dangling->names.empty());
}

BOOST_AUTO_TEST_CASE(concurrent_imports_from_threads_and_processes) {
  fs::path l1 = tiny_layout("t1", "t:1", "one");
  fs::path l2 = tiny_layout("t2", "t:2", "two");
  fs::path l3 = tiny_layout("t3", "t:3", "three");
  fs::path l4 = busybox_layout("t4", "t:4");
  pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    // Another process with its own store object on the same root.
    auto s = image_store::open(root);
    bool ok = s.ok() && (*s)->import(l3).ok() && (*s)->import(l4).ok();
    ::_exit(ok ? 0 : 1);
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (const auto& l : {l1, l2, l4}) {
    threads.emplace_back([&, l] {
      if (!store->import(l).ok())
        ++failures;
      for (int i = 0; i < 20; ++i)
        (void)store->list();
    });
  }
  for (auto& t : threads)
    t.join();
  int status = 0;
  BOOST_REQUIRE(::waitpid(child, &status, 0) == child);
  BOOST_TEST(WIFEXITED(status));
  BOOST_TEST(WEXITSTATUS(status) == 0);
  BOOST_TEST(failures.load() == 0);
  BOOST_TEST(store->list().size() == 4u);
  for (const char* n : {"t:1", "t:2", "t:3", "t:4"})
    BOOST_TEST(store->find(n).ok(), n);
  BOOST_TEST(entries_of(root / "rootfs").size() == 4u);
  BOOST_TEST(entries_of(root / "tmp").empty());
}

BOOST_AUTO_TEST_SUITE_END()

#include <boost/test/unit_test.hpp>

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "deckhand/oci/bundle.hpp"
#include "deckhand/runtime/volumes.hpp"

using namespace deckhand;
using namespace deckhand::runtime;
namespace fs = std::filesystem;

namespace {

struct tmp_dir {
  fs::path dir;
  tmp_dir() {
    char tmpl[] = "/tmp/deckhand-vol-unit-XXXXXX";
    dir = mkdtemp(tmpl);
  }
  ~tmp_dir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int mode_of(const fs::path& p) {
  struct stat st {};
  ::stat(p.c_str(), &st);
  return st.st_mode & 07777;
}

wire::volume empty_dir(const std::string& name, const std::string& medium = {}) {
  wire::volume v;
  v.name = name;
  wire::empty_dir_volume_source src;
  src.medium = medium;
  v.empty_dir = src;
  return v;
}

wire::volume host_path(const std::string& name, const std::string& path,
                       const std::string& type = {}) {
  wire::volume v;
  v.name = name;
  wire::host_path_volume_source src;
  src.path = path;
  src.type = type;
  v.host_path = src;
  return v;
}

wire::downward_api_volume_file field_item(const std::string& path, const std::string& field,
                                          std::optional<int32_t> mode = std::nullopt) {
  wire::downward_api_volume_file f;
  f.path = path;
  wire::object_field_selector sel;
  sel.field_path = field;
  f.field_ref = sel;
  if (mode)
    f.mode = *mode;
  return f;
}

wire::volume_mount mount(const std::string& name, const std::string& path, bool ro = false,
                         const std::string& sub = {}) {
  wire::volume_mount m;
  m.name = name;
  m.mount_path = path;
  m.read_only = ro;
  m.sub_path = sub;
  return m;
}

wire::pod sample_pod() {
  wire::pod p;
  p.metadata.name = "web-0";
  p.metadata.namespace_ = "prod";
  p.metadata.uid = "u-1";
  p.metadata.labels = {{"b", "2"}, {"a", "1"}};
  p.metadata.annotations = {{"note", "x\"y"}};
  wire::container c;
  c.name = "main";
  c.image = "busybox";
  c.resources.limits = {{"memory", "64Mi"}};
  p.spec.containers.push_back(c);
  return p;
}

std::string validation_error(const wire::pod& p) {
  auto err = validate_volumes(p);
  return err ? err.message : std::string();
}

}  // namespace

BOOST_AUTO_TEST_SUITE(host_path_suite)

BOOST_AUTO_TEST_CASE(directory_or_create_creates_0755) {
  tmp_dir t;
  auto path = (t.dir / "a" / "b").string();
  ::umask(022);
  BOOST_TEST(!check_host_path(path, "DirectoryOrCreate"));
  BOOST_TEST(fs::is_directory(path));
  BOOST_TEST(mode_of(path) == 0755);
  BOOST_TEST(!check_host_path(path, "DirectoryOrCreate"));  // exists: fine
  BOOST_TEST(!check_host_path(path, "Directory"));
}

BOOST_AUTO_TEST_CASE(type_checks_with_kubernetes_wording) {
  tmp_dir t;
  auto file = (t.dir / "f").string();
  std::ofstream(file) << "x";
  auto missing = (t.dir / "missing").string();
  auto msg = [](const error& e) { return e ? e.message : std::string("<ok>"); };
  BOOST_TEST(msg(check_host_path(missing, "Directory")) ==
             "hostPath type check failed: " + missing + " is not a directory");
  BOOST_TEST(msg(check_host_path(file, "Directory")) ==
             "hostPath type check failed: " + file + " is not a directory");
  BOOST_TEST(msg(check_host_path(t.dir.string(), "File")) ==
             "hostPath type check failed: " + t.dir.string() + " is not a file");
  BOOST_TEST(msg(check_host_path(file, "File")) == "<ok>");
  BOOST_TEST(msg(check_host_path(file, "Socket")) ==
             "hostPath type check failed: " + file + " is not a socket file");
  BOOST_TEST(msg(check_host_path(file, "CharDevice")) ==
             "hostPath type check failed: " + file + " is not a character device");
  BOOST_TEST(msg(check_host_path(file, "BlockDevice")) ==
             "hostPath type check failed: " + file + " is not a block device");
  BOOST_TEST(msg(check_host_path("/dev/null", "CharDevice")) == "<ok>");
  BOOST_TEST(msg(check_host_path(file, "Bogus")) == "Bogus is an invalid volume type");

  // A real socket.
  auto sock_path = (t.dir / "s.sock").string();
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", sock_path.c_str());
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  BOOST_TEST(msg(check_host_path(sock_path, "Socket")) == "<ok>");
  ::close(fd);
}

BOOST_AUTO_TEST_CASE(file_or_create_creates_an_empty_file_but_no_parents) {
  tmp_dir t;
  auto file = (t.dir / "new.txt").string();
  BOOST_TEST(!check_host_path(file, "FileOrCreate"));
  BOOST_TEST(fs::is_regular_file(file));
  BOOST_TEST(fs::file_size(file) == 0u);
  BOOST_TEST(static_cast<bool>(check_host_path((t.dir / "no" / "f").string(), "FileOrCreate")));
}

BOOST_AUTO_TEST_CASE(untyped_path_is_created_as_directory) {
  tmp_dir t;
  auto path = (t.dir / "x").string();
  BOOST_TEST(!check_host_path(path, ""));
  BOOST_TEST(fs::is_directory(path));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(volume_validation_suite)

BOOST_AUTO_TEST_CASE(valid_pod_passes) {
  auto p = sample_pod();
  p.spec.volumes = {empty_dir("cache"), host_path("host", "/var/log", "Directory")};
  p.spec.containers[0].volume_mounts = {mount("cache", "/cache"),
                                        mount("host", "/host", true, "sub/dir")};
  BOOST_TEST(validation_error(p) == "");
}

BOOST_AUTO_TEST_CASE(unknown_volume_kind_is_refused) {
  auto p = sample_pod();
  wire::volume v;
  v.name = "cfg";  // e.g. a configMap volume, which decoding drops
  p.spec.volumes = {v};
  auto err = validate_volumes(p);
  BOOST_REQUIRE(err);
  BOOST_TEST(static_cast<int>(err.code) == static_cast<int>(errc::unsupported));
  BOOST_TEST(err.message.find("volume \"cfg\": unsupported volume type") == 0u);
}

BOOST_AUTO_TEST_CASE(mount_errors) {
  auto p = sample_pod();
  p.spec.volumes = {empty_dir("cache")};
  auto& c = p.spec.containers[0];
  c.volume_mounts = {mount("nope", "/x")};
  BOOST_TEST(validation_error(p).find("volumeMounts[0].name: Not found: \"nope\"") !=
             std::string::npos);
  c.volume_mounts = {mount("cache", "relative")};
  BOOST_TEST(validation_error(p).find("must be an absolute path") != std::string::npos);
  c.volume_mounts = {mount("cache", "/x", false, "../up")};
  BOOST_TEST(validation_error(p).find("subPath \"../up\"") != std::string::npos);
  c.volume_mounts = {mount("cache", "/x", false, "/abs")};
  BOOST_TEST(validation_error(p).find("subPath \"/abs\"") != std::string::npos);
  c.volume_mounts = {mount("cache", "/x"), mount("cache", "/x/")};
  BOOST_TEST(validation_error(p).find("must be unique") != std::string::npos);
  // Init containers' mounts are checked too.
  c.volume_mounts.clear();
  wire::container init;
  init.name = "init";
  init.image = "busybox";
  init.volume_mounts = {mount("ghost", "/g")};
  p.spec.init_containers = {init};
  BOOST_TEST(validation_error(p).find("container \"init\"") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(source_errors) {
  auto p = sample_pod();
  p.spec.volumes = {empty_dir("a"), empty_dir("a")};
  BOOST_TEST(validation_error(p).find("used twice") != std::string::npos);
  p.spec.volumes = {empty_dir("m", "HugePages")};
  BOOST_TEST(validation_error(p).find("medium \"HugePages\"") != std::string::npos);
  auto bad_size = empty_dir("m", "Memory");
  bad_size.empty_dir->size_limit.value = "lots";
  p.spec.volumes = {bad_size};
  BOOST_TEST(validation_error(p).find("sizeLimit") != std::string::npos);
  p.spec.volumes = {host_path("h", "rel/path")};
  BOOST_TEST(validation_error(p).find("absolute") != std::string::npos);
  p.spec.volumes = {host_path("h", "/x", "Whatever")};
  BOOST_TEST(validation_error(p).find("Unsupported value") != std::string::npos);
  auto two = empty_dir("two");
  two.host_path = wire::host_path_volume_source{"/x", ""};
  p.spec.volumes = {two};
  BOOST_TEST(validation_error(p).find("more than 1 volume type") != std::string::npos);

  wire::volume d;
  d.name = "d";
  wire::downward_api_volume_source src;
  src.items = {field_item("../x", "metadata.name")};
  d.downward_api = src;
  p.spec.volumes = {d};
  BOOST_TEST(validation_error(p).find("relative path") != std::string::npos);
  d.downward_api->items = {field_item("ip", "status.podIP")};
  p.spec.volumes = {d};
  BOOST_TEST(validation_error(p).find("unsupported fieldPath") != std::string::npos);
  wire::downward_api_volume_file r;
  r.path = "mem";
  r.resource_field_ref = wire::resource_field_selector{"", "limits.memory", {}};
  d.downward_api->items = {r};
  p.spec.volumes = {d};
  BOOST_TEST(validation_error(p).find("containerName: Required value") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(downward_api_suite)

BOOST_AUTO_TEST_CASE(file_contents_and_modes) {
  auto p = sample_pod();
  wire::downward_api_volume_source src;
  src.default_mode = 0600;
  wire::downward_api_volume_file mem;
  mem.path = "limits/mem";
  mem.resource_field_ref = wire::resource_field_selector{"main", "limits.memory", {"1Mi"}};
  src.items = {field_item("labels", "metadata.labels"),
               field_item("annotations", "metadata.annotations", 0644),
               field_item("name", "metadata.name"),
               field_item("ns", "metadata.namespace"),
               field_item("uid", "metadata.uid"),
               mem};
  auto files = downward_api_files(p, src, node_allocatable{});
  BOOST_REQUIRE(files);
  BOOST_REQUIRE(files->size() == 6u);
  BOOST_TEST((*files)[0].content == "a=\"1\"\nb=\"2\"");
  BOOST_TEST((*files)[0].mode == 0600);
  BOOST_TEST((*files)[1].content == "note=\"x\\\"y\"");
  BOOST_TEST((*files)[1].mode == 0644);
  BOOST_TEST((*files)[2].content == "web-0");
  BOOST_TEST((*files)[3].content == "prod");
  BOOST_TEST((*files)[4].content == "u-1");
  BOOST_TEST((*files)[5].content == "64");
  src.default_mode.reset();
  files = downward_api_files(p, src, node_allocatable{});
  BOOST_REQUIRE(files);
  BOOST_TEST((*files)[0].mode == 0644);
}

BOOST_AUTO_TEST_CASE(atomic_writer_layout) {
  tmp_dir t;
  auto dir = t.dir / "vol";
  std::vector<downward_file> files{{"labels", "a=\"1\"", 0644}, {"sub/name", "web-0", 0600}};
  BOOST_REQUIRE(!write_atomic_files(dir, files));
  BOOST_TEST(fs::is_symlink(dir / "..data"));
  BOOST_TEST(fs::is_symlink(dir / "labels"));
  BOOST_TEST(fs::read_symlink(dir / "labels") == fs::path("..data/labels"));
  BOOST_TEST(fs::read_symlink(dir / "..data").string().rfind("..", 0) == 0u);
  BOOST_TEST(slurp(dir / "labels") == "a=\"1\"");
  BOOST_TEST(slurp(dir / "sub" / "name") == "web-0");
  BOOST_TEST(mode_of(dir / "labels") == 0644);
  BOOST_TEST(mode_of(dir / "sub" / "name") == 0600);
  BOOST_TEST(!fs::exists(fs::symlink_status(dir / "..data_tmp")));
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(volume_mount_suite)

BOOST_AUTO_TEST_CASE(set_up_and_bundle_mounts) {
  tmp_dir t;
  auto p = sample_pod();
  auto host = t.dir / "host";
  wire::volume d;
  d.name = "info";
  wire::downward_api_volume_source src;
  src.items = {field_item("labels", "metadata.labels")};
  d.downward_api = src;
  p.spec.volumes = {empty_dir("cache"), host_path("logs", host.string(), "DirectoryOrCreate"), d};
  auto& c = p.spec.containers[0];
  c.volume_mounts = {mount("cache", "/data/cache/inner", false, "part"), mount("cache", "/data"),
                     mount("logs", "/var/log/app", true), mount("info", "/etc/podinfo", true)};
  BOOST_REQUIRE(!validate_volumes(p));
  auto pod_dir = t.dir / "pod";
  auto paths = set_up_volumes(p, pod_dir, node_allocatable{});
  BOOST_REQUIRE_MESSAGE(paths.ok(), (paths ? "" : paths.err().message));
  auto cache = pod_dir / "volumes" / "kubernetes.io~empty-dir" / "cache";
  BOOST_TEST((*paths)["cache"] == cache);
  BOOST_TEST(mode_of(cache) == 0777);
  BOOST_TEST(fs::is_directory(host));
  BOOST_TEST(slurp(pod_dir / "volumes" / "kubernetes.io~downward-api" / "info" / "labels") ==
             "a=\"1\"\nb=\"2\"");

  auto mounts = container_volume_mounts(c, *paths);
  BOOST_REQUIRE(mounts);
  BOOST_REQUIRE(mounts->size() == 4u);
  // Parents before children.
  auto index = [&](const std::string& dest) {
    for (std::size_t i = 0; i < mounts->size(); ++i)
      if ((*mounts)[i].destination == fs::path(dest))
        return static_cast<int>(i);
    return -1;
  };
  BOOST_TEST(index("/data") == 0);
  BOOST_TEST(index("/data/cache/inner") > index("/data"));
  BOOST_TEST(fs::is_directory(cache / "part"));  // subPath created

  oci::bundle_spec spec;
  spec.args = {"/bin/true"};
  spec.rootfs = "/nonexistent-rootfs";
  spec.mounts = *mounts;
  spec.annotations[oci::stop_signal_annotation] = "SIGQUIT";
  auto text = oci::render_config(spec);
  BOOST_REQUIRE(text);
  auto j = nlohmann::json::parse(*text);
  BOOST_TEST(j["annotations"]["org.opencontainers.image.stopSignal"] == "SIGQUIT");
  std::map<std::string, nlohmann::json> by_dest;
  for (const auto& m : j["mounts"])
    by_dest[m["destination"].get<std::string>()] = m;
  BOOST_REQUIRE(by_dest.count("/var/log/app"));
  auto logs = by_dest["/var/log/app"];
  BOOST_TEST(logs["type"] == "bind");
  BOOST_TEST(logs["source"] == host.string());
  auto opts = logs["options"].get<std::vector<std::string>>();
  BOOST_TEST((std::find(opts.begin(), opts.end(), "ro") != opts.end()));
  auto data = by_dest["/data"];
  BOOST_TEST(data["source"] == cache.string());
  opts = data["options"].get<std::vector<std::string>>();
  BOOST_TEST((std::find(opts.begin(), opts.end(), "rw") != opts.end()));
  BOOST_TEST(by_dest["/data/cache/inner"]["source"] == (cache / "part").string());
  BOOST_TEST(by_dest["/etc/podinfo"]["source"] ==
             (pod_dir / "volumes" / "kubernetes.io~downward-api" / "info").string());
}

BOOST_AUTO_TEST_CASE(sub_path_symlink_out_of_volume_is_refused) {
  tmp_dir t;
  auto vol = t.dir / "vol";
  fs::create_directories(vol);
  fs::create_symlink("/etc", vol / "escape");
  wire::container c;
  c.name = "main";
  c.volume_mounts = {mount("v", "/x", false, "escape")};
  auto mounts = container_volume_mounts(c, {{"v", vol}});
  BOOST_REQUIRE(!mounts);
  BOOST_TEST(mounts.err().message.find("leads out of volume") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(failed_host_path_is_a_mount_error) {
  tmp_dir t;
  auto p = sample_pod();
  auto missing = (t.dir / "missing").string();
  p.spec.volumes = {host_path("h", missing, "Directory")};
  auto paths = set_up_volumes(p, t.dir / "pod", node_allocatable{});
  BOOST_REQUIRE(!paths);
  BOOST_TEST(paths.err().message ==
             "MountVolume.SetUp failed for volume \"h\" : hostPath type check failed: " + missing +
                 " is not a directory");
}

BOOST_AUTO_TEST_SUITE_END()

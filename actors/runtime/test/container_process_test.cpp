#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "deckhand/runtime/container_process.hpp"

using namespace deckhand;
using namespace deckhand::runtime;
using strings = std::vector<std::string>;

namespace {

image::image_config nginx_like() {
  image::image_config img;
  img.entrypoint = {"/docker-entrypoint.sh"};
  img.cmd = {"nginx", "-g", "daemon off;"};
  img.env = {"PATH=/usr/local/bin:/usr/bin:/bin", "NGINX_VERSION=1.25"};
  img.working_dir = "/srv";
  return img;
}

wire::container make_container(strings command, strings args) {
  wire::container c;
  c.name = "web";
  c.image = "nginx";
  c.command = std::move(command);
  c.args = std::move(args);
  return c;
}

/// A temporary rootfs with /etc/passwd and /etc/group.
struct rootfs_fixture {
  std::filesystem::path dir;
  rootfs_fixture() {
    char tmpl[] = "/tmp/deckhand-rt-unit-XXXXXX";
    dir = mkdtemp(tmpl);
    std::filesystem::create_directories(dir / "etc");
    std::ofstream(dir / "etc" / "passwd") << "root:x:0:0:root:/root:/bin/sh\n"
                                             "# comment\n"
                                             "nobody:x:65534:65534:nobody:/:/bin/false\n"
                                             "app:x:1000:1001:app:/home/app:/bin/sh\n";
    std::ofstream(dir / "etc" / "group") << "root:x:0:\nstaff:x:50:\napp:x:1001:\n";
  }
  ~rootfs_fixture() { std::filesystem::remove_all(dir); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(container_process_suite)

// Kubernetes' table: https://kubernetes.io/docs/tasks/inject-data-application/
// define-command-argument-container/#notes
BOOST_AUTO_TEST_CASE(neither_command_nor_args_runs_image_defaults) {
  auto argv = container_args(make_container({}, {}), nginx_like());
  BOOST_REQUIRE(argv);
  BOOST_TEST(*argv == (strings{"/docker-entrypoint.sh", "nginx", "-g", "daemon off;"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(command_without_args_drops_cmd) {
  auto argv = container_args(make_container({"/bin/echo"}, {}), nginx_like());
  BOOST_REQUIRE(argv);
  BOOST_TEST(*argv == strings{"/bin/echo"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(args_without_command_keep_entrypoint) {
  auto argv = container_args(make_container({}, {"hello"}), nginx_like());
  BOOST_REQUIRE(argv);
  BOOST_TEST(*argv == (strings{"/docker-entrypoint.sh", "hello"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(command_and_args_replace_both) {
  auto argv = container_args(make_container({"/bin/sh", "-c"}, {"echo hi"}), nginx_like());
  BOOST_REQUIRE(argv);
  BOOST_TEST(*argv == (strings{"/bin/sh", "-c", "echo hi"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(nothing_to_run_is_invalid) {
  auto argv = container_args(make_container({}, {}), image::image_config{});
  BOOST_REQUIRE(!argv);
  BOOST_TEST(static_cast<int>(argv.err().code) == static_cast<int>(errc::invalid));
}

BOOST_AUTO_TEST_CASE(args_expand_container_env_references) {
  auto c = make_container({"/bin/echo"}, {"$(GREETING) $(UNKNOWN) $$(GREETING) $$x"});
  c.env = {{"NAME", "world"}, {"GREETING", "hello $(NAME)"}};
  auto argv = container_args(c, nginx_like());
  BOOST_REQUIRE(argv);
  BOOST_TEST((*argv)[1] == "hello world $(UNKNOWN) $(GREETING) $x");
}

BOOST_AUTO_TEST_CASE(env_is_image_then_container_with_overrides_in_place) {
  auto c = make_container({}, {});
  c.env = {{"NGINX_VERSION", "custom"}, {"EXTRA", "1"}};
  auto env = container_env(c, nginx_like());
  BOOST_TEST(env ==
                 (strings{"PATH=/usr/local/bin:/usr/bin:/bin", "NGINX_VERSION=custom", "EXTRA=1"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(cwd_precedence) {
  auto c = make_container({}, {});
  auto img = nginx_like();
  BOOST_TEST(container_cwd(c, img) == "/srv");
  c.working_dir = "/work";
  BOOST_TEST(container_cwd(c, img) == "/work");
  c.working_dir.clear();
  img.working_dir.clear();
  BOOST_TEST(container_cwd(c, img) == "/");
}

BOOST_AUTO_TEST_CASE(user_resolution) {
  rootfs_fixture fx;
  auto check = [&](const std::string& user, uid_t uid, gid_t gid) {
    auto r = resolve_user(user, fx.dir);
    BOOST_TEST_CONTEXT("user " << user) {
      BOOST_REQUIRE(r);
      BOOST_TEST(r->first == uid);
      BOOST_TEST(r->second == gid);
    }
  };
  check("", 0, 0);
  check("1000", 1000, 1001);  // primary group from passwd
  check("4242", 4242, 0);     // not listed: group 0
  check("1000:7", 1000, 7);
  check("app", 1000, 1001);
  check("nobody", 65534, 65534);
  check("app:staff", 1000, 50);
  BOOST_TEST(!resolve_user("ghost", fx.dir));
  BOOST_TEST(!resolve_user("app:ghosts", fx.dir));
}

BOOST_AUTO_TEST_CASE(passwd_symlink_out_of_rootfs_is_not_followed) {
  rootfs_fixture fx;
  std::filesystem::remove(fx.dir / "etc" / "passwd");
  std::filesystem::create_symlink("/etc/passwd", fx.dir / "etc" / "passwd");
  BOOST_TEST(!resolve_user("root", fx.dir));
  auto r = resolve_user("0", fx.dir);
  BOOST_REQUIRE(r);
  BOOST_TEST(r->first == 0u);
}

BOOST_AUTO_TEST_CASE(full_process) {
  rootfs_fixture fx;
  auto img = nginx_like();
  img.user = "app";
  auto c = make_container({}, {"-v"});
  c.env = {{"A", "b"}};
  auto p = make_container_process(c, img, fx.dir);
  BOOST_REQUIRE(p);
  BOOST_TEST(p->args == (strings{"/docker-entrypoint.sh", "-v"}), boost::test_tools::per_element());
  BOOST_TEST(p->env.back() == "A=b");
  BOOST_TEST(p->cwd == "/srv");
  BOOST_TEST(p->uid == 1000u);
  BOOST_TEST(p->gid == 1001u);

  c.working_dir = "relative";
  BOOST_TEST(!make_container_process(c, img, fx.dir));
}

BOOST_AUTO_TEST_SUITE_END()

// -- securityContext and resources -> bundle ----------------------------------------

namespace deckhand::oci {
inline std::ostream& operator<<(std::ostream& os, seccomp_mode m) {
  return os << static_cast<int>(m);
}
}  // namespace deckhand::oci

namespace {

struct security_fixture : rootfs_fixture {
  wire::pod pod;
  container_process proc;
  security_fixture() {
    // "app" is also a member of staff through /etc/group.
    std::ofstream(dir / "etc" / "group", std::ios::trunc)
        << "root:x:0:\nstaff:x:50:app,other\napp:x:1001:app\nwheel:x:10:root\n";
    pod.metadata.name = "web-0";
    pod.metadata.namespace_ = "prod";
    pod.metadata.uid = "u-1";
    wire::container c;
    c.name = "web";
    c.image = "busybox";
    pod.spec.containers.push_back(c);
    proc.args = {"/bin/true"};
    proc.uid = 1000;
    proc.gid = 1001;
    proc.image_user = "app";
  }
  wire::container& c() { return pod.spec.containers.front(); }
  result<oci::bundle_spec> build(const container_options& opts = {}) {
    return container_bundle_spec(pod, c(), proc, dir, opts);
  }
  oci::bundle_spec ok(const container_options& opts = {}) {
    auto s = build(opts);
    BOOST_REQUIRE_MESSAGE(s.ok(), (s ? "" : s.err().message));
    return *s;
  }
  error err(const container_options& opts = {}) {
    auto s = build(opts);
    BOOST_REQUIRE_MESSAGE(!s.ok(), "expected an error");
    return s.err();
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(security_context_suite)

BOOST_AUTO_TEST_CASE(defaults_follow_kubernetes) {
  security_fixture fx;
  auto s = fx.ok();
  BOOST_TEST(s.uid == 1000u);
  BOOST_TEST(s.gid == 1001u);
  BOOST_TEST(s.additional_gids == (std::vector<gid_t>{50}), boost::test_tools::per_element());
  BOOST_TEST(!s.no_new_privileges);  // allowPrivilegeEscalation unset = true
  BOOST_TEST(!s.readonly_rootfs);
  BOOST_TEST(!s.privileged);
  BOOST_TEST(s.seccomp == oci::seccomp_mode::unconfined);
  BOOST_TEST(s.hostname == "web-0");
  BOOST_TEST(*s.cgroups_path == "/deckhand/podu-1/web");
  BOOST_TEST(*s.resources.cpu_shares == 2u);  // BestEffort
  BOOST_TEST(!s.resources.cpu_quota_us);
  BOOST_TEST(!s.resources.memory_limit_bytes);
}

BOOST_AUTO_TEST_CASE(run_as_user_and_group_container_over_pod_over_image) {
  security_fixture fx;
  fx.pod.spec.security_context_.run_as_user = 2000;
  auto s = fx.ok();
  BOOST_TEST(s.uid == 2000u);
  BOOST_TEST(s.gid == 0u);  // not in /etc/passwd: group 0, as containerd
  fx.c().security_context_.run_as_user = 1000;
  s = fx.ok();
  BOOST_TEST(s.uid == 1000u);
  BOOST_TEST(s.gid == 1001u);  // primary group from /etc/passwd
  BOOST_TEST(s.additional_gids == (std::vector<gid_t>{50}), boost::test_tools::per_element());
  fx.pod.spec.security_context_.run_as_group = 3000;
  s = fx.ok();
  BOOST_TEST(s.gid == 3000u);
  BOOST_TEST(s.additional_gids.empty());  // an explicit group: no /etc/group lookup
  fx.c().security_context_.run_as_group = 4000;
  BOOST_TEST(fx.ok().gid == 4000u);

  // runAsGroup alone applies to the image's user.
  security_fixture g;
  g.c().security_context_.run_as_group = 77;
  s = g.ok();
  BOOST_TEST(s.uid == 1000u);
  BOOST_TEST(s.gid == 77u);

  security_fixture bad;
  bad.c().security_context_.run_as_user = -1;
  BOOST_TEST(bad.err().code == errc::invalid);
}

BOOST_AUTO_TEST_CASE(supplemental_groups_and_fs_group_are_additional_gids) {
  security_fixture fx;
  fx.pod.spec.security_context_.supplemental_groups = {5000, 50, 6000};
  fx.pod.spec.security_context_.fs_group = 7000;
  auto s = fx.ok();
  BOOST_TEST(s.additional_gids == (std::vector<gid_t>{50, 5000, 6000, 7000}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(run_as_non_root_is_enforced_like_the_kubelet) {
  security_fixture fx;
  fx.pod.spec.security_context_.run_as_non_root = true;
  fx.proc.image_user = "";
  fx.proc.uid = 0;
  auto e = fx.err();
  BOOST_TEST(e.code == errc::invalid);
  BOOST_TEST(e.message.find("container has runAsNonRoot and image will run as root") !=
                 std::string::npos,
             e.message);
  BOOST_TEST(e.message.find("prod/web-0") != std::string::npos);

  fx.proc.image_user = "0:0";
  BOOST_TEST(fx.err().message.find("image will run as root") != std::string::npos);
  fx.proc.image_user = "app";  // a name cannot be verified
  BOOST_TEST(fx.err().message.find("non-numeric user (app)") != std::string::npos);
  fx.proc.image_user = "1000";
  BOOST_TEST(fx.build().ok());

  fx.c().security_context_.run_as_user = 0;
  BOOST_TEST(fx.err().message.find("runAsUser breaks non-root policy") != std::string::npos);
  fx.c().security_context_.run_as_user = 1234;
  fx.proc.image_user = "";
  BOOST_TEST(fx.build().ok());  // runAsUser wins over the image's root
  // The container can switch it off again.
  fx.c().security_context_.run_as_user.reset();
  fx.c().security_context_.run_as_non_root = false;
  BOOST_TEST(fx.build().ok());
}

BOOST_AUTO_TEST_CASE(privilege_escalation_read_only_root_and_capabilities) {
  security_fixture fx;
  auto& sc = fx.c().security_context_;
  sc.allow_privilege_escalation = false;
  sc.read_only_root_filesystem = true;
  sc.capabilities_.add = {"NET_ADMIN"};
  sc.capabilities_.drop = {"ALL"};
  auto s = fx.ok();
  BOOST_TEST(s.no_new_privileges);
  BOOST_TEST(s.readonly_rootfs);
  BOOST_TEST(s.cap_add == strings{"NET_ADMIN"}, boost::test_tools::per_element());
  BOOST_TEST(s.cap_drop == strings{"ALL"}, boost::test_tools::per_element());
  sc.allow_privilege_escalation = true;
  BOOST_TEST(!fx.ok().no_new_privileges);

  sc.allow_privilege_escalation = false;
  sc.capabilities_.add = {"SYS_ADMIN"};
  BOOST_TEST(fx.err().message.find("allowPrivilegeEscalation") != std::string::npos);
  sc.capabilities_.add = {};
  sc.privileged = true;
  BOOST_TEST(fx.err().message.find("allowPrivilegeEscalation") != std::string::npos);
  sc.allow_privilege_escalation.reset();
  s = fx.ok();
  BOOST_TEST(s.privileged);
  BOOST_TEST(!s.no_new_privileges);
}

BOOST_AUTO_TEST_CASE(seccomp_profiles) {
  security_fixture fx;
  fx.pod.spec.security_context_.seccomp_profile_.type = "RuntimeDefault";
  BOOST_TEST(fx.ok().seccomp == oci::seccomp_mode::runtime_default);
  fx.c().security_context_.seccomp_profile_.type = "Unconfined";  // container wins
  BOOST_TEST(fx.ok().seccomp == oci::seccomp_mode::unconfined);
  fx.c().security_context_.seccomp_profile_.type = "Bogus";
  BOOST_TEST(fx.err().code == errc::invalid);

  // Localhost: a file under the configured directory, nothing outside it.
  auto dir = fx.dir / "seccomp";
  std::filesystem::create_directories(dir / "profiles");
  std::ofstream(dir / "profiles" / "audit.json") << R"({"defaultAction":"SCMP_ACT_LOG"})";
  std::ofstream(fx.dir / "outside.json") << R"({"defaultAction":"SCMP_ACT_ALLOW"})";
  std::filesystem::create_symlink(fx.dir / "outside.json", dir / "escape.json");
  container_options opts;
  opts.seccomp_dir = dir;
  auto& prof = fx.c().security_context_.seccomp_profile_;
  prof.type = "Localhost";
  prof.localhost_profile = "profiles/audit.json";
  auto s = fx.ok(opts);
  BOOST_TEST(s.seccomp == oci::seccomp_mode::profile);
  BOOST_TEST(s.seccomp_profile == R"({"defaultAction":"SCMP_ACT_LOG"})");
  for (std::string bad :
       {"../outside.json", "/etc/passwd", "profiles/../../outside.json", "escape.json", ""}) {
    prof.localhost_profile = bad;
    BOOST_TEST_CONTEXT(bad) { BOOST_TEST(fx.err(opts).code == errc::invalid); }
  }
  prof.localhost_profile = "missing.json";
  BOOST_TEST(fx.err(opts).code == errc::not_found);
  prof.localhost_profile = "profiles/audit.json";
  BOOST_TEST(fx.err().code == errc::invalid);  // no directory configured

  // Privileged containers get no filter at all, even when one is asked for.
  fx.c().security_context_.privileged = true;
  BOOST_TEST(fx.ok().seccomp == oci::seccomp_mode::unconfined);
}

BOOST_AUTO_TEST_CASE(container_resources_use_the_kubelets_formulas) {
  wire::container c;
  c.name = "c";
  auto limits = [&] {
    auto l = container_resource_limits(c);
    BOOST_REQUIRE_MESSAGE(l.ok(), (l ? "" : l.err().message));
    return *l;
  };
  auto l = limits();
  BOOST_TEST(*l.cpu_shares == 2u);
  BOOST_TEST(!l.cpu_quota_us);

  c.resources.requests = {{"cpu", "250m"}, {"memory", "32Mi"}};
  c.resources.limits = {{"cpu", "500m"}, {"memory", "64Mi"}};
  l = limits();
  BOOST_TEST(*l.cpu_shares == 256u);
  BOOST_TEST(*l.cpu_quota_us == 50000);
  BOOST_TEST(*l.cpu_period_us == 100000u);
  BOOST_TEST(*l.memory_limit_bytes == 64ll << 20);
  BOOST_TEST(*l.memory_swap_bytes == 64ll << 20);

  c.resources.requests = {};
  c.resources.limits = {{"cpu", "2"}};  // request defaults to the limit
  l = limits();
  BOOST_TEST(*l.cpu_shares == 2048u);
  BOOST_TEST(*l.cpu_quota_us == 200000);
  BOOST_TEST(!l.memory_limit_bytes);

  c.resources.limits = {{"cpu", "1m"}};  // quota floor 1000us, shares floor 2
  l = limits();
  BOOST_TEST(*l.cpu_quota_us == 1000);
  BOOST_TEST(*l.cpu_shares == 2u);

  c.resources.limits = {};
  c.resources.requests = {{"cpu", "300"}};  // shares cap 262144
  BOOST_TEST(*limits().cpu_shares == 262144u);
  c.resources.requests = {{"cpu", "0.1"}};
  BOOST_TEST(*limits().cpu_shares == 102u);
  c.resources.requests = {{"cpu", "1e0"}};
  BOOST_TEST(*limits().cpu_shares == 1024u);

  for (std::string bad : {"lots", "1.5.5", "-1", "64MB"}) {
    c.resources.requests = {};
    c.resources.limits = {{"memory", bad}};
    auto r = container_resource_limits(c);
    BOOST_TEST_CONTEXT(bad) {
      BOOST_REQUIRE(!r.ok());
      BOOST_TEST(r.err().code == errc::invalid);
      BOOST_TEST(r.err().message.find("resources.limits.memory") != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(pod_level_limits_need_every_container_limited) {
  wire::pod p;
  p.metadata.uid = "u";
  wire::container a, b;
  a.name = "a";
  b.name = "b";
  a.resources.limits = {{"cpu", "500m"}, {"memory", "64Mi"}};
  b.resources.limits = {{"cpu", "250m"}, {"memory", "32Mi"}};
  p.spec.containers = {a, b};
  container_options opts;
  opts.pod_pids_limit = 1024;
  auto l = pod_resource_limits(p, opts);
  BOOST_REQUIRE(l.ok());
  BOOST_TEST(*l->cpu_shares == 768u);  // 750m of requests (defaulted from limits)
  BOOST_TEST(*l->cpu_quota_us == 75000);
  BOOST_TEST(*l->cpu_period_us == 100000u);
  BOOST_TEST(*l->memory_limit_bytes == 96ll << 20);
  BOOST_TEST(*l->pids_limit == 1024);

  // Burstable: b has no memory limit, so the pod has none; cpu still summed.
  p.spec.containers[1].resources.limits = {{"cpu", "250m"}};
  l = pod_resource_limits(p);
  BOOST_REQUIRE(l.ok());
  BOOST_TEST(!l->memory_limit_bytes);
  BOOST_TEST(*l->cpu_quota_us == 75000);
  BOOST_TEST(!l->pids_limit);

  // BestEffort: minimum shares, nothing else.
  p.spec.containers[0].resources = {};
  p.spec.containers[1].resources = {};
  l = pod_resource_limits(p);
  BOOST_REQUIRE(l.ok());
  BOOST_TEST(*l->cpu_shares == 2u);
  BOOST_TEST(!l->cpu_quota_us);
  BOOST_TEST(!l->memory_limit_bytes);
}

BOOST_AUTO_TEST_CASE(resources_reach_the_bundle) {
  security_fixture fx;
  fx.c().resources.limits = {{"cpu", "500m"}, {"memory", "16Mi"}};
  auto s = fx.ok();
  BOOST_TEST(*s.resources.memory_limit_bytes == 16ll << 20);
  BOOST_TEST(*s.resources.cpu_quota_us == 50000);
  BOOST_TEST(*s.resources.cpu_shares == 512u);
  fx.c().resources.limits = {{"memory", "sixteen"}};
  BOOST_TEST(fx.err().code == errc::invalid);
}

BOOST_AUTO_TEST_SUITE_END()

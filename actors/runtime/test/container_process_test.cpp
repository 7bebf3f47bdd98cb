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

} // namespace

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
  BOOST_TEST(env == (strings{"PATH=/usr/local/bin:/usr/bin:/bin", "NGINX_VERSION=custom",
                             "EXTRA=1"}),
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
  check("1000", 1000, 1001);    // primary group from passwd
  check("4242", 4242, 0);       // not listed: group 0
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
  BOOST_TEST(p->args == (strings{"/docker-entrypoint.sh", "-v"}),
             boost::test_tools::per_element());
  BOOST_TEST(p->env.back() == "A=b");
  BOOST_TEST(p->cwd == "/srv");
  BOOST_TEST(p->uid == 1000u);
  BOOST_TEST(p->gid == 1001u);

  c.working_dir = "relative";
  BOOST_TEST(!make_container_process(c, img, fx.dir));
}

BOOST_AUTO_TEST_SUITE_END()

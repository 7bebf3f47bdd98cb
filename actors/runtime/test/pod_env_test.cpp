#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

#include "deckhand/runtime/container_process.hpp"
#include "deckhand/runtime/pod_env.hpp"

using namespace deckhand;
using namespace deckhand::runtime;
using strings = std::vector<std::string>;

namespace {

wire::env_var plain(const std::string& name, const std::string& value) {
  wire::env_var e;
  e.name = name;
  e.value = value;
  return e;
}

wire::env_var field(const std::string& name, const std::string& path) {
  wire::env_var e;
  e.name = name;
  wire::env_var_source src;
  wire::object_field_selector sel;
  sel.field_path = path;
  src.field_ref = sel;
  e.value_from = src;
  return e;
}

wire::env_var resource(const std::string& name, const std::string& res,
                       const std::string& divisor = {}, const std::string& container = {}) {
  wire::env_var e;
  e.name = name;
  wire::env_var_source src;
  wire::resource_field_selector sel;
  sel.resource = res;
  sel.divisor.value = divisor;
  sel.container_name = container;
  src.resource_field_ref = sel;
  e.value_from = src;
  return e;
}

wire::env_var key_ref(const std::string& name, bool secret, const std::string& object,
                      std::optional<bool> optional = std::nullopt) {
  wire::env_var e;
  e.name = name;
  wire::env_var_source src;
  wire::key_selector k;
  k.name = object;
  k.key = "k";
  if (optional)
    k.optional = *optional;
  if (secret)
    src.secret_key_ref = k;
  else
    src.config_map_key_ref = k;
  e.value_from = src;
  return e;
}

wire::pod sample_pod() {
  wire::pod p;
  p.metadata.name = "web-0";
  p.metadata.namespace_ = "prod";
  p.metadata.uid = "u-123";
  p.metadata.labels = {{"app", "web"}, {"tier", "front \"end\""}};
  p.metadata.annotations = {{"example.com/note", "hi"}};
  p.spec.node_name = "node-1";
  wire::container c;
  c.name = "main";
  c.image = "busybox";
  p.spec.containers.push_back(c);
  return p;
}

pod_env_context sample_ctx() {
  pod_env_context ctx;
  ctx.pod_ip = "10.88.0.5";
  ctx.host_ip = "192.168.1.10";
  ctx.node.cpu_milli = 4000;
  ctx.node.memory_bytes = int64_t{8} << 30;
  ctx.node.ephemeral_storage_bytes = int64_t{100} << 30;
  return ctx;
}

std::string value_of(const env_list& env, const std::string& name) {
  for (const auto& [k, v] : env)
    if (k == name)
      return v;
  return "<unset>";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(expansion_suite)

// Kubernetes' own cases: third_party/forked/golang/expansion/expand_test.go.
BOOST_AUTO_TEST_CASE(kubernetes_expansion_cases) {
  std::map<std::string, std::string> vars{
      {"VAR_A", "A"}, {"VAR_B", "B"}, {"VAR_C", "C"}, {"VAR_REF", "$(VAR_A)"}, {"VAR_EMPTY", ""}};
  const std::vector<std::pair<std::string, std::string>> cases{
      {"$(VAR_A)", "A"},
      {"$(VAR_A)-$(VAR_A)", "A-A"},
      {"$(VAR_A)-1", "A-1"},
      {"___$(VAR_B)___", "___B___"},
      {"___$(VAR_C)", "___C"},
      {"$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"},
      {"$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"},
      {"$$(VAR_A)_$$(VAR_B)", "$(VAR_A)_$(VAR_B)"},
      {"f000-$$VAR_A", "f000-$VAR_A"},
      {"foo\\$(VAR_C)bar", "foo\\Cbar"},
      {"foo\\\\$(VAR_C)bar", "foo\\\\Cbar"},
      {"foo\\\\\\\\$(VAR_A)bar", "foo\\\\\\\\Abar"},
      {"$(VAR_A$(VAR_B))", "$(VAR_A$(VAR_B))"},
      {"$(VAR_A$(VAR_B)", "$(VAR_A$(VAR_B)"},
      {"$(VAR_REF)", "$(VAR_A)"},
      {"%%$(VAR_REF)--$(VAR_REF)%%", "%%$(VAR_A)--$(VAR_A)%%"},
      {"foo$(VAR_EMPTY)bar", "foobar"},
      {"foo$(VAR_Awhoops!", "foo$(VAR_Awhoops!"},
      {"f00__(VAR_A)__", "f00__(VAR_A)__"},
      {"$?_boo_$!", "$?_boo_$!"},
      {"$VAR_A", "$VAR_A"},
      {"$(VAR_DNE)", "$(VAR_DNE)"},
      {"$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"},
      {"$$$$$$(VAR_A)", "$$$(VAR_A)"},
      {"$$$$$$$(GOOD_ODDS)", "$$$$(GOOD_ODDS)"},
      {"$$$$$$$(VAR_A)", "$$$A"},
      {"$VAR_A)", "$VAR_A)"},
      {"${VAR_A}", "${VAR_A}"},
      {"$(VAR_B)_______$(A", "B_______$(A"},
      {"$(VAR_C)_______$(", "C_______$("},
      {"$(VAR_A)foobarzab$", "Afoobarzab$"},
      {"foo-\\$(VAR_A", "foo-\\$(VAR_A"},
      {"--$($($($($--", "--$($($($($--"},
      {"$($($($($--foo$(", "$($($($($--foo$("},
      {"foo0--$($($($(", "foo0--$($($($("},
      {"$(foo$$var)", "$(foo$$var)"},
      {"\n", "\n"},
      // Beyond Kubernetes' table: an unterminated reference does not swallow
      // the escapes after it.
      {"$(x$$", "$(x$"},
      {"$()", "$()"},
      {"", ""},
      {"$", "$"},
  };
  for (const auto& [in, want] : cases)
    BOOST_TEST(expand_references(in, vars) == want, "input: " << in);
}

// Kubernetes' TestMapReference: each value expands against those before it.
BOOST_AUTO_TEST_CASE(dependent_variables) {
  auto p = sample_pod();
  auto& c = p.spec.containers[0];
  c.env = {plain("FOO", "bar"), plain("ZOO", "$(FOO)-1"), plain("BLU", "$(ZOO)-2"),
           plain("LATER", "$(AFTER)"), plain("AFTER", "x")};
  auto env = resolve_env(p, c, sample_ctx());
  BOOST_REQUIRE(env);
  BOOST_TEST(value_of(*env, "ZOO") == "bar-1");
  BOOST_TEST(value_of(*env, "BLU") == "bar-1-2");
  BOOST_TEST(value_of(*env, "LATER") == "$(AFTER)");  // not yet defined
}

BOOST_AUTO_TEST_CASE(valuefrom_values_are_not_expanded_but_usable) {
  auto p = sample_pod();
  p.metadata.labels["weird"] = "$(FOO)";
  auto& c = p.spec.containers[0];
  c.env = {plain("FOO", "bar"), field("L", "metadata.labels['weird']"), plain("NAME", "pod-$(POD)"),
           field("POD", "metadata.name"), plain("AGAIN", "$(POD)")};
  auto env = resolve_env(p, c, sample_ctx());
  BOOST_REQUIRE(env);
  BOOST_TEST(value_of(*env, "L") == "$(FOO)");
  BOOST_TEST(value_of(*env, "NAME") == "pod-$(POD)");
  BOOST_TEST(value_of(*env, "AGAIN") == "web-0");
}

BOOST_AUTO_TEST_CASE(command_and_args_expand_against_the_whole_env) {
  auto p = sample_pod();
  auto& c = p.spec.containers[0];
  c.command = {"/bin/sh", "-c"};
  c.args = {"echo $(POD_NAME) $$(POD_NAME) $(NOPE) $$HOME"};
  c.env = {field("POD_NAME", "metadata.name")};
  auto env = resolve_env(p, c, sample_ctx());
  BOOST_REQUIRE(env);
  image::image_config img;
  auto argv = container_args(c, img, *env);
  BOOST_REQUIRE(argv);
  BOOST_TEST(*argv == (strings{"/bin/sh", "-c", "echo web-0 $(POD_NAME) $(NOPE) $HOME"}),
             boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(image_entrypoint_and_cmd_are_never_expanded) {
  wire::container c;
  c.name = "x";
  c.env = {plain("A", "1")};
  image::image_config img;
  img.entrypoint = {"/e", "$(A)"};
  img.cmd = {"$(A)"};
  auto argv = container_args(c, img);
  BOOST_REQUIRE(argv);
  BOOST_TEST(*argv == (strings{"/e", "$(A)", "$(A)"}), boost::test_tools::per_element());
  c.args = {"$(A)"};
  argv = container_args(c, img);
  BOOST_REQUIRE(argv);
  BOOST_TEST(*argv == (strings{"/e", "$(A)", "1"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(field_ref_suite)

BOOST_AUTO_TEST_CASE(pod_fields) {
  auto p = sample_pod();
  auto ctx = sample_ctx();
  auto v = [&](const std::string& path) {
    auto r = pod_field_value(p, path, ctx);
    BOOST_REQUIRE_MESSAGE(r.ok(), path << ": " << (r ? "" : r.err().message));
    return *r;
  };
  BOOST_TEST(v("metadata.name") == "web-0");
  BOOST_TEST(v("metadata.namespace") == "prod");
  BOOST_TEST(v("metadata.uid") == "u-123");
  BOOST_TEST(v("metadata.labels['app']") == "web");
  BOOST_TEST(v("metadata.labels['missing']") == "");
  BOOST_TEST(v("metadata.annotations['example.com/note']") == "hi");
  BOOST_TEST(v("spec.nodeName") == "node-1");
  BOOST_TEST(v("spec.serviceAccountName") == "");
  BOOST_TEST(v("status.podIP") == "10.88.0.5");
  BOOST_TEST(v("status.podIPs") == "10.88.0.5");
  BOOST_TEST(v("status.hostIP") == "192.168.1.10");
  BOOST_TEST(v("status.hostIPs") == "192.168.1.10");
  BOOST_TEST(v("metadata.labels") == "app=\"web\"\ntier=\"front \\\"end\\\"\"");
  p.metadata.namespace_.clear();
  BOOST_TEST(v("metadata.namespace") == "default");
}

BOOST_AUTO_TEST_CASE(unsupported_paths_are_errors) {
  auto p = sample_pod();
  auto ctx = sample_ctx();
  auto e1 = pod_field_value(p, "spec.containers", ctx);
  BOOST_REQUIRE(!e1);
  BOOST_TEST(e1.err().message == "unsupported fieldPath: spec.containers");
  auto e2 = pod_field_value(p, "metadata.name['x']", ctx);
  BOOST_REQUIRE(!e2);
  BOOST_TEST(e2.err().message.find("does not support subscript") != std::string::npos);
  BOOST_TEST(!pod_field_value(p, "metadata.labels['bad key!']", ctx));
  // Volumes see only metadata.
  BOOST_TEST(!pod_metadata_field_value(p, "spec.nodeName"));
  BOOST_TEST(!pod_metadata_field_value(p, "status.podIP"));
}

BOOST_AUTO_TEST_CASE(format_map_quotes_like_go) {
  std::map<std::string, std::string> m{
      {"b", "two\nlines"}, {"a", "tab\there"}, {"c", "back\\slash"}, {"d", "\x01"}, {"e", "é"}};
  BOOST_TEST(format_map(m) == "a=\"tab\\there\"\nb=\"two\\nlines\"\nc=\"back\\\\slash\"\n"
                              "d=\"\\x01\"\ne=\"é\"");
  BOOST_TEST(format_map({}) == "");
}

BOOST_AUTO_TEST_CASE(env_with_field_refs) {
  auto p = sample_pod();
  auto& c = p.spec.containers[0];
  c.env = {field("POD_NAME", "metadata.name"), field("POD_IP", "status.podIP"),
           field("NODE", "spec.nodeName"), field("APP", "metadata.labels['app']")};
  auto env = resolve_env(p, c, sample_ctx());
  BOOST_REQUIRE(env);
  BOOST_TEST(value_of(*env, "POD_NAME") == "web-0");
  BOOST_TEST(value_of(*env, "POD_IP") == "10.88.0.5");
  BOOST_TEST(value_of(*env, "NODE") == "node-1");
  BOOST_TEST(value_of(*env, "APP") == "web");
}

BOOST_AUTO_TEST_CASE(bad_field_ref_is_create_container_config_error) {
  auto p = sample_pod();
  auto& c = p.spec.containers[0];
  c.env = {field("X", "spec.bogus")};
  auto env = resolve_env(p, c, sample_ctx());
  BOOST_REQUIRE(!env);
  BOOST_TEST(env.err().message == "CreateContainerConfigError: unsupported fieldPath: spec.bogus");
}

BOOST_AUTO_TEST_CASE(secrets_and_configmaps_do_not_exist) {
  auto p = sample_pod();
  auto& c = p.spec.containers[0];
  c.env = {key_ref("S", true, "s")};
  auto env = resolve_env(p, c, sample_ctx());
  BOOST_REQUIRE(!env);
  BOOST_TEST(env.err().message == "CreateContainerConfigError: secret \"s\" not found");
  BOOST_TEST(static_cast<int>(env.err().code) == static_cast<int>(errc::invalid));
  c.env = {key_ref("C", false, "cm", false)};
  env = resolve_env(p, c, sample_ctx());
  BOOST_REQUIRE(!env);
  BOOST_TEST(env.err().message == "CreateContainerConfigError: configmap \"cm\" not found");
  c.env = {key_ref("S", true, "s", true), key_ref("C", false, "cm", true), plain("A", "1")};
  env = resolve_env(p, c, sample_ctx());
  BOOST_REQUIRE(env);
  BOOST_TEST(value_of(*env, "S") == "<unset>");
  BOOST_TEST(value_of(*env, "C") == "<unset>");
  BOOST_TEST(value_of(*env, "A") == "1");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(resource_field_ref_suite)

std::string resolve_one(wire::pod p, wire::env_var e) {
  auto& c = p.spec.containers[0];
  c.env = {e};
  auto env = resolve_env(p, c, sample_ctx());
  BOOST_REQUIRE_MESSAGE(env.ok(), (env ? "" : env.err().message));
  return value_of(*env, e.name);
}

BOOST_AUTO_TEST_CASE(limits_and_requests_with_divisors) {
  auto p = sample_pod();
  auto& r = p.spec.containers[0].resources;
  r.limits = {{"cpu", "1500m"}, {"memory", "64Mi"}, {"ephemeral-storage", "1G"}};
  r.requests = {{"cpu", "250m"}, {"memory", "32Mi"}};
  BOOST_TEST(resolve_one(p, resource("X", "limits.cpu")) == "2");  // 1.5 rounded up
  BOOST_TEST(resolve_one(p, resource("X", "limits.cpu", "1m")) == "1500");
  BOOST_TEST(resolve_one(p, resource("X", "limits.cpu", "1")) == "2");
  BOOST_TEST(resolve_one(p, resource("X", "requests.cpu")) == "1");
  BOOST_TEST(resolve_one(p, resource("X", "requests.cpu", "1m")) == "250");
  BOOST_TEST(resolve_one(p, resource("X", "limits.memory")) == "67108864");
  BOOST_TEST(resolve_one(p, resource("X", "limits.memory", "1Mi")) == "64");
  BOOST_TEST(resolve_one(p, resource("X", "limits.memory", "1M")) == "68");  // 67.1 up
  BOOST_TEST(resolve_one(p, resource("X", "limits.memory", "1Gi")) == "1");
  BOOST_TEST(resolve_one(p, resource("X", "requests.memory", "1Mi")) == "32");
  BOOST_TEST(resolve_one(p, resource("X", "limits.ephemeral-storage", "1M")) == "1000");
  // A request that is not set is its limit (API defaulting), else 0.
  BOOST_TEST(resolve_one(p, resource("X", "requests.ephemeral-storage", "1M")) == "1000");
  r.limits.erase("ephemeral-storage");
  BOOST_TEST(resolve_one(p, resource("X", "requests.ephemeral-storage")) == "0");
}

BOOST_AUTO_TEST_CASE(unset_limits_are_node_allocatable) {
  auto p = sample_pod();
  BOOST_TEST(resolve_one(p, resource("X", "limits.cpu")) == "4");
  BOOST_TEST(resolve_one(p, resource("X", "limits.cpu", "1m")) == "4000");
  BOOST_TEST(resolve_one(p, resource("X", "limits.memory", "1Gi")) == "8");
  BOOST_TEST(resolve_one(p, resource("X", "limits.ephemeral-storage", "1Gi")) == "100");
  BOOST_TEST(resolve_one(p, resource("X", "requests.cpu")) == "0");
}

BOOST_AUTO_TEST_CASE(other_container_by_name) {
  auto p = sample_pod();
  wire::container side;
  side.name = "side";
  side.resources.limits = {{"memory", "10Mi"}};
  p.spec.containers.push_back(side);
  BOOST_TEST(resolve_one(p, resource("X", "limits.memory", "1Mi", "side")) == "10");
  auto& c = p.spec.containers[0];
  c.env = {resource("X", "limits.memory", "1Mi", "ghost")};
  auto env = resolve_env(p, c, sample_ctx());
  BOOST_REQUIRE(!env);
  BOOST_TEST(env.err().message == "CreateContainerConfigError: container ghost not found");
}

BOOST_AUTO_TEST_CASE(unsupported_resource) {
  auto p = sample_pod();
  auto& c = p.spec.containers[0];
  c.env = {resource("X", "limits.gpu")};
  auto env = resolve_env(p, c, sample_ctx());
  BOOST_REQUIRE(!env);
  BOOST_TEST(env.err().message.rfind("CreateContainerConfigError: ", 0) == 0);
}

BOOST_AUTO_TEST_CASE(node_allocatable_is_read) {
  auto n = read_node_allocatable("/tmp");
  BOOST_TEST(n.cpu_milli >= 1000);
  BOOST_TEST(n.memory_bytes > 0);
  BOOST_TEST(n.ephemeral_storage_bytes > 0);
}

BOOST_AUTO_TEST_SUITE_END()

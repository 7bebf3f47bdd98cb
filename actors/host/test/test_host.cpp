#define BOOST_TEST_MODULE deckhand_host
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <fstream>

#include "deckhand/host/config.hpp"

using namespace deckhand;
namespace fs = std::filesystem;

namespace {

struct parsed {
  int rc;
  host::common_options common;
  std::string node_name;
  int64_t period = 1000;
  std::vector<std::string> extra;
};

parsed parse(std::vector<std::string> args) {
  CLI::App app{"t"};
  parsed p;
  host::add_common_options(app, p.common);
  app.add_option("--node-name", p.node_name);
  app.add_option("--relist-period-ms", p.period);
  app.add_option("--supervisor-arg", p.extra);
  std::vector<char*> argv{const_cast<char*>("t")};
  for (auto& a : args)
    argv.push_back(a.data());
  p.rc = host::parse(app, static_cast<int>(argv.size()), argv.data());
  return p;
}

struct temp_file {
  fs::path path = fs::temp_directory_path() / ("dh-cfg-" + std::to_string(::getpid()) + ".yaml");
  explicit temp_file(const std::string& text) { std::ofstream(path) << text; }
  ~temp_file() { fs::remove(path); }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(config_suite)

BOOST_AUTO_TEST_CASE(camel_case_keys_map_to_flags) {
  BOOST_TEST(host::camel_to_kebab("dataDir") == "data-dir");
  BOOST_TEST(host::camel_to_kebab("relistPeriodMs") == "relist-period-ms");
  BOOST_TEST(host::camel_to_kebab("hostIP") == "host-ip");
  BOOST_TEST(host::camel_to_kebab("podCIDRRange") == "pod-cidr-range");
  BOOST_TEST(host::camel_to_kebab("securePort") == "secure-port");
}

BOOST_AUTO_TEST_CASE(yaml_file_sets_options_and_flags_win) {
  temp_file f("dataDir: /srv/dh\nnodeName: from-file\nrelistPeriodMs: 250\n"
              "supervisorArg: [\"--a=1\", \"--b=2\"]\n");
  auto p = parse({"--config", f.path.string(), "--node-name", "from-flag"});
  BOOST_TEST(p.rc == -1);
  BOOST_TEST(p.common.data_dir == fs::path("/srv/dh"));
  BOOST_TEST(p.node_name == "from-flag");
  BOOST_TEST(p.period == 250);
  BOOST_TEST(p.extra.size() == 2u);
}

BOOST_AUTO_TEST_CASE(bad_config_files_are_errors) {
  temp_file bad_yaml("dataDir: [unclosed\n");
  BOOST_TEST(parse({"--config", bad_yaml.path.string()}).rc > 0);
  temp_file not_a_map("- a\n- b\n");
  BOOST_TEST(parse({"--config", not_a_map.path.string()}).rc > 0);
  temp_file unknown("noSuchOption: 1\n");
  BOOST_TEST(parse({"--config", unknown.path.string()}).rc > 0);
  temp_file wrong_type("relistPeriodMs: soon\n");
  BOOST_TEST(parse({"--config", wrong_type.path.string()}).rc > 0);
  BOOST_TEST(parse({"--config", "/nonexistent/file.yaml"}).rc > 0);
}

BOOST_AUTO_TEST_SUITE_END()

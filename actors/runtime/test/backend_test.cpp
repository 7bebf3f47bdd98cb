#include <boost/test/unit_test.hpp>

#include <chrono>

#include "deckhand/runtime/oci_backend.hpp"
#include "deckhand/runtime/process_backend.hpp"
#include "deckhand/runtime/sandbox_backend.hpp"
#include "deckhand/runtime/supervisor_manager.hpp"

using namespace deckhand;
using namespace deckhand::runtime;
using std::chrono::milliseconds;

BOOST_AUTO_TEST_SUITE(sandbox_backends)

BOOST_AUTO_TEST_CASE(each_backend_name_gives_that_backend) {
  for (const auto& name : sandbox_backend_names()) {
    auto b = make_sandbox_backend(name);
    BOOST_REQUIRE(b);
    BOOST_TEST((*b)->name() == name);
  }
  BOOST_TEST(sandbox_backend_names() == (std::vector<std::string>{"oci", "process", "sim"}));
}

BOOST_AUTO_TEST_CASE(an_unknown_backend_is_refused_with_the_valid_names) {
  auto b = make_sandbox_backend("docker");
  BOOST_REQUIRE(!b);
  BOOST_TEST(static_cast<int>(b.err().code) == static_cast<int>(errc::invalid));
  BOOST_TEST(b.err().message.find("docker") != std::string::npos);
  BOOST_TEST(b.err().message.find("oci, process, sim") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(only_the_sim_backend_runs_without_supervisors) {
  BOOST_TEST((*make_sandbox_backend("oci"))->runs_supervisors());
  BOOST_TEST((*make_sandbox_backend("process"))->runs_supervisors());
  BOOST_TEST(!(*make_sandbox_backend("sim"))->runs_supervisors());
}

BOOST_AUTO_TEST_CASE(process_backend_runs_through_deckhand_process_oci) {
  runtime_options opts;
  process_backend{}.configure(opts);
  BOOST_TEST(opts.oci_runtime.find("deckhand-process-oci") != std::string::npos);
  // An OCI runtime given on purpose is kept.
  runtime_options crun;
  crun.oci_runtime = "crun";
  process_backend{}.configure(crun);
  BOOST_TEST(crun.oci_runtime == "crun");
  runtime_options oci;
  oci_backend{}.configure(oci);
  BOOST_TEST(oci.oci_runtime == "runc");
}

BOOST_AUTO_TEST_CASE(process_backend_refuses_volume_mounts) {
  wire::container c;
  c.name = "main";
  BOOST_TEST(!process_backend{}.check_container(c));
  BOOST_TEST(!oci_backend{}.check_container(c));
  wire::volume_mount m;
  m.name = "data";
  m.mount_path = "/data";
  c.volume_mounts.push_back(m);
  auto err = process_backend{}.check_container(c);
  BOOST_TEST(static_cast<int>(err.code) == static_cast<int>(errc::unsupported));
  BOOST_TEST(!oci_backend{}.check_container(c));
}

BOOST_AUTO_TEST_CASE(process_backend_bundles_use_the_image_rootfs_and_no_cgroup) {
  oci::bundle_spec spec;
  spec.cgroups_path = "/deckhand/pod";
  BOOST_TEST(!process_backend{}.join_pod(spec, wire::container{}, pod_shared{}));
  BOOST_TEST(spec.host_network);
  BOOST_TEST(!spec.cgroups_path.has_value());
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(supervisor_restarts)

BOOST_AUTO_TEST_CASE(restart_delays_double_from_200ms_to_10s) {
  common::backoff b(supervisor_restart_policy);
  std::vector<long> got;
  for (int i = 0; i < 8; ++i)
    got.push_back(static_cast<long>(b.next().count()));
  BOOST_TEST(got == (std::vector<long>{200, 400, 800, 1600, 3200, 6400, 10000, 10000}));
}

BOOST_AUTO_TEST_CASE(a_supervisor_that_ran_10s_starts_the_schedule_over) {
  common::backoff b(supervisor_restart_policy);
  b.next();
  b.next();
  BOOST_TEST(b.next_after_run(milliseconds(9'999)).count() == 800);
  BOOST_TEST(b.next_after_run(milliseconds(10'000)).count() == 200);
}

BOOST_AUTO_TEST_SUITE_END()

#include <boost/test/unit_test.hpp>

#include <vector>

#include "deckhand/image/reference.hpp"
#include "fixtures.hpp"

using namespace deckhand;
using namespace deckhand::image;

namespace {
std::string norm(const std::string& s) {
  auto r = normalize_reference(s);
  return r.ok() ? *r : "ERROR: " + r.err().message;
}
const std::string digest = "sha256:" + std::string(64, 'a');
}  // namespace

BOOST_AUTO_TEST_SUITE(reference_suite)

BOOST_AUTO_TEST_CASE(docker_defaults) {
  BOOST_TEST(norm("busybox") == "docker.io/library/busybox:latest");
  BOOST_TEST(norm("busybox:1.36") == "docker.io/library/busybox:1.36");
  BOOST_TEST(norm("library/busybox") == "docker.io/library/busybox:latest");
  BOOST_TEST(norm("docker.io/busybox") == "docker.io/library/busybox:latest");
  BOOST_TEST(norm("index.docker.io/library/busybox:1") == "docker.io/library/busybox:1");
  BOOST_TEST(norm("someone/app") == "docker.io/someone/app:latest");
}

BOOST_AUTO_TEST_CASE(other_registries_kept) {
  BOOST_TEST(norm("localhost:5000/x:1") == "localhost:5000/x:1");
  BOOST_TEST(norm("localhost/x") == "localhost/x:latest");
  BOOST_TEST(norm("quay.io/a/b/c:v1.2-rc_3") == "quay.io/a/b/c:v1.2-rc_3");
  BOOST_TEST(norm("registry.k8s.io/pause:3.9") == "registry.k8s.io/pause:3.9");
}

BOOST_AUTO_TEST_CASE(digests) {
  BOOST_TEST(norm("busybox@" + digest) == "docker.io/library/busybox@" + digest);
  BOOST_TEST(norm("busybox:1@" + digest) == "docker.io/library/busybox:1@" + digest);
  BOOST_TEST(norm("localhost:5000/x@" + digest) == "localhost:5000/x@" + digest);
  auto r = parse_reference("busybox@" + digest);
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(r->tag.empty());
  BOOST_TEST(r->digest == digest);
  BOOST_TEST(r->repository() == "docker.io/library/busybox");
  BOOST_TEST(is_sha256_digest(digest));
  BOOST_TEST(!is_sha256_digest("sha256:abc"));
  BOOST_TEST(!is_sha256_digest("sha256:" + std::string(64, 'A')));
}

BOOST_AUTO_TEST_CASE(rejects_malformed) {
  for (const std::string& bad : std::vector<std::string>{
           "", "Busybox", "busybox:", "busybox@sha256:1234", "busybox@md5:" + std::string(32, 'a'),
           ":tag", "a//b", "a/", "busy box", "-x", "x:" + std::string(200, 't'),
           "localhost:5000/X:1", "busybox:t@g"}) {
    auto r = normalize_reference(bad);
    BOOST_TEST(!r.ok(), "accepted: " << bad);
    if (!r.ok())
      BOOST_TEST(r.err().code == errc::invalid);
  }
}

BOOST_AUTO_TEST_SUITE_END()

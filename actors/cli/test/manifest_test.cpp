#include <boost/test/unit_test.hpp>

#include "deckhand/api/manifest.hpp"
#include "deckhand/cli/commands.hpp"

using namespace deckhand::cli;
using deckhand::api::parse_manifests;
using nlohmann::json;

BOOST_AUTO_TEST_SUITE(manifest)

BOOST_AUTO_TEST_CASE(the_embedded_demo_manifest_is_a_valid_pod) {
  auto objs = parse_manifests(demo_manifest(), "demo");
  BOOST_REQUIRE(objs.ok());
  BOOST_REQUIRE_EQUAL(objs->size(), 1u);
  BOOST_CHECK_EQUAL((*objs)[0].kind, "Pod");
  BOOST_CHECK((*objs)[0].object["spec"]["containers"][0]["image"] == json(demo_image_name));
}

BOOST_AUTO_TEST_CASE(apply_compares_with_the_last_applied_configuration) {
  auto objs =
      parse_manifests("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n"
                      "  - name: c\n    image: busybox\n",
                      "p.yaml");
  BOOST_REQUIRE(objs.ok());
  const auto& obj = objs->front();
  auto body = apply_body(obj, "default");
  BOOST_CHECK(body["metadata"]["namespace"] == json("default"));
  // What the server stores: the body plus defaults and status.
  auto stored = body;
  stored["spec"]["restartPolicy"] = "Always";
  stored["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent";
  stored["status"]["phase"] = "Running";
  BOOST_CHECK(apply_unchanged(obj, stored));

  auto changed =
      parse_manifests("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n"
                      "  - name: c\n    image: busybox:2\n",
                      "p.yaml");
  BOOST_REQUIRE(changed.ok());
  BOOST_CHECK(!apply_unchanged(changed->front(), stored));

  // Created without kubectl's annotation: compare the fields the manifest sets.
  auto bare = stored;
  bare["metadata"].erase("annotations");
  BOOST_CHECK(apply_unchanged(obj, bare));
  BOOST_CHECK(!apply_unchanged(changed->front(), bare));
}

BOOST_AUTO_TEST_CASE(cri_log_lines_are_reduced_to_their_message) {
  std::string partial;
  auto out = decode_log_chunk("2024-05-01T10:00:00.123456789Z stdout F hello\n"
                              "2024-05-01T10:00:01Z stderr P part one \n"
                              "2024-05-01T10:00:01Z stderr F and two\n"
                              "plain line\n"
                              "2024-05-01T10:00:02Z stdout F unfini",
                              partial, false);
  BOOST_CHECK_EQUAL(out, "hello\npart one and two\nplain line\n");
  BOOST_CHECK_EQUAL(partial, "2024-05-01T10:00:02Z stdout F unfini");
  out = decode_log_chunk("shed\n", partial, false);
  BOOST_CHECK_EQUAL(out, "unfinished\n");
  out = decode_log_chunk("tail without newline", partial, true);
  BOOST_CHECK_EQUAL(out, "tail without newline");
  BOOST_CHECK(partial.empty());
}

BOOST_AUTO_TEST_SUITE_END()

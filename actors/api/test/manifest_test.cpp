#include <boost/test/unit_test.hpp>

#include "deckhand/api/manifest.hpp"
#include "deckhand/api/yaml.hpp"

using namespace deckhand::api;
using nlohmann::json;

BOOST_AUTO_TEST_SUITE(manifest)

BOOST_AUTO_TEST_CASE(multi_document_yaml_yields_every_object) {
  auto text = R"(
apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: team
spec:
  containers:
  - name: c
    image: busybox
    ports:
    - containerPort: 80
---
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  ports:
  - port: 80
    targetPort: "8080"
)";
  auto objs = parse_manifests(text, "web.yaml");
  BOOST_REQUIRE(objs.ok());
  BOOST_REQUIRE_EQUAL(objs->size(), 2u);
  BOOST_CHECK_EQUAL((*objs)[0].kind, "Pod");
  BOOST_CHECK_EQUAL((*objs)[0].resource, "pods");
  BOOST_CHECK_EQUAL((*objs)[0].name, "web");
  BOOST_CHECK_EQUAL((*objs)[0].namespace_, "team");
  BOOST_CHECK_EQUAL((*objs)[1].kind, "Service");
  BOOST_CHECK_EQUAL((*objs)[1].resource, "services");
  BOOST_CHECK_EQUAL((*objs)[1].namespace_, "");
  // Plain 80 is a number, quoted "8080" stays a string.
  const auto& pod = (*objs)[0].object;
  BOOST_CHECK(pod["spec"]["containers"][0]["ports"][0]["containerPort"] == json(80));
  const auto& svc = (*objs)[1].object;
  BOOST_CHECK(svc["spec"]["ports"][0]["targetPort"] == json("8080"));
}

BOOST_AUTO_TEST_CASE(yaml_scalars_are_typed_like_kubernetes) {
  auto docs = parse_documents("a: true\nb: 'true'\nc: ~\nd: 1.5\ne: 0x1F\nf: hello\n"
                              "g: \"42\"\nh: -7\ni: 12abc\nj: \"\"\n",
                              "x");
  BOOST_REQUIRE(docs.ok());
  BOOST_REQUIRE_EQUAL(docs->size(), 1u);
  const auto& d = docs->front();
  BOOST_CHECK(d["a"] == json(true));
  BOOST_CHECK(d["b"] == json("true"));
  BOOST_CHECK(d["c"].is_null());
  BOOST_CHECK(d["d"] == json(1.5));
  BOOST_CHECK(d["e"] == json(31));
  BOOST_CHECK(d["f"] == json("hello"));
  BOOST_CHECK(d["g"] == json("42"));
  BOOST_CHECK(d["h"] == json(-7));
  BOOST_CHECK(d["i"] == json("12abc"));
  BOOST_CHECK(d["j"] == json(""));
}

BOOST_AUTO_TEST_CASE(json_input_and_json_streams_are_accepted) {
  auto objs = parse_manifests(
      R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}
       {"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"}})",
      "pods.json");
  BOOST_REQUIRE(objs.ok());
  BOOST_REQUIRE_EQUAL(objs->size(), 2u);
  BOOST_CHECK_EQUAL((*objs)[1].name, "b");
}

BOOST_AUTO_TEST_CASE(a_list_is_expanded_into_its_items) {
  auto objs = parse_manifests(R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata: {name: a}
- apiVersion: v1
  kind: Service
  metadata: {name: b}
)",
                              "list.yaml");
  BOOST_REQUIRE(objs.ok());
  BOOST_REQUIRE_EQUAL(objs->size(), 2u);
  BOOST_CHECK_EQUAL((*objs)[1].kind, "Service");
}

BOOST_AUTO_TEST_CASE(bad_yaml_in_any_document_rejects_the_whole_file) {
  auto objs = parse_manifests(R"(apiVersion: v1
kind: Pod
metadata:
  name: fine
---
apiVersion: v1
kind: Pod
metadata:
  name: [broken
)",
                              "bad.yaml");
  BOOST_REQUIRE(!objs.ok());
  const auto& msg = objs.err().message;
  BOOST_TEST_MESSAGE(msg);
  BOOST_CHECK(msg.find("error parsing bad.yaml: error converting YAML to JSON: yaml: line") == 0);
}

BOOST_AUTO_TEST_CASE(unknown_kind_is_reported_like_kubectl) {
  auto objs =
      parse_manifests("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\n", "d.yaml");
  BOOST_REQUIRE(!objs.ok());
  BOOST_CHECK_EQUAL(objs.err().message,
                    "no matches for kind \"Deployment\" in version \"apps/v1\"");
  auto wrong_version =
      parse_manifests("apiVersion: v2\nkind: Pod\nmetadata: {name: p}\n", "p.yaml");
  BOOST_REQUIRE(!wrong_version.ok());
  BOOST_CHECK_EQUAL(wrong_version.err().message, "no matches for kind \"Pod\" in version \"v2\"");
}

BOOST_AUTO_TEST_CASE(missing_api_version_or_kind_fails_validation) {
  auto objs = parse_manifests("kind: Pod\nmetadata:\n  name: p\n", "p.yaml");
  BOOST_REQUIRE(!objs.ok());
  BOOST_CHECK(objs.err().message.find(
                  "error validating \"p.yaml\": error validating data: apiVersion not set") == 0);
  auto both = parse_manifests("metadata:\n  name: p\n", "p.yaml");
  BOOST_REQUIRE(!both.ok());
  BOOST_CHECK(both.err().message.find("[apiVersion not set, kind not set]") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(missing_name_and_non_object_documents_fail) {
  BOOST_CHECK(!parse_manifests("apiVersion: v1\nkind: Pod\n", "p.yaml").ok());
  auto scalar = parse_manifests("just a string\n", "s.yaml");
  BOOST_REQUIRE(!scalar.ok());
  BOOST_CHECK(scalar.err().message.find("cannot unmarshal string") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(empty_input_has_no_objects) {
  auto objs = parse_manifests("---\n# nothing\n---\n", "e.yaml");
  BOOST_REQUIRE(objs.ok());
  BOOST_CHECK(objs->empty());
}

BOOST_AUTO_TEST_CASE(deep_nesting_is_an_error_not_a_crash) {
  std::string text = "a: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  BOOST_CHECK(!parse_documents(text, "deep.yaml").ok());
}

BOOST_AUTO_TEST_CASE(yaml_output_round_trips) {
  json obj = json::parse(R"({"apiVersion":"v1","kind":"Pod",
    "metadata":{"name":"p","labels":{"app":"web","version":"1.0"},
    "creationTimestamp":"2024-05-01T10:00:00Z"},
    "spec":{"containers":[{"name":"c","args":["-c","echo hi: there",""],
    "ports":[{"containerPort":80}]}],"nodeSelector":{},"tolerations":[]},
    "status":{"phase":"Running","ready":true,"note":"null"}})");
  auto text = to_yaml(obj);
  BOOST_TEST_MESSAGE(text);
  BOOST_CHECK(text.find("apiVersion: v1\n") != std::string::npos);
  BOOST_CHECK(text.find("  containers:\n  - args:\n") != std::string::npos);
  BOOST_CHECK(text.find("creationTimestamp: \"2024-05-01T10:00:00Z\"\n") != std::string::npos);
  auto back = parse_documents(text, "out.yaml");
  BOOST_REQUIRE(back.ok());
  BOOST_REQUIRE_EQUAL(back->size(), 1u);
  BOOST_CHECK_EQUAL(back->front().dump(), obj.dump());
}

BOOST_AUTO_TEST_CASE(resource_names_as_kubectl_accepts_them) {
  for (auto n : {"pod", "pods", "po"})
    BOOST_CHECK_EQUAL(resource_collection(n), "pods");
  for (auto n : {"service", "services", "svc"})
    BOOST_CHECK_EQUAL(resource_collection(n), "services");
  BOOST_CHECK_EQUAL(resource_collection("deployments"), "");
}

BOOST_AUTO_TEST_CASE(collections_map_to_kinds_and_versions) {
  BOOST_CHECK_EQUAL(collection_kind("pods"), "Pod");
  BOOST_CHECK_EQUAL(collection_kind("endpointslices"), "EndpointSlice");
  BOOST_CHECK_EQUAL(collection_api_version("endpointslices"), "discovery.k8s.io/v1");
  BOOST_CHECK_EQUAL(collection_api_version("pods"), "v1");
}

BOOST_AUTO_TEST_SUITE_END()

#include <boost/test/unit_test.hpp>

#include "deckhand/apiserver/selectors.hpp"

using deckhand::apiserver::parse_field_selector;
using deckhand::apiserver::parse_label_selector;
using nlohmann::json;

BOOST_AUTO_TEST_SUITE(selectors_suite)

BOOST_AUTO_TEST_CASE(label_selector_operators) {
  json labels = {{"app", "web"}, {"tier", "front"}};
  auto m = [&](const std::string& sel) {
    auto s = parse_label_selector(sel);
    BOOST_REQUIRE_MESSAGE(s.ok(), sel);
    return s->matches(labels);
  };
  BOOST_TEST(m(""));
  BOOST_TEST(m("app=web"));
  BOOST_TEST(m("app==web"));
  BOOST_TEST(!m("app=db"));
  BOOST_TEST(m("app=web,tier!=back"));
  BOOST_TEST(!m("app=web,tier!=front"));
  BOOST_TEST(m("app in (db, web)"));
  BOOST_TEST(!m("app notin (db,web)"));
  BOOST_TEST(m("app in (web),tier"));
  BOOST_TEST(m("!missing"));
  BOOST_TEST(!m("missing"));
  BOOST_TEST(m("missing!=x"));
  BOOST_TEST(!parse_label_selector("app in (a").ok());
  BOOST_TEST(!parse_label_selector("a=b,,c=d").ok());
  BOOST_TEST(!parse_label_selector("bad key=x").ok());
}

BOOST_AUTO_TEST_CASE(field_selector_paths) {
  json pod = {{"metadata", {{"name", "p"}, {"namespace", "ns"}}},
              {"spec", {{"nodeName", "n1"}}},
              {"status", {{"phase", "Running"}}}};
  std::set<std::string> allowed = {"metadata.name", "spec.nodeName", "status.phase"};
  auto s = parse_field_selector("spec.nodeName=n1,status.phase!=Failed", allowed);
  BOOST_REQUIRE(s.ok());
  BOOST_TEST(s->matches(pod));
  auto unbound = parse_field_selector("spec.nodeName=", allowed);
  BOOST_REQUIRE(unbound.ok());
  BOOST_TEST(!unbound->matches(pod));
  auto bad = parse_field_selector("spec.foo=x", allowed);
  BOOST_REQUIRE(!bad.ok());
  BOOST_TEST(bad.err().message == "field label not supported: spec.foo");
}

BOOST_AUTO_TEST_SUITE_END()

#include <sstream>
#include <string>
#include <vector>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/ostream_sink.h>

#include "deckhand/common/log.hpp"

namespace {

/// Logs `lines` through the JSON formatter and returns what it wrote, one
/// entry per output line.
std::vector<std::string> json_lines(const std::vector<std::string>& lines) {
  std::ostringstream out;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
  spdlog::logger logger{"kubelet", sink};
  logger.set_formatter(deckhand::log::make_json_formatter());
  for (const auto& line : lines)
    logger.info("{}", line);
  std::vector<std::string> result;
  std::istringstream in{out.str()};
  for (std::string l; std::getline(in, l);)
    result.push_back(l);
  return result;
}

nlohmann::json one(const std::string& line) {
  auto lines = json_lines({line});
  BOOST_REQUIRE_EQUAL(lines.size(), 1u);
  return nlohmann::json::parse(lines[0]);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(json_logs)

BOOST_AUTO_TEST_CASE(every_line_is_one_json_object_with_the_fields_as_members) {
  std::vector<std::string> lines{
      R"(ns=default pod=web uid=1234 msg="pod started" containers=2)",
      R"(msg="stopping" signal=15)",
      R"(container=app msg="preStop hook failed" error="exec "/bin/stop" failed: exit 1")",
      "msg=\"multi\nline\ttext\"",
      R"(plain words without pairs)",
      R"(msg="")",
  };
  auto out = json_lines(lines);
  BOOST_REQUIRE_EQUAL(out.size(), lines.size());
  for (const auto& l : out) {
    nlohmann::json j;
    BOOST_REQUIRE_NO_THROW(j = nlohmann::json::parse(l));
    BOOST_TEST(j.is_object());
    BOOST_TEST(j.at("level") == "info");
    BOOST_TEST(j.at("component") == "kubelet");
    BOOST_TEST(j.at("ts").get<std::string>().back() == 'Z');
    BOOST_TEST(j.at("pid").is_number_integer());
    BOOST_TEST(j.contains("msg"));
  }
  auto first = nlohmann::json::parse(out[0]);
  BOOST_TEST(first.at("ns") == "default");
  BOOST_TEST(first.at("pod") == "web");
  BOOST_TEST(first.at("uid") == "1234");
  BOOST_TEST(first.at("msg") == "pod started");
  BOOST_TEST(first.at("containers") == "2");
  BOOST_TEST(nlohmann::json::parse(out[3]).at("msg") == "multi\nline\ttext");
  BOOST_TEST(nlohmann::json::parse(out[4]).at("msg") == "plain words without pairs");
  BOOST_TEST(nlohmann::json::parse(out[5]).at("msg") == "");
}

BOOST_AUTO_TEST_CASE(values_keep_spaces_quotes_and_equals_signs) {
  auto j = one(R"(msg="a = b" error="open "x y": denied" path="/a b/c=d" k=v)");
  BOOST_TEST(j.at("msg") == "a = b");
  BOOST_TEST(j.at("error") == R"(open "x y": denied)");
  BOOST_TEST(j.at("path") == "/a b/c=d");
  BOOST_TEST(j.at("k") == "v");
}

BOOST_AUTO_TEST_CASE(escaped_quotes_and_backslashes_are_unescaped) {
  auto j = one(R"(msg="say \"hi\"" dir="C:\\tmp" raw="a\nb")");
  BOOST_TEST(j.at("msg") == R"(say "hi")");
  BOOST_TEST(j.at("dir") == R"(C:\tmp)");
  BOOST_TEST(j.at("raw") == R"(a\nb)");
}

BOOST_AUTO_TEST_CASE(reserved_and_repeated_names_do_not_clash) {
  auto j = one(R"(level=x msg="first" msg="second" stray words)");
  BOOST_TEST(j.at("level") == "info");
  BOOST_TEST(j.at("level_") == "x");
  BOOST_TEST(j.at("msg") == "first");
  BOOST_TEST(j.at("msg_") == "second");
  BOOST_TEST(j.at("text") == "stray words");
}

BOOST_AUTO_TEST_CASE(parse_fields_returns_the_pairs_in_order) {
  auto fields = deckhand::log::parse_fields(R"(a=1 b="two words")");
  BOOST_REQUIRE_EQUAL(fields.size(), 2u);
  BOOST_TEST(fields[0].first == "a");
  BOOST_TEST(fields[1].second == "two words");
}

BOOST_AUTO_TEST_SUITE_END()

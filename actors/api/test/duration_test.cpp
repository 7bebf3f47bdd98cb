#include <boost/test/unit_test.hpp>

#include "deckhand/api/duration.hpp"

using namespace deckhand::api;
using namespace std::chrono;

BOOST_AUTO_TEST_SUITE(durations)

BOOST_AUTO_TEST_CASE(parses_go_durations) {
  BOOST_TEST(parse_duration("300ms")->count() == 300'000'000);
  BOOST_TEST(*parse_duration("1.5h") == minutes(90));
  BOOST_TEST(*parse_duration("2h45m") == minutes(165));
  BOOST_TEST(*parse_duration("-1.5s") == milliseconds(-1500));
  BOOST_TEST(*parse_duration("0") == nanoseconds(0));
  BOOST_TEST(*parse_duration("+5s") == seconds(5));
  BOOST_TEST(*parse_duration("1us") == microseconds(1));
  BOOST_TEST(*parse_duration("1\u00b5s") == microseconds(1));
  BOOST_TEST(*parse_duration("1\u03bcs") == microseconds(1));
  BOOST_TEST(*parse_duration("7ns") == nanoseconds(7));
  BOOST_TEST(*parse_duration(".5s") == milliseconds(500));
  BOOST_TEST(*parse_duration("1h1m1s") == seconds(3661));
  BOOST_TEST(*parse_duration("2562047h47m16.854775807s") == nanoseconds(INT64_MAX));
}

BOOST_AUTO_TEST_CASE(errors_carry_go_wording) {
  BOOST_TEST(parse_duration("").err().message == "time: invalid duration \"\"");
  BOOST_TEST(parse_duration("1").err().message == "time: missing unit in duration \"1\"");
  BOOST_TEST(parse_duration("1d").err().message == "time: unknown unit \"d\" in duration \"1d\"");
  BOOST_TEST(parse_duration("five").err().message == "time: invalid duration \"five\"");
  BOOST_TEST(!parse_duration(".s").ok());
  BOOST_TEST(!parse_duration("-").ok());
  BOOST_TEST(!parse_duration("9999999999h").ok());
}

BOOST_AUTO_TEST_CASE(formats_like_go) {
  BOOST_TEST(format_duration(nanoseconds(0)) == "0s");
  BOOST_TEST(format_duration(milliseconds(1500)) == "1.5s");
  BOOST_TEST(format_duration(minutes(165)) == "2h45m0s");
  BOOST_TEST(format_duration(milliseconds(300)) == "300ms");
  BOOST_TEST(format_duration(microseconds(1500)) == "1.5ms");
  BOOST_TEST(format_duration(microseconds(1)) == "1\u00b5s");
  BOOST_TEST(format_duration(nanoseconds(7)) == "7ns");
  BOOST_TEST(format_duration(seconds(-90)) == "-1m30s");
  BOOST_TEST(format_duration(hours(1)) == "1h0m0s");
  BOOST_TEST(format_duration(milliseconds(10)) == "10ms");
  BOOST_TEST(format_duration(minutes(5)) == "5m0s");
  for (const char* text : {"1h2m3.5s", "300ms", "1.5s", "-2m0s", "5m0s"})
    BOOST_TEST(format_duration(*parse_duration(text)) == text);
}

BOOST_AUTO_TEST_SUITE_END()

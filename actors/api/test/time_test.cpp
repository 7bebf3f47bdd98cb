#include <boost/test/unit_test.hpp>

#include "deckhand/api/time.hpp"

using namespace deckhand::api;
using namespace std::chrono;

BOOST_AUTO_TEST_SUITE(rfc3339)

BOOST_AUTO_TEST_CASE(formats_as_metav1_time_and_micro_time) {
  deckhand::api::time_point t =
      system_clock::from_time_t(1714564800) + microseconds(123456) + nanoseconds(700);
  BOOST_TEST(format_rfc3339(t) == "2024-05-01T12:00:00Z");
  BOOST_TEST(format_rfc3339_micro(t) == "2024-05-01T12:00:00.123456Z");
  BOOST_TEST(format_rfc3339_nano(t) == "2024-05-01T12:00:00.1234567Z");
  deckhand::api::time_point whole = system_clock::from_time_t(1714564800);
  BOOST_TEST(format_rfc3339_nano(whole) == "2024-05-01T12:00:00Z");
  BOOST_TEST(format_rfc3339_micro(whole) == "2024-05-01T12:00:00.000000Z");
  BOOST_TEST(format_rfc3339(system_clock::from_time_t(0)) == "1970-01-01T00:00:00Z");
  BOOST_TEST(format_rfc3339(system_clock::from_time_t(951782400)) == "2000-02-29T00:00:00Z");
  BOOST_TEST(format_rfc3339(system_clock::from_time_t(-1)) == "1969-12-31T23:59:59Z");
}

BOOST_AUTO_TEST_CASE(parses_what_it_formats_and_offsets) {
  auto t = parse_rfc3339("2024-05-01T12:00:00.123456Z");
  BOOST_REQUIRE(t.ok());
  BOOST_TEST(format_rfc3339_micro(*t) == "2024-05-01T12:00:00.123456Z");
  auto offset = parse_rfc3339("2024-05-01T14:00:00+02:00");
  BOOST_REQUIRE(offset.ok());
  BOOST_TEST(format_rfc3339(*offset) == "2024-05-01T12:00:00Z");
  BOOST_TEST(parse_rfc3339("2000-02-29T00:00:00Z").ok());
  for (const char* bad :
       {"", "2024-05-01", "2024-05-01T12:00:00", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
        "2024-05-01T12:00:00.Z", "2024-05-01T12:00:00Zjunk", "2024-05-01 12:00:00Z"}) {
    BOOST_TEST_INFO(bad);
    BOOST_TEST(!parse_rfc3339(bad).ok());
  }
}

BOOST_AUTO_TEST_SUITE_END()

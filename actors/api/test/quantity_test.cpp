#include <boost/test/unit_test.hpp>

#include "deckhand/api/quantity.hpp"

using namespace deckhand;
using namespace deckhand::api;

namespace {

quantity q(const char* text) {
  auto r = quantity::parse(text);
  BOOST_REQUIRE_MESSAGE(r.ok(), text);
  return *r;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(quantities)

BOOST_AUTO_TEST_CASE(suffixes_and_exponents_give_exact_values) {
  BOOST_TEST(*quantity_value("64Mi") == 67108864);
  BOOST_TEST(*quantity_value("1G") == 1000000000);
  BOOST_TEST(*quantity_value("1e3") == 1000);
  BOOST_TEST(*quantity_value("1E3") == 1000);
  BOOST_TEST(*quantity_value("128974848") == 128974848);
  BOOST_TEST(*quantity_value("1Ei") == int64_t{1} << 60);
  BOOST_TEST(*quantity_value("2k") == 2000);
  BOOST_TEST(*quantity_value("1.5Gi") == int64_t{3} << 29);
  BOOST_TEST(*quantity_milli_value("100m") == 100);
  BOOST_TEST(*quantity_milli_value("0.1") == 100);
  BOOST_TEST(*quantity_milli_value("2") == 2000);
  BOOST_TEST(*quantity_milli_value("250u") == 1);
  BOOST_TEST(*quantity_milli_value("12e-3") == 12);
  BOOST_TEST(*quantity_milli_value("-1.5") == -1500);
  BOOST_TEST(*quantity_value("+3") == 3);
}

BOOST_AUTO_TEST_CASE(value_and_milli_value_round_up_away_from_zero) {
  BOOST_TEST(*quantity_value("0.5") == 1);
  BOOST_TEST(*quantity_value("1001m") == 2);
  BOOST_TEST(*quantity_milli_value("1n") == 1);
  BOOST_TEST(*quantity_value("-0.5") == -1);
  BOOST_TEST(*quantity_value("0") == 0);
  BOOST_TEST(*quantity_value("0.000Gi") == 0);
}

BOOST_AUTO_TEST_CASE(quantities_compare_by_value) {
  BOOST_TEST((q("1Gi") == q("1024Mi")));
  BOOST_TEST((q("1Gi") == q("1073741824")));
  BOOST_TEST((q("0.5") == q("500m")));
  BOOST_TEST((q("1G") == q("1000M")));
  BOOST_TEST((q("1G") < q("1Gi")));
  BOOST_TEST((q("100m") > q("99999u")));
  BOOST_TEST((q("1e3") == q("1k")));
  auto sum = q("512Mi");
  sum += q("512Mi");
  BOOST_TEST((sum == q("1Gi")));
}

BOOST_AUTO_TEST_CASE(bad_input_is_a_clear_error) {
  for (const char* bad :
       {"", "abc", "1.2.3", "Mi", "1 Mi", "10MB", "1K", "1e", "1e+", "1ex", "."}) {
    auto r = quantity::parse(bad);
    BOOST_TEST_INFO(bad);
    BOOST_TEST(!r.ok());
    if (!r.ok()) {
      BOOST_TEST(r.err().code == errc::invalid);
      BOOST_TEST(r.err().message.find("quantity \"" + std::string(bad) + "\" is not valid") == 0);
    }
  }
  BOOST_TEST(!quantity::parse(std::string(65, '1')).ok());
}

BOOST_AUTO_TEST_CASE(values_beyond_int64_are_too_large) {
  auto r = quantity_value("16Ei");
  BOOST_REQUIRE(!r.ok());
  BOOST_TEST(r.err().code == errc::too_large);
  BOOST_TEST(r.err().message == "quantity \"16Ei\" is too large");
  BOOST_TEST(!quantity_milli_value("10E").ok());
  BOOST_TEST(quantity::parse("16Ei").ok());
}

BOOST_AUTO_TEST_SUITE_END()

// Moved from deckhand_oci's tests with the parser.
BOOST_AUTO_TEST_SUITE(quantities_as_kubernetes)

BOOST_AUTO_TEST_CASE(milli_values_follow_kubernetes) {
  auto m = [](const std::string& s) {
    auto r = quantity_milli_value(s);
    BOOST_REQUIRE_MESSAGE(r.ok(), s << ": " << (r ? "" : r.err().message));
    return *r;
  };
  BOOST_TEST(m("100m") == 100);
  BOOST_TEST(m("0.5") == 500);
  BOOST_TEST(m(".5") == 500);
  BOOST_TEST(m("2") == 2000);
  BOOST_TEST(m("1.5") == 1500);
  BOOST_TEST(m("250m") == 250);
  BOOST_TEST(m("1e3") == 1000000);
  BOOST_TEST(m("1E-3") == 1);
  BOOST_TEST(m("1n") == 1);     // rounds up
  BOOST_TEST(m("1500u") == 2);  // 1.5m rounds up
  BOOST_TEST(m("0") == 0);
  BOOST_TEST(m("0.0001") == 1);
  BOOST_TEST(m("+3") == 3000);
  BOOST_TEST(m("-1") == -1000);
}

BOOST_AUTO_TEST_CASE(values_follow_kubernetes) {
  auto v = [](const std::string& s) {
    auto r = quantity_value(s);
    BOOST_REQUIRE_MESSAGE(r.ok(), s << ": " << (r ? "" : r.err().message));
    return *r;
  };
  BOOST_TEST(v("64Mi") == 64ll << 20);
  BOOST_TEST(v("16Mi") == 16ll << 20);
  BOOST_TEST(v("1Gi") == 1ll << 30);
  BOOST_TEST(v("1.5Gi") == 3ll << 29);
  BOOST_TEST(v("1Ki") == 1024);
  BOOST_TEST(v("1Ei") == 1ll << 60);
  BOOST_TEST(v("1G") == 1000000000);
  BOOST_TEST(v("1M") == 1000000);
  BOOST_TEST(v("1k") == 1000);
  BOOST_TEST(v("1T") == 1000000000000ll);
  BOOST_TEST(v("1e3") == 1000);
  BOOST_TEST(v("1E3") == 1000);
  BOOST_TEST(v("1e+3") == 1000);
  BOOST_TEST(v("128974848") == 128974848);
  BOOST_TEST(v("129e6") == 129000000);
  BOOST_TEST(v("123Mi") == 123ll << 20);
  BOOST_TEST(v("0.5") == 1);  // Value() rounds up
  BOOST_TEST(v("500m") == 1);
  BOOST_TEST(v("1E") == 1000000000000000000ll);  // exa, not an exponent
  BOOST_TEST(v("9223372036854775807") == 9223372036854775807ll);
}

BOOST_AUTO_TEST_CASE(garbage_is_rejected_clearly) {
  for (std::string bad : {"", "abc", "1.2.3", "1Qi", "--1", "1 Mi", "Mi", ".", "1e", "1e+", "1ee3",
                          "1mi", "1KI", "0x10", "1,5", "1m5", "NaN", "inf"}) {
    auto r = quantity_value(bad);
    BOOST_TEST_CONTEXT("\"" << bad << "\"") {
      BOOST_REQUIRE(!r.ok());
      BOOST_TEST(r.err().code == errc::invalid);
      BOOST_TEST(r.err().message.find("quantity") != std::string::npos);
    }
  }
  auto big = quantity_value("10Ei");
  BOOST_REQUIRE(!big.ok());
  BOOST_TEST(big.err().code == errc::too_large);
  BOOST_TEST(!quantity_milli_value("9223372036854775807").ok());
}

BOOST_AUTO_TEST_SUITE_END()

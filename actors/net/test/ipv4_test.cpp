#define BOOST_TEST_MODULE deckhand_net
#include <boost/test/unit_test.hpp>

#include "deckhand/net/ipv4.hpp"

using namespace deckhand;
using namespace deckhand::net;

BOOST_AUTO_TEST_SUITE(ipv4_addresses)

BOOST_AUTO_TEST_CASE(dotted_quads_only) {
  BOOST_TEST(ipv4::parse("10.88.0.1")->to_string() == "10.88.0.1");
  BOOST_TEST(!ipv4::parse("10.88.0"));
  BOOST_TEST(!ipv4::parse("10.88.0.256"));
  BOOST_TEST(!ipv4::parse("10.088.0.1"));
}

BOOST_AUTO_TEST_CASE(cidr_blocks) {
  auto c = ipv4_cidr::parse("10.88.0.0/16");
  BOOST_REQUIRE(c.ok());
  BOOST_TEST(c->gateway().to_string() == "10.88.0.1");
  BOOST_TEST(c->broadcast().to_string() == "10.88.255.255");
  BOOST_TEST(c->contains(*ipv4::parse("10.88.3.4")));
  BOOST_TEST(!c->contains(*ipv4::parse("10.89.0.1")));
  BOOST_TEST(c->overlaps(*ipv4_cidr::parse("10.0.0.0/8")));
  BOOST_TEST(!c->overlaps(*ipv4_cidr::parse("10.89.0.0/16")));
  auto host_bits = ipv4_cidr::parse("10.88.0.1/16");
  BOOST_REQUIRE(!host_bits.ok());
  BOOST_TEST(host_bits.err().code == errc::invalid);
}

BOOST_AUTO_TEST_SUITE_END()

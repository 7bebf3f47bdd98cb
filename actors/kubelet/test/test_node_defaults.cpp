#include <boost/test/unit_test.hpp>

/// The node's default name and IP (node_defaults): the choices, on given
/// routes and interfaces rather than this machine's.

#include <sstream>

#include "deckhand/kubelet/node_defaults.hpp"

using namespace deckhand::kubelet;

BOOST_AUTO_TEST_SUITE(node_defaults)

BOOST_AUTO_TEST_CASE(the_default_route_interface_is_read_from_the_route_table) {
  std::istringstream routes(
      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
      "deckhand0\t0000580A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
      "eth0\t00000000\t0100A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
      "eth0\t0000A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n");
  BOOST_TEST(default_route_interface(routes) == "eth0");
  std::istringstream none("Iface\tDestination\tGateway\n"
                          "eth0\t0000A8C0\t00000000\n");
  BOOST_TEST(default_route_interface(none) == "");
}

BOOST_AUTO_TEST_CASE(the_node_ip_is_the_default_route_interface_address) {
  std::vector<interface_address> addrs{{"lo", "127.0.0.1", true, true},
                                       {"deckhand0", "10.88.0.1", true, false},
                                       {"eth0", "192.168.0.5", true, false}};
  BOOST_TEST(choose_node_ip(addrs, "eth0") == "192.168.0.5");
}

BOOST_AUTO_TEST_CASE(without_a_default_route_the_first_up_non_loopback_address_wins) {
  std::vector<interface_address> addrs{{"lo", "127.0.0.1", true, true},
                                       {"eth1", "10.0.0.9", false, false},
                                       {"eth0", "192.168.0.5", true, false},
                                       {"eth2", "172.16.0.2", true, false}};
  BOOST_TEST(choose_node_ip(addrs, "") == "192.168.0.5");
  // A default route on an interface that is down does not count.
  BOOST_TEST(choose_node_ip(addrs, "eth1") == "192.168.0.5");
  BOOST_TEST(choose_node_ip({{"lo", "127.0.0.1", true, true}}, "") == "");
}

BOOST_AUTO_TEST_CASE(a_hostname_becomes_a_lower_case_node_name) {
  BOOST_TEST(node_name_from_hostname("Worker-A") == "worker-a");
  BOOST_TEST(node_name_from_hostname("") == "deckhand-node");
}

BOOST_AUTO_TEST_SUITE_END()

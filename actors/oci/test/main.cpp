#define BOOST_TEST_MODULE deckhand_oci
#include <boost/test/unit_test.hpp>

#define BOOST_TEST_MODULE deckhand_cli
#include <boost/test/unit_test.hpp>

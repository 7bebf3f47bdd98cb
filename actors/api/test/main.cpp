#define BOOST_TEST_MODULE deckhand_api
#include <boost/test/unit_test.hpp>

#define BOOST_TEST_MODULE deckhand_runtime
#include <boost/test/unit_test.hpp>

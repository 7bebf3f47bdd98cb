#define BOOST_TEST_MODULE deckhand_supervisor
#include <boost/test/unit_test.hpp>

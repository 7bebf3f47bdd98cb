#define BOOST_TEST_MODULE deckhand_supervisor_integration
#include <boost/test/unit_test.hpp>

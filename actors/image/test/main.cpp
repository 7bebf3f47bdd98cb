#define BOOST_TEST_MODULE deckhand_image
#include <boost/test/unit_test.hpp>

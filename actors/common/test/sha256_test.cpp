// deckhand::sha256 against FIPS 180-4's examples and against OpenSSL for
// every length around the padding boundaries.
#define BOOST_TEST_MODULE common
#include <boost/test/unit_test.hpp>

#include <openssl/sha.h>

#include <random>
#include <string>

#include "deckhand/common/sha256.hpp"

namespace {

std::string hex(const deckhand::sha256::digest& d) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (auto b : d) {
    out.push_back(digits[b >> 4]);
    out.push_back(digits[b & 15]);
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(fips_180_examples) {
  BOOST_TEST(hex(deckhand::sha256::of("")) ==
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  BOOST_TEST(hex(deckhand::sha256::of("abc")) ==
             "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  BOOST_TEST(
      hex(deckhand::sha256::of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
      "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  BOOST_TEST(hex(deckhand::sha256::of(std::string(1000000, 'a'))) ==
             "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

BOOST_AUTO_TEST_CASE(matches_openssl_for_every_length_up_to_300) {
  std::mt19937 rng(42);
  for (std::size_t len = 0; len <= 300; ++len) {
    std::string s(len, '\0');
    for (auto& c : s)
      c = static_cast<char>(rng());
    deckhand::sha256::digest want;
    SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), want.data());
    BOOST_TEST((deckhand::sha256::of(s) == want), "length " << len);
  }
}

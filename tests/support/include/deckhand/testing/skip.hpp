#pragma once

// Honest skips. A case whose subject cannot run here (not root, no runc, no
// kubectl, ...) is skipped through a Boost.Test precondition, and the test
// executable then exits with `skip_exit_code` instead of 0, which ctest
// (SKIP_RETURN_CODE, set by deckhand_add_test) reports as "Skipped" rather
// than "Passed". A failure anywhere still exits non-zero as a failure: the
// skip code replaces a pass only. ctest counts executables, so one skipped
// case makes the whole executable show as skipped.

#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace deckhand::testing {

/// The exit status of a test executable that passed but skipped a case
/// (automake's convention; ctest's SKIP_RETURN_CODE).
inline constexpr int skip_exit_code = 77;

/// What a case needs of the host: returns an empty string when the host has
/// it, otherwise what is missing ("needs root").
using requirement = std::function<std::string()>;

/// Running as root.
requirement root();

/// An executable `name` in a directory of PATH.
requirement program(std::string name);

/// A file at `path`.
requirement file(std::filesystem::path path);

/// Root, runc and a static busybox at /bin/busybox: what running a
/// container needs.
requirement containers();

/// Whether `name` is an executable in a directory of PATH.
bool on_path(const std::string& name);

/// Records a skip: when the run passes, the executable exits with
/// `skip_exit_code`. `skip_unless` calls it; call it directly only where a
/// precondition cannot express the check.
void note_skipped(const std::string& unit, const std::string& why);

/// A Boost.Test precondition decorator that runs the test unit only when
/// every requirement holds, and otherwise skips it and says why:
/// `BOOST_AUTO_TEST_SUITE(s, *skip_unless(root(), program("nft")))`.
boost::unit_test::decorator::precondition skip_unless(std::vector<requirement> needs);

template <class... R>
boost::unit_test::decorator::precondition skip_unless(R&&... needs) {
  return skip_unless(std::vector<requirement>{requirement(std::forward<R>(needs))...});
}

}  // namespace deckhand::testing

#include "deckhand/testing/skip.hpp"

#include <unistd.h>

#include <boost/test/results_collector.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

namespace deckhand::testing {

namespace fs = std::filesystem;
namespace utf = boost::unit_test;

namespace {

/// Turns a passing run that skipped something into `skip_exit_code`. Boost's
/// unit_test_main returns its result after the observers' test_finish, so the
/// code is set by an exit handler registered there; nothing of Boost is used
/// in the handler.
class skip_reporter : public utf::test_observer {
 public:
  void add(const std::string& unit, const std::string& why) {
    if (skipped_.empty())
      utf::framework::register_observer(*this);
    skipped_.push_back(unit + ": " + why);
  }

  void test_finish() override {
    const auto& results = utf::results_collector.results(utf::framework::master_test_suite().p_id);
    if (skipped_.empty() || !results.passed())
      return;
    std::cout << "*** " << skipped_.size() << " test unit(s) skipped, exit status "
              << skip_exit_code << " (ctest: Skipped):\n";
    for (const auto& s : skipped_)
      std::cout << "    " << s << "\n";
    std::atexit([] {
      std::cout.flush();
      std::cerr.flush();
      std::fflush(nullptr);
      std::_Exit(skip_exit_code);
    });
  }

 private:
  std::vector<std::string> skipped_;
};

skip_reporter& reporter() {
  static skip_reporter r;
  return r;
}

}  // namespace

bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (!path)
    return false;
  std::istringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty())
      continue;
    const auto candidate = fs::path(dir) / name;
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate))
      return true;
  }
  return false;
}

requirement root() {
  return [] { return ::geteuid() == 0 ? std::string() : std::string("needs root"); };
}

requirement program(std::string name) {
  return [name = std::move(name)] {
    return on_path(name) ? std::string() : "needs " + name + " on PATH";
  };
}

requirement file(fs::path path) {
  return [path = std::move(path)] {
    std::error_code ec;
    return fs::exists(path, ec) ? std::string() : "needs " + path.string();
  };
}

requirement containers() {
  return [] {
    for (const auto& need : {root(), program("runc"), file("/bin/busybox")})
      if (auto why = need(); !why.empty())
        return why;
    return std::string();
  };
}

void note_skipped(const std::string& unit, const std::string& why) { reporter().add(unit, why); }

utf::decorator::precondition skip_unless(std::vector<requirement> needs) {
  return utf::precondition([needs = std::move(needs)](utf::test_unit_id id) {
    for (const auto& need : needs) {
      if (auto why = need(); !why.empty()) {
        note_skipped(utf::framework::get(id, utf::TUT_ANY).full_name(), why);
        boost::test_tools::assertion_result r(false);
        r.message() << "skipped: " << why;
        return r;
      }
    }
    return boost::test_tools::assertion_result(true);
  });
}

}  // namespace deckhand::testing

#pragma once

#include <stdlib.h>

#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <string>

#include "deckhand/apiserver/registry.hpp"
#include "deckhand/common/result.hpp"

namespace deckhand::apiserver {
/// Lets Boost.Test print event types in failed comparisons.
inline std::ostream& operator<<(std::ostream& os, watch_event_type t) { return os << to_string(t); }
}  // namespace deckhand::apiserver

namespace deckhand::apiserver::test {

/// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class temp_dir {
 public:
  temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/deckhand-apiserver-XXXXXX";
    if (!::mkdtemp(tmpl.data()))
      throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace deckhand::apiserver::test

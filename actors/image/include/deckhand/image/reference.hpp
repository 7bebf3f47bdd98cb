#pragma once

/// Image references, normalized the way Docker does it, so that `busybox`,
/// `library/busybox:latest` and `docker.io/library/busybox:latest` name the
/// same image.

#include <string>

#include "deckhand/common/result.hpp"

namespace deckhand::image {

/// A parsed, normalized image reference: `domain/path[:tag][@digest]`.
struct reference {
  std::string domain;  ///< registry host[:port], `docker.io` by default
  std::string path;    ///< repository path, `library/` prefixed on docker.io
  std::string tag;     ///< empty only when a digest is given
  std::string digest;  ///< `sha256:<64 hex>` or empty

  /// The repository without tag or digest: `docker.io/library/busybox`.
  std::string repository() const { return domain + "/" + path; }

  /// The full normalized form: `docker.io/library/busybox:latest`.
  std::string str() const;
};

/// Parses `ref` and fills in Docker's defaults (`docker.io`, `library/`,
/// `:latest` when neither tag nor digest is given). Upper-case repository
/// names, empty components and malformed tags or digests are `errc::invalid`.
result<reference> parse_reference(const std::string& ref);

/// `parse_reference(ref)->str()`.
result<std::string> normalize_reference(const std::string& ref);

/// True for `sha256:` followed by exactly 64 lower-case hex characters.
bool is_sha256_digest(const std::string& digest);

}  // namespace deckhand::image

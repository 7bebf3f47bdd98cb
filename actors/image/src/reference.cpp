#include "deckhand/image/reference.hpp"

#include <regex>

namespace deckhand::image {

namespace {

// The grammar of github.com/distribution/reference.
const std::regex& path_component_re() {
  static const std::regex re("[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*");
  return re;
}
const std::regex& domain_re() {
  static const std::regex re(
      "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
      "(?:\\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?");
  return re;
}
const std::regex& tag_re() {
  static const std::regex re("[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
  return re;
}

error bad(const std::string& ref, const std::string& why) {
  return {errc::invalid, "invalid image reference \"" + ref + "\": " + why};
}

}  // namespace

bool is_sha256_digest(const std::string& d) {
  if (d.size() != 71 || d.compare(0, 7, "sha256:") != 0)
    return false;
  for (std::size_t i = 7; i < d.size(); ++i) {
    char c = d[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
      return false;
  }
  return true;
}

std::string reference::str() const {
  std::string s = repository();
  if (!tag.empty())
    s += ":" + tag;
  if (!digest.empty())
    s += "@" + digest;
  return s;
}

result<reference> parse_reference(const std::string& ref) {
  if (ref.empty())
    return bad(ref, "empty");
  if (ref.size() > 512)
    return bad(ref, "too long");
  reference out;
  std::string name = ref;
  if (auto at = name.find('@'); at != std::string::npos) {
    out.digest = name.substr(at + 1);
    name.resize(at);
    if (!is_sha256_digest(out.digest))
      return bad(ref, "digest is not sha256:<64 hex>");
  }
  auto slash = name.rfind('/');
  auto colon = name.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    out.tag = name.substr(colon + 1);
    name.resize(colon);
    if (!std::regex_match(out.tag, tag_re()))
      return bad(ref, "malformed tag");
  }
  if (name.empty())
    return bad(ref, "empty name");
  auto first = name.find('/');
  std::string head = name.substr(0, first);
  if (first != std::string::npos && (head.find('.') != std::string::npos ||
                                     head.find(':') != std::string::npos || head == "localhost")) {
    out.domain = head;
    out.path = name.substr(first + 1);
    if (!std::regex_match(out.domain, domain_re()))
      return bad(ref, "malformed registry host");
  } else {
    out.domain = "docker.io";
    out.path = name;
  }
  if (out.domain == "index.docker.io")
    out.domain = "docker.io";
  if (out.domain == "docker.io" && out.path.find('/') == std::string::npos)
    out.path = "library/" + out.path;
  std::size_t i = 0;
  while (i <= out.path.size()) {
    auto j = out.path.find('/', i);
    if (j == std::string::npos)
      j = out.path.size();
    std::string c = out.path.substr(i, j - i);
    if (!std::regex_match(c, path_component_re()))
      return bad(ref, "repository name must be lower-case [a-z0-9] separated by . _ __ -");
    i = j + 1;
  }
  if (out.repository().size() > 255)
    return bad(ref, "repository name too long");
  if (out.tag.empty() && out.digest.empty())
    out.tag = "latest";
  return out;
}

result<std::string> normalize_reference(const std::string& ref) {
  auto r = parse_reference(ref);
  if (!r)
    return r.err();
  return r->str();
}

}  // namespace deckhand::image

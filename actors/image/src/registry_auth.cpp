#include "registry_auth.hpp"

#include <cctype>
#include <cstring>

#include <nlohmann/json.hpp>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/log.hpp"

namespace deckhand::image::detail {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// The host a credentials-file key names: docker writes URLs
/// ("https://index.docker.io/v1/") as well as bare hosts.
std::string auth_key_host(std::string k) {
  for (const char* scheme : {"https://", "http://"})
    if (k.rfind(scheme, 0) == 0)
      k = k.substr(std::strlen(scheme));
  return lower(k.substr(0, k.find('/')));
}

bool auth_key_matches(const std::string& key, const std::string& domain) {
  std::string h = auth_key_host(key);
  if (h == domain)
    return true;
  if (domain == "docker.io")
    return h == "index.docker.io" || h == "registry-1.docker.io" || h == "registry.hub.docker.com";
  return false;
}

/// Reads the credentials in `auths` (an object keyed by registry) that
/// apply to `domain`.
error collect_auths(const json& auths, const std::string& domain, const std::string& file,
                    const std::string& source, std::vector<credential>& out) {
  if (!auths.is_object())
    return {errc::invalid,
            "credentials file " + file + ": \"auths\" of " + source + " is not an object"};
  for (const auto& [key, entry] : auths.items()) {
    if (!auth_key_matches(key, domain))
      continue;
    std::string where = "credentials file " + file + ": entry \"" + key + "\" of " + source;
    if (!entry.is_object())
      return {errc::invalid, where + " is not an object"};
    credential c;
    c.source = source + " (" + key + ")";
    auto str = [&](const char* k) -> std::optional<std::string> {
      auto it = entry.find(k);
      if (it == entry.end() || it->is_null())
        return std::string();
      if (!it->is_string())
        return std::nullopt;
      return it->get<std::string>();
    };
    auto auth = str("auth"), user = str("username"), pass = str("password");
    if (!auth || !user || !pass)
      return {errc::invalid, where + " has a non-string field"};
    if (!auth->empty()) {
      std::string decoded;
      auto colon = std::string::npos;
      if (base64_decode(*auth, decoded))
        colon = decoded.find(':');
      if (colon == std::string::npos)
        return {errc::invalid, where + ": \"auth\" is not base64 of user:password"};
      c.username = decoded.substr(0, colon);
      c.password = decoded.substr(colon + 1);
    } else if (!user->empty()) {
      c.username = *user;
      c.password = *pass;
    } else {
      continue;  // e.g. only an identitytoken: not supported, treat as absent
    }
    out.push_back(std::move(c));
  }
  return {};
}

/// The `message` of a registry's JSON error body, if any.
std::string registry_message(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return {};
  auto errs = j.find("errors");
  if (errs == j.end() || !errs->is_array() || errs->empty() || !(*errs)[0].is_object())
    return {};
  const auto& e = (*errs)[0];
  std::string out;
  if (auto c = e.find("code"); c != e.end() && c->is_string())
    out = c->get<std::string>();
  if (auto m = e.find("message"); m != e.end() && m->is_string())
    out += (out.empty() ? "" : ": ") + m->get<std::string>();
  return out;
}

}  // namespace

std::string host_of(const std::string& domain) {
  if (!domain.empty() && domain.front() == '[') {
    auto e = domain.find(']');
    return e == std::string::npos ? domain : domain.substr(0, e + 1);
  }
  return domain.substr(0, domain.find(':'));
}

result<std::vector<credential>> load_credentials(const fs::path& file, const std::string& domain,
                                                 const std::vector<std::string>& secrets) {
  std::vector<credential> out;
  if (file.empty())
    return out;
  auto text = fsutil::read_file(file, 4 << 20);
  if (!text) {
    if (text.err().code == errc::not_found)
      return out;
    return error(text.err().code, "credentials file " + file.string() + ": " + text.err().message);
  }
  // No exceptions: a parse error message would quote part of the file.
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return error(errc::invalid, "credentials file " + file.string() + ": not a JSON object");
  if (auto s = j.find("secrets"); s != j.end()) {
    if (!s->is_object())
      return error(errc::invalid,
                   "credentials file " + file.string() + ": \"secrets\" is not an object");
    for (const auto& name : secrets) {
      auto it = s->find(name);
      if (it == s->end()) {
        log::get()->warn("image pull secret not found secret={} file={}", name, file.string());
        continue;
      }
      if (!it->is_object() || !it->contains("auths"))
        return error(errc::invalid, "credentials file " + file.string() + ": secret \"" + name +
                                        "\" has no \"auths\" object");
      if (auto err =
              collect_auths((*it)["auths"], domain, file.string(), "secret \"" + name + "\"", out))
        return err;
    }
  }
  if (auto a = j.find("auths"); a != j.end())
    if (auto err = collect_auths(*a, domain, file.string(), "node credentials", out))
      return err;
  return out;
}

error status_error(const http_response& r, const std::string& what) {
  std::string detail = registry_message(r.body);
  std::string msg = what + ": HTTP " + std::to_string(r.status) +
                    (detail.empty() ? std::string() : " (" + detail + ")");
  if (r.status == 404)
    return {errc::not_found, what + ": not found" + (detail.empty() ? "" : " (" + detail + ")")};
  if (r.status == 403)
    return {errc::unavailable, "denied: " + msg};
  return {errc::unavailable, msg};
}

registry_session::registry_session(const reference& ref, std::optional<credential> cred,
                                   bool insecure, std::chrono::milliseconds timeout)
    : ref_(ref), cred_(std::move(cred)), http_(timeout) {
  std::string host = ref.domain == "docker.io" ? "registry-1.docker.io" : ref.domain;
  base_ = (insecure ? "http://" : "https://") + host + "/v2/" + ref.path;
}

std::string registry_session::who() const {
  return cred_ ? "the credentials of " + cred_->source
               : std::string("anonymous access (no credentials for this registry)");
}

result<http_response> registry_session::get(const std::string& rel,
                                            std::vector<std::string> headers, const body_sink& sink,
                                            std::uint64_t max_body) {
  std::string url = base_ + rel;
  for (int attempt = 0;; ++attempt) {
    auto hdrs = headers;
    if (!authorization_.empty())
      hdrs.push_back("Authorization: " + authorization_);
    auto r = http_.get(url, hdrs, sink, max_body);
    if (!r || r->status != 401)
      return r;
    // A second 401 (or the first with credentials that already worked
    // once and now fail twice) means the registry refuses us.
    if (attempt >= 1)
      break;
    auto it = r->headers.find("www-authenticate");
    if (it == r->headers.end())
      break;
    if (auto err = authenticate(parse_challenge(it->second)))
      return err;
  }
  unauthorized_ = true;
  return error(errc::unavailable, "unauthorized: registry " + ref_.domain + " refused " + who() +
                                      " for " + ref_.repository());
}

error registry_session::authenticate(const auth_challenge& ch) {
  if (ch.scheme == "basic") {
    if (!cred_)
      return fail("requires a login");
    authorization_ = "Basic " + base64_encode(cred_->username + ":" + cred_->password);
    return {};
  }
  if (ch.scheme != "bearer")
    return fail("asks for unsupported auth scheme \"" + ch.scheme + "\"");
  auto realm = ch.params.find("realm");
  if (realm == ch.params.end() ||
      (realm->second.rfind("https://", 0) != 0 && realm->second.rfind("http://", 0) != 0))
    return {errc::invalid,
            "registry " + ref_.domain + ": bearer challenge without an http(s) realm"};
  std::string url = realm->second + (realm->second.find('?') == std::string::npos ? "?" : "&");
  bool first = true;
  auto add = [&](const std::string& k, const std::string& v) {
    url += (first ? "" : "&") + k + "=" + url_escape(v);
    first = false;
  };
  if (auto s = ch.params.find("service"); s != ch.params.end())
    add("service", s->second);
  auto scope = ch.params.find("scope");
  add("scope", scope != ch.params.end() ? scope->second : "repository:" + ref_.path + ":pull");
  std::vector<std::string> hdrs;
  if (cred_)
    hdrs.push_back("Authorization: Basic " +
                   base64_encode(cred_->username + ":" + cred_->password));
  auto r = http_.get(url, hdrs, {}, max_small_body);
  if (!r)
    return r.err();
  if (r->status == 401 || r->status == 403) {
    unauthorized_ = true;
    return {errc::unavailable, "unauthorized: token server " + realm->second + " refused " + who() +
                                   " for " + ref_.repository()};
  }
  if (r->status != 200)
    return status_error(*r, "token server " + realm->second);
  json j = json::parse(r->body, nullptr, false);
  std::string token;
  if (j.is_object())
    for (const char* k : {"token", "access_token"})
      if (auto t = j.find(k); t != j.end() && t->is_string() && !t->get<std::string>().empty()) {
        token = t->get<std::string>();
        break;
      }
  if (token.empty())
    return {errc::invalid, "token server " + realm->second + ": response holds no token"};
  authorization_ = "Bearer " + token;
  return {};
}

error registry_session::fail(const std::string& why) {
  unauthorized_ = true;
  return {errc::unavailable,
          "unauthorized: registry " + ref_.domain + " " + why + "; tried " + who()};
}

}  // namespace deckhand::image::detail

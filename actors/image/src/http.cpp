#include "http.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>

#include <curl/curl.h>
#include <openssl/evp.h>

namespace deckhand::image::detail {

namespace {

void global_init() {
  // curl_global_init is not thread-safe; a function-local static is.
  static const bool done = (curl_global_init(CURL_GLOBAL_DEFAULT), true);
  (void)done;
}

std::string lower(std::string s) {
  for (auto& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

struct slist_deleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct transfer {
  CURL* curl = nullptr;
  const body_sink* sink = nullptr;
  std::uint64_t max_body = 0;
  http_response* res = nullptr;
  error sink_error;
  bool too_large = false;
};

size_t on_header(char* buf, size_t size, size_t n, void* ud) {
  auto* t = static_cast<transfer*>(ud);
  std::string line(buf, size * n);
  if (line.rfind("HTTP/", 0) == 0) {
    t->res->headers.clear();  // a new response (after a redirect or 100-continue)
    return size * n;
  }
  auto colon = line.find(':');
  if (colon == std::string::npos)
    return size * n;
  std::string name = lower(trim(line.substr(0, colon)));
  t->res->headers.emplace(name, trim(line.substr(colon + 1)));
  return size * n;
}

size_t on_body(char* buf, size_t size, size_t n, void* ud) {
  auto* t = static_cast<transfer*>(ud);
  std::size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code >= 200 && code < 300 && t->sink && *t->sink) {
    if (auto err = (*t->sink)(buf, len)) {
      t->sink_error = std::move(err);
      return 0;
    }
    return len;
  }
  if (t->res->body.size() + len > t->max_body) {
    t->too_large = true;
    return 0;
  }
  t->res->body.append(buf, len);
  return len;
}

/// The environment's no_proxy plus loopback: a node's proxy settings must not
/// route requests to a registry on the node itself.
std::string no_proxy_list() {
  std::string out = "localhost,127.0.0.1,::1";
  for (const char* var : {"no_proxy", "NO_PROXY"})
    if (const char* v = std::getenv(var); v && *v)
      return std::string(v) + "," + out;
  return out;
}

}  // namespace

http_client::http_client(std::chrono::milliseconds timeout) : curl_(nullptr), timeout_(timeout) {
  global_init();
  curl_ = curl_easy_init();
}

http_client::~http_client() {
  if (curl_)
    curl_easy_cleanup(static_cast<CURL*>(curl_));
}

result<http_response> http_client::get(const std::string& url,
                                       const std::vector<std::string>& headers,
                                       const body_sink& sink, std::uint64_t max_body) {
  CURL* c = static_cast<CURL*>(curl_);
  if (!c)
    return error(errc::internal, "curl_easy_init failed");
  // Reset keeps the handle's live connections, DNS and TLS session caches.
  curl_easy_reset(c);
  http_response res;
  transfer t;
  t.curl = c;
  t.sink = &sink;
  t.max_body = max_body;
  t.res = &res;
  std::unique_ptr<curl_slist, slist_deleter> hdrs;
  for (const auto& h : headers) {
    // Appending returns the (unchanged, once non-empty) head of the list.
    curl_slist* head = curl_slist_append(hdrs.get(), h.c_str());
    if (!head)
      return error(errc::internal, "curl_slist_append failed");
    if (head != hdrs.get())
      hdrs.reset(head);
  }
  char errbuf[CURL_ERROR_SIZE] = {};
  long timeout_ms = static_cast<long>(std::max<std::int64_t>(timeout_.count(), 1));
  std::string no_proxy = no_proxy_list();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  // Blob downloads are redirected to storage backends (S3, CDNs). libcurl
  // does not send our Authorization header to another host on redirect.
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  // A stalled transfer aborts; a slow but moving one may take as long as it needs.
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, std::max(1L, timeout_ms / 1000));
  curl_easy_setopt(c, CURLOPT_NOPROXY, no_proxy.c_str());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "deckhand");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs.get());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  if (rc != CURLE_OK) {
    if (t.sink_error)
      return t.sink_error;
    if (t.too_large)
      return error(errc::too_large,
                   "GET " + url + ": response larger than " + std::to_string(max_body) + " bytes");
    std::string msg = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    return error(errc::unavailable, "GET " + url + ": " + msg);
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res.status);
  return res;
}

std::string url_escape(const std::string& s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

std::string base64_encode(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<std::size_t>(std::max(n, 0)));
  return out;
}

bool base64_decode(const std::string& in, std::string& out) {
  std::string s;
  for (char c : in)
    if (!std::isspace(static_cast<unsigned char>(c)))
      s += c;
  while (s.size() % 4)
    s += '=';
  if (s.empty()) {
    out.clear();
    return true;
  }
  std::string buf(s.size() / 4 * 3, '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(buf.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0)
    return false;
  std::size_t pad = 0;
  for (std::size_t i = s.size(); i > 0 && s[i - 1] == '=' && pad < 2; --i)
    ++pad;
  if (static_cast<std::size_t>(n) < pad)
    return false;
  buf.resize(static_cast<std::size_t>(n) - pad);
  out = std::move(buf);
  return true;
}

auth_challenge parse_challenge(const std::string& h) {
  auth_challenge ch;
  std::size_t i = 0;
  auto skip = [&](const char* set) {
    while (i < h.size() && std::strchr(set, h[i]))
      ++i;
  };
  skip(" \t");
  std::size_t start = i;
  while (i < h.size() && h[i] != ' ' && h[i] != '\t')
    ++i;
  ch.scheme = lower(h.substr(start, i - start));
  while (i < h.size()) {
    skip(" \t,");
    std::size_t k = i;
    while (i < h.size() && h[i] != '=' && h[i] != ',')
      ++i;
    if (i >= h.size() || h[i] != '=')
      break;
    std::string key = lower(trim(h.substr(k, i - k)));
    ++i;
    skip(" \t");
    std::string val;
    if (i < h.size() && h[i] == '"') {
      ++i;
      while (i < h.size() && h[i] != '"') {
        if (h[i] == '\\' && i + 1 < h.size())
          ++i;
        val += h[i++];
      }
      ++i;  // closing quote
    } else {
      std::size_t v = i;
      while (i < h.size() && h[i] != ',')
        ++i;
      val = trim(h.substr(v, i - v));
    }
    ch.params.emplace(std::move(key), std::move(val));
  }
  return ch;
}

}  // namespace deckhand::image::detail

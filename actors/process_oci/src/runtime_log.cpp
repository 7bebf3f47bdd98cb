/// Logging the way runc does: --log FILE with --log-format json|text, and
/// errors also on stderr when the log is elsewhere (runc's fatal()).

#include "process_runtime_internal.hpp"

#include "deckhand/api/time.hpp"

namespace deckhand::process_oci {

namespace {

void log_line(const char* level, const std::string& msg) {
  const auto now = std::chrono::system_clock::now();
  const log_sink& s = sink();
  std::string line;
  if (s.fd >= 0 && s.json_format) {
    line = dump(json{{"level", level}, {"msg", msg}, {"time", api::format_rfc3339(now)}});
  } else {
    line = "time=\"" + api::format_rfc3339(now) + "\" level=" + level + " msg=" + quote_text(msg);
  }
  write_all(s.fd >= 0 ? s.fd : STDERR_FILENO, line + "\n");
}

}  // namespace

std::string clip(std::string s) {
  if (s.size() > max_message)
    s = s.substr(0, max_message) + "...";
  return s;
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

log_sink& sink() {
  static log_sink s;
  return s;
}

void write_all(int fd, const std::string& text) {
  std::size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    off += static_cast<std::size_t>(n);
  }
}

std::string quote_text(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

void log_error(const std::string& msg) {
  log_line("error", msg);
  if (sink().fd >= 0)
    write_all(STDERR_FILENO, msg + "\n");
}

void log_warning(const std::string& msg) { log_line("warning", msg); }

}  // namespace deckhand::process_oci

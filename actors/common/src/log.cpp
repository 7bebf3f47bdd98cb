#include "deckhand/common/log.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>

namespace deckhand::log {

namespace {
std::mutex g_mutex;
std::shared_ptr<spdlog::logger> g_logger;

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.' || c == '/';
}

/// Length of the `key` in a `key=` starting at `s`, or 0 when `s` does not
/// start a pair.
size_t key_length(std::string_view s) {
  size_t n = 0;
  while (n < s.size() && is_key_char(s[n]))
    ++n;
  return n > 0 && n < s.size() && s[n] == '=' ? n : 0;
}

/// A quote at `i` closes a quoted value when the line ends there, the next
/// word starts another pair, or no later quote could close it instead.
bool closes_value(std::string_view s, size_t i) {
  size_t j = i + 1;
  if (j == s.size() || s.find('"', j) == std::string_view::npos)
    return true;
  if (s[j] != ' ')
    return false;
  while (j < s.size() && s[j] == ' ')
    ++j;
  return j == s.size() || key_length(s.substr(j)) > 0;
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    default:
      if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
        out += buf;
      } else {
        out += c;
      }
    }
  }
  out += '"';
}

class json_formatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    std::string out = "{\"ts\":";
    append_json_string(out, timestamp(msg.time));
    out += ",\"level\":";
    auto level = spdlog::level::to_string_view(msg.level);
    append_json_string(out, std::string_view{level.data(), level.size()});
    out += ",\"component\":";
    append_json_string(out, std::string_view{msg.logger_name.data(), msg.logger_name.size()});
    out += ",\"pid\":" + std::to_string(::getpid());
    std::vector<std::string> keys{"ts", "level", "component", "pid"};
    for (auto& [key, value] : parse_fields({msg.payload.data(), msg.payload.size()})) {
      auto name = key;
      while (std::find(keys.begin(), keys.end(), name) != keys.end())
        name += '_';
      keys.push_back(name);
      out += ',';
      append_json_string(out, name);
      out += ':';
      append_json_string(out, value);
    }
    out += "}\n";
    dest.append(out.data(), out.data() + out.size());
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<json_formatter>();
  }

 private:
  static std::string timestamp(spdlog::log_clock::time_point tp) {
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(tp);
    auto micros = std::chrono::duration_cast<std::chrono::microseconds>(tp - secs).count();
    std::time_t t = spdlog::log_clock::to_time_t(secs);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[40];
    auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%06lldZ", static_cast<long long>(micros));
    return buf;
  }
};
}  // namespace

std::vector<log_field> parse_fields(std::string_view line) {
  std::vector<log_field> fields;
  std::string text;
  size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ') {
      ++i;
      continue;
    }
    auto klen = key_length(line.substr(i));
    if (klen == 0) {
      auto end = line.find(' ', i);
      if (end == std::string_view::npos)
        end = line.size();
      if (!text.empty())
        text += ' ';
      text += line.substr(i, end - i);
      i = end;
      continue;
    }
    std::string key{line.substr(i, klen)};
    i += klen + 1;
    std::string value;
    if (i < line.size() && line[i] == '"') {
      ++i;
      while (i < line.size()) {
        char c = line[i];
        if (c == '\\' && i + 1 < line.size() && (line[i + 1] == '"' || line[i + 1] == '\\')) {
          value += line[i + 1];
          i += 2;
        } else if (c == '"' && closes_value(line, i)) {
          ++i;
          break;
        } else {
          value += c;
          ++i;
        }
      }
    } else {
      auto end = line.find(' ', i);
      if (end == std::string_view::npos)
        end = line.size();
      value = line.substr(i, end - i);
      i = end;
    }
    fields.emplace_back(std::move(key), std::move(value));
  }
  if (!text.empty()) {
    bool has_msg = std::any_of(fields.begin(), fields.end(),
                               [](const log_field& f) { return f.first == "msg"; });
    fields.emplace_back(has_msg ? "text" : "msg", std::move(text));
  }
  return fields;
}

std::unique_ptr<spdlog::formatter> make_json_formatter() {
  return std::make_unique<json_formatter>();
}

void init(const std::string& component, const std::string& level, bool json) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>(component, sink);
  if (json)
    logger->set_formatter(make_json_formatter());
  else
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %L %n[%P] %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  std::lock_guard<std::mutex> guard{g_mutex};
  g_logger = logger;
}

std::shared_ptr<spdlog::logger> get() {
  {
    std::lock_guard<std::mutex> guard{g_mutex};
    if (g_logger)
      return g_logger;
  }
  init("deckhand");
  std::lock_guard<std::mutex> guard{g_mutex};
  return g_logger;
}

}  // namespace deckhand::log

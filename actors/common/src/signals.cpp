#include "deckhand/common/signals.hpp"

#include <signal.h>

#include <algorithm>
#include <cctype>
#include <utility>

namespace deckhand::common {

namespace {

/// Linux's names in number order; the first name of a number is the one
/// printed, the later ones (IOT, POLL) are accepted aliases.
constexpr std::pair<const char*, int> names[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},     {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"IOT", SIGIOT},       {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"KILL", SIGKILL}, {"USR1", SIGUSR1},     {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN}, {"TTOU", SIGTTOU},     {"URG", SIGURG},
    {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},   {"IO", SIGIO},     {"POLL", SIGPOLL},     {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

}  // namespace

result<int> parse_signal(std::string_view text) {
  if (text.empty())
    return error{errc::invalid, "empty signal"};
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (text.size() <= 3) {
      int n = 0;
      for (char c : text)
        n = n * 10 + (c - '0');
      if (n >= 1 && n < NSIG)
        return n;
    }
    return error{errc::invalid, "invalid signal: " + std::string(text)};
  }
  std::string up;
  up.reserve(text.size());
  for (char c : text)
    up += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (up.rfind("SIG", 0) == 0)
    up.erase(0, 3);
  for (const auto& [name, num] : names)
    if (up == name)
      return num;
  return error{errc::invalid, "unknown signal " + std::string(text)};
}

std::string signal_name(int sig) {
  for (const auto& [name, num] : names)
    if (num == sig)
      return std::string("SIG") + name;
  return "SIG" + std::to_string(sig);
}

}  // namespace deckhand::common

/// Command-line options: Go's flag package rules, as runc (urfave/cli) has
/// them: -x and --x alike, "--x v" or "--x=v", flags end at the first
/// positional argument or "--". And signals the way runc's kill takes them.

#include "process_runtime_internal.hpp"

namespace deckhand::process_oci {

result<parsed_options> parse_options(const std::vector<std::string>& args,
                                     const std::vector<option_def>& defs) {
  parsed_options out;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      ++i;
      break;
    }
    if (a.size() < 2 || a[0] != '-')
      break;
    std::string body = a.substr(a[1] == '-' ? 2 : 1);
    std::optional<std::string> inline_value;
    if (auto eq = body.find('='); eq != std::string::npos) {
      inline_value = body.substr(eq + 1);
      body = body.substr(0, eq);
    }
    auto def = std::find_if(defs.begin(), defs.end(), [&](const option_def& d) {
      return body == d.name || (!d.alias.empty() && body == d.alias);
    });
    if (def == defs.end())
      return error{errc::invalid, "flag provided but not defined: -" + body};
    if (def->takes_value) {
      if (inline_value) {
        out.values[def->name].push_back(*inline_value);
      } else if (i + 1 < args.size()) {
        out.values[def->name].push_back(args[++i]);
      } else {
        return error{errc::invalid, "flag needs an argument: -" + body};
      }
    } else {
      std::string v = inline_value.value_or("true");
      if (v == "1" || v == "t" || v == "T" || v == "TRUE" || v == "True")
        v = "true";
      if (v == "0" || v == "f" || v == "F" || v == "FALSE" || v == "False")
        v = "false";
      if (v != "true" && v != "false")
        return error{errc::invalid, "invalid boolean value " + quote_text(v) + " for -" + body};
      out.values[def->name].push_back(v);
    }
  }
  out.positional.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
  return out;
}

result<int> parse_signal(std::string_view text) {
  std::string s(text);
  if (s.empty())
    return error{errc::invalid, "empty signal"};
  if (std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    if (s.size() <= 3) {
      int n = std::stoi(s);
      if (n >= 1 && n < NSIG)
        return n;
    }
    return error{errc::invalid, "invalid signal: " + s};
  }
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (s.rfind("SIG", 0) == 0)
    s = s.substr(3);
  static const std::pair<const char*, int> names[] = {
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
  for (const auto& [name, num] : names)
    if (s == name)
      return num;
  return error{errc::invalid, "unknown signal " + std::string(text)};
}

}  // namespace deckhand::process_oci

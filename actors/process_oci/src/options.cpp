/// Command-line options: Go's flag package rules, as runc (urfave/cli) has
/// them: -x and --x alike, "--x v" or "--x=v", flags end at the first
/// positional argument or "--".

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

}  // namespace deckhand::process_oci

#include "deckhand/proxy/command.hpp"

#include "deckhand/common/process.hpp"

namespace deckhand::proxy {

result<command_output> run_command(const std::vector<std::string>& argv, const std::string& input,
                                   std::chrono::milliseconds deadline) {
  common::run_options opts;
  opts.timeout = deadline;
  opts.input = input;
  auto r = common::run_captured(argv, opts);
  if (!r)
    return std::move(r).err();
  return command_output{r->status.code(), std::move(r->out), std::move(r->err)};
}

result<command_output> run_checked(const std::vector<std::string>& argv, const std::string& input,
                                   std::chrono::milliseconds deadline) {
  auto r = run_command(argv, input, deadline);
  if (!r)
    return r;
  if (r->exit_code != 0) {
    std::string cmd;
    for (const auto& a : argv)
      cmd += (cmd.empty() ? "" : " ") + a;
    auto msg = r->err.empty() ? r->out : r->err;
    if (msg.size() > 4000)
      msg = msg.substr(0, 4000) + "...";
    while (!msg.empty() && msg.back() == '\n')
      msg.pop_back();
    return error{errc::io, cmd + " exited " + std::to_string(r->exit_code) + ": " + msg};
  }
  return r;
}

bool have_program(const std::string& name) { return common::find_program(name).ok(); }

}  // namespace deckhand::proxy

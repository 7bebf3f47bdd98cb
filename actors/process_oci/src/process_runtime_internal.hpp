#pragma once

/// The pieces of deckhand-process-oci that its files share: runc-style
/// logging (runtime_log.cpp), config.json (spec.cpp), command-line options
/// (options.cpp), the state store under --root (state_store.cpp), starting
/// processes (launch.cpp), creating and starting containers (create.cpp),
/// and the commands (commands.cpp); process_runtime.cpp dispatches.

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <system_error>
#include <thread>

#include <nlohmann/json.hpp>

#include "deckhand/common/fsutil.hpp"
#include "deckhand/common/process.hpp"
#include "deckhand/process_oci/process_runtime.hpp"

namespace deckhand::process_oci {

using common::exit_status;
using common::make_pipe;
using common::open_fd;
using common::unique_fd;

using json = nlohmann::json;

using ordered_json = nlohmann::ordered_json;

namespace fs = std::filesystem;

constexpr const char* program_name = "deckhand-process-oci";

constexpr const char* program_version = "0.1.0";

constexpr const char* oci_version = "1.0.2";

constexpr const char* default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

constexpr std::size_t max_config_bytes = 16u << 20;

constexpr std::size_t max_message = 3000;

/// How long delete waits for a SIGKILLed process to die (runc: 10 s).
constexpr std::chrono::seconds kill_wait{10};

std::string clip(std::string s);

std::string dump(const json& j);

struct log_sink {
  int fd = -1;  ///< -1: stderr, text format
  bool json_format = false;
};

log_sink& sink();

void write_all(int fd, const std::string& text);

std::string quote_text(const std::string& s);

void log_error(const std::string& msg);

void log_warning(const std::string& msg);

struct proc_stat {
  char state = '?';
  pid_t session = 0;
  std::uint64_t start_time = 0;  ///< clock ticks after boot: tells pid reuse apart
};

std::optional<proc_stat> read_proc_stat(pid_t pid);

result<host_process_spec> spec_from_json(const json& j, const fs::path& bundle);

result<json> parse_json_text(const std::string& text);

result<std::string> read_config(const fs::path& bundle);

struct option_def {
  std::string name;
  std::string alias;  ///< short form, may be empty
  bool takes_value = false;
};

struct parsed_options {
  std::map<std::string, std::vector<std::string>> values;  ///< by long name
  std::vector<std::string> positional;

  bool has(const std::string& name) const {
    auto it = values.find(name);
    return it != values.end() && !it->second.empty() && it->second.back() != "false";
  }
  std::string get(const std::string& name, std::string fallback = {}) const {
    auto it = values.find(name);
    return it == values.end() || it->second.empty() ? fallback : it->second.back();
  }
  std::vector<std::string> all(const std::string& name) const {
    auto it = values.find(name);
    return it == values.end() ? std::vector<std::string>{} : it->second;
  }
};

result<parsed_options> parse_options(const std::vector<std::string>& args,
                                     const std::vector<option_def>& defs);

enum class status { creating, created, running, stopped };

const char* status_name(status s);

struct container_record {
  std::string id;
  fs::path dir;
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  bool ready = false;  ///< false while create is still setting the process up
  fs::path bundle;
  fs::path rootfs;
  fs::path host_cwd;
  std::string created;
  json annotations = json::object();
  json config = json::object();  ///< config.json's process and root, for exec
};

fs::path fifo_path(const fs::path& dir);

result<void> save_record(const container_record& rec);

result<container_record> load_record(const fs::path& root, const std::string& id);

/// runc's rule: the process is gone, a zombie, or another process that got
/// its pid (start time differs): stopped. Otherwise created while the exec
/// fifo exists, running after.
status status_of(const container_record& rec);

std::string owner_of(const fs::path& p);

ordered_json state_json(const container_record& rec, status s);

/// Sends `sig` to every live process of the container's session (the
/// process and whatever it started that did not leave the session). A pid
/// number stays allocated while any process still has it as session id, so
/// members found here are the container's, unless the whole session died and
/// its leader's pid was reused by a new session leader: that case is
/// recognised (the pid is alive, another process, leading its own session)
/// and left alone.
/// Returns how many processes were signalled.
int signal_session(const container_record& rec, int sig);

/// SIGKILL to the whole session, repeated while processes keep appearing
/// (something may fork between the scan and its death).
void kill_session(const container_record& rec);

/// Waits until the container's process is stopped (dead or a zombie).
/// It is not our child: a pidfd tells when it exits, a bounded poll of /proc
/// where pidfds are missing.
bool wait_stopped(const container_record& rec, std::chrono::milliseconds timeout);

/// Stops whatever is left of a container and removes its state.
result<void> destroy(const container_record& rec);

/// Everything a child needs, prepared before fork() so the child only
/// performs system calls.
struct launch_plan {
  std::vector<std::string> args;
  std::vector<std::string> env;
  fs::path cwd;
  host_process_spec spec;  ///< user, umask, rlimits, no_new_privileges, oom
  bool switch_user = false;
  int preserve_fds = 0;

  std::vector<char*> argv() {
    std::vector<char*> v;
    for (auto& a : args)
      v.push_back(a.data());
    v.push_back(nullptr);
    return v;
  }
  std::vector<char*> envp() {
    std::vector<char*> v;
    for (auto& e : env)
      v.push_back(e.data());
    v.push_back(nullptr);
    return v;
  }
};

bool is_root();

/// KEY=VALUE entries of `extra` replace same-key entries of `env` (runc exec
/// --env).
void merge_env(std::vector<std::string>& env, const std::vector<std::string>& extra);

launch_plan make_plan(std::vector<std::string> args, const host_process_spec& spec, fs::path cwd);

/// In the forked child: everything up to exec(). Returns an error text, or
/// "" with `warnings` filled in and `resolved` set.
std::string setup_child(const launch_plan& plan, std::string& warnings, std::string& resolved);

/// Child-to-parent reports over a close-on-exec pipe: 'W' + warnings (set
/// up, about to wait or exec) or 'E' + error, each ended by a NUL.
void report(int fd, char tag, const std::string& text);

/// Reads one report; nullopt when the pipe closed first.
std::optional<std::string> read_report(int fd, std::string& buffer);

void log_warnings(const std::string& text);

exit_status reap(pid_t pid);

sigset_t forwarded_set();

/// Waits for our child `pid`, passing on signals; returns its exit code
/// (128 + signal when killed), runc's convention.
int wait_forwarding(pid_t pid);

result<void> write_pid_file(const std::string& pid_file, pid_t pid);

struct context {
  fs::path root;
};

result<std::string> require_id(const parsed_options& o, const char* command,
                               std::size_t max_args = 1);

/// A created container whose process waits on the exec fifo; the caller is
/// still its parent.
struct created_container {
  container_record rec;
  pid_t pid = 0;
};

result<created_container> create_container(const context& ctx, const std::string& id,
                                           const fs::path& bundle_arg, const std::string& pid_file,
                                           int preserve_fds);

result<void> start_container(const container_record& rec);

result<int> cmd_create(const context& ctx, const std::vector<std::string>& args, bool run);

result<int> cmd_start(const context& ctx, const std::vector<std::string>& args);

result<int> cmd_state(const context& ctx, const std::vector<std::string>& args);

result<int> cmd_kill(const context& ctx, const std::vector<std::string>& args);

result<int> cmd_delete(const context& ctx, const std::vector<std::string>& args);

result<int> cmd_list(const context& ctx, const std::vector<std::string>& args);

/// exec failures of the runtime itself exit 255, as runc's do, so that they
/// differ from most commands' own codes.
constexpr int exec_failure = 255;

result<int> cmd_exec(const context& ctx, const std::vector<std::string>& args);

}  // namespace deckhand::process_oci

#pragma once

/// The `deckhand` commands. `run` parses a command line (CLI11) and
/// dispatches; each command is also callable on its own with its options and
/// output streams, so tests drive them without a process. Every command
/// returns the process exit code and writes errors, kubectl-style, to `err`.

#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "deckhand/api/manifest.hpp"
#include "deckhand/cli/api_client.hpp"

namespace deckhand::cli {

/// Where a command writes and reads.
struct io_streams {
  std::ostream& out;
  std::ostream& err;
  std::istream& in;
};

/// Options every node command has.
struct node_options {
  std::filesystem::path data_dir;
  std::string ns = "default";
  bool ns_given = false;  ///< `-n` was on the command line
};

/// `deckhand ARGS...` (without the program name).
int run(const std::vector<std::string>& args, io_streams io);

/// The `deckhand` executable's main.
int run_main(int argc, char** argv);

// -- apply ------------------------------------------------------------------------

/// Applies the objects of one validated source: create, or on AlreadyExists
/// compare with the stored object and print `unchanged` or update it
/// (`configured`). Returns 0 when every object was applied.
int apply_objects(const api_client& api, const std::vector<api::manifest_object>& objects,
                  const std::string& source, const node_options& opts, io_streams io);

/// `deckhand apply -f FILE|DIR|-` (several -f allowed). Every source is read
/// and validated before anything is sent.
int apply_command(const node_options& opts, const std::vector<std::string>& files, io_streams io);

/// The body POSTed for `obj`: the manifest with its namespace filled in and
/// kubectl's last-applied-configuration annotation.
nlohmann::json apply_body(const api::manifest_object& obj, const std::string& ns);

/// True when applying `obj` over `existing` changes nothing: the manifest
/// equals the stored last-applied configuration, or (for objects created
/// without one) every field the manifest sets has that value already.
bool apply_unchanged(const api::manifest_object& obj, const nlohmann::json& existing);

// -- get / delete / logs --------------------------------------------------------------

struct get_options {
  node_options node;
  std::string resource;  ///< pods, po, pod, svc, ... or pod/NAME
  std::vector<std::string> names;
  std::string output;  ///< "", wide, json, yaml, name
  bool all_namespaces = false;
};

int get_command(const get_options& opts, io_streams io);

struct delete_options {
  node_options node;
  std::string resource;
  std::vector<std::string> names;
  int64_t grace_period = -1;  ///< -1: the object's own
  bool force = false;
  bool wait = true;
  bool now = false;
  std::chrono::milliseconds poll_interval{200};
};

int delete_command(const delete_options& opts, io_streams io);

struct logs_options {
  node_options node;
  std::string pod;
  std::string container;
  bool follow = false;
  bool previous = false;
  int64_t tail = -1;
  std::chrono::milliseconds poll_interval{200};
};

int logs_command(const logs_options& opts, io_streams io);

/// The text of a container log file as `kubectl logs` shows it: lines in the
/// CRI log format (`TIME STREAM F|P MESSAGE`) are reduced to their message,
/// partial (`P`) lines joined; other lines pass unchanged. `partial` carries
/// an unterminated trailing line between calls when following.
std::string decode_log_chunk(std::string_view chunk, std::string& partial, bool final);

// -- node ---------------------------------------------------------------------------

/// `deckhand status`: components from up.json and ping, pod supervisors from
/// the runtime. Non-zero when a component does not answer.
int status_command(const node_options& opts, io_streams io);

int image_import_command(const node_options& opts, const std::string& path, const std::string& name,
                         io_streams io);
int image_list_command(const node_options& opts, io_streams io);

/// The demo pod manifest (configs/demo/pod.yaml), embedded at build time.
std::string_view demo_manifest();

/// The name of the image the demo pod runs.
inline constexpr const char* demo_image_name = "deckhand.local/busybox:demo";

}  // namespace deckhand::cli

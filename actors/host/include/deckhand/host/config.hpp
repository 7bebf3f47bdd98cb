#pragma once

/// Configuration of a component process: every option is a command-line flag,
/// and a YAML config file (`--config FILE`) may set any of them with
/// Kubernetes-style camelCase keys (`dataDir: /x` sets `--data-dir /x`).
/// Flags given on the command line win over the file.

#include <chrono>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

namespace deckhand::host {

/// Options every component shares.
struct common_options {
  std::filesystem::path data_dir;
  std::string config_file;
  std::string log_level = "info";
  bool log_json = false;
};

/// Adds the common options and the YAML config-file support to `app`.
void add_common_options(CLI::App& app, common_options& opts);

/// Adds a duration option in Go's notation ("500ms", "1m30s", "0"; the one
/// grammar of api::parse_duration), as a flag and as its camelCase config
/// key. Negative durations and anything that does not parse are rejected
/// with the option's name and Go's message. The default shown in --help is
/// `target`'s initial value.
CLI::Option* add_duration_option(CLI::App& app, const std::string& name,
                                 std::chrono::milliseconds& target, const std::string& description);

/// `dataDir` -> `data-dir`.
std::string camel_to_kebab(const std::string& key);

/// CLI11 config reader for YAML files (a flat mapping, or nested mappings that
/// become dotted names; lists become multiple values).
class yaml_config : public CLI::Config {
 public:
  std::string to_config(const CLI::App* app, bool default_also, bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

/// Parses argv; on error prints CLI11's message and returns the exit code to
/// use (>= 0), or -1 to continue.
int parse(CLI::App& app, int argc, char** argv);

}  // namespace deckhand::host

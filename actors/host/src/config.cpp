#include "deckhand/host/config.hpp"

#include <sstream>

#include <yaml-cpp/yaml.h>

#include "deckhand/api/duration.hpp"
#include "deckhand/common/paths.hpp"

namespace deckhand::host {

std::string camel_to_kebab(const std::string& key) {
  // "hostIP" -> "host-ip", "podCIDRRange" -> "pod-cidr-range", "dataDir" -> "data-dir".
  auto upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  std::string out;
  for (std::size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    if (c == '_') {
      out.push_back('-');
      continue;
    }
    if (upper(c)) {
      bool after_word = i > 0 && lower_or_digit(key[i - 1]);
      bool acronym_end =
          i > 0 && upper(key[i - 1]) && i + 1 < key.size() && lower_or_digit(key[i + 1]);
      if (!out.empty() && out.back() != '-' && (after_word || acronym_end))
        out.push_back('-');
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void add_common_options(CLI::App& app, common_options& opts) {
  opts.data_dir = paths::default_data_dir();
  app.add_option("--data-dir", opts.data_dir,
                 "node data directory (default $DECKHAND_DATA_DIR or /var/lib/deckhand)");
  app.add_option("--log-level", opts.log_level, "debug, info, warn or error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  app.add_flag("--log-json", opts.log_json, "log one JSON object per line");
  app.config_formatter(std::make_shared<yaml_config>());
  app.set_config("--config", "", "YAML config file (camelCase keys of the flags)");
  // A key that matches no option is a mistake worth an error, not silence.
  app.allow_config_extras(false);
}

CLI::Option* add_duration_option(CLI::App& app, const std::string& name,
                                 std::chrono::milliseconds& target,
                                 const std::string& description) {
  auto* opt = app.add_option_function<std::string>(
      name,
      [&target, name](const std::string& text) {
        auto d = api::parse_duration(text);
        if (!d)
          throw CLI::ValidationError(name, d.err().message);
        if (d->count() < 0)
          throw CLI::ValidationError(name, "must not be negative: \"" + text + "\"");
        target = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
      },
      description);
  opt->default_str(api::format_duration(target));
  return opt;
}

std::string yaml_config::to_config(const CLI::App* app, bool default_also, bool,
                                   std::string) const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const CLI::Option* opt : app->get_options()) {
    if (opt->get_lnames().empty() || opt->get_configurable() == false)
      continue;
    auto name = opt->get_lnames().front();
    auto results = opt->results();
    if (results.empty() && !default_also)
      continue;
    std::string camel;
    bool up = false;
    for (char c : name) {
      if (c == '-') {
        up = true;
      } else {
        camel.push_back(up ? static_cast<char>(std::toupper(c)) : c);
        up = false;
      }
    }
    out << YAML::Key << camel << YAML::Value
        << (results.empty() ? opt->get_default_str() : results.front());
  }
  out << YAML::EndMap;
  return out.c_str();
}

namespace {

void flatten(const YAML::Node& node, std::vector<std::string> parents,
             std::vector<CLI::ConfigItem>& items) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    auto key = camel_to_kebab(it->first.as<std::string>());
    const YAML::Node& value = it->second;
    if (value.IsMap()) {
      auto nested = parents;
      nested.push_back(key);
      flatten(value, nested, items);
      continue;
    }
    CLI::ConfigItem item;
    item.parents = parents;
    item.name = key;
    if (value.IsSequence()) {
      for (const auto& v : value)
        item.inputs.push_back(v.as<std::string>());
    } else if (value.IsScalar()) {
      item.inputs.push_back(value.as<std::string>());
    }
    items.push_back(std::move(item));
  }
}

}  // namespace

std::vector<CLI::ConfigItem> yaml_config::from_config(std::istream& input) const {
  std::vector<CLI::ConfigItem> found;
  try {
    auto root = YAML::Load(input);
    if (root.IsNull())
      return found;
    if (!root.IsMap())
      throw CLI::ConversionError("config file: the top level must be a mapping");
    flatten(root, {}, found);
  } catch (const YAML::Exception& e) {
    throw CLI::ConversionError(std::string("config file: ") + e.what());
  }
  return found;
}

int parse(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return -1;
}

}  // namespace deckhand::host

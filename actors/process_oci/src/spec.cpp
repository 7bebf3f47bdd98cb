/// config.json: what the process back-end takes from a bundle.

#include "process_runtime_internal.hpp"

namespace deckhand::process_oci {

namespace {

const std::vector<std::pair<const char*, int>>& rlimit_names() {
  static const std::vector<std::pair<const char*, int>> names{
      {"RLIMIT_CPU", RLIMIT_CPU},           {"RLIMIT_FSIZE", RLIMIT_FSIZE},
      {"RLIMIT_DATA", RLIMIT_DATA},         {"RLIMIT_STACK", RLIMIT_STACK},
      {"RLIMIT_CORE", RLIMIT_CORE},         {"RLIMIT_RSS", RLIMIT_RSS},
      {"RLIMIT_NPROC", RLIMIT_NPROC},       {"RLIMIT_NOFILE", RLIMIT_NOFILE},
      {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},   {"RLIMIT_AS", RLIMIT_AS},
      {"RLIMIT_LOCKS", RLIMIT_LOCKS},       {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
      {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE}, {"RLIMIT_NICE", RLIMIT_NICE},
      {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},     {"RLIMIT_RTTIME", RLIMIT_RTTIME},
  };
  return names;
}

error bad_config(const std::string& what) { return error{errc::invalid, "config.json: " + what}; }

/// An unsigned field that must fit `max`; absent leaves `out` alone.
template <class T>
result<void> get_unsigned(const json& obj, const char* key, const std::string& where, T& out,
                          std::uint64_t max) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    return {};
  if (!it->is_number_unsigned() || it->get<std::uint64_t>() > max)
    return bad_config(where + "." + key + " is not a number from 0 to " + std::to_string(max));
  out = static_cast<T>(it->get<std::uint64_t>());
  return {};
}

result<std::vector<std::string>> get_strings(const json& obj, const char* key,
                                             const std::string& where) {
  std::vector<std::string> out;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null())
    return out;
  if (!it->is_array())
    return bad_config(where + "." + key + " is not an array");
  for (std::size_t i = 0; i < it->size(); ++i) {
    const auto& v = (*it)[i];
    if (!v.is_string())
      return bad_config(where + "." + key + "[" + std::to_string(i) + "] is not a string");
    out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

result<host_process_spec> spec_from_json(const json& j, const fs::path& bundle) {
  if (!j.is_object())
    return bad_config("not a JSON object");
  auto pit = j.find("process");
  if (pit == j.end() || !pit->is_object())
    return bad_config("process is missing");
  const json& p = *pit;
  host_process_spec spec;

  if (auto t = p.find("terminal"); t != p.end() && !t->is_null()) {
    if (!t->is_boolean())
      return bad_config("process.terminal is not a boolean");
    if (t->get<bool>())
      return error{errc::unsupported,
                   "config.json: process.terminal is true: the process back-end runs "
                   "without a terminal"};
  }
  auto args = get_strings(p, "args", "process");
  if (!args)
    return args.err();
  if (args->empty() || (*args)[0].empty())
    return bad_config("process.args must not be empty");
  spec.args = std::move(*args);
  auto env = get_strings(p, "env", "process");
  if (!env)
    return env.err();
  spec.env = std::move(*env);
  if (auto c = p.find("cwd"); c != p.end() && !c->is_null()) {
    if (!c->is_string())
      return bad_config("process.cwd is not a string");
    spec.cwd = c->get<std::string>();
  }

  if (auto u = p.find("user"); u != p.end() && !u->is_null()) {
    if (!u->is_object())
      return bad_config("process.user is not an object");
    constexpr std::uint64_t id_max = 0xfffffffeu;  // (uid_t)-1 means "unchanged"
    if (auto r = get_unsigned(*u, "uid", "process.user", spec.uid, id_max); !r)
      return r.err();
    if (auto r = get_unsigned(*u, "gid", "process.user", spec.gid, id_max); !r)
      return r.err();
    if (auto g = u->find("additionalGids"); g != u->end() && !g->is_null()) {
      if (!g->is_array())
        return bad_config("process.user.additionalGids is not an array");
      for (const auto& v : *g) {
        if (!v.is_number_unsigned() || v.get<std::uint64_t>() > id_max)
          return bad_config("process.user.additionalGids holds a bad group id");
        spec.additional_gids.push_back(static_cast<gid_t>(v.get<std::uint64_t>()));
      }
    }
    mode_t mask = 0;
    if (auto r = get_unsigned(*u, "umask", "process.user", mask, 0777); !r)
      return r.err();
    if (u->contains("umask") && !(*u)["umask"].is_null())
      spec.umask = mask;
  }

  if (auto rl = p.find("rlimits"); rl != p.end() && !rl->is_null()) {
    if (!rl->is_array())
      return bad_config("process.rlimits is not an array");
    for (const auto& e : *rl) {
      if (!e.is_object() || !e.contains("type") || !e["type"].is_string())
        return bad_config("process.rlimits entry without a type");
      host_rlimit lim;
      lim.type = e["type"].get<std::string>();
      auto known = std::find_if(rlimit_names().begin(), rlimit_names().end(),
                                [&](const auto& n) { return lim.type == n.first; });
      if (known == rlimit_names().end())
        return bad_config("process.rlimits: unknown type " + lim.type);
      lim.resource = known->second;
      const std::string where = "process.rlimits[" + lim.type + "]";
      constexpr std::uint64_t any = ~std::uint64_t{0};
      if (auto r = get_unsigned(e, "soft", where, lim.soft, any); !r)
        return r.err();
      if (auto r = get_unsigned(e, "hard", where, lim.hard, any); !r)
        return r.err();
      if (lim.soft > lim.hard)
        return bad_config(where + ": soft limit above the hard limit");
      spec.rlimits.push_back(lim);
    }
  }
  if (auto n = p.find("noNewPrivileges"); n != p.end() && !n->is_null()) {
    if (!n->is_boolean())
      return bad_config("process.noNewPrivileges is not a boolean");
    spec.no_new_privileges = n->get<bool>();
  }
  if (auto o = p.find("oomScoreAdj"); o != p.end() && !o->is_null()) {
    if (!o->is_number_integer() || o->get<std::int64_t>() < -1000 || o->get<std::int64_t>() > 1000)
      return bad_config("process.oomScoreAdj is not a number from -1000 to 1000");
    spec.oom_score_adj = static_cast<int>(o->get<std::int64_t>());
  }

  if (auto r = j.find("root"); r != j.end() && r->is_object()) {
    if (auto rp = r->find("path"); rp != r->end() && rp->is_string())
      spec.rootfs = (bundle / rp->get<std::string>()).lexically_normal();
  }
  if (auto a = j.find("annotations"); a != j.end() && a->is_object()) {
    for (const auto& [k, v] : a->items())
      if (v.is_string())
        spec.annotations[k] = v.get<std::string>();
  }
  return spec;
}

result<json> parse_json_text(const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    return error{errc::invalid, std::string("config.json is not valid JSON: ") + e.what()};
  }
}

result<std::string> read_config(const fs::path& bundle) {
  auto text = fsutil::read_file(bundle / "config.json", max_config_bytes);
  if (!text)
    return error{text.err().code == errc::too_large ? errc::too_large : errc::invalid,
                 "bundle " + bundle.string() + ": cannot read config.json: " + text.err().message};
  return text;
}

result<host_process_spec> parse_host_process_spec(const std::string& config_json,
                                                  const fs::path& bundle) {
  auto j = parse_json_text(config_json);
  if (!j)
    return j.err();
  return spec_from_json(*j, bundle);
}

result<host_process_spec> load_host_process_spec(const fs::path& bundle) {
  auto text = read_config(bundle);
  if (!text)
    return text.err();
  auto spec = parse_host_process_spec(*text, bundle);
  if (!spec)
    return error{spec.err().code, "bundle " + bundle.string() + ": " + spec.err().message};
  return spec;
}

fs::path host_working_dir(const host_process_spec& spec, const fs::path& bundle) {
  std::error_code ec;
  if (!spec.cwd.empty() && spec.cwd[0] == '/' && fs::is_directory(spec.cwd, ec))
    return spec.cwd;
  return bundle;
}

}  // namespace deckhand::process_oci

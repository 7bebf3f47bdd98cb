#include "deckhand/runtime/container_process.hpp"

#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

namespace deckhand::runtime {

namespace {

std::optional<uint32_t> parse_id(const std::string& s) {
  if (s.empty())
    return std::nullopt;
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size())
    return std::nullopt;
  return v;
}

/// One colon-separated line of /etc/passwd or /etc/group.
std::vector<std::string> split_colon(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : line) {
    if (ch == ':') {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(ch);
    }
  }
  out.push_back(std::move(cur));
  return out;
}

/// Calls `fn(fields)` for each entry of an /etc file in the image; stops when
/// `fn` returns true. Only a regular file is read: the rootfs is untrusted, so
/// a symlink to a host path must not be followed out of it.
template <class Fn>
void scan_db(const std::filesystem::path& file, Fn&& fn) {
  std::error_code ec;
  auto st = std::filesystem::symlink_status(file, ec);
  if (ec || !std::filesystem::is_regular_file(st))
    return;
  std::ifstream in(file);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line) && ++n < 100000) {
    if (line.empty() || line[0] == '#')
      continue;
    if (fn(split_colon(line)))
      return;
  }
}

} // namespace

std::string expand_references(const std::string& in,
                              const std::map<std::string, std::string>& vars) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char ch = in[i];
    if (ch != '$' || i + 1 == in.size()) {
      out.push_back(ch);
      continue;
    }
    char next = in[i + 1];
    if (next == '$') {
      out.push_back('$');
      ++i;
    } else if (next == '(') {
      auto close = in.find(')', i + 2);
      if (close == std::string::npos) {
        out.append(in, i, std::string::npos);
        break;
      }
      auto name = in.substr(i + 2, close - i - 2);
      if (auto it = vars.find(name); it != vars.end())
        out += it->second;
      else
        out.append(in, i, close - i + 1);
      i = close;
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

namespace {

/// The container's own env as a map, each value expanded against the ones
/// defined before it (Kubernetes' dependent environment variables).
std::map<std::string, std::string> container_vars(const wire::container& c) {
  std::map<std::string, std::string> vars;
  for (const auto& e : c.env)
    vars[e.name] = expand_references(e.value, vars);
  return vars;
}

} // namespace

std::vector<std::string> container_env(const wire::container& c,
                                       const image::image_config& img) {
  std::vector<std::string> env;
  std::map<std::string, std::size_t> index;
  auto set = [&](const std::string& key, const std::string& entry) {
    if (auto it = index.find(key); it != index.end()) {
      env[it->second] = entry;
    } else {
      index[key] = env.size();
      env.push_back(entry);
    }
  };
  for (const auto& e : img.env) {
    auto eq = e.find('=');
    set(eq == std::string::npos ? e : e.substr(0, eq), e);
  }
  std::map<std::string, std::string> vars;
  for (const auto& e : c.env) {
    if (e.name.empty())
      continue;
    auto value = expand_references(e.value, vars);
    vars[e.name] = value;
    set(e.name, e.name + "=" + value);
  }
  return env;
}

result<std::vector<std::string>> container_args(const wire::container& c,
                                                const image::image_config& img) {
  std::vector<std::string> argv;
  if (!c.command.empty()) {
    argv = c.command;
    argv.insert(argv.end(), c.args.begin(), c.args.end());
  } else {
    argv = img.entrypoint;
    const auto& tail = c.args.empty() ? img.cmd : c.args;
    argv.insert(argv.end(), tail.begin(), tail.end());
  }
  auto vars = container_vars(c);
  for (auto& a : argv)
    a = expand_references(a, vars);
  if (argv.empty() || argv[0].empty())
    return error{errc::invalid, "container \"" + c.name
                                  + "\": no command specified (neither the pod nor "
                                    "the image gives one)"};
  return argv;
}

std::string container_cwd(const wire::container& c, const image::image_config& img) {
  if (!c.working_dir.empty())
    return c.working_dir;
  if (!img.working_dir.empty())
    return img.working_dir;
  return "/";
}

result<std::pair<uid_t, gid_t>> resolve_user(const std::string& user,
                                             const std::filesystem::path& rootfs) {
  if (user.empty())
    return std::pair<uid_t, gid_t>{0, 0};
  auto colon = user.find(':');
  std::string u = user.substr(0, colon);
  std::string g = colon == std::string::npos ? std::string{} : user.substr(colon + 1);

  std::optional<uid_t> uid;
  std::optional<gid_t> primary_gid;
  if (auto n = parse_id(u)) {
    uid = *n;
    scan_db(rootfs / "etc" / "passwd", [&](const std::vector<std::string>& f) {
      if (f.size() >= 4 && parse_id(f[2]) == *n) {
        primary_gid = parse_id(f[3]);
        return true;
      }
      return false;
    });
  } else {
    scan_db(rootfs / "etc" / "passwd", [&](const std::vector<std::string>& f) {
      if (f.size() >= 4 && f[0] == u) {
        uid = parse_id(f[2]);
        primary_gid = parse_id(f[3]);
        return true;
      }
      return false;
    });
    if (!uid)
      return error{errc::invalid,
                   "user \"" + u + "\" is not in the image's /etc/passwd"};
  }

  gid_t gid = primary_gid.value_or(0);
  if (!g.empty()) {
    if (auto n = parse_id(g)) {
      gid = *n;
    } else {
      std::optional<gid_t> found;
      scan_db(rootfs / "etc" / "group", [&](const std::vector<std::string>& f) {
        if (f.size() >= 3 && f[0] == g) {
          found = parse_id(f[2]);
          return true;
        }
        return false;
      });
      if (!found)
        return error{errc::invalid,
                     "group \"" + g + "\" is not in the image's /etc/group"};
      gid = *found;
    }
  }
  return std::pair<uid_t, gid_t>{*uid, gid};
}

result<container_process> make_container_process(const wire::container& c,
                                                 const image::image_config& img,
                                                 const std::filesystem::path& rootfs) {
  container_process p;
  auto args = container_args(c, img);
  if (!args)
    return std::move(args).err();
  p.args = std::move(*args);
  p.env = container_env(c, img);
  p.cwd = container_cwd(c, img);
  if (p.cwd.empty() || p.cwd[0] != '/')
    return error{errc::invalid, "container \"" + c.name
                                  + "\": workingDir must be an absolute path, got \""
                                  + p.cwd + "\""};
  auto user = resolve_user(img.user, rootfs);
  if (!user)
    return error{errc::invalid, "container \"" + c.name + "\": " + user.err().message};
  p.uid = user->first;
  p.gid = user->second;
  return p;
}

oci::bundle_spec container_bundle_spec(const wire::pod& p, const wire::container& c,
                                       const container_process& proc,
                                       const std::filesystem::path& rootfs) {
  (void) c;
  oci::bundle_spec spec;
  spec.args = proc.args;
  spec.env = proc.env;
  spec.cwd = proc.cwd;
  spec.uid = proc.uid;
  spec.gid = proc.gid;
  spec.rootfs = rootfs;
  auto hostname = p.spec.hostname.empty() ? p.metadata.name : p.spec.hostname;
  if (hostname.size() > 63)
    hostname.resize(63);
  spec.hostname = hostname;
  return spec;
}

} // namespace deckhand::runtime

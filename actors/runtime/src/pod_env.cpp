#include "deckhand/runtime/pod_env.hpp"

#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "deckhand/api/quantity.hpp"

namespace deckhand::runtime {

namespace {

/// expansion.tryReadVariableName: what follows a `$` at `in[pos]`.
/// Returns the text read, whether it is a variable name, and how many bytes
/// after the `$` it consumed.
struct read_result {
  std::string text;
  bool is_var = false;
  std::size_t advance = 0;
};

read_result try_read_variable_name(const std::string& in, std::size_t pos) {
  char ch = in[pos];
  if (ch == '$')
    return {"$", false, 1};  // escaped operator
  if (ch == '(') {
    for (std::size_t i = pos + 1; i < in.size(); ++i)
      if (in[i] == ')')
        return {in.substr(pos + 1, i - pos - 1), true, i - pos + 1};
    return {"$(", false, 1};  // incomplete reference: kept as written
  }
  // Not an expression: the operator and the byte after it.
  return {std::string("$") + ch, false, 1};
}

bool alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

/// validation.IsQualifiedName: [prefix/]name, name at most 63 of
/// [A-Za-z0-9-_.] starting and ending alphanumeric, prefix a DNS subdomain.
bool is_qualified_name(const std::string& s) {
  auto slash = s.find('/');
  std::string name = slash == std::string::npos ? s : s.substr(slash + 1);
  if (slash != std::string::npos) {
    auto prefix = s.substr(0, slash);
    if (prefix.empty() || prefix.size() > 253)
      return false;
    for (char c : prefix)
      if (!(std::islower(static_cast<unsigned char>(c)) ||
            std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
        return false;
    if (!alnum(prefix.front()) || !alnum(prefix.back()))
      return false;
  }
  if (name.empty() || name.size() > 63 || !alnum(name.front()) || !alnum(name.back()))
    return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

/// fieldpath.SplitMaybeSubscriptedPath: "metadata.labels['k']" ->
/// ("metadata.labels", "k").
bool split_subscript(const std::string& path, std::string& base, std::string& key) {
  const std::string close = "']";
  if (path.size() < close.size() ||
      path.compare(path.size() - close.size(), close.size(), close) != 0)
    return false;
  auto s = path.substr(0, path.size() - close.size());
  auto open = s.find("['");
  if (open == std::string::npos || open == 0)
    return false;
  base = s.substr(0, open);
  key = s.substr(open + 2);
  return true;
}

/// The length of the valid UTF-8 sequence at s[i], 0 if invalid.
std::size_t utf8_length(const std::string& s, std::size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  std::size_t n = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 0;
  if (n == 0 || i + n > s.size())
    return 0;
  for (std::size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80)
      return 0;
  return n;
}

/// Go's strconv.Quote for the cases that matter here: ASCII escapes exactly,
/// valid UTF-8 kept, invalid bytes as \xHH.
std::string go_quote(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (auto n = utf8_length(s, i)) {
        out.append(s, i, n);
        i += n - 1;
      } else {
        out += "\\x";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
      }
      continue;
    }
    switch (c) {
    case '"': out += "\\\""; break;
    case '\\': out += "\\\\"; break;
    case '\a': out += "\\a"; break;
    case '\b': out += "\\b"; break;
    case '\f': out += "\\f"; break;
    case '\n': out += "\\n"; break;
    case '\r': out += "\\r"; break;
    case '\t': out += "\\t"; break;
    case '\v': out += "\\v"; break;
    default:
      if (c < 0x20 || c == 0x7f) {
        out += "\\x";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
      } else {
        out.push_back(static_cast<char>(c));
      }
    }
  }
  out += "\"";
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// Non-integer divisions rounded up, as math.Ceil(float64(a)/float64(b)).
int64_t ceil_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) == (b < 0)))
    ++q;
  return q;
}

std::string config_error(const std::string& what) { return create_container_config_error + what; }

}  // namespace

std::string expand_references(const std::string& in,
                              const std::map<std::string, std::string>& vars) {
  std::string out;
  out.reserve(in.size());
  std::size_t checkpoint = 0;
  for (std::size_t cursor = 0; cursor < in.size(); ++cursor) {
    if (in[cursor] != '$' || cursor + 1 >= in.size())
      continue;
    out.append(in, checkpoint, cursor - checkpoint);
    auto r = try_read_variable_name(in, cursor + 1);
    if (r.is_var) {
      if (auto it = vars.find(r.text); it != vars.end())
        out += it->second;
      else
        out += "$(" + r.text + ")";
    } else {
      out += r.text;
    }
    cursor += r.advance;
    checkpoint = cursor + 1;
  }
  if (checkpoint < in.size())
    out.append(in, checkpoint, std::string::npos);
  return out;
}

std::string format_map(const std::map<std::string, std::string>& m) {
  std::string out;
  for (const auto& [k, v] : m) {  // std::map: sorted by key
    if (!out.empty())
      out += "\n";
    out += k + "=" + go_quote(v);
  }
  return out;
}

result<std::string> pod_metadata_field_value(const wire::pod& p, const std::string& field_path) {
  std::string base, key;
  if (split_subscript(field_path, base, key)) {
    if (base != "metadata.annotations" && base != "metadata.labels")
      return error{errc::invalid, "fieldPath \"" + base + "\" does not support subscript"};
    if (!is_qualified_name(lower(key)))
      return error{errc::invalid,
                   "invalid key subscript in " + field_path + ": not a qualified name"};
    const auto& m = base == "metadata.labels" ? p.metadata.labels : p.metadata.annotations;
    auto it = m.find(key);
    return it == m.end() ? std::string() : it->second;
  }
  if (field_path == "metadata.annotations")
    return format_map(p.metadata.annotations);
  if (field_path == "metadata.labels")
    return format_map(p.metadata.labels);
  if (field_path == "metadata.name")
    return p.metadata.name;
  if (field_path == "metadata.namespace")
    return p.metadata.namespace_.empty() ? std::string("default") : p.metadata.namespace_;
  if (field_path == "metadata.uid")
    return p.metadata.uid;
  return error{errc::invalid, "unsupported fieldPath: " + field_path};
}

result<std::string> pod_field_value(const wire::pod& p, const std::string& field_path,
                                    const pod_env_context& ctx) {
  if (field_path == "spec.nodeName")
    return p.spec.node_name;
  if (field_path == "spec.serviceAccountName")
    return std::string();  // deckhand has no service accounts
  if (field_path == "status.hostIP" || field_path == "status.hostIPs")
    return ctx.host_ip;  // one address family: the list has one entry
  if (field_path == "status.podIP" || field_path == "status.podIPs")
    return ctx.pod_ip;
  return pod_metadata_field_value(p, field_path);
}

const wire::container* find_container(const wire::pod& p, const std::string& name) {
  for (const auto* list : {&p.spec.containers, &p.spec.init_containers})
    for (const auto& c : *list)
      if (c.name == name)
        return &c;
  return nullptr;
}

result<std::string> container_resource_value(const wire::resource_field_selector& sel,
                                             const wire::container& c,
                                             const node_allocatable& node) {
  const auto& res = sel.resource;
  auto dot = res.find('.');
  std::string kind = dot == std::string::npos ? res : res.substr(0, dot);
  std::string name = dot == std::string::npos ? std::string() : res.substr(dot + 1);
  if ((kind != "limits" && kind != "requests") ||
      (name != "cpu" && name != "memory" && name != "ephemeral-storage"))
    return error{errc::invalid, "unsupported container resource : " + res};
  const bool cpu = name == "cpu";

  auto parse = [&](const std::string& text) -> result<int64_t> {
    return cpu ? api::quantity_milli_value(text) : api::quantity_value(text);
  };
  int64_t divisor = cpu ? 1000 : 1;
  if (!sel.divisor.value.empty()) {
    auto d = parse(sel.divisor.value);
    if (!d)
      return error{errc::invalid, "resourceFieldRef " + res + ": divisor \"" + sel.divisor.value +
                                      "\": " + d.err().message};
    // A zero divisor is Kubernetes' "unset": 1.
    if (*d < 0)
      return error{errc::invalid, "resourceFieldRef " + res + ": divisor \"" + sel.divisor.value +
                                      "\" must be positive"};
    if (*d > 0)
      divisor = *d;
  }

  auto lookup = [&](const wire::string_map& m) -> result<std::optional<int64_t>> {
    auto it = m.find(name);
    if (it == m.end())
      return std::optional<int64_t>{};
    auto v = parse(it->second);
    if (!v)
      return error{errc::invalid, "container \"" + c.name + "\": resources." + kind + "." + name +
                                      ": " + v.err().message};
    return std::optional<int64_t>{*v};
  };
  auto limit = lookup(c.resources.limits);
  if (!limit)
    return limit.err();
  int64_t value = 0;
  if (kind == "limits") {
    if (*limit) {
      value = **limit;
    } else {
      value = cpu                ? node.cpu_milli
              : name == "memory" ? node.memory_bytes
                                 : node.ephemeral_storage_bytes;
    }
  } else {
    auto request = lookup(c.resources.requests);
    if (!request)
      return request.err();
    value = request->value_or(limit->value_or(0));
  }
  return std::to_string(ceil_div(value, divisor));
}

result<env_list> resolve_env(const wire::pod& p, const wire::container& c,
                             const pod_env_context& ctx) {
  env_list out;
  std::map<std::string, std::string> vars;
  auto set = [&](const std::string& name, std::string value) {
    vars[name] = value;
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& e) { return e.first == name; });
    if (it != out.end())
      it->second = std::move(value);
    else
      out.emplace_back(name, std::move(value));
  };
  for (const auto& e : c.env) {
    if (e.name.empty())
      continue;
    if (!e.value.empty() || !e.value_from) {
      set(e.name, expand_references(e.value, vars));
      continue;
    }
    const auto& from = *e.value_from;
    if (from.field_ref) {
      auto v = pod_field_value(p, from.field_ref->field_path, ctx);
      if (!v)
        return error{errc::invalid, config_error(v.err().message)};
      set(e.name, std::move(*v));
    } else if (from.resource_field_ref) {
      const auto& sel = *from.resource_field_ref;
      const wire::container* target = &c;
      if (!sel.container_name.empty()) {
        target = find_container(p, sel.container_name);
        if (!target)
          return error{errc::invalid,
                       config_error("container " + sel.container_name + " not found")};
      }
      auto v = container_resource_value(sel, *target, ctx.node);
      if (!v)
        return error{errc::invalid, config_error(v.err().message)};
      set(e.name, std::move(*v));
    } else if (from.config_map_key_ref || from.secret_key_ref) {
      const bool secret = from.secret_key_ref.has_value();
      const auto& ref = secret ? *from.secret_key_ref : *from.config_map_key_ref;
      // No object exists on deckhand: only an optional reference succeeds,
      // and then the variable is not set at all (as for a missing key).
      if (ref.optional.value_or(false))
        continue;
      return error{errc::invalid, config_error(std::string(secret ? "secret" : "configmap") +
                                               " \"" + ref.name + "\" not found")};
    } else {
      set(e.name, std::string());
    }
  }
  return out;
}

env_list plain_env(const wire::container& c) {
  env_list out;
  std::map<std::string, std::string> vars;
  for (const auto& e : c.env) {
    if (e.name.empty())
      continue;
    auto value = expand_references(e.value, vars);
    vars[e.name] = value;
    auto it =
        std::find_if(out.begin(), out.end(), [&](const auto& x) { return x.first == e.name; });
    if (it != out.end())
      it->second = value;
    else
      out.emplace_back(e.name, value);
  }
  return out;
}

node_allocatable read_node_allocatable(const std::filesystem::path& data_dir) {
  node_allocatable n;
  long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
  n.cpu_milli = (cpus > 0 ? cpus : 1) * 1000;
  long pages = ::sysconf(_SC_PHYS_PAGES);
  long page = ::sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0)
    n.memory_bytes = static_cast<int64_t>(pages) * page;
  struct statvfs vfs {};
  std::error_code ec;
  auto dir = data_dir;
  while (!dir.empty() && !std::filesystem::exists(dir, ec) && dir != dir.parent_path())
    dir = dir.parent_path();
  if (!dir.empty() && ::statvfs(dir.c_str(), &vfs) == 0)
    n.ephemeral_storage_bytes = static_cast<int64_t>(vfs.f_blocks) * vfs.f_frsize;
  return n;
}

}  // namespace deckhand::runtime

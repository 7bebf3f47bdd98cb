#include "deckhand/apiserver/selectors.hpp"

#include <cctype>

namespace deckhand::apiserver {

using nlohmann::json;

namespace {

std::string trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
    ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
    --e;
  return s.substr(b, e - b);
}

/// Splits on commas that are not inside parentheses.
result<std::vector<std::string>> split_terms(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : text) {
    if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth < 0)
        return error{errc::invalid, "unbalanced parenthesis in selector \"" + text + "\""};
    } else if (c == ',' && depth == 0) {
      out.push_back(trim(cur));
      cur.clear();
      continue;
    }
    cur.push_back(c);
  }
  if (depth != 0)
    return error{errc::invalid, "unbalanced parenthesis in selector \"" + text + "\""};
  out.push_back(trim(cur));
  return out;
}

bool valid_label_key(const std::string& k) {
  if (k.empty() || k.size() > 317)
    return false;
  for (char c : k)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          c == '/'))
      return false;
  return true;
}

bool valid_label_value(const std::string& v) {
  if (v.size() > 63)
    return false;
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

/// Parses "key in (a, b)" / "key notin (a,b)"; returns false if `term` is not of that form.
bool parse_set_term(const std::string& term, label_requirement& req, std::string& err) {
  auto open = term.find('(');
  if (open == std::string::npos)
    return false;
  std::string head = trim(term.substr(0, open));
  std::size_t sp = head.find_last_of(" \t");
  if (sp == std::string::npos)
    return false;
  std::string word = trim(head.substr(sp + 1));
  if (word != "in" && word != "notin")
    return false;
  req.key = trim(head.substr(0, sp));
  req.operation = word == "in" ? label_requirement::op::in : label_requirement::op::not_in;
  if (term.back() != ')') {
    err = "expected ')' at the end of \"" + term + "\"";
    return true;
  }
  std::string inner = term.substr(open + 1, term.size() - open - 2);
  std::size_t start = 0;
  for (;;) {
    auto comma = inner.find(',', start);
    std::string v =
        trim(inner.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (!valid_label_value(v)) {
      err = "invalid label value: \"" + v + "\"";
      return true;
    }
    req.values.insert(v);
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return true;
}

}  // namespace

bool label_selector::matches(const json& labels) const {
  for (const auto& r : requirements) {
    bool has = labels.is_object() && labels.contains(r.key) && labels[r.key].is_string();
    std::string v = has ? labels[r.key].get<std::string>() : std::string{};
    switch (r.operation) {
    case label_requirement::op::equals:
      if (!has || v != *r.values.begin())
        return false;
      break;
    case label_requirement::op::not_equals:
      if (has && v == *r.values.begin())
        return false;
      break;
    case label_requirement::op::in:
      if (!has || !r.values.count(v))
        return false;
      break;
    case label_requirement::op::not_in:
      if (has && r.values.count(v))
        return false;
      break;
    case label_requirement::op::exists:
      if (!has)
        return false;
      break;
    case label_requirement::op::not_exists:
      if (has)
        return false;
      break;
    }
  }
  return true;
}

result<label_selector> parse_label_selector(const std::string& text) {
  label_selector sel;
  if (trim(text).empty())
    return sel;
  auto terms = split_terms(text);
  if (!terms)
    return terms.err();
  for (const auto& term : *terms) {
    if (term.empty())
      return error{errc::invalid, "empty requirement in label selector \"" + text + "\""};
    label_requirement req;
    std::string err;
    if (parse_set_term(term, req, err)) {
      if (!err.empty())
        return error{errc::invalid, err};
    } else if (auto ne = term.find("!="); ne != std::string::npos) {
      req.key = trim(term.substr(0, ne));
      req.operation = label_requirement::op::not_equals;
      req.values.insert(trim(term.substr(ne + 2)));
    } else if (auto eq = term.find('='); eq != std::string::npos) {
      req.key = trim(term.substr(0, eq));
      req.operation = label_requirement::op::equals;
      std::size_t vstart = eq + 1;
      if (vstart < term.size() && term[vstart] == '=')
        ++vstart;
      req.values.insert(trim(term.substr(vstart)));
    } else if (term[0] == '!') {
      req.key = trim(term.substr(1));
      req.operation = label_requirement::op::not_exists;
    } else {
      req.key = term;
      req.operation = label_requirement::op::exists;
    }
    if (!valid_label_key(req.key))
      return error{errc::invalid,
                   "invalid label key \"" + req.key + "\" in selector \"" + text + "\""};
    for (const auto& v : req.values)
      if (!valid_label_value(v))
        return error{errc::invalid,
                     "invalid label value: \"" + v + "\" in selector \"" + text + "\""};
    sel.requirements.push_back(std::move(req));
  }
  return sel;
}

std::string field_value(const json& object, const std::string& path) {
  const json* cur = &object;
  std::size_t start = 0;
  while (start <= path.size()) {
    auto dot = path.find('.', start);
    std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object() || !cur->contains(part))
      return {};
    cur = &(*cur)[part];
    if (dot == std::string::npos)
      break;
    start = dot + 1;
  }
  if (cur->is_string())
    return cur->get<std::string>();
  if (cur->is_null())
    return {};
  return cur->dump();
}

bool field_selector::matches(const json& object) const {
  for (const auto& r : requirements)
    if ((field_value(object, r.field) == r.value) == r.negate)
      return false;
  return true;
}

result<field_selector> parse_field_selector(const std::string& text,
                                            const std::set<std::string>& allowed) {
  field_selector sel;
  if (trim(text).empty())
    return sel;
  auto terms = split_terms(text);
  if (!terms)
    return terms.err();
  for (const auto& term : *terms) {
    field_requirement req;
    std::size_t vstart = 0;
    if (auto ne = term.find("!="); ne != std::string::npos) {
      req.field = trim(term.substr(0, ne));
      req.negate = true;
      vstart = ne + 2;
    } else if (auto eq = term.find('='); eq != std::string::npos) {
      req.field = trim(term.substr(0, eq));
      vstart = eq + 1;
      if (vstart < term.size() && term[vstart] == '=')
        ++vstart;
    } else {
      return error{errc::invalid, "invalid field selector: '" + term + "'"};
    }
    req.value = trim(term.substr(vstart));
    if (!allowed.count(req.field))
      return error{errc::invalid, "field label not supported: " + req.field};
    sel.requirements.push_back(std::move(req));
  }
  return sel;
}

}  // namespace deckhand::apiserver

#include "deckhand/api/manifest.hpp"

#include "deckhand/api/yaml.hpp"

namespace deckhand::api {

namespace {

using nlohmann::json;

std::string type_name(const json& j) {
  if (j.is_string())
    return "string";
  if (j.is_number())
    return "number";
  if (j.is_boolean())
    return "bool";
  if (j.is_array())
    return "[]interface {}";
  return "object";
}

std::string get_string(const json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string())
    return {};
  return it->get<std::string>();
}

error validate_one(const json& doc, const std::string& source, std::vector<manifest_object>& out);

error validate_list(const json& doc, const std::string& source, std::vector<manifest_object>& out) {
  auto it = doc.find("items");
  if (it == doc.end() || it->is_null())
    return {};
  if (!it->is_array())
    return {errc::invalid,
            "error validating \"" + source + "\": error validating data: items must be a list"};
  for (const auto& item : *it)
    if (auto err = validate_one(item, source, out))
      return err;
  return {};
}

error validate_one(const json& doc, const std::string& source, std::vector<manifest_object>& out) {
  if (!doc.is_object())
    return {errc::invalid, "unable to decode \"" + source + "\": json: cannot unmarshal " +
                               type_name(doc) + " into Go value of type map[string]interface {}"};
  auto api_version = get_string(doc, "apiVersion");
  auto kind = get_string(doc, "kind");
  std::vector<std::string> missing;
  if (api_version.empty())
    missing.push_back("apiVersion not set");
  if (kind.empty())
    missing.push_back("kind not set");
  if (!missing.empty()) {
    std::string what =
        missing.size() == 1 ? missing[0] : "[" + missing[0] + ", " + missing[1] + "]";
    return {errc::invalid, "error validating \"" + source + "\": error validating data: " + what +
                               "; if you choose to ignore these errors, turn "
                               "validation off with --validate=false"};
  }
  if (api_version == "v1" &&
      (kind == "List" || kind == "PodList" || kind == "ServiceList" || kind == "EndpointsList"))
    return validate_list(doc, source, out);
  if (api_version != "v1" || (kind != "Pod" && kind != "Service" && kind != "Endpoints"))
    return {errc::unsupported,
            "no matches for kind \"" + kind + "\" in version \"" + api_version + "\""};
  manifest_object obj;
  obj.api_version = api_version;
  obj.kind = kind;
  obj.resource = kind == "Pod" ? "pods" : kind == "Service" ? "services" : "endpoints";
  auto meta = doc.find("metadata");
  if (meta != doc.end() && !meta->is_null() && !meta->is_object())
    return {errc::invalid, "error validating \"" + source +
                               "\": error validating data: metadata must be an object"};
  if (meta != doc.end() && meta->is_object()) {
    obj.name = get_string(*meta, "name");
    obj.namespace_ = get_string(*meta, "namespace");
  }
  if (obj.name.empty())
    return {errc::invalid, "error validating \"" + source + "\": resource name may not be empty"};
  obj.object = doc;
  out.push_back(std::move(obj));
  return {};
}

}  // namespace

result<std::vector<manifest_object>> parse_manifests(std::string_view text,
                                                     const std::string& source) {
  auto docs = parse_documents(text, source);
  if (!docs)
    return std::move(docs).err();
  std::vector<manifest_object> out;
  for (const auto& doc : *docs)
    if (auto err = validate_one(doc, source, out))
      return err;
  return out;
}

std::string resource_collection(const std::string& name) {
  if (name == "pod" || name == "pods" || name == "po")
    return "pods";
  if (name == "service" || name == "services" || name == "svc")
    return "services";
  if (name == "endpoints" || name == "ep")
    return "endpoints";
  if (name == "endpointslice" || name == "endpointslices")
    return "endpointslices";
  if (name == "event" || name == "events" || name == "ev")
    return "events";
  return {};
}

std::string collection_kind(const std::string& collection) {
  if (collection == "pods")
    return "Pod";
  if (collection == "services")
    return "Service";
  if (collection == "endpoints")
    return "Endpoints";
  if (collection == "endpointslices")
    return "EndpointSlice";
  if (collection == "events")
    return "Event";
  return {};
}

std::string collection_api_version(const std::string& collection) {
  return collection == "endpointslices" ? "discovery.k8s.io/v1" : "v1";
}

}  // namespace deckhand::api

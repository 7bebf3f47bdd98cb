// kubectl get svc / ep / endpointslices against the API server with the
// allocator and the endpoints controller wired as deckhand-apiserver wires
// them: discovery of discovery.k8s.io/v1 and the Table columns.

#include <stdio.h>
#include <sys/wait.h>

#include <fstream>

#include <boost/test/unit_test.hpp>

#include "deckhand/apiserver/endpoints_controller.hpp"
#include "deckhand/apiserver/http_api.hpp"
#include "support.hpp"

using namespace deckhand::apiserver;
using deckhand::apiserver::test::temp_dir;
using nlohmann::json;

namespace {

bool have_kubectl() { return std::system("command -v kubectl >/dev/null 2>&1") == 0; }

struct kubectl_services_fixture {
  temp_dir tmp;
  store st = store::open(tmp.path() / "apiserver").value();
  registry reg{st, options()};
  endpoints_controller ctl{reg};
  http_api api{reg};

  static registry_options options() {
    registry_options o;
    o.allocator = std::shared_ptr<service_allocator>(service_allocator::create({}).value());
    return o;
  }

  kubectl_services_fixture() {
    ctl.attach();
    BOOST_REQUIRE(api.start().ok());
    std::ofstream(tmp.path() / "kubeconfig") << "";
  }
  ~kubectl_services_fixture() {
    api.stop();
    ctl.stop();
  }

  std::pair<int, std::string> kubectl(const std::string& args) {
    std::string cmd = "KUBECONFIG=" + (tmp.path() / "kubeconfig").string() +
                      " timeout 60 kubectl --server=" + api.url() +
                      " --cache-dir=" + (tmp.path() / "cache").string() +
                      " --request-timeout=20s " + args + " 2>&1 </dev/null";
    FILE* p = ::popen(cmd.c_str(), "r");
    BOOST_REQUIRE(p);
    std::string out;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p))
      out.append(buf, n);
    int status = ::pclose(p);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    BOOST_TEST_MESSAGE("kubectl " << args << " -> " << code << "\n" << out);
    return {code, out};
  }

  std::string write_manifest(const std::string& name, const std::string& text) {
    auto path = tmp.path() / name;
    std::ofstream(path) << text;
    return path.string();
  }

  void run_pod(const std::string& name, const std::string& ip) {
    json pod = {{"metadata", {{"name", name}, {"labels", {{"app", "web"}}}}},
                {"spec",
                 {{"containers",
                   {{{"name", "c"},
                     {"image", "x:1"},
                     {"ports", {{{"name", "http"}, {"containerPort", 8080}}}}}}}}}};
    BOOST_REQUIRE(reg.create("Pod", "default", pod).ok());
    BOOST_REQUIRE(reg.bind("default", name, "node-1").ok());
    json status = {{"phase", "Running"},
                   {"podIP", ip},
                   {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}};
    BOOST_REQUIRE(reg.update_status("Pod", "default", name, status, "").ok());
  }
};

const char* manifests = R"(apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  type: NodePort
  selector:
    app: web
  sessionAffinity: ClientIP
  ports:
  - name: http
    port: 80
    targetPort: http
    nodePort: 30080
---
apiVersion: v1
kind: Service
metadata:
  name: db
spec:
  ports:
  - port: 5432
---
apiVersion: v1
kind: Endpoints
metadata:
  name: db
subsets:
- addresses:
  - ip: 192.168.1.10
  ports:
  - port: 5432
)";

/// The line of `out` that starts with `name` and a space.
std::string row(const std::string& out, const std::string& name) {
  std::size_t pos = 0;
  while (pos < out.size()) {
    auto end = out.find('\n', pos);
    std::string line = out.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    if (line.rfind(name + " ", 0) == 0)
      return line;
    if (end == std::string::npos)
      break;
    pos = end + 1;
  }
  return {};
}

/// `line` with runs of spaces collapsed to one.
std::string squeeze(const std::string& line) {
  std::string out;
  for (char c : line)
    if (c != ' ' || out.empty() || out.back() != ' ')
      out.push_back(c);
  return out;
}

}  // namespace

BOOST_FIXTURE_TEST_SUITE(kubectl_services_suite, kubectl_services_fixture)

BOOST_AUTO_TEST_CASE(get_svc_ep_and_endpointslices) {
  if (!have_kubectl()) {
    BOOST_TEST_MESSAGE("kubectl not on PATH: skipped");
    return;
  }
  auto [c0, applied] = kubectl("apply -f " + write_manifest("svc.yaml", manifests));
  BOOST_REQUIRE_MESSAGE(c0 == 0, applied);
  BOOST_TEST(applied.find("service/web created") != std::string::npos);
  BOOST_TEST(applied.find("endpoints/db created") != std::string::npos);
  run_pod("web-1", "10.244.0.2");
  ctl.sync_pending();
  json web = *reg.get("Service", "default", "web");
  std::string ip = web["spec"]["clusterIP"];

  auto [c1, svc] = kubectl("get svc");
  BOOST_REQUIRE_MESSAGE(c1 == 0, svc);
  BOOST_TEST(squeeze(svc).find("NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE") == 0u);
  BOOST_TEST(squeeze(row(svc, "web")).rfind("web NodePort " + ip + " <none> 80:30080/TCP ", 0) ==
             0u);

  auto [c2, wide] = kubectl("get svc web -o wide");
  BOOST_REQUIRE_MESSAGE(c2 == 0, wide);
  BOOST_TEST(squeeze(row(wide, "web")).find(" app=web") != std::string::npos);

  auto [c3, ep] = kubectl("get ep");
  BOOST_REQUIRE_MESSAGE(c3 == 0, ep);
  BOOST_TEST(squeeze(ep).find("NAME ENDPOINTS AGE") == 0u);
  BOOST_TEST(squeeze(row(ep, "web")).rfind("web 10.244.0.2:8080 ", 0) == 0u);
  BOOST_TEST(squeeze(row(ep, "db")).rfind("db 192.168.1.10:5432 ", 0) == 0u);

  auto [c4, slices] = kubectl("get endpointslices");
  BOOST_REQUIRE_MESSAGE(c4 == 0, slices);
  BOOST_TEST(squeeze(slices).find("NAME ADDRESSTYPE PORTS ENDPOINTS AGE") == 0u);
  BOOST_TEST(squeeze(slices).find(" IPv4 8080 10.244.0.2 ") != std::string::npos);
  BOOST_TEST(squeeze(slices).find(" IPv4 5432 192.168.1.10 ") != std::string::npos);

  auto [c5, js] = kubectl("get endpointslices -l kubernetes.io/service-name=web -o json");
  BOOST_REQUIRE_MESSAGE(c5 == 0, js);
  json list = json::parse(js);
  BOOST_REQUIRE(list["items"].size() == 1u);
  BOOST_TEST(list["items"][0]["apiVersion"] == "discovery.k8s.io/v1");
  BOOST_TEST(list["items"][0]["endpoints"][0]["conditions"]["ready"] == true);

  auto [c6, affinity] =
      kubectl("get svc web -o jsonpath={.spec.sessionAffinityConfig.clientIP.timeoutSeconds}");
  BOOST_REQUIRE_MESSAGE(c6 == 0, affinity);
  BOOST_TEST(affinity == "10800");

  // A requested node port that is taken is refused with Kubernetes' words.
  std::string clash = manifests;
  clash = clash.substr(0, clash.find("---"));
  clash.replace(clash.find("name: web"), 9, "name: web2");
  auto [c7, refused] = kubectl("create -f " + write_manifest("clash.yaml", clash));
  BOOST_TEST(c7 != 0);
  BOOST_TEST(refused.find("spec.ports[0].nodePort: Invalid value: 30080: provided port is already "
                          "allocated") != std::string::npos);

  auto [c8, deleted] = kubectl("delete svc web");
  BOOST_REQUIRE_MESSAGE(c8 == 0, deleted);
  ctl.sync_pending();
  auto [c9, after] = kubectl("get ep,endpointslices -o name");
  BOOST_REQUIRE_MESSAGE(c9 == 0, after);
  BOOST_TEST(after.find("web") == std::string::npos);
  BOOST_TEST(after.find("endpoints/db") != std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()

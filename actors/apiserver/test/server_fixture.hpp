#pragma once

// The API server the apiserver tests talk to over HTTP, and the real kubectl
// pointed at it: one harness for the kubectl and CLI suites.

#include <stdio.h>
#include <sys/wait.h>

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "deckhand/apiserver/endpoints_controller.hpp"
#include "deckhand/apiserver/http_api.hpp"
#include "deckhand/testing/skip.hpp"
#include "support.hpp"

namespace deckhand::apiserver::test {

/// A registry over a fresh store behind a started HTTP API on loopback.
/// With `services`, wired as deckhand-apiserver wires it: a service
/// allocator and a running endpoints controller.
struct server_fixture {
  temp_dir tmp;
  store st;
  registry reg;
  std::optional<endpoints_controller> ctl;
  http_api api{reg};

  explicit server_fixture(bool services = false)
      : st(store::open(tmp.path() / "apiserver").value()),
        reg(st, services ? service_options() : registry_options{}) {
    if (services) {
      ctl.emplace(reg);
      ctl->attach();
    }
    BOOST_REQUIRE(api.start().ok());
  }
  ~server_fixture() {
    api.stop();
    if (ctl)
      ctl->stop();
  }
  server_fixture(const server_fixture&) = delete;
  server_fixture& operator=(const server_fixture&) = delete;

  static registry_options service_options() {
    registry_options o;
    o.allocator = std::shared_ptr<service_allocator>(service_allocator::create({}).value());
    return o;
  }

  /// Writes `text` to a file `name` in the fixture's directory; its path.
  std::string write_file(const std::string& name, const std::string& text) {
    auto path = tmp.path() / name;
    std::ofstream(path) << text;
    return path.string();
  }

  /// Creates pod `name` labelled app=web with one container (with `ports`,
  /// when given), binds it to node-1 and reports it Running and Ready at `ip`.
  void run_pod(const std::string& name, const std::string& ip,
               const nlohmann::json& ports = nullptr) {
    nlohmann::json container = {{"name", "c"}, {"image", "x:1"}};
    if (!ports.is_null())
      container["ports"] = ports;
    nlohmann::json pod = {{"metadata", {{"name", name}, {"labels", {{"app", "web"}}}}},
                          {"spec", {{"containers", nlohmann::json::array({container})}}}};
    BOOST_REQUIRE(reg.create("Pod", "default", pod).ok());
    BOOST_REQUIRE(reg.bind("default", name, "node-1").ok());
    nlohmann::json status = {{"phase", "Running"},
                             {"podIP", ip},
                             {"conditions", {{{"type", "Ready"}, {"status", "True"}}}}};
    BOOST_REQUIRE(reg.update_status("Pod", "default", name, status, "").ok());
  }
};

/// The server plus the real kubectl against it. Suites using it skip (see
/// deckhand/testing/skip.hpp) where kubectl is not on PATH.
struct kubectl_fixture : server_fixture {
  explicit kubectl_fixture(bool services = false) : server_fixture(services) {
    // An empty kubeconfig keeps any user's config out of the test.
    std::ofstream(tmp.path() / "kubeconfig") << "";
  }

  /// Runs kubectl with `args`; returns its exit code and combined output.
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
};

/// `text` with runs of spaces collapsed to one.
inline std::string squeeze(const std::string& text) {
  std::string s;
  for (char c : text)
    if (c != ' ' || s.empty() || s.back() != ' ')
      s.push_back(c);
  return s;
}

}  // namespace deckhand::apiserver::test

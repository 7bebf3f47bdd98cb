/// The commands against a small in-memory stand-in for the API server
/// (cpp-httplib on a loopback port chosen by the OS).

#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include <httplib.h>

#include "deckhand/cli/commands.hpp"
#include "deckhand/common/paths.hpp"

using namespace deckhand;
using namespace deckhand::cli;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json status_json(int code, const std::string& reason, const std::string& message) {
  return {{"kind", "Status"}, {"apiVersion", "v1"}, {"status", "Failure"},
          {"code", code},     {"reason", reason},   {"message", message}};
}

/// Pods and services by "collection/ns/name"; deletes are immediate unless
/// `linger_deletes` keeps the object for that many GETs.
class fake_apiserver {
 public:
  fake_apiserver() {
    const char* coll = R"(/api/v1/namespaces/([^/]+)/(pods|services))";
    const std::string item = std::string(coll) + "/([^/]+)";
    srv_.Post(coll, [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      ++posts;
      auto obj = json::parse(req.body);
      auto key = std::string(req.matches[2]) + "/" + std::string(req.matches[1]) + "/" +
                 obj["metadata"]["name"].get<std::string>();
      if (objects.count(key)) {
        reply(res, 409,
              status_json(409, "AlreadyExists",
                          std::string(req.matches[2]) + " \"" +
                              obj["metadata"]["name"].get<std::string>() + "\" already exists"));
        return;
      }
      obj["metadata"]["uid"] = "uid-" + std::to_string(++next_uid_);
      obj["metadata"]["creationTimestamp"] = "2024-05-01T10:00:00Z";
      obj["spec"]["restartPolicy"] = "Always";  // a server default
      objects[key] = obj;
      reply(res, 201, obj);
    });
    srv_.Get(coll, [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      auto prefix = std::string(req.matches[2]) + "/" + std::string(req.matches[1]) + "/";
      json items = json::array();
      for (const auto& [k, v] : objects)
        if (k.rfind(prefix, 0) == 0)
          items.push_back(v);
      reply(res, 200, {{"kind", "PodList"}, {"items", items}});
    });
    // Across namespaces (-A), as the API server lists /api/v1/pods.
    srv_.Get(R"(/api/v1/(pods|services))",
             [this](const httplib::Request& req, httplib::Response& res) {
               std::lock_guard lock(mu_);
               auto prefix = std::string(req.matches[1]) + "/";
               json items = json::array();
               for (const auto& [k, v] : objects)
                 if (k.rfind(prefix, 0) == 0)
                   items.push_back(v);
               reply(res, 200, {{"kind", "PodList"}, {"items", items}});
             });
    srv_.Get(item, [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      auto key = key_of(req);
      auto it = objects.find(key);
      if (it == objects.end()) {
        reply(res, 404, not_found(req));
        return;
      }
      auto obj = it->second;
      if (auto l = lingering.find(key); l != lingering.end() && --l->second <= 0) {
        lingering.erase(l);
        objects.erase(it);
      }
      reply(res, 200, obj);
    });
    srv_.Put(item, [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      ++puts;
      auto key = key_of(req);
      if (!objects.count(key)) {
        reply(res, 404, not_found(req));
        return;
      }
      auto obj = json::parse(req.body);
      if (reject_updates) {
        reply(res, 422,
              status_json(422, "Invalid",
                          "Pod \"" + std::string(req.matches[3]) +
                              "\" is invalid: spec: Forbidden: pod updates "
                              "may not change fields"));
        return;
      }
      objects[key] = obj;
      reply(res, 200, obj);
    });
    srv_.Delete(item, [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      auto key = key_of(req);
      auto it = objects.find(key);
      if (it == objects.end()) {
        reply(res, 404, not_found(req));
        return;
      }
      last_delete_body = json::parse(req.body, nullptr, false);
      auto obj = it->second;
      if (linger_deletes > 0) {
        obj["metadata"]["deletionTimestamp"] = "2024-05-01T10:01:00Z";
        it->second = obj;
        lingering[key] = linger_deletes;
      } else {
        objects.erase(it);
      }
      reply(res, 200, obj);
    });
    port_ = srv_.bind_to_any_port("127.0.0.1");
    BOOST_REQUIRE(port_ > 0);
    thread_ = std::thread([this] { srv_.listen_after_bind(); });
    // stop() is a no-op until the listener runs: wait for it (bounded).
    for (int i = 0; i < 500 && !srv_.is_running(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    BOOST_REQUIRE(srv_.is_running());
  }

  ~fake_apiserver() {
    srv_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::mutex mu_;
  std::map<std::string, json> objects;
  std::map<std::string, int> lingering;
  int linger_deletes = 0;
  bool reject_updates = false;
  int posts = 0;
  int puts = 0;
  json last_delete_body;

 private:
  static std::string key_of(const httplib::Request& req) {
    return std::string(req.matches[2]) + "/" + std::string(req.matches[1]) + "/" +
           std::string(req.matches[3]);
  }
  static json not_found(const httplib::Request& req) {
    return status_json(404, "NotFound",
                       std::string(req.matches[2]) + " \"" + std::string(req.matches[3]) +
                           "\" not found");
  }
  static void reply(httplib::Response& res, int code, const json& body) {
    res.status = code;
    res.set_content(body.dump(), "application/json");
  }

  httplib::Server srv_;
  int port_ = 0;
  int next_uid_ = 0;
  std::thread thread_;
};

struct node_fixture {
  fs::path data;
  fake_apiserver api;
  std::ostringstream out, err;
  std::istringstream in;

  node_fixture() {
    std::string tmpl = (fs::temp_directory_path() / "deckhand-cmd-test.XXXXXX").string();
    BOOST_REQUIRE(::mkdtemp(tmpl.data()));
    data = tmpl;
    fs::create_directories(paths::run_dir(data));
    std::ofstream(paths::apiserver_url_file(data)) << api.url() << "\n";
  }
  ~node_fixture() {
    std::error_code ec;
    fs::remove_all(data, ec);
  }

  int cli(std::vector<std::string> args) {
    out.str("");
    err.str("");
    args.push_back("--data-dir");
    args.push_back(data.string());
    return run(args, {out, err, in});
  }

  fs::path write(const std::string& name, const std::string& text) {
    auto p = data / name;
    std::ofstream(p) << text;
    return p;
  }
};

const char* pod_yaml = R"(apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  containers:
  - name: c
    image: busybox
)";

}  // namespace

BOOST_FIXTURE_TEST_SUITE(commands, node_fixture)

BOOST_AUTO_TEST_CASE(apply_creates_then_reports_unchanged_then_configures) {
  auto file = write("pod.yaml", pod_yaml);
  BOOST_CHECK_EQUAL(cli({"apply", "-f", file.string()}), 0);
  BOOST_CHECK_EQUAL(out.str(), "pod/web created\n");
  BOOST_CHECK_EQUAL(cli({"apply", "-f", file.string()}), 0);
  BOOST_CHECK_EQUAL(out.str(), "pod/web unchanged\n");
  BOOST_CHECK_EQUAL(api.puts, 0);

  auto changed = std::string(pod_yaml);
  changed.replace(changed.find("busybox"), 7, "busybox:2");
  write("pod.yaml", changed);
  BOOST_CHECK_EQUAL(cli({"apply", "-f", file.string()}), 0);
  BOOST_CHECK_EQUAL(out.str(), "pod/web configured\n");
  BOOST_CHECK(api.objects["pods/default/web"]["spec"]["containers"][0]["image"] ==
              json("busybox:2"));
  // The server's defaults survive the update.
  BOOST_CHECK(api.objects["pods/default/web"]["spec"]["restartPolicy"] == json("Always"));
}

BOOST_AUTO_TEST_CASE(apply_prints_the_servers_rejection) {
  auto file = write("pod.yaml", pod_yaml);
  BOOST_CHECK_EQUAL(cli({"apply", "-f", file.string()}), 0);
  api.reject_updates = true;
  auto changed = std::string(pod_yaml);
  changed.replace(changed.find("busybox"), 7, "busybox:2");
  write("pod.yaml", changed);
  BOOST_CHECK_NE(cli({"apply", "-f", file.string()}), 0);
  BOOST_TEST_MESSAGE(err.str());
  BOOST_CHECK(err.str().find("Error from server (Invalid)") == 0);
  BOOST_CHECK(err.str().find("pod updates may not change fields") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(apply_sends_nothing_when_any_document_is_bad) {
  auto file = write("two.yaml", std::string(pod_yaml) + "---\napiVersion: v1\nkind: Pod\n"
                                                        "metadata: {name: [x\n");
  BOOST_CHECK_NE(cli({"apply", "-f", file.string()}), 0);
  BOOST_CHECK_EQUAL(api.posts, 0);
  auto kinds =
      write("kinds.yaml", std::string(pod_yaml) + "---\napiVersion: apps/v1\nkind: Deployment\n"
                                                  "metadata: {name: d}\n");
  BOOST_CHECK_NE(cli({"apply", "-f", kinds.string()}), 0);
  BOOST_CHECK_EQUAL(err.str(),
                    "error: no matches for kind \"Deployment\" in version \"apps/v1\"\n");
  BOOST_CHECK_EQUAL(api.posts, 0);
}

BOOST_AUTO_TEST_CASE(apply_reads_stdin_and_honours_namespace) {
  in.str(pod_yaml);
  BOOST_CHECK_EQUAL(cli({"apply", "-f", "-", "-n", "team"}), 0);
  BOOST_CHECK(api.objects.count("pods/team/web"));
}

BOOST_AUTO_TEST_CASE(get_prints_tables_objects_and_not_found) {
  BOOST_CHECK_EQUAL(cli({"get", "pods"}), 0);
  BOOST_CHECK_EQUAL(err.str(), "No resources found in default namespace.\n");
  auto file = write("pod.yaml", pod_yaml);
  BOOST_CHECK_EQUAL(cli({"apply", "-f", file.string()}), 0);
  api.objects["pods/default/web"]["status"] = {{"phase", "Pending"}};

  BOOST_CHECK_EQUAL(cli({"get", "po"}), 0);
  BOOST_CHECK(
      out.str().find("NAME   READY   STATUS    RESTARTS   AGE\nweb    0/1     Pending   0") == 0);
  BOOST_CHECK_EQUAL(cli({"get", "pod", "web", "-o", "json"}), 0);
  auto j = json::parse(out.str());
  BOOST_CHECK(j["metadata"]["name"] == json("web"));
  BOOST_CHECK_EQUAL(cli({"get", "pods", "-o", "yaml"}), 0);
  BOOST_CHECK(out.str().find("kind: List\n") != std::string::npos);
  BOOST_CHECK_EQUAL(cli({"get", "pod/web", "-o", "name"}), 0);
  BOOST_CHECK_EQUAL(out.str(), "pod/web\n");

  BOOST_CHECK_NE(cli({"get", "pods", "nope"}), 0);
  BOOST_CHECK_EQUAL(err.str(), "Error from server (NotFound): pods \"nope\" not found\n");
  BOOST_CHECK_NE(cli({"get", "deployments"}), 0);
  BOOST_CHECK_NE(cli({"get", "pods", "-o", "xml"}), 0);
}

BOOST_AUTO_TEST_CASE(delete_waits_until_the_pod_is_gone) {
  auto file = write("pod.yaml", pod_yaml);
  BOOST_CHECK_EQUAL(cli({"apply", "-f", file.string()}), 0);
  api.linger_deletes = 3;
  BOOST_CHECK_EQUAL(cli({"delete", "pod", "web", "--grace-period", "5"}), 0);
  BOOST_CHECK_EQUAL(out.str(), "pod \"web\" deleted\n");
  BOOST_CHECK(!api.objects.count("pods/default/web"));
  BOOST_CHECK(api.last_delete_body["gracePeriodSeconds"] == json(5));

  BOOST_CHECK_NE(cli({"delete", "pod", "web"}), 0);
  BOOST_CHECK_EQUAL(err.str(), "Error from server (NotFound): pods \"web\" not found\n");

  BOOST_CHECK_EQUAL(cli({"apply", "-f", file.string()}), 0);
  BOOST_CHECK_EQUAL(cli({"delete", "po", "web", "--force", "--wait=false"}), 0);
  BOOST_CHECK(api.last_delete_body["gracePeriodSeconds"] == json(0));
  BOOST_CHECK(err.str().find("Warning: Immediate deletion") == 0);
}

// kubectl's rules for the grace period: --now is one second, 0 without
// --force becomes 1, --force alone is 0, --now with --grace-period is an error.
BOOST_AUTO_TEST_CASE(delete_grace_period_flags_follow_kubectl) {
  auto file = write("pod.yaml", pod_yaml);
  auto grace_of = [&](std::vector<std::string> args) {
    BOOST_REQUIRE_EQUAL(cli({"apply", "-f", file.string()}), 0);
    std::vector<std::string> all = {"delete", "pod", "web", "--wait=false"};
    all.insert(all.end(), args.begin(), args.end());
    BOOST_REQUIRE_EQUAL(cli(all), 0);
    return api.last_delete_body.value("gracePeriodSeconds", json(-1));
  };
  BOOST_CHECK(grace_of({"--now"}) == json(1));
  BOOST_CHECK(grace_of({"--grace-period", "0"}) == json(1));
  BOOST_CHECK(grace_of({"--grace-period=0", "--force"}) == json(0));
  BOOST_CHECK(grace_of({"--grace-period", "9"}) == json(9));
  BOOST_CHECK(grace_of({}) == json(-1));  // the pod's own terminationGracePeriodSeconds
  BOOST_REQUIRE_EQUAL(cli({"apply", "-f", file.string()}), 0);
  BOOST_CHECK_NE(cli({"delete", "pod", "web", "--now", "--grace-period", "3"}), 0);
  BOOST_CHECK(err.str().find("--now and --grace-period cannot be specified together") !=
              std::string::npos);
}

BOOST_AUTO_TEST_CASE(logs_print_the_current_instance) {
  auto file = write("pod.yaml", pod_yaml);
  BOOST_CHECK_EQUAL(cli({"apply", "-f", file.string()}), 0);
  auto uid = api.objects["pods/default/web"]["metadata"]["uid"].get<std::string>();
  auto dir = paths::pod_log_dir(data, "default", "web", uid) / "c";

  BOOST_CHECK_NE(cli({"logs", "web"}), 0);
  BOOST_CHECK(err.str().find("is waiting to start") != std::string::npos);

  fs::create_directories(dir);
  std::ofstream(dir / "0.log") << "first run\n";
  std::ofstream(dir / "1.log") << "2024-05-01T10:00:00Z stdout F second run\n";
  std::ofstream(dir / "10.log") << "line a\nline b\nline c\n";
  BOOST_CHECK_EQUAL(cli({"logs", "web"}), 0);
  BOOST_CHECK_EQUAL(out.str(), "line a\nline b\nline c\n");
  BOOST_CHECK_EQUAL(cli({"logs", "pod/web", "--tail", "1"}), 0);
  BOOST_CHECK_EQUAL(out.str(), "line c\n");
  BOOST_CHECK_EQUAL(cli({"logs", "web", "-p"}), 0);
  BOOST_CHECK_EQUAL(out.str(), "second run\n");
  BOOST_CHECK_NE(cli({"logs", "web", "-c", "other"}), 0);

  // Two containers and none named: kubectl's message.
  api.objects["pods/default/web"]["spec"]["containers"].push_back({{"name", "d"}});
  BOOST_CHECK_NE(cli({"logs", "web"}), 0);
  BOOST_CHECK_EQUAL(err.str(), "error: a container name must be specified for pod web, "
                               "choose one of: [c d]\n");
}

BOOST_AUTO_TEST_CASE(logs_follow_ends_when_the_pod_is_gone) {
  auto file = write("pod.yaml", pod_yaml);
  BOOST_CHECK_EQUAL(cli({"apply", "-f", file.string()}), 0);
  auto uid = api.objects["pods/default/web"]["metadata"]["uid"].get<std::string>();
  auto dir = paths::pod_log_dir(data, "default", "web", uid) / "c";
  fs::create_directories(dir);
  std::ofstream(dir / "0.log") << "one\n";
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::ofstream(dir / "0.log", std::ios::app) << "two\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::ofstream(dir / "1.log") << "three\n";
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::lock_guard lock(api.mu_);
    api.objects.erase("pods/default/web");
  });
  logs_options opts;
  opts.node.data_dir = data;
  opts.pod = "web";
  opts.follow = true;
  opts.poll_interval = std::chrono::milliseconds(50);
  out.str("");
  auto rc = logs_command(opts, {out, err, in});
  writer.join();
  BOOST_CHECK_EQUAL(rc, 0);
  BOOST_CHECK_EQUAL(out.str(), "one\ntwo\nthree\n");
}

BOOST_AUTO_TEST_CASE(global_flags_go_before_or_after_the_command) {
  auto run_raw = [&](std::vector<std::string> args) {
    out.str("");
    err.str("");
    return run(args, {out, err, in});
  };
  in.str(pod_yaml);
  BOOST_CHECK_EQUAL(run_raw({"--data-dir", data.string(), "-n", "team", "apply", "-f", "-"}), 0);
  BOOST_CHECK(api.objects.count("pods/team/web"));
  BOOST_CHECK_EQUAL(
      run_raw({"--data-dir=" + data.string(), "--namespace=team", "-o", "name", "get", "pods"}), 0);
  BOOST_CHECK_EQUAL(out.str(), "pod/web\n");
  BOOST_CHECK_EQUAL(run_raw({"-nteam", "-oname", "get", "pods", "--data-dir", data.string()}), 0);
  BOOST_CHECK_EQUAL(out.str(), "pod/web\n");
  BOOST_CHECK_EQUAL(run_raw({"--data-dir", data.string(), "-A", "get", "pods", "-o", "name"}), 0);
  BOOST_CHECK_EQUAL(out.str(), "pod/web\n");
  BOOST_CHECK_EQUAL(run_raw({"--data-dir", data.string(), "get", "pods", "-n", "team"}), 0);
  BOOST_CHECK(out.str().find("web") != std::string::npos);
  // A global flag the command does not take is refused, as it is after it.
  BOOST_CHECK_NE(run_raw({"-o", "name", "status", "--data-dir", data.string()}), 0);
}

BOOST_AUTO_TEST_CASE(commands_without_a_node_say_so) {
  fs::remove(paths::apiserver_url_file(data));
  BOOST_CHECK_NE(cli({"get", "pods"}), 0);
  BOOST_CHECK_EQUAL(err.str(), "error: no deckhand node at " + data.string() +
                                   " (is 'deckhand up' running?)\n");
}

BOOST_AUTO_TEST_SUITE_END()

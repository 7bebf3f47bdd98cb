// Conformance: what a container learns from its pod (env valueFrom, $(VAR)
// expansion) and the volumes it shares (emptyDir, hostPath, downwardAPI), on a
// real node with runc containers. One node serves every case; each case uses
// its own pods and deletes them.
#define BOOST_TEST_MODULE deckhand_conformance_env_volumes
#include <boost/test/unit_test.hpp>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "conformance.hpp"

using namespace deckhand::testing;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

/// Waits until `deckhand logs POD [-c C]` contains `needle`; returns the log.
std::string wait_log(node& n, const std::string& pod, const std::string& needle,
                     const std::string& container = {}) {
  std::string out;
  std::vector<std::string> args{"logs", pod};
  if (!container.empty()) {
    args.push_back("-c");
    args.push_back(container);
  }
  eventually(
      [&] {
        out = n.cli(args, {}, 10s).out;
        return out.find(needle) != std::string::npos;
      },
      60s);
  return out;
}

void delete_pod(node& n, const std::string& name) {
  n.cli({"delete", "pod", name, "--grace-period", "1"}, {}, 60s);
  eventually([&] { return n.pod(name).is_null(); }, 60s);
}

/// The first container's waiting state once it has a message.
nlohmann::json wait_waiting(node& n, const std::string& pod, const std::string& needle) {
  nlohmann::json waiting;
  eventually(
      [&] {
        auto p = n.pod(pod);
        waiting = p.value("/status/containerStatuses/0/state/waiting"_json_pointer,
                          nlohmann::json::object());
        return waiting.value("message", "").find(needle) != std::string::npos;
      },
      60s);
  return waiting;
}

/// mountinfo lines that mention `dir`.
std::vector<std::string> mounts_mentioning(const fs::path& dir) {
  std::vector<std::string> out;
  std::ifstream mi("/proc/self/mountinfo");
  for (std::string line; std::getline(mi, line);)
    if (line.find(dir.string()) != std::string::npos)
      out.push_back(line);
  return out;
}

struct temp_host_dir {
  fs::path dir;
  temp_host_dir() {
    char tmpl[] = "/tmp/deckhand-conf-hostpath-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }
  ~temp_host_dir() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(env_volumes, *deckhand::testing::skip_unless(deckhand::testing::containers()))

// Kubernetes: env valueFrom.fieldRef exposes the pod's name, namespace, uid,
// a label, its IP and its node to the container (downward API env vars).
BOOST_AUTO_TEST_CASE(env_field_refs) {
  auto& n = the_node();
  n.apply(R"yaml(apiVersion: v1
kind: Pod
metadata: {name: envpod, labels: {app: web}}
spec:
  containers:
  - name: main
    image: deckhand.local/busybox:test
    command: ["sh", "-c", "echo \"name=$POD_NAME ns=$POD_NS uid=$POD_UID app=$APP ip=$POD_IP node=$NODE host=$HOST_IP\"; exec sleep 100000"]
    env:
    - {name: POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: POD_NS, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
    - {name: POD_UID, valueFrom: {fieldRef: {fieldPath: metadata.uid}}}
    - {name: APP, valueFrom: {fieldRef: {fieldPath: "metadata.labels['app']"}}}
    - {name: POD_IP, valueFrom: {fieldRef: {fieldPath: status.podIP}}}
    - {name: NODE, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}
    - {name: HOST_IP, valueFrom: {fieldRef: {fieldPath: status.hostIP}}}
)yaml");
  auto pod = n.wait_phase("envpod", "Running");
  auto log = wait_log(n, "envpod", "name=envpod");
  auto ip = pod.value("/status/podIP"_json_pointer, "");
  BOOST_TEST(!ip.empty());
  BOOST_TEST(log.find("name=envpod ns=default uid=" + uid_of(pod) + " app=web ip=" + ip +
                      " node=test-node") != std::string::npos,
             log);
  BOOST_TEST(log.find("host=\n") == std::string::npos, "hostIP is set: " << log);
  delete_pod(n, "envpod");
}

// Kubernetes: resourceFieldRef gives a container's limits and requests
// divided by the divisor and rounded up; an unset cpu limit is the node's
// allocatable CPUs.
BOOST_AUTO_TEST_CASE(env_resource_field_refs) {
  auto& n = the_node();
  n.apply(R"yaml(apiVersion: v1
kind: Pod
metadata: {name: respod}
spec:
  containers:
  - name: main
    image: deckhand.local/busybox:test
    command: ["sh", "-c", "echo \"mem=$MEM cpu=$CPU cpucores=$CPU_CORES req=$REQ\"; exec sleep 100000"]
    resources:
      limits: {memory: 64Mi}
      requests: {cpu: 250m, memory: 32Mi}
    env:
    - {name: MEM, valueFrom: {resourceFieldRef: {resource: limits.memory, divisor: 1Mi}}}
    - {name: CPU, valueFrom: {resourceFieldRef: {resource: requests.cpu, divisor: 1m}}}
    - {name: CPU_CORES, valueFrom: {resourceFieldRef: {resource: requests.cpu}}}
    - {name: REQ, valueFrom: {resourceFieldRef: {containerName: main, resource: requests.memory, divisor: 1Mi}}}
)yaml");
  n.wait_phase("respod", "Running");
  auto log = wait_log(n, "respod", "mem=");
  BOOST_TEST(log.find("mem=64 cpu=250 cpucores=1 req=32") != std::string::npos, log);
  delete_pod(n, "respod");
}

// Kubernetes: $(VAR) in args expands to variables of the container's env,
// values may use earlier variables, $$ escapes and unknown references stay.
BOOST_AUTO_TEST_CASE(dependent_env_and_args_expansion) {
  auto& n = the_node();
  n.apply(R"yaml(apiVersion: v1
kind: Pod
metadata: {name: expand}
spec:
  containers:
  - name: main
    image: deckhand.local/busybox:test
    command: ["sh", "-c"]
    args: ["echo 'arg=$(GREETING) escaped=$$(GREETING) unknown=$(NOPE)' \"env=$GREETING\"; exec sleep 100000"]
    env:
    - {name: WHO, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
    - {name: GREETING, value: "hello-$(WHO)"}
)yaml");
  n.wait_phase("expand", "Running");
  auto log = wait_log(n, "expand", "arg=");
  BOOST_TEST(log.find("arg=hello-expand escaped=$(GREETING) unknown=$(NOPE) env=hello-expand") !=
                 std::string::npos,
             log);
  delete_pod(n, "expand");
}

// Kubernetes: an emptyDir volume is shared by the pod's containers: what one
// writes, the other reads.
BOOST_AUTO_TEST_CASE(empty_dir_is_shared_between_containers) {
  auto& n = the_node();
  n.apply(R"yaml(apiVersion: v1
kind: Pod
metadata: {name: shared}
spec:
  volumes:
  - {name: cache, emptyDir: {}}
  containers:
  - name: writer
    image: deckhand.local/busybox:test
    command: ["sh", "-c", "echo hello-from-writer > /cache/msg; exec sleep 100000"]
    volumeMounts: [{name: cache, mountPath: /cache}]
  - name: reader
    image: deckhand.local/busybox:test
    command: ["sh", "-c", "while [ ! -f /data/msg ]; do sleep 0.1; done; echo \"got=$(cat /data/msg)\"; exec sleep 100000"]
    volumeMounts: [{name: cache, mountPath: /data, readOnly: true}]
)yaml");
  n.wait_phase("shared", "Running");
  auto log = wait_log(n, "shared", "got=", "reader");
  BOOST_TEST(log.find("got=hello-from-writer") != std::string::npos, log);
  delete_pod(n, "shared");
}

// Kubernetes: emptyDir with medium Memory is a tmpfs whose size is the
// sizeLimit.
BOOST_AUTO_TEST_CASE(memory_empty_dir_is_tmpfs_with_size_limit) {
  auto& n = the_node();
  n.apply(R"yaml(apiVersion: v1
kind: Pod
metadata: {name: memvol}
spec:
  volumes:
  - {name: mem, emptyDir: {medium: Memory, sizeLimit: 16Mi}}
  containers:
  - name: main
    image: deckhand.local/busybox:test
    command: ["sh", "-c", "grep ' /mem ' /proc/mounts; df -k /mem | tail -1 | awk '{print \"blocks=\" $2}'; exec sleep 100000"]
    volumeMounts: [{name: mem, mountPath: /mem}]
)yaml");
  n.wait_phase("memvol", "Running");
  auto log = wait_log(n, "memvol", "blocks=");
  BOOST_TEST(log.find(" /mem tmpfs ") != std::string::npos, log);
  BOOST_TEST(log.find("blocks=16384") != std::string::npos, log);
  delete_pod(n, "memvol");
}

// Kubernetes: hostPath type DirectoryOrCreate creates the directory on the
// node (0755) and the container sees what the node has there.
BOOST_AUTO_TEST_CASE(host_path_directory_or_create_creates) {
  auto& n = the_node();
  temp_host_dir host;
  auto path = host.dir / "made" / "here";
  n.apply(R"yaml(apiVersion: v1
kind: Pod
metadata: {name: hostpath}
spec:
  volumes:
  - name: h
    hostPath: {path: )yaml" +
          path.string() + R"yaml(, type: DirectoryOrCreate}
  containers:
  - name: main
    image: deckhand.local/busybox:test
    command: ["sh", "-c", "echo written > /host/file; echo done; exec sleep 100000"]
    volumeMounts: [{name: h, mountPath: /host}]
)yaml");
  n.wait_phase("hostpath", "Running");
  wait_log(n, "hostpath", "done");
  BOOST_TEST(fs::is_directory(path));
  BOOST_TEST(((fs::status(path).permissions() & fs::perms::all) == (fs::perms(0755))));
  std::ifstream in(path / "file");
  std::string line;
  std::getline(in, line);
  BOOST_TEST(line == "written");
  delete_pod(n, "hostpath");
  BOOST_TEST(fs::exists(path / "file"));  // never removed with the pod
}

// Kubernetes: hostPath type Directory on a missing path fails the pod's
// start with "hostPath type check failed: PATH is not a directory".
BOOST_AUTO_TEST_CASE(host_path_directory_missing_fails_clearly) {
  auto& n = the_node();
  temp_host_dir host;
  auto path = (host.dir / "absent").string();
  n.apply(R"yaml(apiVersion: v1
kind: Pod
metadata: {name: nohost}
spec:
  volumes:
  - name: h
    hostPath: {path: )yaml" +
          path + R"yaml(, type: Directory}
  containers:
  - name: main
    image: deckhand.local/busybox:test
    command: ["sleep", "100000"]
    volumeMounts: [{name: h, mountPath: /host}]
)yaml");
  auto want = "hostPath type check failed: " + path + " is not a directory";
  auto waiting = wait_waiting(n, "nohost", want);
  BOOST_TEST(waiting.value("message", "").find(want) != std::string::npos, waiting.dump());
  BOOST_TEST(n.pod("nohost").value("/status/phase"_json_pointer, "") == "Pending");
  BOOST_TEST(!fs::exists(path));
  delete_pod(n, "nohost");
}

// Kubernetes: a downwardAPI volume file of metadata.labels holds sorted
// key="value" lines.
BOOST_AUTO_TEST_CASE(downward_api_labels_file) {
  auto& n = the_node();
  n.apply(R"yaml(apiVersion: v1
kind: Pod
metadata: {name: podinfo, labels: {zone: a, app: web}}
spec:
  volumes:
  - name: info
    downwardAPI:
      items:
      - {path: labels, fieldRef: {fieldPath: metadata.labels}}
      - {path: name, fieldRef: {fieldPath: metadata.name}}
  containers:
  - name: main
    image: deckhand.local/busybox:test
    command: ["sh", "-c", "cat /etc/podinfo/labels; echo; echo \"name=$(cat /etc/podinfo/name)\"; exec sleep 100000"]
    volumeMounts: [{name: info, mountPath: /etc/podinfo}]
)yaml");
  n.wait_phase("podinfo", "Running");
  auto log = wait_log(n, "podinfo", "name=podinfo");
  BOOST_TEST(log.find("app=\"web\"\nzone=\"a\"\n") != std::string::npos, log);
  delete_pod(n, "podinfo");
}

// Kubernetes: an env var from a Secret that does not exist keeps the
// container waiting with CreateContainerConfigError.
BOOST_AUTO_TEST_CASE(secret_key_ref_gives_create_container_config_error) {
  auto& n = the_node();
  n.apply(R"yaml(apiVersion: v1
kind: Pod
metadata: {name: needsecret}
spec:
  containers:
  - name: main
    image: deckhand.local/busybox:test
    command: ["sleep", "100000"]
    env:
    - {name: PASSWORD, valueFrom: {secretKeyRef: {name: s, key: password}}}
)yaml");
  auto waiting = wait_waiting(n, "needsecret", "secret \"s\" not found");
  BOOST_TEST(waiting.value("reason", "") == "CreateContainerConfigError", waiting.dump());
  BOOST_TEST(waiting.value("message", "").find("secret \"s\" not found") != std::string::npos,
             waiting.dump());
  delete_pod(n, "needsecret");
}

// Kubernetes: a pod's volumes go with it: after delete no mount (tmpfs
// emptyDir included) is left under the node's data directory.
BOOST_AUTO_TEST_CASE(volumes_are_removed_with_the_pod) {
  auto& n = the_node();
  n.apply(R"yaml(apiVersion: v1
kind: Pod
metadata: {name: vols}
spec:
  volumes:
  - {name: mem, emptyDir: {medium: Memory}}
  - {name: disk, emptyDir: {}}
  containers:
  - name: main
    image: deckhand.local/busybox:test
    command: ["sh", "-c", "echo x > /mem/f; echo y > /disk/f; echo ready; exec sleep 100000"]
    volumeMounts: [{name: mem, mountPath: /mem}, {name: disk, mountPath: /disk}]
)yaml");
  auto pod = n.wait_phase("vols", "Running");
  wait_log(n, "vols", "ready");
  auto pod_dir = n.data() / "runtime" / "pods" / uid_of(pod);
  BOOST_TEST(!mounts_mentioning(pod_dir / "volumes").empty());  // the tmpfs
  delete_pod(n, "vols");
  BOOST_TEST(eventually([&] { return !fs::exists(pod_dir); }, 30s));
  auto left = mounts_mentioning(pod_dir);
  BOOST_TEST(left.empty(), (left.empty() ? std::string() : left.front()));
}

BOOST_AUTO_TEST_SUITE_END()

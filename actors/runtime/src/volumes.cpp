#include "deckhand/runtime/volumes.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <set>

#include "deckhand/api/quantity.hpp"
#include "deckhand/common/process.hpp"
#include "deckhand/oci/mount.hpp"

namespace deckhand::runtime {

namespace fs = std::filesystem;

namespace {

const char* empty_dir_plugin = "kubernetes.io~empty-dir";
const char* downward_api_plugin = "kubernetes.io~downward-api";

/// "/x/" and "/x" name the same mount point.
std::string clean_mount_path(const std::string& p) {
  auto out = fs::path(p).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/')
    out.pop_back();
  return out;
}

error invalid(const std::string& what) { return {errc::invalid, what}; }

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

/// A relative path with no ".." element (validatePathNoBacksteps plus
/// "must not be absolute").
bool relative_no_backsteps(const std::string& p) {
  if (p.empty() || p.front() == '/')
    return false;
  for (const auto& part : fs::path(p))
    if (part == "..")
      return false;
  return true;
}

/// Sources set on `v`.
int source_count(const wire::volume& v) {
  return int(v.empty_dir.has_value()) + int(v.host_path.has_value()) +
         int(v.downward_api.has_value());
}

error mount_error(const std::string& volume, const std::string& reason) {
  return {errc::invalid, mount_volume_error + quoted(volume) + " : " + reason};
}

/// sizeLimit in bytes; 0 when not set.
result<int64_t> size_limit(const wire::volume& v) {
  const auto& text = v.empty_dir->size_limit.value;
  if (text.empty())
    return int64_t{0};
  auto n = api::quantity_value(text);
  if (!n)
    return error{errc::invalid, "volume " + quoted(v.name) + ": emptyDir.sizeLimit " +
                                    quoted(text) + ": " + n.err().message};
  if (*n < 0)
    return error{errc::invalid, "volume " + quoted(v.name) +
                                    ": emptyDir.sizeLimit must not "
                                    "be negative"};
  return *n;
}

error validate_downward(const wire::pod& p, const wire::volume& v) {
  const auto& src = *v.downward_api;
  auto where = "volume " + quoted(v.name) + ": downwardAPI";
  if (src.default_mode && (*src.default_mode < 0 || *src.default_mode > 0777))
    return invalid(where + ".defaultMode must be between 0 and 0777 (octal)");
  std::set<std::string> seen;
  for (std::size_t i = 0; i < src.items.size(); ++i) {
    const auto& item = src.items[i];
    auto at = where + ".items[" + std::to_string(i) + "]";
    if (!relative_no_backsteps(item.path) || item.path.rfind("..", 0) == 0)
      return invalid(at + ".path " + quoted(item.path) +
                     " must be a relative path without '..' and must not start with '..'");
    if (!seen.insert(fs::path(item.path).lexically_normal().string()).second)
      return invalid(at + ".path " + quoted(item.path) + " is used twice");
    if (item.mode && (*item.mode < 0 || *item.mode > 0777))
      return invalid(at + ".mode must be between 0 and 0777 (octal)");
    if (item.field_ref.has_value() == item.resource_field_ref.has_value())
      return invalid(at + ": exactly one of fieldRef and resourceFieldRef is required");
    if (item.field_ref) {
      if (auto r = pod_metadata_field_value(p, item.field_ref->field_path); !r)
        return invalid(at + ".fieldRef: " + r.err().message);
    } else {
      const auto& sel = *item.resource_field_ref;
      if (sel.container_name.empty())
        return invalid(at + ".resourceFieldRef.containerName: Required value");
      const auto* c = find_container(p, sel.container_name);
      if (!c)
        return invalid(at + ".resourceFieldRef: container " + sel.container_name + " not found");
      if (auto r = container_resource_value(sel, *c, node_allocatable{}); !r)
        return invalid(at + ".resourceFieldRef: " + r.err().message);
    }
  }
  return {};
}

error validate_mounts(const wire::container& c, const std::set<std::string>& volumes) {
  std::set<std::string> paths;
  for (std::size_t i = 0; i < c.volume_mounts.size(); ++i) {
    const auto& m = c.volume_mounts[i];
    auto at = "container " + quoted(c.name) + ": volumeMounts[" + std::to_string(i) + "]";
    if (!volumes.count(m.name))
      return invalid(at + ".name: Not found: " + quoted(m.name) +
                     " (no volume of that name in spec.volumes)");
    if (m.mount_path.empty() || m.mount_path.front() != '/')
      return invalid(at + ".mountPath " + quoted(m.mount_path) + " must be an absolute path");
    if (!paths.insert(clean_mount_path(m.mount_path)).second)
      return invalid(at + ".mountPath " + quoted(m.mount_path) + " must be unique");
    if (!m.sub_path.empty() && !relative_no_backsteps(m.sub_path))
      return invalid(at + ".subPath " + quoted(m.sub_path) +
                     " must be a relative path without '..'");
  }
  return {};
}

bool is_type(const std::string& path, mode_t type) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && (st.st_mode & S_IFMT) == type;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

/// RFC 3339-ish name of a new data directory, unique within `dir`.
fs::path fresh_data_dir(const fs::path& dir) {
  auto now = std::chrono::system_clock::now();
  auto t = std::chrono::system_clock::to_time_t(now);
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() %
            1000000000;
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "..%Y_%m_%d_%H_%M_%S.", &tm);
  auto base = std::string(buf) + std::to_string(ns);
  fs::path out = dir / base;
  std::error_code ec;
  for (int i = 1; fs::exists(out, ec); ++i)
    out = dir / (base + "." + std::to_string(i));
  return out;
}

error write_file_mode(const fs::path& file, const std::string& content, int mode) {
  auto fd = common::open_fd(file, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0600);
  if (!fd)
    return fd.err();
  std::size_t off = 0;
  while (off < content.size()) {
    auto n = ::write(fd->get(), content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return error::from_errno("write " + file.string());
    }
    off += static_cast<std::size_t>(n);
  }
  // The mode exactly as asked, whatever the umask.
  if (::fchmod(fd->get(), static_cast<mode_t>(mode)) != 0)
    return error::from_errno("chmod " + file.string());
  return {};
}

}  // namespace

fs::path volume_path(const fs::path& pod_dir, const wire::volume& v) {
  if (v.host_path)
    return v.host_path->path;
  return pod_dir / "volumes" / (v.downward_api ? downward_api_plugin : empty_dir_plugin) / v.name;
}

error validate_volumes(const wire::pod& p) {
  std::set<std::string> names;
  for (const auto& v : p.spec.volumes) {
    if (v.name.empty())
      return invalid("a volume has no name");
    if (v.name.find('/') != std::string::npos || v.name == "." || v.name == "..")
      return invalid("volume name " + quoted(v.name) + " is not a DNS label");
    if (!names.insert(v.name).second)
      return invalid("volume name " + quoted(v.name) + " is used twice");
    auto n = source_count(v);
    if (n == 0)
      return {errc::unsupported,
              "volume " + quoted(v.name) +
                  ": unsupported volume type (deckhand supports emptyDir, hostPath and "
                  "downwardAPI)"};
    if (n > 1)
      return invalid("volume " + quoted(v.name) + ": may not specify more than 1 volume type");
    if (v.empty_dir) {
      const auto& medium = v.empty_dir->medium;
      if (!medium.empty() && medium != "Memory")
        return {errc::unsupported, "volume " + quoted(v.name) + ": emptyDir medium " +
                                       quoted(medium) + " is not supported (\"\" or Memory)"};
      if (auto s = size_limit(v); !s)
        return s.err();
    } else if (v.host_path) {
      const auto& hp = *v.host_path;
      if (hp.path.empty() || hp.path.front() != '/')
        return invalid("volume " + quoted(v.name) + ": hostPath.path " + quoted(hp.path) +
                       " must be an absolute path");
      for (const auto& part : fs::path(hp.path))
        if (part == "..")
          return invalid("volume " + quoted(v.name) + ": hostPath.path must not contain '..'");
      static const std::set<std::string> types{
          "",       "DirectoryOrCreate", "Directory",  "FileOrCreate", "File",
          "Socket", "CharDevice",        "BlockDevice"};
      if (!types.count(hp.type))
        return invalid("volume " + quoted(v.name) +
                       ": hostPath.type: Unsupported value: " + quoted(hp.type));
    } else if (auto err = validate_downward(p, v)) {
      return err;
    }
  }
  for (const auto* list : {&p.spec.init_containers, &p.spec.containers})
    for (const auto& c : *list)
      if (auto err = validate_mounts(c, names))
        return err;
  return {};
}

error check_host_path(const std::string& path, const std::string& type) {
  auto fail = [&](const std::string& what) {
    return error{errc::invalid, "hostPath type check failed: " + path + " is not " + what};
  };
  if (type.empty()) {
    if (!exists(path)) {
      std::error_code ec;
      fs::create_directories(path, ec);
      if (ec)
        return error{errc::io, "create " + path + ": " + ec.message()};
    }
    return {};
  }
  if (type == "DirectoryOrCreate" || type == "Directory") {
    if (type == "DirectoryOrCreate" && !exists(path)) {
      // MakeDir: os.MkdirAll(path, 0755).
      std::error_code ec;
      fs::create_directories(path, ec);
      if (ec)
        return error{errc::io, "create " + path + ": " + ec.message()};
      ::chmod(path.c_str(), 0755);
      return {};
    }
    if (!is_type(path, S_IFDIR))
      return fail("a directory");
    return {};
  }
  if (type == "FileOrCreate" || type == "File") {
    if (type == "FileOrCreate" && !exists(path)) {
      // MakeFile: os.OpenFile(path, O_CREATE, 0644); no parents.
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
      if (fd < 0)
        return error::from_errno("create " + path);
      ::close(fd);
      return {};
    }
    if (!is_type(path, S_IFREG))
      return fail("a file");
    return {};
  }
  if (type == "Socket")
    return is_type(path, S_IFSOCK) ? error{} : fail("a socket file");
  if (type == "CharDevice")
    return is_type(path, S_IFCHR) ? error{} : fail("a character device");
  if (type == "BlockDevice")
    return is_type(path, S_IFBLK) ? error{} : fail("a block device");
  return {errc::invalid, type + " is an invalid volume type"};
}

result<std::vector<downward_file>> downward_api_files(const wire::pod& p,
                                                      const wire::downward_api_volume_source& src,
                                                      const node_allocatable& node) {
  std::vector<downward_file> out;
  int default_mode = src.default_mode ? *src.default_mode : 0644;
  for (const auto& item : src.items) {
    downward_file f;
    f.path = item.path;
    f.mode = item.mode ? *item.mode : default_mode;
    if (item.field_ref) {
      auto v = pod_metadata_field_value(p, item.field_ref->field_path);
      if (!v)
        return v.err();
      f.content = std::move(*v);
    } else if (item.resource_field_ref) {
      const auto* c = find_container(p, item.resource_field_ref->container_name);
      if (!c)
        return error{errc::invalid,
                     "container " + item.resource_field_ref->container_name + " not found"};
      auto v = container_resource_value(*item.resource_field_ref, *c, node);
      if (!v)
        return v.err();
      f.content = std::move(*v);
    } else {
      return error{errc::invalid, "downwardAPI item " + quoted(item.path) +
                                      " has neither fieldRef nor resourceFieldRef"};
    }
    out.push_back(std::move(f));
  }
  return out;
}

error write_atomic_files(const fs::path& dir, const std::vector<downward_file>& files) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return {errc::io, "create " + dir.string() + ": " + ec.message()};
  auto data = fresh_data_dir(dir);
  fs::create_directory(data, ec);
  if (ec)
    return {errc::io, "create " + data.string() + ": " + ec.message()};
  ::chmod(data.c_str(), 0755);
  std::set<std::string> top;
  for (const auto& f : files) {
    fs::path rel = fs::path(f.path).lexically_normal();
    if (!relative_no_backsteps(rel.string()))
      return {errc::invalid, "downwardAPI path " + quoted(f.path) + " leads out of the volume"};
    auto file = data / rel;
    if (rel.has_parent_path()) {
      fs::create_directories(file.parent_path(), ec);
      if (ec)
        return {errc::io, "create " + file.parent_path().string() + ": " + ec.message()};
    }
    if (auto err = write_file_mode(file, f.content, f.mode))
      return err;
    top.insert(rel.begin()->string());
  }
  // ..data -> ..TIMESTAMP, switched with one rename.
  auto tmp_link = dir / "..data_tmp";
  fs::remove(tmp_link, ec);
  fs::create_symlink(data.filename(), tmp_link, ec);
  if (ec)
    return {errc::io, "symlink " + tmp_link.string() + ": " + ec.message()};
  if (::rename(tmp_link.c_str(), (dir / "..data").c_str()) != 0)
    return error::from_errno("rename " + tmp_link.string());
  for (const auto& name : top) {
    auto link = dir / name;
    std::error_code ec2;
    if (fs::is_symlink(fs::symlink_status(link, ec2)))
      continue;
    fs::create_symlink(fs::path("..data") / name, link, ec);
    if (ec)
      return {errc::io, "symlink " + link.string() + ": " + ec.message()};
  }
  return {};
}

result<volume_paths> set_up_volumes(const wire::pod& p, const fs::path& pod_dir,
                                    const node_allocatable& node) {
  volume_paths out;
  for (const auto& v : p.spec.volumes) {
    auto path = volume_path(pod_dir, v);
    std::error_code ec;
    if (v.empty_dir) {
      fs::create_directories(path, ec);
      if (ec)
        return mount_error(v.name, "create " + path.string() + ": " + ec.message());
      if (v.empty_dir->medium == "Memory" && !oci::is_mountpoint(path)) {
        auto limit = size_limit(v);
        if (!limit)
          return mount_error(v.name, limit.err().message);
        std::string options;
        if (*limit > 0)
          options = "size=" + std::to_string(*limit);
        if (::mount("tmpfs", path.c_str(), "tmpfs", 0,
                    options.empty() ? nullptr : options.c_str()) != 0)
          return mount_error(v.name, error::from_errno("mount tmpfs on " + path.string()).message);
      }
      // The kubelet's emptyDir is world-writable, so that any container user
      // can use it.
      if (::chmod(path.c_str(), 0777) != 0)
        return mount_error(v.name, error::from_errno("chmod " + path.string()).message);
    } else if (v.host_path) {
      if (auto err = check_host_path(v.host_path->path, v.host_path->type))
        return mount_error(v.name, err.message);
    } else if (v.downward_api) {
      auto files = downward_api_files(p, *v.downward_api, node);
      if (!files)
        return mount_error(v.name, files.err().message);
      if (auto err = write_atomic_files(path, *files))
        return mount_error(v.name, err.message);
    } else {
      return error{errc::unsupported, "volume " + quoted(v.name) + ": unsupported volume type"};
    }
    out[v.name] = path;
  }
  return out;
}

result<std::vector<oci::bind_mount>> container_volume_mounts(const wire::container& c,
                                                             const volume_paths& paths) {
  std::vector<oci::bind_mount> out;
  for (const auto& m : c.volume_mounts) {
    auto it = paths.find(m.name);
    if (it == paths.end())
      return error{errc::invalid, "container " + quoted(c.name) + ": volumeMount " +
                                      quoted(m.name) + " refers to an undefined volume"};
    fs::path source = it->second;
    if (!m.sub_path.empty()) {
      if (!relative_no_backsteps(m.sub_path))
        return error{errc::invalid, "container " + quoted(c.name) + ": subPath " +
                                        quoted(m.sub_path) + " must be relative without '..'"};
      source = it->second / m.sub_path;
      std::error_code ec;
      if (!fs::exists(fs::symlink_status(source, ec))) {
        fs::create_directories(source, ec);
        if (ec)
          return error{errc::io, "container " + quoted(c.name) + ": create subPath " +
                                     source.string() + ": " + ec.message()};
        ::chmod(source.c_str(), 0755);
      }
      // A symlink inside the volume must not lead the mount out of it.
      auto root = fs::weakly_canonical(it->second, ec);
      auto real = fs::weakly_canonical(source, ec);
      auto rel = real.lexically_relative(root);
      if (ec || rel.empty() || *rel.begin() == "..")
        return error{errc::invalid, "container " + quoted(c.name) + ": subPath " +
                                        quoted(m.sub_path) + " leads out of volume " +
                                        quoted(m.name)};
      source = real;
    }
    out.push_back({source, clean_mount_path(m.mount_path), m.read_only});
  }
  auto depth = [](const oci::bind_mount& b) {
    return std::distance(b.destination.begin(), b.destination.end());
  };
  std::stable_sort(out.begin(), out.end(),
                   [&](const auto& a, const auto& b) { return depth(a) < depth(b); });
  return out;
}

}  // namespace deckhand::runtime

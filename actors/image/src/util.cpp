#include "util.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include <dirent.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

namespace deckhand::image::detail {

sha256::sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1)
    std::abort();  // only fails on allocation failure
}

sha256::~sha256() { EVP_MD_CTX_free(ctx_); }

void sha256::update(const void* data, std::size_t n) {
  if (n)
    EVP_DigestUpdate(ctx_, data, n);
}

std::string sha256::digest() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 0xf];
  }
  return out;
}

std::string sha256_of(std::string_view data) {
  sha256 h;
  h.update(data.data(), data.size());
  return h.digest();
}

result<unique_fd> open_in_root(int dirfd, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, dirfd, rel.c_str(), &how, sizeof how);
  if (fd < 0) {
    int e = errno;
    error err = error::from_errno("open " + rel, e);
    if (e == ENOENT)
      err.code = errc::not_found;
    return err;
  }
  return unique_fd(static_cast<int>(fd));
}

result<std::string> read_fd(int fd, std::uint64_t max, const std::string& what) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return error::from_errno("read " + what);
    }
    if (n == 0)
      break;
    if (out.size() + static_cast<std::uint64_t>(n) > max)
      return error(errc::too_large, what + ": larger than " + std::to_string(max) + " bytes");
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

error remove_at(int dirfd, const char* name) {
  struct stat st;
  if (::fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT)
      return {};
    return error::from_errno(std::string("stat ") + name);
  }
  if (!S_ISDIR(st.st_mode)) {
    if (::unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)
      return error::from_errno(std::string("unlink ") + name);
    return {};
  }
  int fd = ::openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return error::from_errno(std::string("open ") + name);
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return error::from_errno(std::string("opendir ") + name);
  }
  std::vector<std::string> children;
  while (dirent* ent = ::readdir(d)) {
    if (std::strcmp(ent->d_name, ".") == 0 || std::strcmp(ent->d_name, "..") == 0)
      continue;
    children.emplace_back(ent->d_name);
  }
  error err;
  for (const auto& c : children) {
    err = remove_at(::dirfd(d), c.c_str());
    if (err)
      break;
  }
  ::closedir(d);
  if (err)
    return err;
  if (::unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
    return error::from_errno(std::string("rmdir ") + name);
  return {};
}

error remove_tree(const std::filesystem::path& p) {
  std::filesystem::path parent = p.parent_path();
  if (parent.empty())
    parent = ".";
  unique_fd dfd(::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) {
    if (errno == ENOENT)
      return {};
    return error::from_errno("open " + parent.string());
  }
  return remove_at(dfd.get(), p.filename().c_str());
}

result<std::filesystem::path> make_temp_dir(const std::filesystem::path& parent,
                                            const std::string& prefix) {
  std::string tmpl = (parent / (prefix + "XXXXXX")).string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data()))
    return error::from_errno("mkdtemp " + tmpl);
  return std::filesystem::path(buf.data());
}

}  // namespace deckhand::image::detail

#include "deckhand/common/unique_fd.hpp"

#include <unistd.h>

#include <cerrno>

namespace deckhand::common {

void unique_fd::reset(int fd) {
  if (fd_ >= 0 && fd_ != fd) {
    int saved = errno;
    ::close(fd_);
    errno = saved;
  }
  fd_ = fd;
}

}  // namespace deckhand::common

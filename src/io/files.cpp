// Atomic, durable file writes: PATH.tmp-PID is written through a file descriptor, fsync'ed,
// renamed onto PATH, and the folder is fsync'ed, so that after a crash or power loss PATH
// holds either the old file or the whole new one, never a part. A failed write (disk full,
// file size limit, quota) is an error naming the file and the reason; the old file stays.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <vector>

#include "diffuse/error.hpp"
#include "diffuse/io.hpp"

namespace diffuse {

namespace {

// An output buffer over a file descriptor that remembers the errno of the first failed write.
class FdBuf : public std::streambuf {
 public:
  explicit FdBuf(int fd) : fd_(fd), buf_(1 << 16) { setp(buf_.data(), buf_.data() + buf_.size()); }
  int error() const { return error_; }
  bool drain() {
    const char* p = pbase();
    size_t left = size_t(pptr() - pbase());
    while (left > 0 && error_ == 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
      } else if (n == 0) {
        error_ = EIO;
      } else {
        p += n;
        left -= size_t(n);
      }
    }
    setp(buf_.data(), buf_.data() + buf_.size());
    return error_ == 0;
  }

 protected:
  int_type overflow(int_type ch) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  int sync() override { return drain() ? 0 : -1; }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    if (n >= std::streamsize(buf_.size())) {  // large blocks (tensor data) go straight to the file
      if (!drain()) return 0;
      std::streamsize done = 0;
      while (done < n && error_ == 0) {
        const ssize_t w = ::write(fd_, s + done, size_t(n - done));
        if (w < 0) {
          if (errno != EINTR) error_ = errno;
        } else if (w == 0) {
          error_ = EIO;
        } else {
          done += w;
        }
      }
      return done;
    }
    return std::streambuf::xsputn(s, n);
  }

 private:
  int fd_;
  std::vector<char> buf_;
  int error_ = 0;
};

// Why a write failed, in words a user acts on.
std::string write_failure(const std::string& path, int err) {
  std::string why = std::strerror(err);
  if (err == ENOSPC) why = "the disk is full (" + why + ")";
  else if (err == EDQUOT) why = "the disk quota is exhausted (" + why + ")";
  else if (err == EFBIG) why = "the file size limit was reached, or the disk is full (" + why + ")";
  return "cannot write '" + path + "': " + why;
}

const char* kKeptHint = "free some space or write elsewhere; the previous version of the file, if any, is untouched";

// fsync of the folder that holds `path`, so that a rename into it is durable.
void sync_parent_dir(const std::string& path) {
  auto dir = std::filesystem::path(path).parent_path();
  const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return;  // best effort: the rename itself succeeded
  ::fsync(fd);
  ::close(fd);
}

// rename(2) of the synced temp file onto `path`, then fsync of the folder.
void rename_into_place(const std::string& tmp, const std::string& path) {
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    throw Error("cannot write '" + path + "': " + why);
  }
  sync_parent_dir(path);
}

}  // namespace

std::string temp_path_for(const std::string& path) {
  return path + ".tmp-" + std::to_string(::getpid());
}

void commit_temp(const std::string& tmp, const std::string& path) {
  // The temp file's data reaches the disk before its new name does.
  const int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd >= 0) {
    const int rc = ::fsync(fd), err = errno;
    ::close(fd);
    if (rc != 0 && err != EINVAL && err != EROFS) {  // EINVAL: a file that cannot be synced (e.g. a pipe)
      std::remove(tmp.c_str());
      throw Error(write_failure(path, err), kKeptHint);
    }
  }
  rename_into_place(tmp, path);
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& write) {
  const std::string tmp = temp_path_for(path);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    throw Error(err == ENOSPC || err == EDQUOT ? write_failure(path, err)
                                               : "cannot write '" + path + "': " + std::strerror(err),
                err == ENOSPC || err == EDQUOT ? kKeptHint : "check that the folder exists and is writable");
  }
  auto fail = [&](int err) {
    ::close(fd);
    std::remove(tmp.c_str());
    throw Error(write_failure(path, err), kKeptHint);
  };
  FdBuf buf(fd);
  {
    std::ostream out(&buf);
    try {
      write(out);
    } catch (...) {
      ::close(fd);
      std::remove(tmp.c_str());
      throw;
    }
    out.flush();
  }
  if (!buf.drain() || buf.error() != 0) fail(buf.error() ? buf.error() : EIO);
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) fail(errno);
  if (::close(fd) != 0) {  // e.g. delayed allocation failing on close (NFS)
    const int err = errno;
    std::remove(tmp.c_str());
    throw Error(write_failure(path, err), kKeptHint);
  }
  rename_into_place(tmp, path);
}

int remove_stale_temp_files(const std::string& dir) {
  int removed = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    const auto at = name.rfind(".tmp-");
    if (at == std::string::npos || at + 5 >= name.size()) continue;
    const std::string digits = name.substr(at + 5);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const pid_t pid = pid_t(std::stol(digits));
    if (pid == ::getpid() || pid <= 0) continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // alive (or not ours to ask): keep
    std::error_code rm;
    if (std::filesystem::remove(e.path(), rm)) ++removed;
  }
  return removed;
}

void ensure_dir(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec || !std::filesystem::is_directory(path))
    throw Error("cannot create folder '" + path + "'" + (ec ? ": " + ec.message() : ""));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "': " + std::strerror(errno), "check the path");
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) throw Error("cannot read '" + path + "'");
  return s.str();
}

}  // namespace diffuse

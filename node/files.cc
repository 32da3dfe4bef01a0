#include "node/files.h"

#include <sys/file.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace coffer::node {

namespace {

Status io_error(int err, const std::string& what, const std::string& path) {
    return error(err == ENOSPC ? Errc::kNoSpace : Errc::kIo,
                 "cannot " + what + " " + path + ": " + std::strerror(err));
}

Status write_all_and_sync(int fd, std::string_view contents, const std::string& path) {
    size_t done = 0;
    while (done < contents.size()) {
        ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return io_error(errno, "write", path);
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        return io_error(errno, "sync", path);
    }
    return Status();
}

Status sync_parent(const std::string& path) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) {
        dir = ".";
    }
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        return io_error(errno, "open folder", dir);
    }
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    return rc == 0 ? Status() : io_error(err, "sync folder", dir);
}

Status write_new(const std::string& path, std::string_view contents, mode_t mode, int flags) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | flags, mode);
    if (fd < 0) {
        if (errno == EEXIST) {
            return error(Errc::kFailedPrecondition, path + " already exists");
        }
        return io_error(errno, "create", path);
    }
    // The umask may have narrowed the mode; fchmod makes it exact.
    if (::fchmod(fd, mode) != 0) {
        Status s = io_error(errno, "chmod", path);
        ::close(fd);
        return s;
    }
    Status written = write_all_and_sync(fd, contents, path);
    ::close(fd);
    return written;
}

}  // namespace

Result<std::string> read_small_file(const std::string& path, size_t max_bytes) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return error(err == ENOENT ? Errc::kNotFound : Errc::kIo,
                     "cannot open " + path + ": " + std::strerror(err));
    }
    std::string data;
    char buffer[16 * 1024];
    while (true) {
        ssize_t n = ::read(fd, buffer, sizeof(buffer));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            Status s = io_error(errno, "read", path);
            ::close(fd);
            return s;
        }
        if (n == 0) {
            break;
        }
        data.append(buffer, static_cast<size_t>(n));
        if (data.size() > max_bytes) {
            ::close(fd);
            return error(Errc::kResourceExhausted,
                         path + " is larger than " + std::to_string(max_bytes) + " bytes");
        }
    }
    ::close(fd);
    return data;
}

Status write_file_atomic(const std::string& path, std::string_view contents, mode_t mode) {
    std::string tmp = path + ".tmp";
    COFFER_RETURN_IF_ERROR(write_new(tmp, contents, mode, O_TRUNC));
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        return io_error(errno, "rename to", path);
    }
    return sync_parent(path);
}

Status create_file_exclusive(const std::string& path, std::string_view contents, mode_t mode) {
    COFFER_RETURN_IF_ERROR(write_new(path, contents, mode, O_EXCL));
    return sync_parent(path);
}

bool path_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

Status make_private_dir(const std::string& dir) {
    std::error_code ec;
    bool created = std::filesystem::create_directories(dir, ec);
    if (ec) {
        return error(Errc::kIo, "cannot create folder " + dir + ": " + ec.message());
    }
    if (created) {
        std::filesystem::permissions(dir, std::filesystem::perms::owner_all,
                                     std::filesystem::perm_options::replace, ec);
        if (ec) {
            return error(Errc::kIo, "cannot restrict folder " + dir + ": " + ec.message());
        }
    }
    return Status();
}

DataDirLock::DataDirLock(DataDirLock&& other) noexcept : fd_(other.fd_) {
    other.fd_ = -1;
}

DataDirLock& DataDirLock::operator=(DataDirLock&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = other.fd_;
        other.fd_ = -1;
    }
    return *this;
}

DataDirLock::~DataDirLock() {
    if (fd_ >= 0) {
        ::close(fd_);  // releases the flock
    }
}

Result<DataDirLock> DataDirLock::acquire(const std::string& dir) {
    std::string path = dir + "/lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return error(Errc::kIo, "cannot open " + path + ": " + std::strerror(errno));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        char buffer[32] = {};
        ssize_t n = ::pread(fd, buffer, sizeof(buffer) - 1, 0);
        ::close(fd);
        std::string holder = n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "unknown";
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) {
            holder.pop_back();
        }
        if (err == EWOULDBLOCK) {
            return error(
                Errc::kFailedPrecondition,
                "data directory " + dir + " is in use by another process (pid " + holder + ")");
        }
        return error(Errc::kIo, "cannot lock " + path + ": " + std::strerror(err));
    }
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
        int err = errno;
        ::close(fd);
        return error(Errc::kIo, "cannot write " + path + ": " + std::strerror(err));
    }
    DataDirLock lock;
    lock.fd_ = fd;
    return lock;
}

}  // namespace coffer::node

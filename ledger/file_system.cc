#include "ledger/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace coffer::ledger {

namespace {

// Bound on EINTR retries of one call, so a signal storm cannot spin forever.
constexpr int kMaxEintrRetries = 1000;

Status errno_status(int err, std::string_view what, const std::string& path) {
    std::string message = std::string(what) + " " + path + ": " + std::strerror(err);
    if (err == ENOSPC || err == EDQUOT) {
        return error(Errc::kNoSpace, "disk full: " + message);
    }
    if (err == ENOENT) {
        return error(Errc::kNotFound, message);
    }
    if (err == EEXIST) {
        return error(Errc::kFailedPrecondition, message);
    }
    return error(Errc::kIo, message);
}

// Calls `fn` until it does not fail with EINTR; returns its result (errno set on -1).
template <typename Fn>
auto retry_eintr(Fn fn) -> decltype(fn()) {
    decltype(fn()) rc = -1;
    for (int attempt = 0; attempt < kMaxEintrRetries; ++attempt) {
        rc = fn();
        if (rc != -1 || errno != EINTR) {
            return rc;
        }
    }
    return rc;
}

class PosixFile final : public File {
  public:
    PosixFile(int fd, std::string path, bool writable)
        : fd_(fd), path_(std::move(path)), writable_(writable) {}
    ~PosixFile() override { ::close(fd_); }
    PosixFile(const PosixFile&) = delete;
    PosixFile& operator=(const PosixFile&) = delete;

    Result<size_t> append(ByteSpan data) override {
        if (!writable_) {
            return error(Errc::kFailedPrecondition, "file opened read-only: " + path_);
        }
        size_t done = 0;
        while (done < data.size()) {
            ssize_t n =
                retry_eintr([&] { return ::write(fd_, data.data() + done, data.size() - done); });
            if (n < 0) {
                return errno_status(errno, "write", path_);
            }
            if (n == 0) {
                return error(Errc::kNoSpace, "disk full: write returned 0 for " + path_);
            }
            done += static_cast<size_t>(n);
        }
        return done;
    }

    Status sync() override {
        if (retry_eintr([&] { return ::fdatasync(fd_); }) != 0) {
            return errno_status(errno, "fdatasync", path_);
        }
        return Status::ok_status();
    }

    Result<size_t> read_at(uint64_t offset, std::span<uint8_t> out) override {
        size_t done = 0;
        while (done < out.size()) {
            ssize_t n = retry_eintr([&] {
                return ::pread(fd_, out.data() + done, out.size() - done,
                               static_cast<off_t>(offset + done));
            });
            if (n < 0) {
                return errno_status(errno, "pread", path_);
            }
            if (n == 0) {
                break;
            }
            done += static_cast<size_t>(n);
        }
        return done;
    }

    Result<uint64_t> size() override {
        struct stat st {};
        if (::fstat(fd_, &st) != 0) {
            return errno_status(errno, "fstat", path_);
        }
        return static_cast<uint64_t>(st.st_size);
    }

    Status truncate(uint64_t size_bytes) override {
        if (!writable_) {
            return error(Errc::kFailedPrecondition, "file opened read-only: " + path_);
        }
        COFFER_ASSIGN_OR_RETURN(uint64_t current, size());
        if (size_bytes > current) {
            return error(Errc::kInvalidArgument, "truncate past the end of " + path_);
        }
        if (retry_eintr([&] { return ::ftruncate(fd_, static_cast<off_t>(size_bytes)); }) != 0) {
            return errno_status(errno, "ftruncate", path_);
        }
        return Status::ok_status();
    }

    const std::string& path() const override { return path_; }

  private:
    int fd_;
    std::string path_;
    bool writable_;
};

// Ledger files are regular files that this process created. Anything else under a ledger
// name is refused before it is read: a FIFO would block open() or read() forever, a device
// (/dev/zero) never ends, a directory cannot be read, and a symbolic link would make rename
// and sync_dir act on the link while the data lives elsewhere, outside the durability rules.
// O_NONBLOCK keeps open() of a FIFO from waiting for a writer; O_NOFOLLOW refuses a symlink
// as the last component (a symlinked ledger directory is fine).
Status not_regular_file(const std::string& path, std::string_view what) {
    return error(Errc::kInvalidArgument, "refusing " + path + ": " + std::string(what) +
                                             " (ledger files must be regular files, not a "
                                             "symbolic link, FIFO, device, socket or directory)");
}

Result<std::unique_ptr<File>> open_posix(const std::string& path, int flags, bool writable) {
    int fd = retry_eintr(
        [&] { return ::open(path.c_str(), flags | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644); });
    if (fd < 0) {
        if (errno == ELOOP) {
            return not_regular_file(path, "it is a symbolic link");
        }
        if (errno == EISDIR || errno == ENXIO) {
            return not_regular_file(path, "not a regular file");
        }
        return errno_status(errno, "open", path);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        Status failed = errno_status(errno, "fstat", path);
        ::close(fd);
        return failed;
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return not_regular_file(path, "not a regular file");
    }
    // Back to blocking I/O; O_APPEND is the only status flag the ledger sets.
    if (::fcntl(fd, F_SETFL, flags & O_APPEND) != 0) {
        Status failed = errno_status(errno, "fcntl", path);
        ::close(fd);
        return failed;
    }
    return std::unique_ptr<File>(std::make_unique<PosixFile>(fd, path, writable));
}

}  // namespace

Result<std::unique_ptr<File>> PosixFileSystem::open_for_append(const std::string& path) {
    return open_posix(path, O_RDWR | O_APPEND, true);
}

Result<std::unique_ptr<File>> PosixFileSystem::create_new(const std::string& path) {
    return open_posix(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL, true);
}

Result<std::unique_ptr<File>> PosixFileSystem::open_read(const std::string& path) {
    return open_posix(path, O_RDONLY, false);
}

Result<std::vector<std::string>> PosixFileSystem::list_dir(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) {
        return errno_status(errno, "opendir", dir);
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name != "." && name != "..") {
            names.push_back(std::move(name));
        }
        errno = 0;
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) {
        return errno_status(err, "readdir", dir);
    }
    std::sort(names.begin(), names.end());
    return names;
}

Status PosixFileSystem::rename(const std::string& from, const std::string& to) {
    if (::rename(from.c_str(), to.c_str()) != 0) {
        return errno_status(errno, "rename to " + to + " of", from);
    }
    return Status::ok_status();
}

Status PosixFileSystem::remove(const std::string& path) {
    if (::unlink(path.c_str()) != 0) {
        return errno_status(errno, "unlink", path);
    }
    return Status::ok_status();
}

Status PosixFileSystem::sync_dir(const std::string& dir) {
    int fd = retry_eintr([&] { return ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); });
    if (fd < 0) {
        return errno_status(errno, "open directory", dir);
    }
    int rc = retry_eintr([&] { return ::fsync(fd); });
    int err = errno;
    ::close(fd);
    if (rc != 0) {
        return errno_status(err, "fsync directory", dir);
    }
    return Status::ok_status();
}

Status PosixFileSystem::make_dir(const std::string& dir) {
    COFFER_ASSIGN_OR_RETURN(bool exists, file_exists(dir));
    if (exists) {
        return Status::ok_status();
    }
    std::string parent = parent_path(dir);
    if (parent != dir && parent != "." && parent != "/") {
        COFFER_RETURN_IF_ERROR(make_dir(parent));
    }
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
        return errno_status(errno, "mkdir", dir);
    }
    return Status::ok_status();
}

Result<bool> PosixFileSystem::file_exists(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        return true;
    }
    if (errno == ENOENT || errno == ENOTDIR) {
        return false;
    }
    return errno_status(errno, "stat", path);
}

std::string join_path(std::string_view dir, std::string_view name) {
    if (dir.empty()) {
        return std::string(name);
    }
    std::string out(dir);
    if (out.back() != '/') {
        out.push_back('/');
    }
    out.append(name);
    return out;
}

std::string parent_path(std::string_view path) {
    while (path.size() > 1 && path.back() == '/') {
        path.remove_suffix(1);
    }
    size_t slash = path.rfind('/');
    if (slash == std::string_view::npos) {
        return ".";
    }
    if (slash == 0) {
        return "/";
    }
    return std::string(path.substr(0, slash));
}

Result<Bytes> read_whole_file(File& file, uint64_t max_size_bytes) {
    COFFER_ASSIGN_OR_RETURN(uint64_t size, file.size());
    if (size > max_size_bytes) {
        return error(Errc::kResourceExhausted,
                     "file " + file.path() + " is " + std::to_string(size) +
                         " bytes, over the limit of " + std::to_string(max_size_bytes));
    }
    Bytes data(static_cast<size_t>(size));
    COFFER_ASSIGN_OR_RETURN(size_t n, file.read_at(0, data));
    data.resize(n);
    return data;
}

}  // namespace coffer::ledger

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cli/commands.h"

namespace coffer::cli {

Result<std::string> read_file(const std::string& path, size_t max_bytes) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return error(errno == ENOENT ? Errc::kNotFound : Errc::kIo,
                     "cannot open " + path + ": " + std::strerror(errno));
    }
    std::string data;
    char buffer[64 * 1024];
    while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
        data.append(buffer, static_cast<size_t>(in.gcount()));
        if (data.size() > max_bytes) {
            return error(Errc::kResourceExhausted,
                         path + " is larger than " + std::to_string(max_bytes) + " bytes");
        }
    }
    if (in.bad()) {
        return error(Errc::kIo, "cannot read " + path);
    }
    return data;
}

Status write_file(const std::string& path, std::string_view contents) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return error(Errc::kIo, "cannot create " + path + ": " + std::strerror(errno));
    }
    size_t done = 0;
    while (done < contents.size()) {
        ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int err = errno;
            ::close(fd);
            return error(err == ENOSPC ? Errc::kNoSpace : Errc::kIo,
                         "cannot write " + path + ": " + std::strerror(err));
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        int err = errno;
        ::close(fd);
        return error(Errc::kIo, "cannot sync " + path + ": " + std::strerror(err));
    }
    ::close(fd);
    return Status();
}

}  // namespace coffer::cli

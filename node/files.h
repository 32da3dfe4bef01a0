// Small whole-file helpers for the node's own files (configuration inputs, certificates, the
// sealed secrets, the sealing key). The ledger does its own I/O through ledger/file_system.h.
//
// Free functions over POSIX calls; thread-safe for distinct paths.
#pragma once

#include <sys/types.h>
#include <string>
#include <string_view>

#include "common/result.h"

namespace coffer::node {

// Reads a whole file. Errors: kNotFound or kIo naming the path; kResourceExhausted when it is
// larger than max_bytes.
Result<std::string> read_small_file(const std::string& path, size_t max_bytes);

// Writes `contents` to path.tmp with permissions `mode`, fsyncs it, renames it over `path`
// and fsyncs the folder, so a crash leaves either the old or the new file, never a torn
// one. Errors: kNoSpace, kIo naming the path.
Status write_file_atomic(const std::string& path, std::string_view contents, mode_t mode);

// Creates `path` (which must not exist) with `contents` and permissions `mode`, fsynced,
// folder fsynced. Errors: kFailedPrecondition if it exists; kNoSpace, kIo.
Status create_file_exclusive(const std::string& path, std::string_view contents, mode_t mode);

// True if `path` exists (any kind of file).
bool path_exists(const std::string& path);

// Creates `dir` and its parents with permissions 0700 (existing folders are kept as they
// are). Errors: kIo.
Status make_private_dir(const std::string& dir);

// An exclusive lock on a data directory, held for the life of the object (flock on the
// file `lock` inside it). Two processes on one data directory would both write the ledger
// and corrupt it for good, so a node takes this before reading anything there.
// Move-only; not thread-safe.
class DataDirLock {
  public:
    DataDirLock() = default;
    DataDirLock(DataDirLock&& other) noexcept;
    DataDirLock& operator=(DataDirLock&& other) noexcept;
    DataDirLock(const DataDirLock&) = delete;
    DataDirLock& operator=(const DataDirLock&) = delete;
    ~DataDirLock();

    // Errors: kFailedPrecondition "data directory D is in use by another process (pid N)";
    // kIo if the lock file cannot be created.
    static Result<DataDirLock> acquire(const std::string& dir);

  private:
    int fd_ = -1;
};

}  // namespace coffer::node

// The file I/O interface of the ledger.
//
// Every ledger file operation goes through FileSystem and File so that the consensus
// simulator can run a whole network in one process on MemoryFileSystem (memory_file_system.h),
// losing unflushed writes and tearing the last write on a simulated crash, while nodes use
// PosixFileSystem on real disks.
//
// Durability model (the one POSIX gives on Linux, and the one MemoryFileSystem simulates):
//   - bytes appended to a file are durable only after File::sync() returns OK;
//   - a created, renamed or removed directory entry is durable only after sync_dir() on the
//     directory that holds it returns OK (field case LED-4).
// A failed sync leaves the data in an unknown state: callers must not retry it and report
// the data durable (see ChunkStore's FAILED state).
//
// Paths are plain strings joined with '/'; no normalisation happens beyond that.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"

namespace coffer::ledger {

// One open file. Thread-compatible: one thread at a time may use a given File.
class File {
  public:
    virtual ~File() = default;

    // Appends all of `data` at the end of the file and returns data.size(). Not durable until
    // sync(). Errors: kNoSpace when the disk is full (a prefix of `data` may have been
    // written: the caller must truncate back if it needs a clean end), kIo otherwise,
    // kFailedPrecondition on a file opened with open_read().
    virtual Result<size_t> append(ByteSpan data) = 0;

    // Makes every byte appended so far, and the file size, durable (fdatasync). Errors: kIo.
    // After an error the state of the unflushed bytes is unknown; do not retry.
    virtual Status sync() = 0;

    // Reads up to out.size() bytes at `offset` into `out`; returns how many were read, which
    // is less than out.size() only at end of file. Errors: kIo.
    virtual Result<size_t> read_at(uint64_t offset, std::span<uint8_t> out) = 0;

    // Current size in bytes, unflushed appends included. Errors: kIo.
    virtual Result<uint64_t> size() = 0;

    // Cuts the file to `size_bytes` (which must not exceed the current size). Not durable
    // until sync(). Errors: kInvalidArgument, kIo, kFailedPrecondition on a read-only file.
    virtual Status truncate(uint64_t size_bytes) = 0;

    // The path the file was opened with (for messages; a rename does not change it).
    virtual const std::string& path() const = 0;
};

// A directory tree. Implementations document their own thread-safety.
class FileSystem {
  public:
    virtual ~FileSystem() = default;

    // Opens an existing regular file for reading and appending. Errors: kNotFound,
    // kInvalidArgument (not a regular file, see PosixFileSystem), kIo.
    virtual Result<std::unique_ptr<File>> open_for_append(const std::string& path) = 0;

    // Creates a new empty file, failing if it exists (O_EXCL), opened for reading and
    // appending. The directory entry is not durable until sync_dir(parent). Errors:
    // kFailedPrecondition (exists), kNotFound (no parent directory), kNoSpace, kIo.
    virtual Result<std::unique_ptr<File>> create_new(const std::string& path) = 0;

    // Opens an existing regular file read-only. Errors: kNotFound, kInvalidArgument (not a
    // regular file), kIo.
    virtual Result<std::unique_ptr<File>> open_read(const std::string& path) = 0;

    // Names (not paths) of the entries directly inside `dir`, files and directories, sorted,
    // without "." and "..". Errors: kNotFound, kIo.
    virtual Result<std::vector<std::string>> list_dir(const std::string& dir) = 0;

    // Atomically renames a file, replacing `to` if it exists. Not durable until sync_dir() on
    // both parents. Errors: kNotFound, kIo.
    virtual Status rename(const std::string& from, const std::string& to) = 0;

    // Removes a file (not a directory). Not durable until sync_dir(parent). Errors: kNotFound,
    // kIo.
    virtual Status remove(const std::string& path) = 0;

    // Makes the entries of `dir` (creations, renames, removals) durable: fsync on a
    // descriptor opened on the directory. Errors: kNotFound, kIo.
    virtual Status sync_dir(const std::string& dir) = 0;

    // Creates `dir` and any missing parents; OK if it already exists as a directory. The new
    // entries are not durable until sync_dir() on their parents. Errors: kIo, kNoSpace.
    virtual Status make_dir(const std::string& dir) = 0;

    // Whether a file or directory exists at `path`. Errors: kIo.
    virtual Result<bool> file_exists(const std::string& path) = 0;
};

// Real files through POSIX calls: O_CLOEXEC on every descriptor, EINTR retried, short writes
// continued, fdatasync for File::sync and fsync on a directory descriptor for sync_dir.
// ENOSPC becomes kNoSpace; any other failure kIo with the path and strerror.
// Only regular files are opened: a symbolic link (as the last path component), FIFO, device,
// socket or directory is refused with kInvalidArgument naming the path, without blocking
// (a FIFO is opened with O_NONBLOCK, then checked with fstat).
// Thread-safe: it holds no state; the Files it returns are thread-compatible.
class PosixFileSystem final : public FileSystem {
  public:
    Result<std::unique_ptr<File>> open_for_append(const std::string& path) override;
    Result<std::unique_ptr<File>> create_new(const std::string& path) override;
    Result<std::unique_ptr<File>> open_read(const std::string& path) override;
    Result<std::vector<std::string>> list_dir(const std::string& dir) override;
    Status rename(const std::string& from, const std::string& to) override;
    Status remove(const std::string& path) override;
    Status sync_dir(const std::string& dir) override;
    Status make_dir(const std::string& dir) override;
    Result<bool> file_exists(const std::string& path) override;
};

// "dir/name" (just `name` when dir is empty).
std::string join_path(std::string_view dir, std::string_view name);

// The directory part of `path`: "a/b" for "a/b/c", "/" for "/c", "." for "c".
std::string parent_path(std::string_view path);

// Reads the whole file into memory, refusing files larger than `max_size_bytes`
// (kResourceExhausted). Errors from the File are passed on.
Result<Bytes> read_whole_file(File& file, uint64_t max_size_bytes);

}  // namespace coffer::ledger

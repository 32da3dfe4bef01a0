// An in-memory FileSystem for deterministic simulation and tests.
//
// It models the durability rules of file_system.h exactly, so that a simulated crash shows
// what a real power loss could:
//   - each file keeps its current bytes and its durable bytes (as of its last sync());
//   - each directory entry (file or directory, created, renamed or removed) is volatile until
//     sync_dir() on its parent;
//   - crash() throws away everything not durable: files return to their durable bytes,
//     directory entries to their durable state, and every File opened before the crash fails
//     with kIo from then on;
//   - tear_last_write(seed) makes a random prefix of the most recent unflushed append durable,
//     as a disk that wrote part of a write before losing power would; call crash() next.
// Fault injection: fail_next_sync() / fail_next_dir_sync() make the next sync fail with kIo
// (the data stays unflushed); set_disk_full_after(n) lets n more bytes be appended and then
// refuses appends with kNoSpace (writing the prefix that fits, as write(2) does).
//
// Everything is deterministic: same calls, same seed, same bytes. Thread-safe: one mutex
// guards the whole tree; Files it returns may be used from any thread, one at a time each.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ledger/file_system.h"

namespace coffer::ledger {

class MemoryFileSystem final : public FileSystem {
  public:
    MemoryFileSystem() = default;
    MemoryFileSystem(const MemoryFileSystem&) = delete;
    MemoryFileSystem& operator=(const MemoryFileSystem&) = delete;

    Result<std::unique_ptr<File>> open_for_append(const std::string& path) override;
    Result<std::unique_ptr<File>> create_new(const std::string& path) override;
    Result<std::unique_ptr<File>> open_read(const std::string& path) override;
    Result<std::vector<std::string>> list_dir(const std::string& dir) override;
    Status rename(const std::string& from, const std::string& to) override;
    Status remove(const std::string& path) override;
    Status sync_dir(const std::string& dir) override;
    Status make_dir(const std::string& dir) override;
    Result<bool> file_exists(const std::string& path) override;

    // Simulated power loss (see the file comment).
    void crash();

    // What tear_last_write() kept.
    struct TornWrite {
        std::string path;           // the file's current name
        uint64_t write_offset = 0;  // where the torn append started
        uint64_t write_size = 0;    // how long it was
        uint64_t kept_bytes = 0;    // how much of it is now durable, in [0, write_size)
    };
    // Makes a prefix (length drawn from `seed`, strictly shorter than the write) of the most
    // recent append that no sync() has covered durable, together with everything before it in
    // that file. Errors: kNotFound when no unflushed append exists.
    Result<TornWrite> tear_last_write(uint64_t seed);

    void fail_next_sync();
    void fail_next_dir_sync();
    void set_disk_full_after(uint64_t bytes);
    void clear_disk_full();

    // Counters for tests: successful File::sync() and sync_dir() calls since construction.
    uint64_t sync_count() const;
    uint64_t dir_sync_count() const;

    // Test helpers that bypass durability tracking: the current bytes of a file, and a
    // replacement of them (the new bytes count as durable, as if written by another tool).
    Result<Bytes> read_file(const std::string& path) const;
    Status write_file(const std::string& path, ByteSpan data);

  private:
    struct Node {
        Bytes current;
        Bytes durable;
        // The most recent append not yet covered by a sync (size 0: none).
        uint64_t last_write_offset = 0;
        uint64_t last_write_size = 0;
        uint64_t last_write_stamp = 0;
    };
    class MemoryFile;
    friend class MemoryFile;

    Result<std::unique_ptr<File>> open_locked(const std::string& path, bool writable);
    bool dir_exists_locked(const std::string& dir) const;
    Status check_epoch_locked(uint64_t epoch, const std::string& path) const;

    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<Node>> files_;
    std::map<std::string, std::shared_ptr<Node>> durable_files_;
    std::set<std::string> dirs_;
    std::set<std::string> durable_dirs_;
    uint64_t epoch_ = 0;
    uint64_t write_stamp_ = 0;
    bool fail_next_sync_ = false;
    bool fail_next_dir_sync_ = false;
    std::optional<uint64_t> space_left_bytes_;
    uint64_t sync_count_ = 0;
    uint64_t dir_sync_count_ = 0;
};

}  // namespace coffer::ledger

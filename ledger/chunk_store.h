// Chunked, append-only storage of opaque ledger entries with consecutive seqnos.
//
// The byte layout, file naming, torn-versus-corrupt rules, directory-sync rule and the
// handling of stale files are specified in docs/formats/ledger-chunk.md. In short:
//   - a directory holds chunk files `ledger_<first>.open` (the one being appended to),
//     `ledger_<first>-<last>.chunk` (closed) and `ledger_<first>-<last>.committed` (closed,
//     every entry committed); any other name starting with "ledger_" is an error (it might
//     hold entries); other names are not ours; `ignored/` holds files set aside;
//   - a chunk closes only on a signature entry, once it has reached chunk_size_bytes;
//   - every frame carries a checksum of its own header and one of its entry, so that a tail
//     cut by a crash (torn, repaired on open with one WARN) is told apart from damage
//     (corrupt, open fails with kCorrupt naming the file, seqno and byte offset); only the
//     newest `.open` chunk may end torn: a closed chunk must hold exactly its name's range;
//   - validation streams through one frame at a time, so open's memory is bounded by
//     kMaxEntrySize, not by the size of a file.
//
// Group commit: append() only buffers; flush() writes every buffered frame and syncs once
// (per chunk file written), then syncs the directory if a ledger file was created or
// renamed, and only then advances durable_seqno() (field cases LED-4 and CON-1).
//
// Thread-safety: none. A ChunkStore is used by one thread at a time, const methods included
// (reads share cached file handles). The FileSystem must outlive the store.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.h"
#include "common/result.h"
#include "ledger/file_system.h"

namespace coffer::ledger {

// Format constants (docs/formats/ledger-chunk.md).
constexpr uint16_t kChunkFormatVersion = 1;
constexpr size_t kChunkHeaderSize = 32;
constexpr size_t kFrameHeaderSize = 24;
constexpr size_t kFrameTrailerSize = 8;
constexpr size_t kFrameOverhead = kFrameHeaderSize + kFrameTrailerSize;

// Largest entry accepted: 64 MiB of payload plus room for the entry codec's own headers.
constexpr uint64_t kMaxEntrySize = (64u << 20) + (64u << 10);
// Largest value of ChunkStoreOptions::max_batch_entries, and the most entries that may wait
// unflushed at once (append() refuses more with kResourceExhausted).
constexpr size_t kMaxBatchEntries = 65536;
// The most unflushed bytes that may wait at once (append() refuses more).
constexpr uint64_t kMaxPendingBytes = 256u << 20;
// Largest chunk_size_bytes accepted; a chunk file may exceed it only until the next
// signature entry. open() and open_read_only() refuse (kCorrupt, before reading it) a chunk
// file over kMaxChunkFileBytes: it bounds the time a scan takes (memory is bounded by
// kMaxEntrySize in any case), e.g. for a huge sparse file.
constexpr uint64_t kMaxChunkSizeBytes = 1u << 30;
constexpr uint64_t kMaxChunkFileBytes = 4ull << 30;
// How many copies of one file name `ignored/` may hold (name.1 ... name.N).
constexpr int kMaxSetAsideCopies = 1000;

struct ChunkStoreOptions {
    std::string dir;
    uint64_t chunk_size_bytes = 4 << 20;
    size_t max_batch_entries = 1024;
    uint32_t flush_interval_ms = 2;
    // Monotonic clock in milliseconds for flush_due(); empty means std::chrono::steady_clock.
    // The simulator passes its virtual clock so that runs are deterministic.
    std::function<uint64_t()> now_ms;
};

struct OpenReport {
    uint64_t entries = 0;
    uint64_t chunks = 0;
    // Set when the newest chunk had a torn tail: its path, the offset where the valid data
    // ends (the cut point), and how many bytes were cut (or would be, on a read-only open).
    std::optional<std::string> torn_file;
    uint64_t torn_offset = 0;
    uint64_t torn_bytes_cut = 0;
    // Paths (under ignored/) of files moved aside by open_from_snapshot().
    std::vector<std::string> set_aside;
    // On a kCorrupt error: the damaged file, and whether its name marks it committed (a
    // node may discard an uncommitted one through open_from_snapshot(); a committed one
    // needs disaster recovery).
    std::optional<std::string> corrupt_file;
    bool corrupt_file_committed = false;
};

class ChunkStore {
  public:
    // Opens `opts.dir` (creating it, and syncing its parent, if absent), validates every frame
    // of every chunk, repairs a torn tail of the newest `.open` chunk (one WARN naming the
    // file and the cut offset; the file is truncated there and synced), syncs the newest
    // chunk and the directory so that everything found counts as durable, and returns the
    // store. An empty directory gives an empty store starting at seqno 1.
    // Errors: kCorrupt (file, seqno and byte offset in the message; see OpenReport), also for
    // a closed chunk that does not hold exactly its name's range or ends torn or zero-filled,
    // for an unrecognised file name starting with "ledger_", and for a chunk file over
    // kMaxChunkFileBytes; kInvalidArgument (bad options, or a ledger file that is not a
    // regular file, from PosixFileSystem), kIo, kNoSpace. `report` may be null.
    static Result<std::unique_ptr<ChunkStore>> open(FileSystem& fs, ChunkStoreOptions opts,
                                                    OpenReport* report);

    // The same validation without modifying anything, for `coffer ledger verify`: a torn tail
    // is reported (and logged) but not cut, and the entries before it are served. Every
    // mutating call on the result fails with kFailedPrecondition.
    // Errors: kNotFound (no directory), kCorrupt (as open()), kInvalidArgument, kIo.
    static Result<std::unique_ptr<ChunkStore>> open_read_only(FileSystem& fs, std::string dir,
                                                              OpenReport* report);

    // For a node that installs a snapshot covering seqnos 1..snapshot_seqno and continues its
    // ledger after it (field case LED-5). Before reading any chunk, using file names only (so
    // that a damaged stale file cannot stop the node):
    //   - every uncommitted ledger file (.open and .chunk), and every unrecognised name
    //     starting with "ledger_", is moved into `ignored/` (the consensus leader resends
    //     anything uncommitted);
    //   - committed files are kept when they form one run from the lowest seqno that reaches
    //     snapshot_seqno; otherwise they too are moved into `ignored/` (they are superseded by
    //     the snapshot; moved, never deleted);
    //   - when nothing is kept, an empty `ledger_<snapshot_seqno+1>.open` is created.
    // One WARN per moved file; the directories are synced; then it opens as open() does, so
    // first_seqno() may be greater than 1 and last_seqno() is at least snapshot_seqno.
    // Errors: as open(); kResourceExhausted when `ignored/` already holds kMaxSetAsideCopies
    // copies of a name.
    static Result<std::unique_ptr<ChunkStore>> open_from_snapshot(FileSystem& fs,
                                                                  ChunkStoreOptions opts,
                                                                  uint64_t snapshot_seqno,
                                                                  OpenReport* report);

    ~ChunkStore();
    ChunkStore(const ChunkStore&) = delete;
    ChunkStore& operator=(const ChunkStore&) = delete;

    // Buffers one entry; nothing is written until flush(). `seqno` must be last_seqno() + 1.
    // Errors: kFailedPrecondition (wrong seqno, read-only), kInvalidArgument (entry over
    // kMaxEntrySize), kResourceExhausted (kMaxBatchEntries or kMaxPendingBytes unflushed),
    // kIo (the store FAILED).
    Status append(uint64_t seqno, ByteSpan entry, bool is_signature);

    // Group commit: writes every buffered frame, syncs each chunk file written once, syncs
    // the directory when a ledger file was created or renamed, and returns the new
    // durable_seqno(), which advances only after those syncs returned OK.
    // A sync failure puts the store in the FAILED state: this and every later call returns
    // kIo "ledger storage failed: fsync error; the node must stop" (a failed fsync is never
    // retried: the state of the data is unknown).
    // A full disk returns kNoSpace: entries up to the returned error's durable_seqno() (which
    // may have advanced if the batch closed a chunk before the disk filled) survive; every
    // later buffered entry is dropped, last_seqno() becomes durable_seqno(), and the caller
    // must report those transactions failed. Reads go on; a later append/flush retries.
    Result<uint64_t> flush();

    // True when the buffered batch is full (max_batch_entries) or flush_interval_ms has
    // passed since the first unflushed append.
    bool flush_due() const;

    // first_seqno() is the seqno of the first entry the store holds or will hold (1, or the
    // snapshot_seqno + 1 of open_from_snapshot); last_seqno() includes buffered entries and
    // is first_seqno() - 1 when the store is empty.
    uint64_t first_seqno() const;
    uint64_t last_seqno() const;
    uint64_t durable_seqno() const;

    // Rolls back an uncommitted tail: drops buffered entries and removes written ones after
    // `last_kept` (later chunk files removed, the chunk holding last_kept + 1 cut there and
    // reopened for appends), syncing files and directory. No-op if last_kept >= last_seqno().
    // Errors: kFailedPrecondition (last_kept < committed_seqno() or < first_seqno() - 1,
    // read-only), kIo (the store FAILED; a failed sync puts it there).
    Status truncate(uint64_t last_kept);

    // Advances the commit point. Must be monotonic and <= durable_seqno() (an entry counts
    // as committed only once it is durable here, field case CON-1). Closed chunks whose
    // entries are all committed are renamed to `.committed` and the directory synced.
    // Errors: kFailedPrecondition (backwards, not durable, read-only), kIo.
    Status set_committed(uint64_t seqno);

    // The commit point. After open() it is a lower bound: the last seqno of the newest
    // `.committed` file, or first_seqno() - 1; the consensus layer re-establishes the rest.
    uint64_t committed_seqno() const;

    // The entry at `seqno`, buffered entries included; written entries are read back and
    // their checksums verified. Errors: kNotFound (out of range), kCorrupt, kIo.
    Result<Bytes> read(uint64_t seqno) const;

    // Calls fn for every entry from `from_seqno` to last_seqno() in order, stopping at (and
    // returning) the first error fn returns. from_seqno == last_seqno() + 1 visits nothing.
    // Errors: kNotFound (from_seqno out of range), kCorrupt, kIo, or fn's error.
    Status for_each(
        uint64_t from_seqno,
        const std::function<Status(uint64_t seqno, ByteSpan entry, bool is_signature)>& fn) const;

    // Total bytes in the ledger's chunk files (written data, buffered frames excluded).
    uint64_t size_bytes() const;

    // Where a written entry's frame starts. Errors: kNotFound (out of range or still
    // buffered).
    struct Location {
        std::string file;
        uint64_t offset;
    };
    Result<Location> locate(uint64_t seqno) const;

    // Paths of the chunk files, oldest first.
    std::vector<std::string> chunk_files() const;

    // The seqno of the last entry (written or buffered) whose frame is flagged as a signature
    // entry, or nullopt when there is none. The flag is not authenticated here: the Ledger
    // verifies the signature itself (docs/ledger.md, "What a restart keeps").
    std::optional<uint64_t> last_signature_seqno() const;

    // Whether a sync error put the store in the FAILED state.
    bool failed() const { return failed_; }

  private:
    enum class ChunkState { kOpen, kClosed, kCommitted };
    struct Chunk {
        uint64_t first = 0;
        uint64_t last = 0;  // first - 1 when empty
        ChunkState state = ChunkState::kOpen;
        uint64_t size_bytes = 0;  // written bytes
        std::string name;
    };
    struct EntryLoc {
        uint64_t offset = 0;
        uint32_t size = 0;
        uint32_t chunk = 0;  // index into chunks_
        bool is_signature = false;
    };
    struct Pending {
        uint64_t seqno = 0;
        size_t offset = 0;  // into pending_bytes_
        size_t size = 0;    // frame size
        bool is_signature = false;
        bool closes_chunk = false;
    };

    ChunkStore(FileSystem& fs, ChunkStoreOptions opts, bool read_only);

    Status load(OpenReport* report);
    Status load_chunk(size_t index, uint64_t expected_first, OpenReport* report);
    Status check_closed_chunk(size_t index, uint64_t name_last) const;
    Status repair_torn(size_t index, uint64_t cut_offset, uint64_t file_size, OpenReport* report);
    Status open_newest_for_append();
    Status check_usable() const;
    Status check_writable() const;
    Status fail(const Status& cause, std::string_view what = "fsync error");
    bool account_frame(uint64_t frame_size, bool is_signature);
    void recompute_open_bytes();
    Status write_pending();
    Status write_segment(size_t begin, size_t end);
    Status ensure_open_chunk(uint64_t first_seqno);
    Status close_open_chunk();
    Result<uint64_t> handle_no_space(const Status& cause);
    Status truncate_written(uint64_t last_kept);
    Status remove_chunks_after(size_t index);
    Status mark_committed_chunks();
    Status rename_chunk(size_t index, ChunkState state);
    Result<File*> reader(size_t chunk) const;
    Result<Bytes> read_written(uint64_t seqno, bool* is_signature) const;
    std::string path_of(const std::string& name) const;
    uint64_t now_ms() const;

    FileSystem& fs_;
    ChunkStoreOptions opts_;
    bool read_only_;
    bool failed_ = false;
    std::string failed_message_;
    // A ledger file was created since the directory was last synced.
    bool dir_dirty_ = false;

    uint64_t first_seqno_ = 1;
    uint64_t durable_seqno_ = 0;
    uint64_t committed_seqno_ = 0;
    std::vector<Chunk> chunks_;
    std::vector<EntryLoc> entries_;    // written entries, index = seqno - first_seqno_
    std::unique_ptr<File> open_file_;  // the `.open` chunk, if it is the last of chunks_
    mutable std::vector<std::unique_ptr<File>> readers_;  // per chunk, opened lazily

    std::vector<Pending> pending_;
    Bytes pending_bytes_;
    uint64_t first_pending_ms_ = 0;
    // Bytes the newest chunk will hold once the buffered frames are written; 0 when the next
    // frame starts a new chunk.
    uint64_t open_chunk_bytes_ = 0;
};

}  // namespace coffer::ledger

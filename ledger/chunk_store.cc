#include "ledger/chunk_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstring>

#include "crypto/sha256.h"

namespace coffer::ledger {

namespace {

// ---- Byte layout (docs/formats/ledger-chunk.md) ----

constexpr std::array<uint8_t, 8> kChunkMagic = {'C', 'O', 'F', 'L', 'E', 'D', 'G', 'R'};
constexpr uint8_t kFlagSignature = 0x01;
constexpr size_t kFrameHeaderCovered = 16;  // bytes of the frame header its checksum covers
constexpr size_t kChunkHeaderCovered = 24;  // bytes of the chunk header its checksum covers

static_assert(kChunkMagic.size() + 2 + 2 + 4 + 8 + 8 == kChunkHeaderSize);
static_assert(kChunkHeaderCovered + 8 == kChunkHeaderSize);
static_assert(8 + 4 + 1 + 3 + 8 == kFrameHeaderSize);
static_assert(kFrameHeaderCovered + 8 == kFrameHeaderSize);
static_assert(kFrameTrailerSize == 8);
static_assert(kMaxEntrySize <= UINT32_MAX, "entry_size is a u32 field");

constexpr const char* kIgnoredDir = "ignored";
constexpr std::string_view kChunkNamePrefix = "ledger_";

uint64_t load_u64(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

uint32_t load_u32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
           (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

// First 8 bytes of SHA-256(a || b), read little-endian. One hasher per thread: creating an
// EVP context per frame costs more than hashing a small entry.
uint64_t checksum64(ByteSpan a, ByteSpan b = {}) {
    thread_local crypto::Sha256Hasher hasher;
    hasher.update(a);
    if (!b.empty()) {
        hasher.update(b);
    }
    crypto::Sha256Digest digest = hasher.finish();
    return load_u64(digest.data());
}

Bytes encode_chunk_header(uint64_t first_seqno) {
    Bytes out(kChunkMagic.begin(), kChunkMagic.end());
    put_u16(out, kChunkFormatVersion);
    put_u16(out, static_cast<uint16_t>(kChunkHeaderSize));
    put_u32(out, 0);
    put_u64(out, first_seqno);
    put_u64(out, checksum64(out));
    COFFER_CHECK(out.size() == kChunkHeaderSize, "chunk header size");
    return out;
}

void encode_frame(Bytes& out, uint64_t seqno, ByteSpan entry, bool is_signature) {
    Bytes covered;
    covered.reserve(kFrameHeaderCovered);
    put_u64(covered, seqno);
    put_u32(covered, static_cast<uint32_t>(entry.size()));
    covered.push_back(is_signature ? kFlagSignature : 0);
    covered.insert(covered.end(), 3, 0);
    COFFER_CHECK(covered.size() == kFrameHeaderCovered, "frame header size");

    size_t start = out.size();
    put_bytes(out, covered);
    put_u64(out, checksum64(covered));
    put_bytes(out, entry);
    put_u64(out, checksum64(covered, entry));
    COFFER_CHECK(out.size() - start == kFrameOverhead + entry.size(), "frame size");
}

struct FrameHeader {
    uint64_t seqno = 0;
    uint32_t entry_size = 0;
    uint8_t flags = 0;
    bool reserved_zero = false;
    bool checksum_ok = false;
};

FrameHeader decode_frame_header(const uint8_t* p) {
    FrameHeader h;
    h.seqno = load_u64(p);
    h.entry_size = load_u32(p + 8);
    h.flags = p[12];
    h.reserved_zero = p[13] == 0 && p[14] == 0 && p[15] == 0;
    h.checksum_ok =
        load_u64(p + kFrameHeaderCovered) == checksum64(ByteSpan(p, kFrameHeaderCovered));
    return h;
}

bool entry_checksum_ok(const uint8_t* frame, uint32_t entry_size) {
    ByteSpan covered(frame, kFrameHeaderCovered);
    ByteSpan entry(frame + kFrameHeaderSize, entry_size);
    return load_u64(frame + kFrameHeaderSize + entry_size) == checksum64(covered, entry);
}

// memcmp of the span against itself shifted by one byte: every byte equals the next, and the
// first is zero. memcmp is vectorised; a byte loop made scanning a large zero region slow.
bool all_zero(ByteSpan data) {
    return data.empty() ||
           (data[0] == 0 && std::memcmp(data.data(), data.data() + 1, data.size() - 1) == 0);
}

// ---- File names ----

enum class NameKind { kOpen, kClosed, kCommitted };

struct ChunkName {
    uint64_t first = 0;
    uint64_t last = 0;  // only for closed and committed chunks
    NameKind kind = NameKind::kOpen;
};

std::string format_name(const ChunkName& n) {
    std::string base = std::string(kChunkNamePrefix) + std::to_string(n.first);
    switch (n.kind) {
        case NameKind::kOpen:
            return base + ".open";
        case NameKind::kClosed:
            return base + "-" + std::to_string(n.last) + ".chunk";
        case NameKind::kCommitted:
            return base + "-" + std::to_string(n.last) + ".committed";
    }
    return base;
}

bool parse_number(std::string_view& s, uint64_t& out) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec != std::errc() || ptr == s.data()) {
        return false;
    }
    s.remove_prefix(static_cast<size_t>(ptr - s.data()));
    return true;
}

// Parses a canonical chunk name; anything else (other files, `ignored/`) is not ours.
std::optional<ChunkName> parse_name(std::string_view name) {
    std::string_view s = name;
    ChunkName n;
    if (!s.starts_with(kChunkNamePrefix) ||
        (s.remove_prefix(kChunkNamePrefix.size()), !parse_number(s, n.first))) {
        return std::nullopt;
    }
    if (s == ".open") {
        n.kind = NameKind::kOpen;
    } else if (s.starts_with("-") && (s.remove_prefix(1), parse_number(s, n.last)) &&
               (s == ".chunk" || s == ".committed")) {
        n.kind = s == ".chunk" ? NameKind::kClosed : NameKind::kCommitted;
    } else {
        return std::nullopt;
    }
    if (n.first == 0 || (n.kind != NameKind::kOpen && n.last < n.first) || format_name(n) != name) {
        return std::nullopt;
    }
    return n;
}

Status corrupt_error(const std::string& path, uint64_t seqno, uint64_t offset,
                     const std::string& what) {
    return error(Errc::kCorrupt, "ledger chunk corrupt: file=" + path +
                                     " seqno=" + std::to_string(seqno) +
                                     " offset=" + std::to_string(offset) + ": " + what);
}

// ---- Scanning one chunk file ----

// Validation reads a chunk through a buffer of at most one frame (kMaxEntrySize plus the
// frame overhead) and checks an all-zero tail in blocks of this size, so that open's memory
// use is bounded by the largest entry, never by the file (a sparse file can be huge).
constexpr size_t kScanBlockBytes = 1u << 20;

struct ScannedFrame {
    uint64_t offset = 0;
    uint32_t entry_size = 0;
    bool is_signature = false;
};

struct ScanResult {
    uint64_t file_size = 0;
    uint64_t end_offset = 0;  // where the valid data ends
    uint64_t next_seqno = 0;  // the seqno after the last valid frame
    bool torn = false;        // the bytes after end_offset are a torn tail
    Status status;            // kCorrupt or kUnsupported when the file is damaged
    std::vector<ScannedFrame> frames;
};

Status check_chunk_header(ByteSpan data, const std::string& path, uint64_t first) {
    const uint8_t* p = data.data();
    if (load_u64(p + kChunkHeaderCovered) != checksum64(data.first(kChunkHeaderCovered)) ||
        !std::equal(kChunkMagic.begin(), kChunkMagic.end(), p)) {
        return corrupt_error(path, first, 0, "bad chunk header (magic or checksum)");
    }
    uint16_t version = static_cast<uint16_t>(p[8] | (p[9] << 8));
    if (version != kChunkFormatVersion) {
        return error(Errc::kUnsupported, "ledger chunk " + path + " has format version " +
                                             std::to_string(version) + "; this build reads " +
                                             std::to_string(kChunkFormatVersion));
    }
    uint16_t header_size = static_cast<uint16_t>(p[10] | (p[11] << 8));
    if (header_size != kChunkHeaderSize || load_u32(p + 12) != 0) {
        return corrupt_error(path, first, 0, "bad chunk header size or reserved field");
    }
    if (load_u64(p + 16) != first) {
        return corrupt_error(path, first, 0,
                             "chunk header says first seqno " + std::to_string(load_u64(p + 16)) +
                                 " but the file name says " + std::to_string(first));
    }
    return Status::ok_status();
}

// Reads exactly out.size() bytes at `offset` (the caller checked the file is long enough).
Status read_exact(File& file, uint64_t offset, std::span<uint8_t> out) {
    COFFER_ASSIGN_OR_RETURN(size_t n, file.read_at(offset, out));
    if (n != out.size()) {
        return error(Errc::kIo, "ledger chunk " + file.path() + " shrank while it was read");
    }
    return Status::ok_status();
}

// Whether every byte of [offset, end) is zero, read in kScanBlockBytes blocks.
Result<bool> zero_from(File& file, uint64_t offset, uint64_t end) {
    Bytes block(static_cast<size_t>(std::min<uint64_t>(kScanBlockBytes, end - offset)));
    while (offset < end) {
        std::span<uint8_t> part(
            block.data(), static_cast<size_t>(std::min<uint64_t>(block.size(), end - offset)));
        COFFER_RETURN_IF_ERROR(read_exact(file, offset, part));
        if (!all_zero(part)) {
            return false;
        }
        offset += part.size();
    }
    return true;
}

// How a scan treats bytes after the last complete frame: only the newest `.open` chunk may
// end torn (docs/formats/ledger-chunk.md); anywhere else they are damage.
Status tail_damage(const std::string& path, const ScanResult& r, uint64_t off,
                   const std::string& what) {
    return corrupt_error(path, r.next_seqno, off,
                         what + " in a closed chunk (last good seqno " +
                             std::to_string(r.next_seqno - 1) +
                             "); only the newest .open chunk may end torn");
}

// Validates the frame at `off`; on success appends it to r.frames and returns true. Returns
// false when the scan must stop there (r.torn or r.status says why).
Result<bool> scan_frame(File& file, const std::string& path, uint64_t off, bool may_tear,
                        Bytes& buffer, ScanResult& r) {
    uint64_t seqno = r.next_seqno;
    uint64_t remaining = r.file_size - off;
    std::string last_good = " (last good seqno " + std::to_string(seqno - 1) + ")";
    if (remaining < kFrameHeaderSize) {
        r.torn = may_tear;
        if (!may_tear) {
            r.status = tail_damage(path, r, off, "a partial frame header");
        }
        return false;
    }
    std::array<uint8_t, kFrameHeaderSize> header{};
    COFFER_RETURN_IF_ERROR(read_exact(file, off, header));
    if (all_zero(header) && may_tear) {
        COFFER_ASSIGN_OR_RETURN(bool zeros, zero_from(file, off, r.file_size));
        if (zeros) {
            r.torn = true;
            return false;
        }
    }
    FrameHeader h = decode_frame_header(header.data());
    if (!h.checksum_ok) {
        r.status =
            all_zero(header) && !may_tear
                ? tail_damage(path, r, off, "zero-filled bytes")
                : corrupt_error(path, seqno, off, "frame header checksum mismatch" + last_good);
        return false;
    }
    if (!h.reserved_zero || (h.flags & ~kFlagSignature) != 0 || h.entry_size > kMaxEntrySize ||
        h.seqno != seqno) {
        r.status =
            corrupt_error(path, seqno, off,
                          "frame header invalid (frame says seqno " + std::to_string(h.seqno) +
                              ", size " + std::to_string(h.entry_size) + ")" + last_good);
        return false;
    }
    if (remaining < kFrameOverhead + h.entry_size) {
        r.torn = may_tear;
        if (!may_tear) {
            r.status = tail_damage(path, r, off, "a frame cut short");
        }
        return false;
    }
    buffer.resize(kFrameOverhead + h.entry_size);
    std::copy(header.begin(), header.end(), buffer.begin());
    COFFER_RETURN_IF_ERROR(read_exact(file, off + kFrameHeaderSize,
                                      std::span<uint8_t>(buffer).subspan(kFrameHeaderSize)));
    if (!entry_checksum_ok(buffer.data(), h.entry_size)) {
        r.status = corrupt_error(path, seqno, off, "entry checksum mismatch" + last_good);
        return false;
    }
    r.frames.push_back({off, h.entry_size, (h.flags & kFlagSignature) != 0});
    ++r.next_seqno;
    return true;
}

// Validates a chunk file frame by frame, streaming (at most one frame in memory); stops at
// the first torn or damaged byte. `may_tear`: the file is the newest `.open` chunk, whose tail
// may have been torn by a crash. I/O errors are returned; damage is reported in r.status.
Result<ScanResult> scan_chunk(File& file, const std::string& path, uint64_t first, bool may_tear) {
    ScanResult r;
    r.next_seqno = first;
    COFFER_ASSIGN_OR_RETURN(r.file_size, file.size());
    if (r.file_size > kMaxChunkFileBytes) {
        r.status = corrupt_error(
            path, first, 0,
            "file is " + std::to_string(r.file_size) + " bytes, over kMaxChunkFileBytes (" +
                std::to_string(kMaxChunkFileBytes) + "); refused before reading it");
        return r;
    }
    if (r.file_size < kChunkHeaderSize) {
        r.torn = may_tear;
        if (!may_tear) {
            r.status = tail_damage(path, r, 0, "a partial chunk header");
        }
        return r;
    }
    std::array<uint8_t, kChunkHeaderSize> header{};
    COFFER_RETURN_IF_ERROR(read_exact(file, 0, header));
    if (all_zero(header) && may_tear) {
        COFFER_ASSIGN_OR_RETURN(bool zeros, zero_from(file, 0, r.file_size));
        if (zeros) {
            r.torn = true;
            return r;
        }
    }
    r.status = check_chunk_header(header, path, first);
    uint64_t off = kChunkHeaderSize;
    Bytes buffer;
    while (r.status.ok() && off < r.file_size) {
        COFFER_ASSIGN_OR_RETURN(bool more, scan_frame(file, path, off, may_tear, buffer, r));
        if (!more) {
            break;
        }
        off += kFrameOverhead + r.frames.back().entry_size;
    }
    r.end_offset = off;
    return r;
}

// ---- Setting stale files aside (LED-5) ----

Status move_aside(FileSystem& fs, const std::string& dir, const std::string& name,
                  std::string_view reason, OpenReport* report) {
    std::string ignored = join_path(dir, kIgnoredDir);
    COFFER_RETURN_IF_ERROR(fs.make_dir(ignored));
    std::string target = join_path(ignored, name);
    for (int copy = 1;; ++copy) {
        COFFER_ASSIGN_OR_RETURN(bool exists, fs.file_exists(target));
        if (!exists) {
            break;
        }
        if (copy > kMaxSetAsideCopies) {
            return error(Errc::kResourceExhausted, "ledger: " + ignored + " already holds " +
                                                       std::to_string(kMaxSetAsideCopies) +
                                                       " copies of " + name);
        }
        target = join_path(ignored, name + "." + std::to_string(copy));
    }
    COFFER_RETURN_IF_ERROR(fs.rename(join_path(dir, name), target));
    spdlog::warn("ledger.file_set_aside file={} moved_to={} reason={}", join_path(dir, name),
                 target, reason);
    if (report != nullptr) {
        report->set_aside.push_back(target);
    }
    return Status::ok_status();
}

struct NamedChunk {
    ChunkName parsed;
    std::string name;
};

// The ledger files of a directory: canonical chunk names, sorted by first seqno, and every
// other name that starts with "ledger_" (a stray or misspelt file that open and verify must
// not silently skip: it may hold entries). `ignored/`, `coffer.view` and other names are not
// ledger files.
struct DirListing {
    std::vector<NamedChunk> chunks;
    std::vector<std::string> unrecognised;
};

Result<DirListing> list_chunks(FileSystem& fs, const std::string& dir) {
    COFFER_ASSIGN_OR_RETURN(std::vector<std::string> names, fs.list_dir(dir));
    DirListing out;
    for (const std::string& name : names) {
        if (std::optional<ChunkName> parsed = parse_name(name)) {
            out.chunks.push_back({*parsed, name});
        } else if (name.starts_with(kChunkNamePrefix)) {
            out.unrecognised.push_back(name);
        }
    }
    std::sort(out.chunks.begin(), out.chunks.end(), [](const NamedChunk& a, const NamedChunk& b) {
        return a.parsed.first < b.parsed.first;
    });
    return out;
}

Status unrecognised_error(const std::string& path) {
    return error(Errc::kCorrupt,
                 "ledger chunk corrupt: file=" + path +
                     " seqno=0 offset=0: unrecognised ledger file name (expected "
                     "ledger_<first>.open, ledger_<first>-<last>.chunk or "
                     "ledger_<first>-<last>.committed, decimal without leading zeros); move it "
                     "out of the ledger directory");
}

// Moves aside what open_from_snapshot() documents; returns whether any chunk file remains.
Result<bool> set_aside_for_snapshot(FileSystem& fs, const std::string& dir, uint64_t snapshot_seqno,
                                    OpenReport* report) {
    COFFER_ASSIGN_OR_RETURN(DirListing listing, list_chunks(fs, dir));
    const std::vector<NamedChunk>& chunks = listing.chunks;
    bool moved = false;
    for (const std::string& name : listing.unrecognised) {
        COFFER_RETURN_IF_ERROR(move_aside(fs, dir, name, "unrecognised_name", report));
        moved = true;
    }
    std::vector<const NamedChunk*> run;
    for (const NamedChunk& c : chunks) {
        bool contiguous = run.empty() || c.parsed.first == run.back()->parsed.last + 1;
        if (c.parsed.kind == NameKind::kCommitted && contiguous) {
            run.push_back(&c);
        }
    }
    bool keep_run = !run.empty() && run.back()->parsed.last >= snapshot_seqno &&
                    run.front()->parsed.first <= snapshot_seqno + 1 &&
                    run.front()->parsed.first == chunks.front().parsed.first;
    for (const NamedChunk& c : chunks) {
        bool kept = keep_run && std::find(run.begin(), run.end(), &c) != run.end();
        if (kept) {
            continue;
        }
        std::string_view reason = c.parsed.kind == NameKind::kCommitted
                                      ? "committed_but_superseded_by_snapshot"
                                      : "uncommitted_before_snapshot_install";
        COFFER_RETURN_IF_ERROR(move_aside(fs, dir, c.name, reason, report));
        moved = true;
    }
    if (moved) {
        COFFER_RETURN_IF_ERROR(fs.sync_dir(join_path(dir, kIgnoredDir)));
        COFFER_RETURN_IF_ERROR(fs.sync_dir(dir));
    }
    return keep_run;
}

Status create_empty_chunk(FileSystem& fs, const std::string& dir, uint64_t first) {
    std::string path = join_path(dir, format_name({first, 0, NameKind::kOpen}));
    COFFER_ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs.create_new(path));
    COFFER_ASSIGN_OR_RETURN(size_t n, file->append(encode_chunk_header(first)));
    COFFER_CHECK(n == kChunkHeaderSize, "short append reported as success");
    COFFER_RETURN_IF_ERROR(file->sync());
    return fs.sync_dir(dir);
}

Status validate_options(const ChunkStoreOptions& opts) {
    if (opts.dir.empty()) {
        return error(Errc::kInvalidArgument, "ledger: no directory given");
    }
    if (opts.chunk_size_bytes == 0 || opts.chunk_size_bytes > kMaxChunkSizeBytes) {
        return error(Errc::kInvalidArgument, "ledger: chunk_size_bytes must be in 1.." +
                                                 std::to_string(kMaxChunkSizeBytes));
    }
    if (opts.max_batch_entries == 0 || opts.max_batch_entries > kMaxBatchEntries) {
        return error(Errc::kInvalidArgument,
                     "ledger: max_batch_entries must be in 1.." + std::to_string(kMaxBatchEntries));
    }
    return Status::ok_status();
}

}  // namespace

// ---- Opening ----

ChunkStore::ChunkStore(FileSystem& fs, ChunkStoreOptions opts, bool read_only)
    : fs_(fs), opts_(std::move(opts)), read_only_(read_only) {}

ChunkStore::~ChunkStore() = default;

Result<std::unique_ptr<ChunkStore>> ChunkStore::open(FileSystem& fs, ChunkStoreOptions opts,
                                                     OpenReport* report) {
    COFFER_RETURN_IF_ERROR(validate_options(opts));
    COFFER_ASSIGN_OR_RETURN(bool exists, fs.file_exists(opts.dir));
    if (!exists) {
        COFFER_RETURN_IF_ERROR(fs.make_dir(opts.dir));
        COFFER_RETURN_IF_ERROR(fs.sync_dir(parent_path(opts.dir)));
    }
    std::unique_ptr<ChunkStore> store(new ChunkStore(fs, std::move(opts), false));
    COFFER_RETURN_IF_ERROR(store->load(report));
    return store;
}

Result<std::unique_ptr<ChunkStore>> ChunkStore::open_read_only(FileSystem& fs, std::string dir,
                                                               OpenReport* report) {
    ChunkStoreOptions opts;
    opts.dir = std::move(dir);
    COFFER_RETURN_IF_ERROR(validate_options(opts));
    COFFER_ASSIGN_OR_RETURN(bool exists, fs.file_exists(opts.dir));
    if (!exists) {
        return error(Errc::kNotFound, "ledger directory " + opts.dir + " does not exist");
    }
    std::unique_ptr<ChunkStore> store(new ChunkStore(fs, std::move(opts), true));
    COFFER_RETURN_IF_ERROR(store->load(report));
    return store;
}

Result<std::unique_ptr<ChunkStore>> ChunkStore::open_from_snapshot(FileSystem& fs,
                                                                   ChunkStoreOptions opts,
                                                                   uint64_t snapshot_seqno,
                                                                   OpenReport* report) {
    COFFER_RETURN_IF_ERROR(validate_options(opts));
    COFFER_RETURN_IF_ERROR(fs.make_dir(opts.dir));
    COFFER_RETURN_IF_ERROR(fs.sync_dir(parent_path(opts.dir)));
    COFFER_ASSIGN_OR_RETURN(bool kept,
                            set_aside_for_snapshot(fs, opts.dir, snapshot_seqno, report));
    if (!kept) {
        COFFER_RETURN_IF_ERROR(create_empty_chunk(fs, opts.dir, snapshot_seqno + 1));
    }
    return open(fs, std::move(opts), report);
}

Status ChunkStore::load(OpenReport* report) {
    COFFER_ASSIGN_OR_RETURN(DirListing listing, list_chunks(fs_, opts_.dir));
    if (!listing.unrecognised.empty()) {
        std::string path = path_of(listing.unrecognised.front());
        if (report != nullptr) {
            report->corrupt_file = path;
        }
        return unrecognised_error(path);
    }
    const std::vector<NamedChunk>& named = listing.chunks;
    for (size_t i = 0; i < named.size(); ++i) {
        const ChunkName& n = named[i].parsed;
        bool open_not_last = n.kind == NameKind::kOpen && i + 1 != named.size();
        if (open_not_last || (i > 0 && n.first == named[i - 1].parsed.first)) {
            if (report != nullptr) {
                report->corrupt_file = path_of(named[i].name);
            }
            return corrupt_error(path_of(named[i].name), n.first, 0,
                                 open_not_last ? "an open chunk that is not the newest"
                                               : "two chunk files start at the same seqno");
        }
        ChunkState state = n.kind == NameKind::kOpen     ? ChunkState::kOpen
                           : n.kind == NameKind::kClosed ? ChunkState::kClosed
                                                         : ChunkState::kCommitted;
        chunks_.push_back(
            {n.first, n.kind == NameKind::kOpen ? 0 : n.last, state, 0, named[i].name});
        readers_.emplace_back();
    }
    first_seqno_ = chunks_.empty() ? 1 : chunks_.front().first;
    committed_seqno_ = first_seqno_ - 1;
    for (size_t i = 0; i < chunks_.size(); ++i) {
        uint64_t expected = i == 0 ? first_seqno_ : chunks_[i - 1].last + 1;
        Status st = load_chunk(i, expected, report);
        if (!st.ok()) {
            if (report != nullptr && st.code() == Errc::kCorrupt) {
                report->corrupt_file = path_of(chunks_[i].name);
                report->corrupt_file_committed = chunks_[i].state == ChunkState::kCommitted;
            }
            return st;
        }
        if (chunks_[i].state == ChunkState::kCommitted) {
            committed_seqno_ = std::max(committed_seqno_, chunks_[i].last);
        }
    }
    durable_seqno_ = first_seqno_ + entries_.size() - 1;
    if (!read_only_) {
        COFFER_RETURN_IF_ERROR(open_newest_for_append());
    }
    recompute_open_bytes();
    if (report != nullptr) {
        report->entries = entries_.size();
        report->chunks = chunks_.size();
    }
    spdlog::info(
        "ledger.opened dir={} chunks={} first_seqno={} last_seqno={} "
        "committed_seqno={} read_only={}",
        opts_.dir, chunks_.size(), first_seqno_, durable_seqno_, committed_seqno_, read_only_);
    return Status::ok_status();
}

Status ChunkStore::open_newest_for_append() {
    // A process killed after write() but before fsync leaves bytes that the next process can
    // read but a power loss could still take: sync them before counting them durable.
    if (!chunks_.empty() && chunks_.back().state == ChunkState::kOpen) {
        COFFER_ASSIGN_OR_RETURN(open_file_, fs_.open_for_append(path_of(chunks_.back().name)));
        COFFER_RETURN_IF_ERROR(open_file_->sync());
    }
    return fs_.sync_dir(opts_.dir);
}

Status ChunkStore::load_chunk(size_t index, uint64_t expected_first, OpenReport* report) {
    Chunk& chunk = chunks_[index];
    std::string path = path_of(chunk.name);
    if (chunk.first != expected_first) {
        return corrupt_error(path, expected_first, 0,
                             "missing chunk: no file holds seqnos " +
                                 std::to_string(expected_first) + ".." +
                                 std::to_string(chunk.first - 1));
    }
    // load() refused an `.open` chunk that is not the newest, so this is the newest one.
    bool may_tear = chunk.state == ChunkState::kOpen;
    COFFER_CHECK(!may_tear || index + 1 == chunks_.size(), "an open chunk that is not the newest");
    COFFER_ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs_.open_read(path));
    COFFER_ASSIGN_OR_RETURN(ScanResult scan, scan_chunk(*file, path, chunk.first, may_tear));
    COFFER_RETURN_IF_ERROR(scan.status);
    for (const ScannedFrame& f : scan.frames) {
        entries_.push_back({f.offset, f.entry_size, static_cast<uint32_t>(index), f.is_signature});
    }
    uint64_t name_last = chunk.last;
    chunk.last = scan.next_seqno - 1;
    chunk.size_bytes =
        scan.torn ? std::max<uint64_t>(scan.end_offset, kChunkHeaderSize) : scan.end_offset;
    if (scan.torn) {
        return repair_torn(index, scan.end_offset, scan.file_size, report);
    }
    if (chunk.state == ChunkState::kOpen) {
        return Status::ok_status();
    }
    return check_closed_chunk(index, name_last);
}

// A closed or committed chunk was fsynced before it took its name (close_open_chunk), and
// truncate renames a chunk to `.open` before cutting it: no crash leaves a closed name over
// fewer frames. So its frames must cover exactly the range its name says, and end on a
// signature entry; anything else is damage, even in the newest chunk.
Status ChunkStore::check_closed_chunk(size_t index, uint64_t name_last) const {
    const Chunk& chunk = chunks_[index];
    std::string path = path_of(chunk.name);
    bool ends_on_signature = chunk.last >= chunk.first && entries_.back().is_signature;
    if (chunk.last < name_last) {
        return corrupt_error(path, chunk.last + 1, chunk.size_bytes,
                             "closed chunk ends after seqno " + std::to_string(chunk.last) +
                                 " but its name says .." + std::to_string(name_last) + ": seqnos " +
                                 std::to_string(chunk.last + 1) + ".." + std::to_string(name_last) +
                                 " are missing");
    }
    if (chunk.last > name_last || !ends_on_signature) {
        return corrupt_error(path, chunk.last, chunk.size_bytes,
                             "closed chunk holds seqnos " + std::to_string(chunk.first) + ".." +
                                 std::to_string(chunk.last) + " but its name says .." +
                                 std::to_string(name_last) +
                                 (ends_on_signature ? "" : " or it does not end on a signature"));
    }
    return Status::ok_status();
}

Status ChunkStore::repair_torn(size_t index, uint64_t cut_offset, uint64_t file_size,
                               OpenReport* report) {
    std::string path = path_of(chunks_[index].name);
    if (report != nullptr) {
        report->torn_file = path;
        report->torn_offset = cut_offset;
        report->torn_bytes_cut = file_size - cut_offset;
    }
    if (read_only_) {
        spdlog::warn(
            "ledger.torn_tail_found file={} offset={} bytes={} last_seqno={} "
            "repaired=false (read-only)",
            path, cut_offset, file_size - cut_offset, chunks_[index].last);
        return Status::ok_status();
    }
    spdlog::warn("ledger.torn_tail_repaired file={} offset={} bytes_cut={} last_seqno={}", path,
                 cut_offset, file_size - cut_offset, chunks_[index].last);
    COFFER_ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs_.open_for_append(path));
    COFFER_RETURN_IF_ERROR(file->truncate(cut_offset));
    if (cut_offset < kChunkHeaderSize) {
        // The header itself was torn: the name still says where the chunk starts.
        COFFER_ASSIGN_OR_RETURN(size_t n, file->append(encode_chunk_header(chunks_[index].first)));
        COFFER_CHECK(n == kChunkHeaderSize, "short append reported as success");
    }
    return file->sync();
}

// ---- State checks ----

Status ChunkStore::check_usable() const {
    if (failed_) {
        return error(Errc::kIo, failed_message_);
    }
    return Status::ok_status();
}

Status ChunkStore::check_writable() const {
    COFFER_RETURN_IF_ERROR(check_usable());
    if (read_only_) {
        return error(Errc::kFailedPrecondition, "ledger " + opts_.dir + " is open read-only");
    }
    return Status::ok_status();
}

Status ChunkStore::fail(const Status& cause, std::string_view what) {
    failed_ = true;
    failed_message_ = "ledger storage failed: " + std::string(what) + "; the node must stop (" +
                      cause.to_string() + ")";
    spdlog::error("ledger.storage_failed dir={} durable_seqno={} cause=\"{}\"", opts_.dir,
                  durable_seqno_, cause.to_string());
    return error(Errc::kIo, failed_message_);
}

// ---- Appending ----

Status ChunkStore::append(uint64_t seqno, ByteSpan entry, bool is_signature) {
    COFFER_RETURN_IF_ERROR(check_writable());
    if (seqno != last_seqno() + 1) {
        return error(Errc::kFailedPrecondition, "ledger append: seqno " + std::to_string(seqno) +
                                                    " does not follow last seqno " +
                                                    std::to_string(last_seqno()));
    }
    if (entry.size() > kMaxEntrySize) {
        return error(Errc::kInvalidArgument, "ledger append: entry of " +
                                                 std::to_string(entry.size()) +
                                                 " bytes is over kMaxEntrySize");
    }
    if (pending_.size() >= kMaxBatchEntries ||
        pending_bytes_.size() + kFrameOverhead + entry.size() > kMaxPendingBytes) {
        return error(Errc::kResourceExhausted,
                     "ledger append: too many unflushed entries or bytes; flush first");
    }
    if (pending_.empty()) {
        first_pending_ms_ = now_ms();
    }
    Pending p{seqno, pending_bytes_.size(), kFrameOverhead + entry.size(), is_signature, false};
    encode_frame(pending_bytes_, seqno, entry, is_signature);
    p.closes_chunk = account_frame(p.size, is_signature);
    pending_.push_back(p);
    return Status::ok_status();
}

bool ChunkStore::account_frame(uint64_t frame_size, bool is_signature) {
    if (open_chunk_bytes_ == 0) {
        open_chunk_bytes_ = kChunkHeaderSize;
    }
    open_chunk_bytes_ += frame_size;
    if (is_signature && open_chunk_bytes_ >= opts_.chunk_size_bytes) {
        open_chunk_bytes_ = 0;
        return true;
    }
    return false;
}

void ChunkStore::recompute_open_bytes() {
    bool has_open = !chunks_.empty() && chunks_.back().state == ChunkState::kOpen;
    open_chunk_bytes_ = has_open ? chunks_.back().size_bytes : 0;
    for (Pending& p : pending_) {
        p.closes_chunk = account_frame(p.size, p.is_signature);
    }
}

Result<uint64_t> ChunkStore::flush() {
    COFFER_RETURN_IF_ERROR(check_writable());
    if (pending_.empty()) {
        return durable_seqno_;
    }
    Status st = write_pending();
    if (st.ok()) {
        pending_.clear();
        pending_bytes_.clear();
        return durable_seqno_;
    }
    if (failed_) {
        return st;
    }
    if (st.code() == Errc::kNoSpace) {
        return handle_no_space(st);
    }
    return fail(st, "write error");
}

Status ChunkStore::write_pending() {
    size_t begin = 0;
    while (begin < pending_.size()) {
        size_t end = begin;
        while (end < pending_.size() && !pending_[end].closes_chunk) {
            ++end;
        }
        bool closes = end < pending_.size();
        end = closes ? end + 1 : end;
        COFFER_RETURN_IF_ERROR(write_segment(begin, end));
        if (closes) {
            COFFER_RETURN_IF_ERROR(close_open_chunk());
        }
        begin = end;
    }
    if (open_file_ != nullptr && chunks_.back().last > durable_seqno_) {
        Status st = open_file_->sync();
        if (!st.ok()) {
            return fail(st);
        }
    }
    if (dir_dirty_) {
        Status st = fs_.sync_dir(opts_.dir);
        if (!st.ok()) {
            return fail(st);
        }
        dir_dirty_ = false;
    }
    durable_seqno_ = pending_.back().seqno;
    COFFER_CHECK(durable_seqno_ == first_seqno_ + entries_.size() - 1, "ledger index out of step");
    return Status::ok_status();
}

// Writes pending_[begin, end), which all go to one chunk, with one append call.
Status ChunkStore::write_segment(size_t begin, size_t end) {
    COFFER_CHECK(begin < end, "empty segment");
    const Pending& first = pending_[begin];
    const Pending& last = pending_[end - 1];
    COFFER_RETURN_IF_ERROR(ensure_open_chunk(first.seqno));
    Chunk& chunk = chunks_.back();
    COFFER_CHECK(chunk.last + 1 == first.seqno, "segment does not follow its chunk");

    ByteSpan bytes(pending_bytes_.data() + first.offset, last.offset + last.size - first.offset);
    Result<size_t> written = open_file_->append(bytes);
    if (!written.ok()) {
        // Cut any partial frame so the file ends on a frame boundary again.
        Status cut = open_file_->truncate(chunk.size_bytes);
        return cut.ok() ? written.status() : fail(cut);
    }
    COFFER_CHECK(*written == bytes.size(), "short append reported as success");

    uint64_t offset = chunk.size_bytes;
    for (size_t i = begin; i < end; ++i) {
        const Pending& p = pending_[i];
        uint32_t entry_size = static_cast<uint32_t>(p.size - kFrameOverhead);
        entries_.push_back(
            {offset, entry_size, static_cast<uint32_t>(chunks_.size() - 1), p.is_signature});
        offset += p.size;
    }
    chunk.size_bytes = offset;
    chunk.last = last.seqno;
    return Status::ok_status();
}

Status ChunkStore::ensure_open_chunk(uint64_t first_seqno) {
    if (open_file_ != nullptr) {
        return Status::ok_status();
    }
    COFFER_CHECK(chunks_.empty() || chunks_.back().state != ChunkState::kOpen,
                 "an open chunk without its file handle");
    ChunkName n{first_seqno, 0, NameKind::kOpen};
    std::string path = path_of(format_name(n));
    COFFER_ASSIGN_OR_RETURN(std::unique_ptr<File> file, fs_.create_new(path));
    dir_dirty_ = true;
    Result<size_t> written = file->append(encode_chunk_header(first_seqno));
    if (!written.ok()) {
        file.reset();
        Status removed = fs_.remove(path);
        return removed.ok() ? written.status() : fail(removed);
    }
    chunks_.push_back(
        {first_seqno, first_seqno - 1, ChunkState::kOpen, kChunkHeaderSize, format_name(n)});
    readers_.emplace_back();
    open_file_ = std::move(file);
    return Status::ok_status();
}

// The open chunk ended on a signature past chunk_size_bytes: sync it, give it its closed
// name, and sync the directory before its entries count as durable (LED-4).
Status ChunkStore::close_open_chunk() {
    Status st = open_file_->sync();
    if (!st.ok()) {
        return fail(st);
    }
    open_file_.reset();
    st = rename_chunk(chunks_.size() - 1, ChunkState::kClosed);
    if (st.ok()) {
        st = fs_.sync_dir(opts_.dir);
    }
    if (!st.ok()) {
        return fail(st);
    }
    dir_dirty_ = false;
    durable_seqno_ = chunks_.back().last;
    return Status::ok_status();
}

Result<uint64_t> ChunkStore::handle_no_space(const Status& cause) {
    uint64_t dropped_first = durable_seqno_ + 1;
    uint64_t dropped_last = pending_.back().seqno;
    entries_.resize(durable_seqno_ + 1 - first_seqno_);
    if (!chunks_.empty() && chunks_.back().state == ChunkState::kOpen) {
        Chunk& chunk = chunks_.back();
        chunk.last = std::min(chunk.last, durable_seqno_);
    }
    pending_.clear();
    pending_bytes_.clear();
    recompute_open_bytes();
    spdlog::error("ledger.disk_full dir={} durable_seqno={} dropped={}..{}", opts_.dir,
                  durable_seqno_, dropped_first, dropped_last);
    return error(Errc::kNoSpace, "ledger disk full: entries " + std::to_string(dropped_first) +
                                     ".." + std::to_string(dropped_last) +
                                     " were not written and are dropped; durable through " +
                                     std::to_string(durable_seqno_) + " (" + cause.message() + ")");
}

// ---- Truncation and commit ----

Status ChunkStore::truncate(uint64_t last_kept) {
    COFFER_RETURN_IF_ERROR(check_writable());
    if (last_kept < committed_seqno_ || last_kept + 1 < first_seqno_) {
        return error(Errc::kFailedPrecondition,
                     "ledger truncate: cannot keep only up to " + std::to_string(last_kept) +
                         " (committed through " + std::to_string(committed_seqno_) +
                         ", first seqno " + std::to_string(first_seqno_) + ")");
    }
    if (last_kept >= last_seqno()) {
        return Status::ok_status();
    }
    auto keep = std::find_if(pending_.begin(), pending_.end(),
                             [&](const Pending& p) { return p.seqno > last_kept; });
    if (keep != pending_.end()) {
        pending_bytes_.resize(keep->offset);
        pending_.erase(keep, pending_.end());
    }
    if (last_kept + 1 < first_seqno_ + entries_.size()) {
        COFFER_RETURN_IF_ERROR(truncate_written(last_kept));
    }
    recompute_open_bytes();
    return Status::ok_status();
}

// Order matters for a crash in between (see docs/formats/ledger-chunk.md): later files go
// first, then the chunk holding last_kept + 1 takes the open name, then it is cut.
Status ChunkStore::truncate_written(uint64_t last_kept) {
    const EntryLoc& cut = entries_[last_kept + 1 - first_seqno_];
    size_t target = cut.chunk;
    uint64_t cut_offset = cut.offset;
    COFFER_CHECK(chunks_[target].state != ChunkState::kCommitted, "truncating committed chunk");

    Status st = remove_chunks_after(target);
    if (st.ok() && chunks_[target].state != ChunkState::kOpen) {
        st = rename_chunk(target, ChunkState::kOpen);
        if (st.ok()) {
            st = fs_.sync_dir(opts_.dir);
        }
    }
    if (st.ok() && open_file_ == nullptr) {
        Result<std::unique_ptr<File>> file = fs_.open_for_append(path_of(chunks_[target].name));
        st = file.ok() ? Status::ok_status() : file.status();
        if (st.ok()) {
            open_file_ = std::move(file).value();
        }
    }
    if (st.ok()) {
        st = open_file_->truncate(cut_offset);
    }
    if (st.ok()) {
        st = open_file_->sync();
    }
    if (!st.ok()) {
        return fail(st);
    }
    chunks_[target].size_bytes = cut_offset;
    chunks_[target].last = last_kept;
    entries_.resize(last_kept + 1 - first_seqno_);
    durable_seqno_ = std::min(durable_seqno_, last_kept);
    return Status::ok_status();
}

Status ChunkStore::remove_chunks_after(size_t index) {
    if (chunks_.size() <= index + 1) {
        return Status::ok_status();
    }
    while (chunks_.size() > index + 1) {
        if (chunks_.back().state == ChunkState::kOpen) {
            open_file_.reset();
        }
        readers_.pop_back();
        COFFER_RETURN_IF_ERROR(fs_.remove(path_of(chunks_.back().name)));
        chunks_.pop_back();
    }
    return fs_.sync_dir(opts_.dir);
}

Status ChunkStore::set_committed(uint64_t seqno) {
    COFFER_RETURN_IF_ERROR(check_writable());
    if (seqno < committed_seqno_ || seqno > durable_seqno_) {
        return error(Errc::kFailedPrecondition,
                     "ledger set_committed(" + std::to_string(seqno) + "): must be in " +
                         std::to_string(committed_seqno_) + ".." + std::to_string(durable_seqno_) +
                         " (monotonic, and durable here)");
    }
    committed_seqno_ = seqno;
    return mark_committed_chunks();
}

Status ChunkStore::mark_committed_chunks() {
    bool renamed = false;
    for (size_t i = 0; i < chunks_.size(); ++i) {
        if (chunks_[i].state == ChunkState::kClosed && chunks_[i].last <= committed_seqno_) {
            COFFER_RETURN_IF_ERROR(rename_chunk(i, ChunkState::kCommitted));
            renamed = true;
        }
    }
    if (renamed) {
        Status st = fs_.sync_dir(opts_.dir);
        if (!st.ok()) {
            return fail(st);
        }
    }
    return Status::ok_status();
}

Status ChunkStore::rename_chunk(size_t index, ChunkState state) {
    Chunk& chunk = chunks_[index];
    NameKind kind = state == ChunkState::kOpen     ? NameKind::kOpen
                    : state == ChunkState::kClosed ? NameKind::kClosed
                                                   : NameKind::kCommitted;
    ChunkName n{chunk.first, chunk.last, kind};
    std::string name = format_name(n);
    COFFER_RETURN_IF_ERROR(fs_.rename(path_of(chunk.name), path_of(name)));
    chunk.name = name;
    chunk.state = state;
    return Status::ok_status();
}

// ---- Reading ----

uint64_t ChunkStore::first_seqno() const {
    return first_seqno_;
}

uint64_t ChunkStore::last_seqno() const {
    return first_seqno_ + entries_.size() + pending_.size() - 1;
}

uint64_t ChunkStore::durable_seqno() const {
    return durable_seqno_;
}

uint64_t ChunkStore::committed_seqno() const {
    return committed_seqno_;
}

bool ChunkStore::flush_due() const {
    if (pending_.empty()) {
        return false;
    }
    return pending_.size() >= opts_.max_batch_entries ||
           now_ms() - first_pending_ms_ >= opts_.flush_interval_ms;
}

uint64_t ChunkStore::size_bytes() const {
    uint64_t total = 0;
    for (const Chunk& c : chunks_) {
        total += c.size_bytes;
    }
    return total;
}

std::vector<std::string> ChunkStore::chunk_files() const {
    std::vector<std::string> out;
    for (const Chunk& c : chunks_) {
        out.push_back(path_of(c.name));
    }
    return out;
}

std::optional<uint64_t> ChunkStore::last_signature_seqno() const {
    for (auto it = pending_.rbegin(); it != pending_.rend(); ++it) {
        if (it->is_signature) {
            return it->seqno;
        }
    }
    for (size_t i = entries_.size(); i > 0; --i) {
        if (entries_[i - 1].is_signature) {
            return first_seqno_ + i - 1;
        }
    }
    return std::nullopt;
}

Result<ChunkStore::Location> ChunkStore::locate(uint64_t seqno) const {
    COFFER_RETURN_IF_ERROR(check_usable());
    if (seqno < first_seqno_ || seqno >= first_seqno_ + entries_.size()) {
        return error(Errc::kNotFound,
                     "ledger: seqno " + std::to_string(seqno) + " is not written in " + opts_.dir);
    }
    const EntryLoc& loc = entries_[seqno - first_seqno_];
    return Location{path_of(chunks_[loc.chunk].name), loc.offset};
}

Result<File*> ChunkStore::reader(size_t chunk) const {
    if (readers_[chunk] == nullptr) {
        COFFER_ASSIGN_OR_RETURN(readers_[chunk], fs_.open_read(path_of(chunks_[chunk].name)));
    }
    return readers_[chunk].get();
}

Result<Bytes> ChunkStore::read_written(uint64_t seqno, bool* is_signature) const {
    const EntryLoc& loc = entries_[seqno - first_seqno_];
    COFFER_ASSIGN_OR_RETURN(File * file, reader(loc.chunk));
    Bytes frame(kFrameOverhead + loc.size);
    COFFER_ASSIGN_OR_RETURN(size_t n, file->read_at(loc.offset, frame));
    std::string path = path_of(chunks_[loc.chunk].name);
    if (n != frame.size()) {
        return corrupt_error(path, seqno, loc.offset, "file ends inside the frame");
    }
    FrameHeader h = decode_frame_header(frame.data());
    if (!h.checksum_ok || h.seqno != seqno || h.entry_size != loc.size ||
        !entry_checksum_ok(frame.data(), h.entry_size)) {
        return corrupt_error(path, seqno, loc.offset, "frame changed on disk since it was written");
    }
    if (is_signature != nullptr) {
        *is_signature = (h.flags & kFlagSignature) != 0;
    }
    return Bytes(frame.begin() + kFrameHeaderSize, frame.end() - kFrameTrailerSize);
}

Result<Bytes> ChunkStore::read(uint64_t seqno) const {
    COFFER_RETURN_IF_ERROR(check_usable());
    if (seqno < first_seqno_ || seqno > last_seqno()) {
        return error(Errc::kNotFound, "ledger: no entry at seqno " + std::to_string(seqno));
    }
    uint64_t written = entries_.size();
    if (seqno - first_seqno_ < written) {
        return read_written(seqno, nullptr);
    }
    const Pending& p = pending_[seqno - first_seqno_ - written];
    auto begin = pending_bytes_.begin() + static_cast<ptrdiff_t>(p.offset + kFrameHeaderSize);
    return Bytes(begin, begin + static_cast<ptrdiff_t>(p.size - kFrameOverhead));
}

Status ChunkStore::for_each(
    uint64_t from_seqno,
    const std::function<Status(uint64_t seqno, ByteSpan entry, bool is_signature)>& fn) const {
    COFFER_RETURN_IF_ERROR(check_usable());
    if (from_seqno < first_seqno_ || from_seqno > last_seqno() + 1) {
        return error(Errc::kNotFound,
                     "ledger for_each: seqno " + std::to_string(from_seqno) + " out of range");
    }
    for (uint64_t seqno = from_seqno; seqno <= last_seqno(); ++seqno) {
        bool is_signature = false;
        uint64_t index = seqno - first_seqno_;
        Result<Bytes> entry = Bytes();
        if (index < entries_.size()) {
            entry = read_written(seqno, &is_signature);
        } else {
            is_signature = pending_[index - entries_.size()].is_signature;
            entry = read(seqno);
        }
        COFFER_RETURN_IF_ERROR(entry.status());
        COFFER_RETURN_IF_ERROR(fn(seqno, *entry, is_signature));
    }
    return Status::ok_status();
}

std::string ChunkStore::path_of(const std::string& name) const {
    return join_path(opts_.dir, name);
}

uint64_t ChunkStore::now_ms() const {
    if (opts_.now_ms) {
        return opts_.now_ms();
    }
    auto now = std::chrono::steady_clock::now().time_since_epoch();
    return static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
}

}  // namespace coffer::ledger

#include "ledger/chunk_store.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <mutex>

#include "ledger/memory_file_system.h"

namespace coffer::ledger {
namespace {

// ---- Helpers ----

// Records every log line so that tests can count WARNs (LED-1: exactly one, or none).
class CaptureSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    std::vector<std::pair<spdlog::level::level_enum, std::string>> records;

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        records.emplace_back(msg.level, std::string(msg.payload.begin(), msg.payload.end()));
    }
    void flush_() override {}
};

class LogCapture {
  public:
    LogCapture() : sink_(std::make_shared<CaptureSink>()), old_(spdlog::default_logger()) {
        auto logger = std::make_shared<spdlog::logger>("capture", sink_);
        logger->set_level(spdlog::level::trace);
        spdlog::set_default_logger(logger);
    }
    ~LogCapture() { spdlog::set_default_logger(old_); }

    std::vector<std::string> warnings() const {
        std::vector<std::string> out;
        for (const auto& [level, text] : sink_->records) {
            if (level == spdlog::level::warn) {
                out.push_back(text);
            }
        }
        return out;
    }

  private:
    std::shared_ptr<CaptureSink> sink_;
    std::shared_ptr<spdlog::logger> old_;
};

class TempDir {
  public:
    TempDir() {
        std::string tmpl = "/tmp/coffer_ledger_test_" + std::string(6, 'X');
        char* made = ::mkdtemp(tmpl.data());
        EXPECT_NE(made, nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

// Deterministic entry contents that differ per seqno (and per generation, for rewrites).
Bytes entry_for(uint64_t seqno, size_t size, uint8_t generation = 0) {
    Bytes out(size);
    for (size_t i = 0; i < size; ++i) {
        out[i] = static_cast<uint8_t>(seqno * 31 + i * 7 + generation * 101 + 1);
    }
    return out;
}

// Every `sig_every`-th seqno is a signature entry.
bool is_sig(uint64_t seqno, uint64_t sig_every) {
    return seqno % sig_every == 0;
}

ChunkStoreOptions options(const std::string& dir, uint64_t chunk_size_bytes) {
    ChunkStoreOptions opts;
    opts.dir = dir;
    opts.chunk_size_bytes = chunk_size_bytes;
    return opts;
}

std::unique_ptr<ChunkStore> open_ok(FileSystem& fs, const ChunkStoreOptions& opts,
                                    OpenReport* report = nullptr) {
    Result<std::unique_ptr<ChunkStore>> store = ChunkStore::open(fs, opts, report);
    EXPECT_TRUE(store.ok()) << store.status().to_string();
    return store.ok() ? std::move(store).value() : nullptr;
}

void append_range(ChunkStore& store, uint64_t from, uint64_t to, size_t size, uint64_t sig_every,
                  uint8_t generation = 0) {
    for (uint64_t s = from; s <= to; ++s) {
        Status st = store.append(s, entry_for(s, size, generation), is_sig(s, sig_every));
        ASSERT_TRUE(st.ok()) << st.to_string();
    }
}

void expect_entries(const ChunkStore& store, uint64_t from, uint64_t to, size_t size,
                    uint8_t generation = 0) {
    for (uint64_t s = from; s <= to; ++s) {
        Result<Bytes> e = store.read(s);
        ASSERT_TRUE(e.ok()) << "seqno " << s << ": " << e.status().to_string();
        EXPECT_EQ(*e, entry_for(s, size, generation)) << "seqno " << s;
    }
}

std::vector<std::string> ledger_files(FileSystem& fs, const std::string& dir) {
    return *fs.list_dir(dir);
}

// ---- Layout and naming ----

TEST(ChunkStore, ReopenReturnsTheSameEntriesAcrossChunks) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 200);
    {
        auto store = open_ok(fs, opts);
        for (uint64_t s = 1; s <= 62; s += 7) {
            append_range(*store, s, std::min<uint64_t>(s + 6, 62), 50, 5);
            ASSERT_TRUE(store->flush().ok());
        }
        EXPECT_EQ(store->durable_seqno(), 62u);
    }
    OpenReport report;
    auto store = open_ok(fs, opts, &report);
    EXPECT_EQ(report.entries, 62u);
    EXPECT_EQ(report.chunks, 13u);
    EXPECT_FALSE(report.torn_file.has_value());
    EXPECT_EQ(store->first_seqno(), 1u);
    EXPECT_EQ(store->last_seqno(), 62u);
    expect_entries(*store, 1, 62, 50);

    // 32 + 2 frames of 82 bytes stay under 200; the third passes it but only the signature
    // at every 5th seqno may close a chunk.
    std::vector<std::string> files = ledger_files(fs, "/ledger");
    ASSERT_EQ(files.size(), 13u);
    EXPECT_EQ(files.front(), "ledger_1-5.chunk");
    EXPECT_EQ(files.back(), "ledger_61.open");
    for (uint64_t first = 1; first <= 56; first += 5) {
        std::string name =
            "ledger_" + std::to_string(first) + "-" + std::to_string(first + 4) + ".chunk";
        EXPECT_NE(std::find(files.begin(), files.end(), name), files.end()) << name;
    }
}

TEST(ChunkStore, ChunkGrowsPastItsSizeUntilASignature) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 100);
    auto store = open_ok(fs, opts);
    append_range(*store, 1, 20, 40, 1000);
    ASSERT_TRUE(store->flush().ok());
    EXPECT_EQ(ledger_files(fs, "/ledger"), std::vector<std::string>{"ledger_1.open"});
    EXPECT_GT(store->size_bytes(), 100u * 5);

    ASSERT_TRUE(store->append(21, entry_for(21, 40), true).ok());
    ASSERT_TRUE(store->flush().ok());
    EXPECT_EQ(ledger_files(fs, "/ledger"), std::vector<std::string>{"ledger_1-21.chunk"});

    ASSERT_TRUE(store->append(22, entry_for(22, 40), false).ok());
    ASSERT_TRUE(store->flush().ok());
    std::vector<std::string> expected = {"ledger_1-21.chunk", "ledger_22.open"};
    EXPECT_EQ(ledger_files(fs, "/ledger"), expected);
}

TEST(ChunkStore, CommittedChunksAreRenamedAndSurviveReopen) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 12, 10, 4);
        ASSERT_TRUE(store->flush().ok());
        ASSERT_TRUE(store->set_committed(9).ok());
        std::vector<std::string> expected = {"ledger_1-4.committed", "ledger_5-8.committed",
                                             "ledger_9-12.chunk"};
        EXPECT_EQ(ledger_files(fs, "/ledger"), expected);
        EXPECT_EQ(store->set_committed(8).code(), Errc::kFailedPrecondition) << "monotonic";
        EXPECT_EQ(store->set_committed(13).code(), Errc::kFailedPrecondition) << "not durable";
    }
    auto store = open_ok(fs, opts);
    EXPECT_EQ(store->committed_seqno(), 8u) << "lower bound from the .committed names";
    expect_entries(*store, 1, 12, 10);
}

// ---- LED-1: torn tails on real files ----

struct CutCase {
    const char* name;
    // Where to cut, from the last entry's frame start and its frame size; -1: append zeros.
    int64_t (*cut)(int64_t frame_start, int64_t frame_size);
    bool torn;
};

// 332-byte frames, a signature every 10th entry and 4 KiB chunks: chunks 1-20 and 21-40
// close, and the newest chunk, ledger_41.open, holds 41..43.
constexpr size_t kLed1EntrySize = 300;
constexpr uint64_t kLed1Entries = 43;
constexpr int64_t kLed1FrameSize = kLed1EntrySize + kFrameOverhead;

const CutCase kCutCases[] = {
    {"one_byte_after_start", [](int64_t s, int64_t) { return s + 1; }, true},
    {"middle_of_frame_header", [](int64_t s, int64_t) { return s + 12; }, true},
    {"end_of_frame_header", [](int64_t s, int64_t) { return s + 24; }, true},
    {"middle_of_entry", [](int64_t s, int64_t n) { return s + n / 2; }, true},
    {"one_byte_before_end", [](int64_t s, int64_t n) { return s + n - 1; }, true},
    {"entry_boundary", [](int64_t s, int64_t) { return s; }, false},
    {"zeros_appended", [](int64_t, int64_t) { return int64_t{-1}; }, true},
};

void append_zeros(const std::string& path, size_t n) {
    std::ofstream out(path, std::ios::binary | std::ios::app);
    std::string zeros(n, '\0');
    out.write(zeros.data(), static_cast<std::streamsize>(zeros.size()));
}

TEST(ChunkStoreLed1, TornLastEntryIsCutWithOneWarningOnRealFiles) {
    for (const CutCase& c : kCutCases) {
        SCOPED_TRACE(c.name);
        TempDir tmp;
        PosixFileSystem fs;
        ChunkStoreOptions opts = options(join_path(tmp.path(), "ledger"), 4096);
        ChunkStore::Location last{};
        {
            auto store = open_ok(fs, opts);
            ASSERT_NE(store, nullptr);
            append_range(*store, 1, kLed1Entries, kLed1EntrySize, 10);
            ASSERT_TRUE(store->flush().ok());
            last = *store->locate(kLed1Entries);
        }
        EXPECT_EQ(last.file, join_path(opts.dir, "ledger_41.open"));
        int64_t cut = c.cut(static_cast<int64_t>(last.offset), kLed1FrameSize);
        uint64_t expected_offset = last.offset;
        uint64_t expected_last = kLed1Entries - 1;
        if (cut < 0) {
            append_zeros(last.file, 4096);
            expected_offset = last.offset + kLed1FrameSize;
            expected_last = kLed1Entries;
        } else {
            std::filesystem::resize_file(last.file, static_cast<uintmax_t>(cut));
        }

        OpenReport report;
        {
            LogCapture logs;
            auto store = open_ok(fs, opts, &report);
            ASSERT_NE(store, nullptr);
            std::vector<std::string> warnings = logs.warnings();
            ASSERT_EQ(warnings.size(), c.torn ? 1u : 0u);
            if (c.torn) {
                EXPECT_NE(warnings[0].find(last.file), std::string::npos) << warnings[0];
                EXPECT_NE(warnings[0].find("offset=" + std::to_string(expected_offset)),
                          std::string::npos)
                    << warnings[0];
                ASSERT_TRUE(report.torn_file.has_value());
                EXPECT_EQ(*report.torn_file, last.file);
                EXPECT_EQ(report.torn_offset, expected_offset);
            } else {
                EXPECT_FALSE(report.torn_file.has_value());
            }
            EXPECT_EQ(std::filesystem::file_size(last.file), expected_offset);
            EXPECT_EQ(store->last_seqno(), expected_last);
            expect_entries(*store, 1, expected_last, kLed1EntrySize);

            // New writes go after the cut.
            ASSERT_TRUE(
                store->append(expected_last + 1, entry_for(expected_last + 1, 10, 1), false).ok());
            ASSERT_TRUE(store->flush().ok());
            EXPECT_EQ(store->locate(expected_last + 1)->offset, expected_offset);
        }
        LogCapture logs;
        auto store = open_ok(fs, opts);
        ASSERT_NE(store, nullptr);
        EXPECT_TRUE(logs.warnings().empty());
        EXPECT_EQ(store->last_seqno(), expected_last + 1);
        expect_entries(*store, 1, expected_last, kLed1EntrySize);
        EXPECT_EQ(*store->read(expected_last + 1), entry_for(expected_last + 1, 10, 1));
    }
}

// Both opens refuse `dir` with kCorrupt whose message contains every string in `needles`.
void expect_corrupt(FileSystem& fs, const ChunkStoreOptions& opts,
                    const std::vector<std::string>& needles) {
    OpenReport report;
    Result<std::unique_ptr<ChunkStore>> store = ChunkStore::open(fs, opts, &report);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), Errc::kCorrupt) << store.status().to_string();
    Result<std::unique_ptr<ChunkStore>> ro = ChunkStore::open_read_only(fs, opts.dir, nullptr);
    ASSERT_FALSE(ro.ok());
    EXPECT_EQ(ro.status().code(), Errc::kCorrupt) << ro.status().to_string();
    for (const std::string& needle : needles) {
        EXPECT_NE(store.status().message().find(needle), std::string::npos)
            << needle << " in " << store.status().message();
        EXPECT_NE(ro.status().message().find(needle), std::string::npos)
            << needle << " in " << ro.status().message();
    }
    EXPECT_FALSE(report.torn_file.has_value());
}

TEST(ChunkStoreClosed, TornClosedNewestChunkIsCorruptionNotATear) {
    TempDir tmp;
    PosixFileSystem fs;
    ChunkStoreOptions opts = options(join_path(tmp.path(), "ledger"), 4096);
    ChunkStore::Location last{};
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 40, kLed1EntrySize, 10);
        ASSERT_TRUE(store->flush().ok());
        last = *store->locate(40);
    }
    EXPECT_EQ(last.file, join_path(opts.dir, "ledger_21-40.chunk"));
    std::filesystem::resize_file(last.file, last.offset + 100);

    LogCapture logs;
    expect_corrupt(fs, opts,
                   {"file=" + last.file, "seqno=40 ", "offset=" + std::to_string(last.offset)});
    EXPECT_TRUE(logs.warnings().empty());
    EXPECT_EQ(std::filesystem::file_size(last.file), last.offset + 100) << "nothing cut";
    std::vector<std::string> expected = {"ledger_1-20.chunk", "ledger_21-40.chunk"};
    EXPECT_EQ(ledger_files(fs, opts.dir), expected);
}

TEST(ChunkStoreClosed, ShortenedCommittedChunkIsCorruptionNamingTheMissingSeqnos) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    ChunkStore::Location cut{};
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 6, 20, 3);
        ASSERT_TRUE(store->flush().ok());
        ASSERT_TRUE(store->set_committed(6).ok());
        cut = *store->locate(5);
    }
    for (const std::string name : {"ledger_1-3.committed", "ledger_4-6.committed"}) {
        SCOPED_TRACE(name);
        std::string path = "/ledger/" + name;
        const Bytes original = *fs.read_file(path);
        // Drop the last frame exactly at a frame boundary: no torn bytes at all.
        uint64_t frame = kFrameOverhead + 20;
        Bytes shorter(original.begin(), original.end() - static_cast<ptrdiff_t>(frame));
        ASSERT_TRUE(fs.write_file(path, shorter).ok());
        uint64_t last = name == "ledger_1-3.committed" ? 3 : 6;
        OpenReport report;
        EXPECT_EQ(ChunkStore::open(fs, opts, &report).status().code(), Errc::kCorrupt);
        EXPECT_EQ(report.corrupt_file, path);
        EXPECT_TRUE(report.corrupt_file_committed);
        expect_corrupt(
            fs, opts,
            {"file=" + path,
             "seqnos " + std::to_string(last) + ".." + std::to_string(last) + " are missing",
             "offset=" + std::to_string(shorter.size())});
        ASSERT_TRUE(fs.write_file(path, original).ok());
    }
    EXPECT_EQ(cut.file, "/ledger/ledger_4-6.committed");
    expect_entries(*open_ok(fs, opts), 1, 6, 20);
}

TEST(ChunkStoreClosed, ZeroFilledTailOfAClosedChunkIsCorruption) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    ChunkStore::Location last{};
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 6, 20, 3);
        ASSERT_TRUE(store->flush().ok());
        last = *store->locate(6);
    }
    const std::string path = "/ledger/ledger_4-6.chunk";
    const Bytes original = *fs.read_file(path);

    // Zeros after the last frame.
    Bytes padded = original;
    padded.resize(padded.size() + 4096, 0);
    ASSERT_TRUE(fs.write_file(path, padded).ok());
    expect_corrupt(fs, opts,
                   {"file=" + path, "zero-filled", "offset=" + std::to_string(original.size())});

    // The last frame zeroed in place (same size).
    Bytes zeroed = original;
    std::fill(zeroed.begin() + static_cast<ptrdiff_t>(last.offset), zeroed.end(), 0);
    ASSERT_TRUE(fs.write_file(path, zeroed).ok());
    expect_corrupt(fs, opts, {"file=" + path, "seqno=6 ", "offset=" + std::to_string(last.offset)});

    // The same bytes in the newest `.open` chunk are a torn tail.
    ASSERT_TRUE(fs.write_file(path, original).ok());
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 7, 8, 20, 3);
        ASSERT_TRUE(store->flush().ok());
    }
    Bytes open_chunk = *fs.read_file("/ledger/ledger_7.open");
    open_chunk.resize(open_chunk.size() + 4096, 0);
    ASSERT_TRUE(fs.write_file("/ledger/ledger_7.open", open_chunk).ok());
    LogCapture logs;
    auto store = open_ok(fs, opts);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(logs.warnings().size(), 1u);
    EXPECT_EQ(store->last_seqno(), 8u);
}

// A chunk takes its closed name only after its data is synced (close_open_chunk), so no crash
// at any step of closing leaves a closed name over missing frames.
TEST(ChunkStoreClosed, ChunkIsRenamedClosedOnlyAfterItsDataIsSynced) {
    for (int fault = 0; fault < 3; ++fault) {
        SCOPED_TRACE(fault);
        MemoryFileSystem fs;
        ChunkStoreOptions opts = options("/ledger", 1);
        {
            auto store = open_ok(fs, opts);
            append_range(*store, 1, 2, 20, 3);
            ASSERT_EQ(*store->flush(), 2u);
            append_range(*store, 3, 3, 20, 3);
            if (fault == 0) {
                fs.fail_next_sync();  // the file's sync before the rename
            } else if (fault == 1) {
                fs.fail_next_dir_sync();  // the directory sync after the rename
            }
            Result<uint64_t> flushed = store->flush();
            EXPECT_EQ(flushed.ok(), fault == 2);
            fs.crash();
        }
        LogCapture logs;
        auto store = open_ok(fs, opts);
        ASSERT_NE(store, nullptr);
        std::vector<std::string> files = ledger_files(fs, "/ledger");
        std::string expected = fault == 2 ? "ledger_1-3.chunk" : "ledger_1.open";
        EXPECT_EQ(files, std::vector<std::string>{expected});
        // fault 1: the data was synced before the rename, so all of it survives.
        EXPECT_EQ(store->last_seqno(), fault == 0 ? 2u : 3u);
        expect_entries(*store, 1, store->last_seqno(), 20);
    }
}

TEST(ChunkStoreLed1, TornHeaderOfANewChunkIsRewritten) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 3, 10, 3);
        ASSERT_TRUE(store->flush().ok());
        ASSERT_TRUE(store->append(4, entry_for(4, 10), false).ok());
        ASSERT_TRUE(store->flush().ok());
    }
    ASSERT_TRUE(fs.write_file("/ledger/ledger_4.open", Bytes(10, 0x33)).ok());

    LogCapture logs;
    OpenReport report;
    auto store = open_ok(fs, opts, &report);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(logs.warnings().size(), 1u);
    EXPECT_EQ(report.torn_offset, 0u);
    EXPECT_EQ(store->last_seqno(), 3u);
    ASSERT_TRUE(store->append(4, entry_for(4, 10), false).ok());
    ASSERT_TRUE(store->flush().ok());
    store.reset();
    store = open_ok(fs, opts);
    EXPECT_EQ(store->last_seqno(), 4u);
}

TEST(ChunkStoreLed1, ReadOnlyOpenReportsATornTailWithoutCuttingIt) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1 << 20);
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 5, 100, 100);
        ASSERT_TRUE(store->flush().ok());
    }
    Bytes data = *fs.read_file("/ledger/ledger_1.open");
    data.resize(data.size() - 3);
    ASSERT_TRUE(fs.write_file("/ledger/ledger_1.open", data).ok());

    OpenReport report;
    Result<std::unique_ptr<ChunkStore>> store = ChunkStore::open_read_only(fs, "/ledger", &report);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    EXPECT_EQ(report.torn_file, "/ledger/ledger_1.open");
    EXPECT_EQ(report.torn_bytes_cut, 100 + kFrameOverhead - 3);
    EXPECT_EQ((*store)->last_seqno(), 4u);
    expect_entries(**store, 1, 4, 100);
    EXPECT_EQ(*fs.read_file("/ledger/ledger_1.open"), data) << "nothing modified";
    EXPECT_EQ((*store)->append(5, entry_for(5, 1), false).code(), Errc::kFailedPrecondition);
    EXPECT_EQ((*store)->truncate(1).code(), Errc::kFailedPrecondition);
    EXPECT_EQ((*store)->set_committed(1).code(), Errc::kFailedPrecondition);
    EXPECT_EQ(ChunkStore::open_read_only(fs, "/missing", nullptr).status().code(), Errc::kNotFound);
}

// ---- Corruption ----

// Which seqno a damaged byte belongs to: the frame that holds it, or the chunk's first.
uint64_t seqno_at(const ChunkStore& store, uint64_t first, uint64_t last, uint64_t offset) {
    uint64_t owner = first;
    for (uint64_t s = first; s <= last; ++s) {
        if (store.locate(s)->offset <= offset) {
            owner = s;
        }
    }
    return owner;
}

// Flips every byte of one chunk file in turn (stride 1 unless kFlipStride says otherwise):
// each flip must fail the open with kCorrupt naming that file and the damaged entry's seqno.
void flip_every_byte(MemoryFileSystem& fs, const ChunkStoreOptions& opts, const std::string& file,
                     uint64_t first, uint64_t last, const ChunkStore& layout) {
    constexpr size_t kFlipStride = 1;
    const Bytes original = *fs.read_file(file);
    ASSERT_GT(original.size(), kChunkHeaderSize + 2 * kFrameOverhead);
    for (size_t i = 0; i < original.size(); i += kFlipStride) {
        for (uint8_t mask : {uint8_t{0x01}, uint8_t{0xA5}}) {
            Bytes damaged = original;
            damaged[i] ^= mask;
            ASSERT_TRUE(fs.write_file(file, damaged).ok());
            OpenReport report;
            LogCapture logs;
            Result<std::unique_ptr<ChunkStore>> store = ChunkStore::open(fs, opts, &report);
            ASSERT_FALSE(store.ok()) << "byte " << i << " flipped by " << int(mask);
            const Status& st = store.status();
            EXPECT_EQ(st.code(), Errc::kCorrupt) << st.to_string();
            std::string seqno = "seqno=" + std::to_string(seqno_at(layout, first, last, i)) + " ";
            EXPECT_NE(st.message().find("file=" + file), std::string::npos) << st.message();
            EXPECT_NE(st.message().find(seqno), std::string::npos)
                << "byte " << i << ": " << st.message();
            EXPECT_EQ(report.corrupt_file, file);
            EXPECT_FALSE(report.torn_file.has_value()) << "byte " << i;
            EXPECT_TRUE(logs.warnings().empty()) << "byte " << i;
            EXPECT_EQ(*fs.read_file(file), damaged) << "a failed open changes nothing";
        }
    }
    ASSERT_TRUE(fs.write_file(file, original).ok());
}

TEST(ChunkStoreCorruption, EveryFlippedByteIsCorruptionNamingFileAndSeqno) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 200);
    auto layout = open_ok(fs, opts);
    append_range(*layout, 1, 8, 40, 4);
    ASSERT_TRUE(layout->flush().ok());
    std::vector<std::string> expected = {"ledger_1-4.chunk", "ledger_5-8.chunk"};
    ASSERT_EQ(ledger_files(fs, "/ledger"), expected);
    ASSERT_TRUE(layout->append(9, entry_for(9, 40), false).ok());
    ASSERT_TRUE(layout->append(10, entry_for(10, 40), false).ok());
    ASSERT_TRUE(layout->flush().ok());

    flip_every_byte(fs, opts, "/ledger/ledger_1-4.chunk", 1, 4, *layout);
    flip_every_byte(fs, opts, "/ledger/ledger_9.open", 9, 10, *layout);
    expect_entries(*open_ok(fs, opts), 1, 10, 40);
}

TEST(ChunkStoreCorruption, TornTailOfAnOlderChunkIsCorruption) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 6, 20, 2);
        ASSERT_TRUE(store->flush().ok());
    }
    const Bytes original = *fs.read_file("/ledger/ledger_3-4.chunk");
    Bytes data(original.begin(), original.end() - 5);
    ASSERT_TRUE(fs.write_file("/ledger/ledger_3-4.chunk", data).ok());
    Result<std::unique_ptr<ChunkStore>> store = ChunkStore::open(fs, opts, nullptr);
    ASSERT_EQ(store.status().code(), Errc::kCorrupt);
    EXPECT_NE(store.status().message().find("ledger_3-4.chunk"), std::string::npos);
    EXPECT_NE(store.status().message().find("seqno=4 "), std::string::npos);

    data = original;
    data.resize(data.size() + 64, 0);
    ASSERT_TRUE(fs.write_file("/ledger/ledger_3-4.chunk", data).ok());
    EXPECT_EQ(ChunkStore::open(fs, opts, nullptr).status().code(), Errc::kCorrupt)
        << "a zero tail is a tear only in the newest chunk";
}

TEST(ChunkStoreCorruption, MissingChunkIsCorruptionNamingTheRange) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 6, 20, 2);
        ASSERT_TRUE(store->flush().ok());
    }
    ASSERT_TRUE(fs.remove("/ledger/ledger_3-4.chunk").ok());
    OpenReport report;
    Result<std::unique_ptr<ChunkStore>> store = ChunkStore::open(fs, opts, &report);
    ASSERT_EQ(store.status().code(), Errc::kCorrupt);
    EXPECT_NE(store.status().message().find("seqnos 3..4"), std::string::npos)
        << store.status().message();
    EXPECT_EQ(report.corrupt_file, "/ledger/ledger_5-6.chunk");
}

TEST(ChunkStoreCorruption, ClosedChunkNotMatchingItsNameIsCorruption) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 6, 20, 2);
        ASSERT_TRUE(store->flush().ok());
    }
    ASSERT_TRUE(fs.rename("/ledger/ledger_1-2.chunk", "/ledger/ledger_1-3.chunk").ok());
    EXPECT_EQ(ChunkStore::open(fs, opts, nullptr).status().code(), Errc::kCorrupt);
}

// ---- Unrecognised names ----

void put_file(FileSystem& fs, const std::string& path, ByteSpan data) {
    Result<std::unique_ptr<File>> file = fs.create_new(path);
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    ASSERT_TRUE((*file)->append(data).ok());
    ASSERT_TRUE((*file)->sync().ok());
    ASSERT_TRUE(fs.sync_dir(parent_path(path)).ok());
}

TEST(ChunkStoreNames, UnrecognisedLedgerNamesAreRefusedNamingTheFile) {
    for (const std::string stray : {"ledger_02526.open", "ledger_3-04.chunk", "ledger_3.chunk",
                                    "ledger_1-2.bak", "ledger_", "ledger_0.open"}) {
        SCOPED_TRACE(stray);
        MemoryFileSystem fs;
        ChunkStoreOptions opts = options("/ledger", 1);
        {
            auto store = open_ok(fs, opts);
            append_range(*store, 1, 2, 20, 2);
            ASSERT_TRUE(store->flush().ok());
        }
        // Not ledger files: these never stop an open.
        put_file(fs, "/ledger/coffer.view", as_bytes("7"));
        ASSERT_TRUE(fs.make_dir("/ledger/ignored").ok());
        put_file(fs, "/ledger/ignored/ledger_9.open", Bytes(3, 1));
        put_file(fs, "/ledger/notes.txt", Bytes(3, 1));
        expect_entries(*open_ok(fs, opts), 1, 2, 20);

        put_file(fs, "/ledger/" + stray, Bytes(40, 7));
        OpenReport report;
        EXPECT_EQ(ChunkStore::open(fs, opts, &report).status().code(), Errc::kCorrupt);
        EXPECT_EQ(report.corrupt_file, "/ledger/" + stray);
        expect_corrupt(fs, opts, {"file=/ledger/" + stray, "unrecognised ledger file name"});

        // Installing a snapshot sets it aside like any uncommitted file.
        OpenReport snapshot_report;
        Result<std::unique_ptr<ChunkStore>> store =
            ChunkStore::open_from_snapshot(fs, opts, 2, &snapshot_report);
        ASSERT_TRUE(store.ok()) << store.status().to_string();
        EXPECT_TRUE(*fs.file_exists("/ledger/ignored/" + stray));
    }
}

// ---- Bounded memory at open ----

// Forwards to another FileSystem and records the largest single read.
class ReadCountingFileSystem final : public FileSystem {
  public:
    explicit ReadCountingFileSystem(FileSystem& inner) : inner_(inner) {}
    uint64_t largest_read = 0;
    uint64_t bytes_read = 0;

    Result<std::unique_ptr<File>> open_for_append(const std::string& path) override {
        return wrap(inner_.open_for_append(path));
    }
    Result<std::unique_ptr<File>> create_new(const std::string& path) override {
        return wrap(inner_.create_new(path));
    }
    Result<std::unique_ptr<File>> open_read(const std::string& path) override {
        return wrap(inner_.open_read(path));
    }
    Result<std::vector<std::string>> list_dir(const std::string& dir) override {
        return inner_.list_dir(dir);
    }
    Status rename(const std::string& from, const std::string& to) override {
        return inner_.rename(from, to);
    }
    Status remove(const std::string& path) override { return inner_.remove(path); }
    Status sync_dir(const std::string& dir) override { return inner_.sync_dir(dir); }
    Status make_dir(const std::string& dir) override { return inner_.make_dir(dir); }
    Result<bool> file_exists(const std::string& path) override { return inner_.file_exists(path); }

  private:
    class CountingFile final : public File {
      public:
        CountingFile(std::unique_ptr<File> inner, ReadCountingFileSystem& owner)
            : inner_(std::move(inner)), owner_(owner) {}
        Result<size_t> append(ByteSpan data) override { return inner_->append(data); }
        Status sync() override { return inner_->sync(); }
        Result<size_t> read_at(uint64_t offset, std::span<uint8_t> out) override {
            owner_.largest_read = std::max<uint64_t>(owner_.largest_read, out.size());
            owner_.bytes_read += out.size();
            return inner_->read_at(offset, out);
        }
        Result<uint64_t> size() override { return inner_->size(); }
        Status truncate(uint64_t size_bytes) override { return inner_->truncate(size_bytes); }
        const std::string& path() const override { return inner_->path(); }

      private:
        std::unique_ptr<File> inner_;
        ReadCountingFileSystem& owner_;
    };

    Result<std::unique_ptr<File>> wrap(Result<std::unique_ptr<File>> file) {
        COFFER_RETURN_IF_ERROR(file.status());
        return std::unique_ptr<File>(
            std::make_unique<CountingFile>(std::move(file).value(), *this));
    }

    FileSystem& inner_;
};

TEST(ChunkStoreMemory, ValidationReadsOneFrameAtATimeNotTheWholeFile) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1 << 20);
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 400, 1000, 50);
        ASSERT_TRUE(store->flush().ok());
    }
    // A zero-filled 6 MiB region after the last frame, as a preallocating file system leaves.
    Bytes data = *fs.read_file("/ledger/ledger_1.open");
    uint64_t frames_end = data.size();
    data.resize(data.size() + (6u << 20), 0);
    ASSERT_TRUE(fs.write_file("/ledger/ledger_1.open", data).ok());

    ReadCountingFileSystem counting(fs);
    OpenReport report;
    LogCapture logs;
    auto store = open_ok(counting, opts, &report);
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->last_seqno(), 400u);
    EXPECT_EQ(report.torn_offset, frames_end);
    EXPECT_LE(counting.largest_read, 1u << 20) << "one frame or one 1 MiB zero-check block";
    EXPECT_GE(counting.bytes_read, data.size()) << "every byte was still checked";
}

TEST(ChunkStoreMemory, ChunkFileOverTheLimitIsRefusedBeforeReading) {
    TempDir tmp;
    PosixFileSystem posix;
    ChunkStoreOptions opts = options(join_path(tmp.path(), "ledger"), 4096);
    ASSERT_TRUE(posix.make_dir(opts.dir).ok());
    std::string path = join_path(opts.dir, "ledger_1.open");
    { std::ofstream(path, std::ios::binary).put('\0'); }
    std::filesystem::resize_file(path, kMaxChunkFileBytes + 1);  // sparse: no disk used

    ReadCountingFileSystem fs(posix);
    Result<std::unique_ptr<ChunkStore>> store = ChunkStore::open_read_only(fs, opts.dir, nullptr);
    ASSERT_FALSE(store.ok());
    EXPECT_EQ(store.status().code(), Errc::kCorrupt);
    EXPECT_NE(store.status().message().find("file=" + path), std::string::npos);
    EXPECT_NE(store.status().message().find("kMaxChunkFileBytes"), std::string::npos);
    EXPECT_EQ(fs.bytes_read, 0u);
    EXPECT_EQ(ChunkStore::open(fs, opts, nullptr).status().code(), Errc::kCorrupt);
    EXPECT_EQ(std::filesystem::file_size(path), kMaxChunkFileBytes + 1) << "nothing cut";
}

// ---- Group commit and durability (CON-1, LED-4) ----

TEST(ChunkStoreDurability, ManyAppendsOneFlushOneFsync) {
    MemoryFileSystem fs;
    auto store = open_ok(fs, options("/ledger", 1 << 20));
    uint64_t syncs = fs.sync_count();
    uint64_t dir_syncs = fs.dir_sync_count();
    append_range(*store, 1, 500, 64, 100);
    EXPECT_EQ(fs.sync_count(), syncs);
    EXPECT_EQ(store->durable_seqno(), 0u);
    EXPECT_EQ(store->last_seqno(), 500u);

    Result<uint64_t> durable = store->flush();
    ASSERT_TRUE(durable.ok());
    EXPECT_EQ(*durable, 500u);
    EXPECT_EQ(fs.sync_count(), syncs + 1);
    EXPECT_EQ(fs.dir_sync_count(), dir_syncs + 1) << "the new chunk file's entry";

    append_range(*store, 501, 600, 64, 100);
    ASSERT_TRUE(store->flush().ok());
    EXPECT_EQ(fs.sync_count(), syncs + 2);
    EXPECT_EQ(fs.dir_sync_count(), dir_syncs + 1) << "no new file, no directory sync";
    EXPECT_EQ(*store->flush(), 600u) << "an empty flush syncs nothing";
    EXPECT_EQ(fs.sync_count(), syncs + 2);
}

TEST(ChunkStoreDurability, CrashLosesExactlyTheUnflushedEntries) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 300);
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 30, 20, 3);
        ASSERT_EQ(*store->flush(), 30u);
        append_range(*store, 31, 40, 20, 3);
        fs.crash();
    }
    {
        auto store = open_ok(fs, opts);
        EXPECT_EQ(store->last_seqno(), 30u);
        expect_entries(*store, 1, 30, 20);
        append_range(*store, 31, 45, 20, 3, 1);
        ASSERT_EQ(*store->flush(), 45u);
        fs.crash();
    }
    auto store = open_ok(fs, opts);
    EXPECT_EQ(store->last_seqno(), 45u) << "a crash after flush loses nothing";
    expect_entries(*store, 31, 45, 20, 1);
}

TEST(ChunkStoreDurability, CrashRightAfterEveryFlushKeepsAllAcknowledgedEntries) {
    // LED-4 simulation: directory entries are volatile until synced; chunk files are created
    // and renamed on many of these flushes.
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 150);
    uint64_t acknowledged = 0;
    for (int round = 0; round < 12; ++round) {
        auto store = open_ok(fs, opts);
        ASSERT_NE(store, nullptr);
        ASSERT_EQ(store->last_seqno(), acknowledged) << "round " << round;
        expect_entries(*store, 1, acknowledged, 30);
        append_range(*store, acknowledged + 1, acknowledged + 7, 30, 2);
        Result<uint64_t> durable = store->flush();
        ASSERT_TRUE(durable.ok());
        acknowledged = *durable;
        append_range(*store, acknowledged + 1, acknowledged + 2, 30, 2);
        fs.crash();
    }
}

TEST(ChunkStoreDurability, NewChunkNotDirSyncedHoldsNothingReportedDurable) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 2, 10, 2);
        ASSERT_EQ(*store->flush(), 2u);
        append_range(*store, 3, 3, 10, 2);
        fs.fail_next_dir_sync();
        Result<uint64_t> durable = store->flush();
        EXPECT_EQ(durable.status().code(), Errc::kIo);
        EXPECT_EQ(store->durable_seqno(), 2u) << "ledger_3.open was never dir-synced";
        fs.crash();
    }
    auto store = open_ok(fs, opts);
    EXPECT_EQ(ledger_files(fs, "/ledger"), std::vector<std::string>{"ledger_1-2.chunk"});
    EXPECT_EQ(store->last_seqno(), 2u);
}

TEST(ChunkStoreDurability, TornFlushAfterCrashKeepsEveryDurableEntry) {
    for (uint64_t seed = 1; seed <= 25; ++seed) {
        SCOPED_TRACE(seed);
        MemoryFileSystem fs;
        ChunkStoreOptions opts = options("/ledger", 1 << 20);
        uint64_t durable = 0;
        {
            auto store = open_ok(fs, opts);
            append_range(*store, 1, 10, 50, 5);
            durable = *store->flush();
            append_range(*store, 11, 14, 50, 5);
            fs.fail_next_sync();
            ASSERT_FALSE(store->flush().ok());
            ASSERT_TRUE(fs.tear_last_write(seed).ok());
            fs.crash();
        }
        LogCapture logs;
        OpenReport report;
        auto store = open_ok(fs, opts, &report);
        ASSERT_NE(store, nullptr);
        EXPECT_GE(store->last_seqno(), durable);
        EXPECT_LE(logs.warnings().size(), 1u);
        EXPECT_EQ(logs.warnings().size(), report.torn_file.has_value() ? 1u : 0u);
        expect_entries(*store, 1, store->last_seqno(), 50);
    }
}

TEST(ChunkStoreFailures, FsyncErrorFailsTheStoreForGood) {
    MemoryFileSystem fs;
    auto store = open_ok(fs, options("/ledger", 1 << 20));
    append_range(*store, 1, 3, 10, 3);
    ASSERT_TRUE(store->flush().ok());
    append_range(*store, 4, 5, 10, 3);
    fs.fail_next_sync();
    Result<uint64_t> flushed = store->flush();
    ASSERT_EQ(flushed.status().code(), Errc::kIo);
    EXPECT_NE(flushed.status().message().find("fsync error; the node must stop"),
              std::string::npos);
    EXPECT_TRUE(store->failed());
    EXPECT_EQ(store->durable_seqno(), 3u);

    EXPECT_EQ(store->flush().status().code(), Errc::kIo) << "never retried";
    EXPECT_EQ(store->append(6, entry_for(6, 1), false).code(), Errc::kIo);
    EXPECT_EQ(store->read(1).status().code(), Errc::kIo);
    EXPECT_EQ(store->truncate(3).code(), Errc::kIo);
    EXPECT_EQ(store->set_committed(3).code(), Errc::kIo);
    EXPECT_EQ(store->locate(1).status().code(), Errc::kIo);
    EXPECT_EQ(fs.sync_count(), 1u) << "the first flush only";
}

TEST(ChunkStoreFailures, DiskFullRefusesTheBatchAndKeepsReading) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1 << 20);
    auto store = open_ok(fs, opts);
    append_range(*store, 1, 10, 50, 5);
    ASSERT_TRUE(store->flush().ok());
    uint64_t size = store->size_bytes();

    fs.set_disk_full_after(100);
    append_range(*store, 11, 15, 50, 5);
    Result<uint64_t> flushed = store->flush();
    ASSERT_EQ(flushed.status().code(), Errc::kNoSpace);
    EXPECT_NE(flushed.status().message().find("11..15"), std::string::npos);
    EXPECT_FALSE(store->failed());
    EXPECT_EQ(store->durable_seqno(), 10u);
    EXPECT_EQ(store->last_seqno(), 10u) << "the refused batch is dropped";
    EXPECT_EQ(fs.read_file("/ledger/ledger_1.open")->size(), size) << "no partial frame left";
    expect_entries(*store, 1, 10, 50);

    fs.clear_disk_full();
    append_range(*store, 11, 12, 50, 5, 1);
    ASSERT_EQ(*store->flush(), 12u);
    store.reset();
    LogCapture logs;
    store = open_ok(fs, opts);
    EXPECT_TRUE(logs.warnings().empty());
    expect_entries(*store, 11, 12, 50, 1);
}

TEST(ChunkStoreFailures, DiskFullAfterAChunkClosedKeepsThatChunk) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    auto store = open_ok(fs, opts);
    append_range(*store, 1, 8, 20, 5);
    fs.set_disk_full_after(kChunkHeaderSize + 5 * (20 + kFrameOverhead) + kChunkHeaderSize + 10);
    Result<uint64_t> flushed = store->flush();
    ASSERT_EQ(flushed.status().code(), Errc::kNoSpace);
    EXPECT_NE(flushed.status().message().find("6..8"), std::string::npos);
    EXPECT_EQ(store->durable_seqno(), 5u);
    EXPECT_EQ(store->last_seqno(), 5u);
    fs.clear_disk_full();
    append_range(*store, 6, 8, 20, 5);
    ASSERT_EQ(*store->flush(), 8u);
    store.reset();
    expect_entries(*open_ok(fs, opts), 1, 8, 20);
}

// ---- Truncation ----

TEST(ChunkStoreTruncate, RollbackAcrossChunksThenAppendAgain) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    auto store = open_ok(fs, opts);
    append_range(*store, 1, 23, 10, 5);
    ASSERT_TRUE(store->flush().ok());
    ASSERT_TRUE(store->set_committed(7).ok());
    append_range(*store, 24, 25, 10, 5);

    EXPECT_EQ(store->truncate(6).code(), Errc::kFailedPrecondition) << "below committed";
    ASSERT_TRUE(store->truncate(12).ok());
    EXPECT_EQ(store->last_seqno(), 12u);
    EXPECT_EQ(store->durable_seqno(), 12u);
    // list_dir sorts by name.
    std::vector<std::string> expected = {"ledger_1-5.committed", "ledger_11.open",
                                         "ledger_6-10.chunk"};
    EXPECT_EQ(ledger_files(fs, "/ledger"), expected);

    append_range(*store, 13, 16, 10, 5, 1);
    ASSERT_EQ(*store->flush(), 16u);
    store.reset();
    store = open_ok(fs, opts);
    expect_entries(*store, 1, 12, 10);
    expect_entries(*store, 13, 16, 10, 1);

    ASSERT_TRUE(store->truncate(10).ok()) << "exactly at a chunk boundary";
    expected = {"ledger_1-5.committed", "ledger_11.open", "ledger_6-10.chunk"};
    EXPECT_EQ(ledger_files(fs, "/ledger"), expected);
    EXPECT_EQ(store->last_seqno(), 10u);
    append_range(*store, 11, 11, 10, 5, 2);
    ASSERT_TRUE(store->flush().ok());
    expect_entries(*open_ok(fs, opts), 11, 11, 10, 2);
}

TEST(ChunkStoreTruncate, DropsBufferedEntriesWithoutIo) {
    MemoryFileSystem fs;
    auto store = open_ok(fs, options("/ledger", 1 << 20));
    append_range(*store, 1, 5, 10, 5);
    ASSERT_TRUE(store->flush().ok());
    append_range(*store, 6, 9, 10, 5);
    uint64_t syncs = fs.sync_count();
    ASSERT_TRUE(store->truncate(7).ok());
    EXPECT_EQ(fs.sync_count(), syncs);
    EXPECT_EQ(store->last_seqno(), 7u);
    ASSERT_TRUE(store->truncate(20).ok()) << "no-op past the end";
    EXPECT_EQ(*store->flush(), 7u);
}

// ---- Reading and argument checks ----

TEST(ChunkStoreRead, ReadForEachAndLocateSpanChunksAndTheBuffer) {
    MemoryFileSystem fs;
    auto store = open_ok(fs, options("/ledger", 1));
    append_range(*store, 1, 9, 12, 3);
    ASSERT_TRUE(store->flush().ok());
    append_range(*store, 10, 11, 12, 3);

    std::vector<uint64_t> seen;
    std::vector<uint64_t> sigs;
    Status st = store->for_each(2, [&](uint64_t seqno, ByteSpan entry, bool is_signature) {
        EXPECT_EQ(Bytes(entry.begin(), entry.end()), entry_for(seqno, 12));
        seen.push_back(seqno);
        if (is_signature) {
            sigs.push_back(seqno);
        }
        return Status::ok_status();
    });
    ASSERT_TRUE(st.ok()) << st.to_string();
    EXPECT_EQ(seen, (std::vector<uint64_t>{2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
    EXPECT_EQ(sigs, (std::vector<uint64_t>{3, 6, 9}));

    Status stop = store->for_each(1, [](uint64_t seqno, ByteSpan, bool) {
        return seqno == 4 ? error(Errc::kInternal, "stop") : Status::ok_status();
    });
    EXPECT_EQ(stop.code(), Errc::kInternal);
    EXPECT_TRUE(store
                    ->for_each(12,
                               [](uint64_t, ByteSpan, bool) {
                                   ADD_FAILURE() << "nothing to visit";
                                   return Status::ok_status();
                               })
                    .ok());
    EXPECT_EQ(store->for_each(13, nullptr).code(), Errc::kNotFound);

    ChunkStore::Location loc = *store->locate(5);
    EXPECT_EQ(loc.file, "/ledger/ledger_4-6.chunk");
    EXPECT_EQ(loc.offset, kChunkHeaderSize + 12 + kFrameOverhead);
    EXPECT_EQ(store->locate(10).status().code(), Errc::kNotFound) << "still buffered";
    EXPECT_EQ(*store->read(11), entry_for(11, 12));
    EXPECT_EQ(store->read(0).status().code(), Errc::kNotFound);
    EXPECT_EQ(store->read(12).status().code(), Errc::kNotFound);
    EXPECT_EQ(store->chunk_files().size(), 3u);
}

TEST(ChunkStoreRead, ReadDetectsDamageAfterOpen) {
    MemoryFileSystem fs;
    auto store = open_ok(fs, options("/ledger", 1 << 20));
    append_range(*store, 1, 3, 12, 3);
    ASSERT_TRUE(store->flush().ok());
    Bytes data = *fs.read_file("/ledger/ledger_1.open");
    data[store->locate(2)->offset + kFrameHeaderSize + 3] ^= 0x10;
    ASSERT_TRUE(fs.write_file("/ledger/ledger_1.open", data).ok());
    Result<Bytes> e = store->read(2);
    EXPECT_EQ(e.status().code(), Errc::kCorrupt);
    EXPECT_NE(e.status().message().find("seqno=2 "), std::string::npos);
}

TEST(ChunkStoreAppend, RefusesGapsRepeatsAndOversizedEntries) {
    MemoryFileSystem fs;
    auto store = open_ok(fs, options("/ledger", 1 << 20));
    EXPECT_EQ(store->append(2, entry_for(2, 1), false).code(), Errc::kFailedPrecondition);
    ASSERT_TRUE(store->append(1, entry_for(1, 1), false).ok());
    EXPECT_EQ(store->append(1, entry_for(1, 1), false).code(), Errc::kFailedPrecondition);
    EXPECT_EQ(store->append(3, entry_for(3, 1), false).code(), Errc::kFailedPrecondition);
    Bytes huge(kMaxEntrySize + 1);
    EXPECT_EQ(store->append(2, huge, false).code(), Errc::kInvalidArgument);
    EXPECT_EQ(store->last_seqno(), 1u);

    ChunkStoreOptions bad = options("/other", 1 << 20);
    bad.max_batch_entries = kMaxBatchEntries + 1;
    EXPECT_EQ(ChunkStore::open(fs, bad, nullptr).status().code(), Errc::kInvalidArgument);
    bad = options("/other", 0);
    EXPECT_EQ(ChunkStore::open(fs, bad, nullptr).status().code(), Errc::kInvalidArgument);
}

TEST(ChunkStoreAppend, FlushDueFollowsBatchSizeAndInterval) {
    MemoryFileSystem fs;
    uint64_t now = 1000;
    ChunkStoreOptions opts = options("/ledger", 1 << 20);
    opts.max_batch_entries = 4;
    opts.flush_interval_ms = 5;
    opts.now_ms = [&now] { return now; };
    auto store = open_ok(fs, opts);
    EXPECT_FALSE(store->flush_due());
    append_range(*store, 1, 2, 10, 100);
    now += 4;
    EXPECT_FALSE(store->flush_due());
    now += 1;
    EXPECT_TRUE(store->flush_due()) << "interval elapsed since the first unflushed append";
    ASSERT_TRUE(store->flush().ok());
    append_range(*store, 3, 5, 10, 100);
    EXPECT_FALSE(store->flush_due());
    append_range(*store, 6, 6, 10, 100);
    EXPECT_TRUE(store->flush_due()) << "batch full";
}

// ---- Stale files and snapshots (LED-5) ----

TEST(ChunkStoreSnapshot, StaleFilesAreMovedAsideAndTheLedgerStartsAfterTheSnapshot) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 12, 10, 5);
        ASSERT_TRUE(store->flush().ok());
        ASSERT_TRUE(store->set_committed(5).ok());
    }
    Bytes data = *fs.read_file("/ledger/ledger_11.open");
    data[kChunkHeaderSize + 30] ^= 1;
    ASSERT_TRUE(fs.write_file("/ledger/ledger_11.open", data).ok());
    OpenReport failed;
    EXPECT_EQ(ChunkStore::open(fs, opts, &failed).status().code(), Errc::kCorrupt);
    EXPECT_EQ(failed.corrupt_file, "/ledger/ledger_11.open");
    EXPECT_FALSE(failed.corrupt_file_committed);

    LogCapture logs;
    OpenReport report;
    Result<std::unique_ptr<ChunkStore>> store =
        ChunkStore::open_from_snapshot(fs, opts, 100, &report);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    EXPECT_EQ(logs.warnings().size(), 3u) << "one WARN per file";
    EXPECT_EQ(report.set_aside.size(), 3u);
    std::vector<std::string> ignored = {"ledger_1-5.committed", "ledger_11.open",
                                        "ledger_6-10.chunk"};
    EXPECT_EQ(*fs.list_dir("/ledger/ignored"), ignored) << "moved, not deleted";
    EXPECT_EQ((*store)->first_seqno(), 101u);
    EXPECT_EQ((*store)->last_seqno(), 100u);
    EXPECT_EQ((*store)->committed_seqno(), 100u);
    append_range(**store, 101, 103, 10, 5);
    ASSERT_TRUE((*store)->flush().ok());
    store->reset();

    fs.crash();
    auto reopened = open_ok(fs, opts);
    ASSERT_NE(reopened, nullptr);
    EXPECT_EQ(reopened->first_seqno(), 101u);
    expect_entries(*reopened, 101, 103, 10);
    EXPECT_EQ(reopened->read(100).status().code(), Errc::kNotFound);
}

TEST(ChunkStoreSnapshot, CommittedRunReachingTheSnapshotIsKept) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1);
    {
        auto store = open_ok(fs, opts);
        append_range(*store, 1, 12, 10, 5);
        ASSERT_TRUE(store->flush().ok());
        ASSERT_TRUE(store->set_committed(10).ok());
    }
    OpenReport report;
    Result<std::unique_ptr<ChunkStore>> store =
        ChunkStore::open_from_snapshot(fs, opts, 7, &report);
    ASSERT_TRUE(store.ok()) << store.status().to_string();
    EXPECT_EQ(report.set_aside, std::vector<std::string>{"/ledger/ignored/ledger_11.open"});
    EXPECT_EQ((*store)->first_seqno(), 1u);
    EXPECT_EQ((*store)->last_seqno(), 10u);
    EXPECT_EQ((*store)->committed_seqno(), 10u);
    expect_entries(**store, 1, 10, 10);
}

TEST(ChunkStoreSnapshot, RepeatedSetAsideKeepsEveryCopy) {
    MemoryFileSystem fs;
    ChunkStoreOptions opts = options("/ledger", 1 << 20);
    for (int round = 0; round < 3; ++round) {
        {
            auto store = open_ok(fs, opts);
            ASSERT_NE(store, nullptr);
            ASSERT_TRUE(store->truncate(store->first_seqno() - 1).ok());
        }
        auto store = ChunkStore::open_from_snapshot(fs, opts, 0, nullptr);
        ASSERT_TRUE(store.ok()) << store.status().to_string();
    }
    std::vector<std::string> ignored = {"ledger_1.open", "ledger_1.open.1"};
    EXPECT_EQ(*fs.list_dir("/ledger/ignored"), ignored);
}

}  // namespace
}  // namespace coffer::ledger

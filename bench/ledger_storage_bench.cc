// Ledger storage: append + group-commit flush of 1 KiB entries, beside the bare system calls
// doing the same durable writes (write(2) of the same frame bytes, then one fdatasync).
//
// Pairs: BM_LedgerFlush_Batch<N>/coffer (ChunkStore on PosixFileSystem in a temp directory,
// one flush, hence one fsync, per batch of N entries) against
// BM_LedgerFlush_Batch<N>/raw_write_fdatasync; and BM_LedgerFlush_NoFsync_Batch1024/coffer
// (ChunkStore on MemoryFileSystem: framing, checksums and bookkeeping only) against
// BM_LedgerFlush_NoFsync_Batch1024/raw_write (write(2) to a plain file, no sync).
// The fsync cases are bound by the disk, so they report real time; compare the real-time
// columns for them.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "ledger/chunk_store.h"
#include "ledger/memory_file_system.h"

namespace {

using coffer::Bytes;
using coffer::ledger::ChunkStore;
using coffer::ledger::ChunkStoreOptions;
using coffer::ledger::FileSystem;
using coffer::ledger::kFrameOverhead;
using coffer::ledger::MemoryFileSystem;
using coffer::ledger::PosixFileSystem;

constexpr size_t kEntrySize = 1024;
// Every 64th entry is a signature, as the consensus layer would emit them.
constexpr uint64_t kSignatureInterval = 64;
// The ledger is rolled back to empty whenever it passes this size, to bound disk use.
constexpr uint64_t kMaxBenchLedgerBytes = 64u << 20;

class TempDir {
  public:
    TempDir() {
        std::string tmpl = "/tmp/coffer_ledger_bench_" + std::string(6, 'X');
        if (::mkdtemp(tmpl.data()) != nullptr) {
            path_ = tmpl;
        }
    }
    ~TempDir() {
        std::error_code ec;
        if (!path_.empty()) {
            std::filesystem::remove_all(path_, ec);
        }
    }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

void run_chunk_store(benchmark::State& state, FileSystem& fs, const std::string& dir, int batch) {
    ChunkStoreOptions opts;
    opts.dir = dir;
    opts.max_batch_entries = static_cast<size_t>(batch);
    auto opened = ChunkStore::open(fs, opts, nullptr);
    if (!opened.ok()) {
        state.SkipWithError(opened.status().to_string().c_str());
        return;
    }
    std::unique_ptr<ChunkStore> store = std::move(opened).value();
    const Bytes entry(kEntrySize, 0x5a);
    for (auto _ : state) {
        for (int i = 0; i < batch; ++i) {
            uint64_t seqno = store->last_seqno() + 1;
            if (!store->append(seqno, entry, seqno % kSignatureInterval == 0).ok()) {
                state.SkipWithError("append failed");
                return;
            }
        }
        auto durable = store->flush();
        if (!durable.ok()) {
            state.SkipWithError(durable.status().to_string().c_str());
            return;
        }
        benchmark::DoNotOptimize(*durable);
        if (store->size_bytes() > kMaxBenchLedgerBytes) {
            state.PauseTiming();
            if (!store->truncate(store->first_seqno() - 1).ok()) {
                state.SkipWithError("truncate failed");
                return;
            }
            state.ResumeTiming();
        }
    }
    state.SetItemsProcessed(state.iterations() * batch);
    state.SetBytesProcessed(state.iterations() * batch * static_cast<int64_t>(kEntrySize));
}

// The same bytes (entry plus frame overhead) with write(2), and fdatasync per batch.
void run_raw(benchmark::State& state, int batch, bool sync) {
    TempDir tmp;
    std::string path = tmp.path() + "/raw";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        state.SkipWithError("cannot create the raw file");
        return;
    }
    const Bytes frame(kEntrySize + kFrameOverhead, 0x5a);
    uint64_t written = 0;
    for (auto _ : state) {
        for (int i = 0; i < batch; ++i) {
            if (::write(fd, frame.data(), frame.size()) != static_cast<ssize_t>(frame.size())) {
                state.SkipWithError("write failed");
                break;
            }
        }
        if (sync && ::fdatasync(fd) != 0) {
            state.SkipWithError("fdatasync failed");
        }
        written += batch * frame.size();
        if (written > kMaxBenchLedgerBytes) {
            state.PauseTiming();
            written = ::ftruncate(fd, 0) == 0 ? 0 : written;
            state.ResumeTiming();
        }
    }
    ::close(fd);
    state.SetItemsProcessed(state.iterations() * batch);
    state.SetBytesProcessed(state.iterations() * batch * static_cast<int64_t>(kEntrySize));
}

void BM_Posix_coffer(benchmark::State& state) {
    TempDir tmp;
    PosixFileSystem fs;
    run_chunk_store(state, fs, tmp.path() + "/ledger", static_cast<int>(state.range(0)));
}

void BM_Posix_raw_write_fdatasync(benchmark::State& state) {
    run_raw(state, static_cast<int>(state.range(0)), true);
}

void BM_NoFsync_coffer(benchmark::State& state) {
    MemoryFileSystem fs;
    run_chunk_store(state, fs, "/ledger", static_cast<int>(state.range(0)));
}

void BM_NoFsync_raw_write(benchmark::State& state) {
    run_raw(state, static_cast<int>(state.range(0)), false);
}

}  // namespace

BENCHMARK(BM_Posix_coffer)->Name("BM_LedgerFlush_Batch1/coffer")->Arg(1)->UseRealTime();
BENCHMARK(BM_Posix_raw_write_fdatasync)
    ->Name("BM_LedgerFlush_Batch1/raw_write_fdatasync")
    ->Arg(1)
    ->UseRealTime();
BENCHMARK(BM_Posix_coffer)->Name("BM_LedgerFlush_Batch64/coffer")->Arg(64)->UseRealTime();
BENCHMARK(BM_Posix_raw_write_fdatasync)
    ->Name("BM_LedgerFlush_Batch64/raw_write_fdatasync")
    ->Arg(64)
    ->UseRealTime();
BENCHMARK(BM_Posix_coffer)->Name("BM_LedgerFlush_Batch1024/coffer")->Arg(1024)->UseRealTime();
BENCHMARK(BM_Posix_raw_write_fdatasync)
    ->Name("BM_LedgerFlush_Batch1024/raw_write_fdatasync")
    ->Arg(1024)
    ->UseRealTime();
BENCHMARK(BM_NoFsync_coffer)->Name("BM_LedgerFlush_NoFsync_Batch1024/coffer")->Arg(1024);
BENCHMARK(BM_NoFsync_raw_write)->Name("BM_LedgerFlush_NoFsync_Batch1024/raw_write")->Arg(1024);

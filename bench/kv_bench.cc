// KV commit and write-set serialisation, each beside a raw baseline doing the same data
// movement without the store's versioning, conflict checks or format checks.
#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "kv/store.h"
#include "kv/write_set.h"

namespace {

using coffer::Bytes;
using coffer::kv::Store;
using coffer::kv::Transaction;
using coffer::kv::Visibility;
using coffer::kv::WriteSet;

constexpr size_t kValueSize = 100;
constexpr std::string_view kMap = "bench";

Bytes key_for(int64_t i) {
    std::string s = "key-" + std::to_string(i);
    return Bytes(s.begin(), s.end());
}

// One transaction of `keys` puts of fresh keys, committed.
void commit_keys(benchmark::State& state, int keys) {
    Store store;
    const Bytes value(kValueSize, 0x5a);
    int64_t next = 0;
    for (auto _ : state) {
        Transaction tx = store.begin();
        for (int k = 0; k < keys; ++k) {
            if (!tx.put(kMap, key_for(next++), value).ok()) {
                state.SkipWithError("put failed");
                return;
            }
        }
        auto r = store.commit(std::move(tx));
        if (!r.ok()) {
            state.SkipWithError("commit failed");
            return;
        }
        benchmark::DoNotOptimize(r->id);
    }
    state.SetItemsProcessed(state.iterations() * keys);
}

// The same inserts into a plain std::map under a mutex.
void raw_std_map_keys(benchmark::State& state, int keys) {
    std::mutex mu;
    std::map<Bytes, Bytes> map;
    const Bytes value(kValueSize, 0x5a);
    int64_t next = 0;
    for (auto _ : state) {
        std::lock_guard lock(mu);
        for (int k = 0; k < keys; ++k) {
            map[key_for(next++)] = value;
        }
        benchmark::DoNotOptimize(map.size());
    }
    state.SetItemsProcessed(state.iterations() * keys);
}

void BM_KvCommit_1Key_coffer(benchmark::State& state) {
    commit_keys(state, 1);
}
void BM_KvCommit_1Key_raw_std_map(benchmark::State& state) {
    raw_std_map_keys(state, 1);
}
void BM_KvCommit_10Keys_coffer(benchmark::State& state) {
    commit_keys(state, 10);
}
void BM_KvCommit_10Keys_raw_std_map(benchmark::State& state) {
    raw_std_map_keys(state, 10);
}

WriteSet ten_key_write_set() {
    WriteSet ws;
    for (int i = 0; i < 10; ++i) {
        ws.maps[std::string(kMap)][key_for(i)] = Bytes(kValueSize, static_cast<uint8_t>(i));
    }
    return ws;
}

void BM_WriteSetSerialize_10Keys_coffer(benchmark::State& state) {
    WriteSet ws = ten_key_write_set();
    for (auto _ : state) {
        Bytes out = coffer::kv::serialize_write_set(ws, Visibility::kPrivate);
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(ws.size_bytes()));
}

void BM_WriteSetDeserialize_10Keys_coffer(benchmark::State& state) {
    Bytes data = coffer::kv::serialize_write_set(ten_key_write_set(), Visibility::kPrivate);
    for (auto _ : state) {
        auto ws = coffer::kv::deserialize_write_set(data, Visibility::kPrivate);
        if (!ws.ok()) {
            state.SkipWithError("deserialize failed");
            return;
        }
        benchmark::DoNotOptimize(ws->maps.size());
    }
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(data.size()));
}

// The payload bytes (keys and values) of the same write set copied into one vector.
void BM_WriteSetSerialize_10Keys_raw_memcpy(benchmark::State& state) {
    WriteSet ws = ten_key_write_set();
    const auto& entries = ws.maps.begin()->second;
    for (auto _ : state) {
        Bytes out(ws.size_bytes());
        size_t at = 0;
        for (const auto& [key, value] : entries) {
            std::memcpy(out.data() + at, key.data(), key.size());
            at += key.size();
            std::memcpy(out.data() + at, value->data(), value->size());
            at += value->size();
        }
        benchmark::DoNotOptimize(out.data());
    }
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(ws.size_bytes()));
}

BENCHMARK(BM_KvCommit_1Key_coffer)->Name("BM_KvCommit_1Key/coffer");
BENCHMARK(BM_KvCommit_1Key_raw_std_map)->Name("BM_KvCommit_1Key/raw_std_map");
BENCHMARK(BM_KvCommit_10Keys_coffer)->Name("BM_KvCommit_10Keys/coffer");
BENCHMARK(BM_KvCommit_10Keys_raw_std_map)->Name("BM_KvCommit_10Keys/raw_std_map");
BENCHMARK(BM_WriteSetSerialize_10Keys_coffer)->Name("BM_WriteSetSerialize_10Keys/coffer");
BENCHMARK(BM_WriteSetSerialize_10Keys_raw_memcpy)->Name("BM_WriteSetSerialize_10Keys/raw_memcpy");
BENCHMARK(BM_WriteSetDeserialize_10Keys_coffer)->Name("BM_WriteSetDeserialize_10Keys/coffer");
BENCHMARK(BM_WriteSetSerialize_10Keys_raw_memcpy)->Name("BM_WriteSetDeserialize_10Keys/raw_memcpy");

}  // namespace

// The verifiable ledger layer beside the bare OpenSSL / system work it is built on, in pairs
// `<case>/coffer` and `<case>/raw_<what>` (bench_main.cc prints the ratios):
//
//   BM_MerkleAppend            MerkleTree::append vs one SHA-256 of a 65-byte node (the
//                              amortised cost of an append is one interior hash)
//   BM_MerkleProof_1M          inclusion_proof in a tree of 2^20 + 12345 leaves vs as many
//                              SHA-256 calls as the path has hashes
//   BM_MerkleVerify_1M         verify_inclusion vs the same number of SHA-256 calls
//   BM_EntryEncode_1KiB        EntryEncoder::encode of a write set with a 1 KiB private value
//                              vs raw AES-256-GCM (EVP) of the same serialized bytes
//   BM_LedgerCommit_Memory     Store::commit through the Ledger hook on MemoryFileSystem,
//                              signing and flushing every 64 entries, vs Store::commit alone
//   BM_LedgerCommit_Fsync64    the same on PosixFileSystem in /tmp (one fsync per 64
//                              entries) vs write(2) of 1 KiB per entry + fdatasync per 64
//   BM_RecoveryReplay_10k      what disaster recovery replays (docs/recovery.md): a
//                              public-only open of a 10,000-entry ledger, then a full open
//                              with the secrets, vs the full open a plain restart does
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "crypto/ecdsa.h"
#include "crypto/random.h"
#include "crypto/sha256.h"
#include "crypto/x509.h"
#include "kv/store.h"
#include "ledger/entry.h"
#include "ledger/ledger.h"
#include "ledger/memory_file_system.h"
#include "ledger/merkle.h"

namespace {

using coffer::Bytes;
using coffer::ByteSpan;
namespace crypto = coffer::crypto;
namespace kv = coffer::kv;
namespace ledger = coffer::ledger;

constexpr size_t kValueSize = 1024;
constexpr uint64_t kSignEvery = 64;
constexpr uint64_t kProofTreeSize = (uint64_t{1} << 20) + 12345;
// The append benchmark starts a fresh tree past this many leaves, to bound memory.
constexpr uint64_t kMaxAppendTreeLeaves = uint64_t{1} << 22;

class TempDir {
  public:
    TempDir() {
        std::string tmpl = "/tmp/coffer_ledger_parts_bench_XXXXXX";
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

ledger::Hash leaf_of(uint64_t i) {
    Bytes b;
    coffer::put_u64(b, i);
    return crypto::sha256(b);
}

void raw_sha256_calls(benchmark::State& state, size_t calls) {
    unsigned char node[65] = {0x01};
    unsigned char out[32];
    for (auto _ : state) {
        for (size_t i = 0; i < calls; ++i) {
            EVP_Digest(node, sizeof(node), out, nullptr, EVP_sha256(), nullptr);
            node[1] = out[0];
        }
        benchmark::DoNotOptimize(out);
    }
}

void BM_MerkleAppend_coffer(benchmark::State& state) {
    ledger::MerkleTree tree;
    ledger::Hash leaf = leaf_of(1);
    for (auto _ : state) {
        if (tree.size() >= kMaxAppendTreeLeaves) {
            tree.truncate(0);
        }
        leaf[0]++;
        tree.append(leaf);
    }
}

void BM_MerkleAppend_raw(benchmark::State& state) {
    raw_sha256_calls(state, 1);
}

const ledger::MerkleTree& proof_tree() {
    static const ledger::MerkleTree tree = [] {
        ledger::MerkleTree t;
        for (uint64_t i = 0; i < kProofTreeSize; ++i) {
            t.append(leaf_of(i));
        }
        return t;
    }();
    return tree;
}

size_t proof_length() {
    return proof_tree().inclusion_proof(777, kProofTreeSize)->size();
}

void BM_MerkleProof_coffer(benchmark::State& state) {
    const auto& tree = proof_tree();
    uint64_t index = 0;
    for (auto _ : state) {
        index = (index + 7919) % kProofTreeSize;
        benchmark::DoNotOptimize(tree.inclusion_proof(index, kProofTreeSize));
    }
}

void BM_MerkleProof_raw(benchmark::State& state) {
    raw_sha256_calls(state, proof_length());
}

void BM_MerkleVerify_coffer(benchmark::State& state) {
    const auto& tree = proof_tree();
    uint64_t index = 424242;
    auto path = tree.inclusion_proof(index, kProofTreeSize).value();
    ledger::Hash root = tree.root();
    ledger::Hash leaf = tree.leaf(index);
    for (auto _ : state) {
        bool ok = ledger::MerkleTree::verify_inclusion(leaf, index, kProofTreeSize, path, root);
        if (!ok) {
            state.SkipWithError("proof did not verify");
            break;
        }
    }
}

void BM_MerkleVerify_raw(benchmark::State& state) {
    raw_sha256_calls(state, proof_length());
}

kv::WriteSet one_kib_write_set() {
    kv::WriteSet ws;
    ws.maps["records"][coffer::to_bytes("key")] = crypto::random_bytes(kValueSize);
    ws.maps["public:log"][coffer::to_bytes("id")] = coffer::to_bytes("42");
    return ws;
}

void BM_EntryEncode_coffer(benchmark::State& state) {
    ledger::LedgerSecret secret = ledger::make_random_ledger_secret(1);
    ledger::EntryEncoder encoder;
    kv::WriteSet ws = one_kib_write_set();
    uint64_t seqno = 0;
    for (auto _ : state) {
        auto entry = encoder.encode(kv::TxId{1, ++seqno}, ws, secret, false);
        benchmark::DoNotOptimize(entry);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kValueSize));
}

void BM_EntryEncode_raw(benchmark::State& state) {
    Bytes key = crypto::random_bytes(32);
    kv::WriteSet ws = one_kib_write_set();
    Bytes plain = kv::serialize_write_set(ws, kv::Visibility::kPrivate);
    Bytes aad = kv::serialize_write_set(ws, kv::Visibility::kPublic);
    Bytes iv(12, 0);
    Bytes out(plain.size() + 16);
    EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, key.data(), nullptr);
    for (auto _ : state) {
        ++iv[11];
        int len = 0;
        EVP_EncryptInit_ex(ctx, nullptr, nullptr, nullptr, iv.data());
        EVP_EncryptUpdate(ctx, nullptr, &len, aad.data(), static_cast<int>(aad.size()));
        EVP_EncryptUpdate(ctx, out.data(), &len, plain.data(), static_cast<int>(plain.size()));
        EVP_EncryptFinal_ex(ctx, out.data() + len, &len);
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out.data() + plain.size());
        benchmark::DoNotOptimize(out.data());
    }
    EVP_CIPHER_CTX_free(ctx);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kValueSize));
}

struct NodeIdentity {
    crypto::EcdsaPrivateKey key;
    crypto::Certificate cert;
};

const NodeIdentity& node_identity() {
    static const NodeIdentity id = [] {
        auto key = crypto::EcdsaPrivateKey::generate().value();
        crypto::CertificateOptions o;
        o.common_name = "bench-node";
        o.not_before_unix = 1700000000;
        o.not_after_unix = 1900000000;
        auto cert = crypto::make_self_signed_certificate(key, o).value();
        return NodeIdentity{key, cert};
    }();
    return id;
}

void run_ledger_commits(benchmark::State& state, ledger::FileSystem& fs, const std::string& dir) {
    ledger::LedgerOptions options;
    options.dir = dir;
    options.node_id = "bench-node";
    options.node_key = node_identity().key;
    options.node_cert = node_identity().cert;
    options.signature_interval_entries = kSignEvery;
    ledger::LedgerSecrets secrets;
    (void)secrets.add(ledger::make_random_ledger_secret(1));
    kv::Store store;
    auto opened = ledger::Ledger::open(fs, options, store, secrets);
    if (!opened.ok()) {
        state.SkipWithError(opened.status().to_string().c_str());
        return;
    }
    auto& l = **opened;
    Bytes value = crypto::random_bytes(kValueSize);
    for (auto _ : state) {
        kv::Transaction tx = store.begin();
        (void)tx.put("records", coffer::as_bytes("key"), value);
        if (!store.commit(std::move(tx)).ok() || !l.maybe_sign().ok()) {
            state.SkipWithError("commit failed");
            break;
        }
        if (l.last_seqno() % kSignEvery == 0) {
            if (!l.flush().ok()) {
                state.SkipWithError("flush failed");
                break;
            }
            store.compact(store.committed());
        }
    }
}

void raw_kv_commits(benchmark::State& state) {
    kv::Store store;
    Bytes value = crypto::random_bytes(kValueSize);
    for (auto _ : state) {
        kv::Transaction tx = store.begin();
        (void)tx.put("records", coffer::as_bytes("key"), value);
        (void)store.commit(std::move(tx));
        if (store.current().seqno % kSignEvery == 0) {
            store.set_committed(store.current().seqno);
            store.compact(store.committed());
        }
    }
}

constexpr uint64_t kReplayEntries = 10000;

// A ledger of kReplayEntries entries (a public and a 1 KiB private write each, a signature
// every kSignEvery) in `fs`, made once per process.
struct ReplayLedger {
    ledger::MemoryFileSystem fs;
    ledger::LedgerSecrets secrets;
    ledger::LedgerOptions options;
    bool ok = false;
};

ReplayLedger& replay_ledger() {
    static ReplayLedger* made = [] {
        auto* r = new ReplayLedger;
        r->options.dir = "replay";
        r->options.node_id = "bench-node";
        r->options.node_key = node_identity().key;
        r->options.node_cert = node_identity().cert;
        r->options.signature_interval_entries = kSignEvery;
        (void)r->secrets.add(ledger::make_random_ledger_secret(1));
        kv::Store store;
        auto opened = ledger::Ledger::open(r->fs, r->options, store, r->secrets);
        if (!opened.ok()) {
            return r;
        }
        Bytes value = crypto::random_bytes(kValueSize);
        for (uint64_t i = 0; i < kReplayEntries; ++i) {
            kv::Transaction tx = store.begin();
            std::string key = std::to_string(i);
            (void)tx.put("public:records", coffer::as_bytes(key), coffer::as_bytes(key));
            (void)tx.put("records", coffer::as_bytes(key), value);
            if (!store.commit(std::move(tx)).ok() || !(*opened)->maybe_sign().ok()) {
                return r;
            }
        }
        r->ok = (*opened)->sign_now().ok() && (*opened)->flush().ok();
        return r;
    }();
    return *made;
}

// Opens the replay ledger into a fresh store (as a restart does); false on error.
bool open_replay_ledger(ReplayLedger& r, bool public_only) {
    ledger::LedgerOptions options = r.options;
    options.public_only_replay = public_only;
    kv::Store store;
    auto opened = ledger::Ledger::open(r.fs, options, store,
                                       public_only ? ledger::LedgerSecrets{} : r.secrets);
    return opened.ok();
}

void BM_RecoveryReplay_coffer(benchmark::State& state) {
    ReplayLedger& r = replay_ledger();
    for (auto _ : state) {
        if (!r.ok || !open_replay_ledger(r, true) || !open_replay_ledger(r, false)) {
            state.SkipWithError("replay failed");
            break;
        }
    }
}

void BM_RecoveryReplay_restart(benchmark::State& state) {
    ReplayLedger& r = replay_ledger();
    for (auto _ : state) {
        if (!r.ok || !open_replay_ledger(r, false)) {
            state.SkipWithError("replay failed");
            break;
        }
    }
}

void BM_LedgerCommitMemory_coffer(benchmark::State& state) {
    ledger::MemoryFileSystem fs;
    run_ledger_commits(state, fs, "ledger");
}

void BM_LedgerCommitMemory_raw(benchmark::State& state) {
    raw_kv_commits(state);
}

void BM_LedgerCommitFsync_coffer(benchmark::State& state) {
    TempDir tmp;
    ledger::PosixFileSystem fs;
    run_ledger_commits(state, fs, tmp.path() + "/ledger");
}

void BM_LedgerCommitFsync_raw(benchmark::State& state) {
    TempDir tmp;
    std::string path = tmp.path() + "/raw";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        state.SkipWithError("cannot create the raw file");
        return;
    }
    Bytes value = crypto::random_bytes(kValueSize);
    uint64_t n = 0;
    for (auto _ : state) {
        if (::write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
            state.SkipWithError("write failed");
            break;
        }
        if (++n % kSignEvery == 0) {
            ::fdatasync(fd);
        }
    }
    ::close(fd);
}

}  // namespace

BENCHMARK(BM_MerkleAppend_coffer)->Name("BM_MerkleAppend/coffer");
BENCHMARK(BM_MerkleAppend_raw)->Name("BM_MerkleAppend/raw_sha256");
BENCHMARK(BM_MerkleProof_coffer)->Name("BM_MerkleProof_1M/coffer");
BENCHMARK(BM_MerkleProof_raw)->Name("BM_MerkleProof_1M/raw_sha256_per_path_hash");
BENCHMARK(BM_MerkleVerify_coffer)->Name("BM_MerkleVerify_1M/coffer");
BENCHMARK(BM_MerkleVerify_raw)->Name("BM_MerkleVerify_1M/raw_sha256_per_path_hash");
BENCHMARK(BM_EntryEncode_coffer)->Name("BM_EntryEncode_1KiB/coffer");
BENCHMARK(BM_EntryEncode_raw)->Name("BM_EntryEncode_1KiB/raw_aes_gcm");
BENCHMARK(BM_RecoveryReplay_coffer)
    ->Name("BM_RecoveryReplay_10k/coffer")
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RecoveryReplay_restart)
    ->Name("BM_RecoveryReplay_10k/raw_restart_open")
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LedgerCommitMemory_coffer)->Name("BM_LedgerCommit_Memory/coffer")->Iterations(20000);
BENCHMARK(BM_LedgerCommitMemory_raw)
    ->Name("BM_LedgerCommit_Memory/raw_kv_commit")
    ->Iterations(20000);
BENCHMARK(BM_LedgerCommitFsync_coffer)
    ->Name("BM_LedgerCommit_Fsync64/coffer")
    ->Iterations(4096)
    ->UseRealTime();
BENCHMARK(BM_LedgerCommitFsync_raw)
    ->Name("BM_LedgerCommit_Fsync64/raw_write_fdatasync")
    ->Iterations(4096)
    ->UseRealTime();

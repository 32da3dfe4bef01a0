#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "crypto/encoding.h"
#include "crypto/random.h"
#include "kv/store.h"
#include "ledger/chunk_store.h"
#include "ledger/ledger.h"
#include "ledger/ledger_test_util.h"
#include "ledger/memory_file_system.h"
#include "ledger/verify.h"

namespace coffer::ledger {
namespace {

using testing::identities;
using testing::put_and_commit;
using testing::test_options;

// Every map, key, value and version visible in a store.
using StoreDump = std::map<std::string, std::map<Bytes, std::pair<Bytes, kv::Seqno>>>;

StoreDump dump_with_versions(kv::Store& store) {
    StoreDump out;
    kv::Transaction tx = store.begin();
    for (const auto& [map, entries] : testing::dump_store(store)) {
        for (const auto& [key, value] : entries) {
            out[map][key] = {value, tx.get_version(map, key).value_or(0)};
        }
    }
    return out;
}

// Writes `n` transactions, each with a public and a private write, signing every 10.
void write_entries(kv::Store& store, Ledger& ledger, int n, const std::string& tag) {
    for (int i = 0; i < n; ++i) {
        kv::Transaction tx = store.begin();
        std::string key = tag + std::to_string(i);
        ASSERT_TRUE(tx.put("public:log", as_bytes(key), as_bytes("public " + key)).ok());
        ASSERT_TRUE(tx.put("private", as_bytes(key), as_bytes("private " + key)).ok());
        if (i % 7 == 3) {
            ASSERT_TRUE(tx.remove("private", as_bytes(tag + "0")).ok());
        }
        ASSERT_TRUE(store.commit(std::move(tx)).ok());
        ASSERT_TRUE(ledger.maybe_sign().ok());
    }
}

std::vector<std::string> files_under(const std::string& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
        if (e.is_regular_file()) {
            out.push_back(e.path().string());
        }
    }
    return out;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string upper(std::string s) {
    for (char& c : s) {
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    return s;
}

// Captures everything logged through spdlog's default logger while alive.
class LogCapture {
  public:
    LogCapture() : previous_(spdlog::default_logger()) {
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
        auto logger = std::make_shared<spdlog::logger>("capture", sink);
        logger->set_level(spdlog::level::trace);
        spdlog::set_default_logger(logger);
    }
    ~LogCapture() { spdlog::set_default_logger(previous_); }
    std::string text() const { return stream_.str(); }

  private:
    std::ostringstream stream_;
    std::shared_ptr<spdlog::logger> previous_;
};

TEST(LedgerCanary, PrivateValuesNeverReachDiskOrLogs) {
    testing::TempDir tmp;
    std::string dir = tmp.path() + "/ledger";
    Bytes canary = crypto::random_bytes(24);
    std::string forms[] = {to_string(canary), to_hex(canary), upper(to_hex(canary)),
                           crypto::base64_encode(canary)};
    const std::string public_marker = "public-marker-" + to_hex(crypto::random_bytes(8));

    LogCapture logs;
    {
        PosixFileSystem fs;
        kv::Store store;
        auto ledger = Ledger::open(fs, test_options(dir), store, testing::test_secrets());
        ASSERT_TRUE(ledger.ok()) << ledger.status().to_string();
        kv::Transaction tx = store.begin();
        ASSERT_TRUE(tx.put("secrets", as_bytes("raw"), canary).ok());
        ASSERT_TRUE(tx.put("secrets", as_bytes("hex"), as_bytes(forms[1])).ok());
        ASSERT_TRUE(tx.put("secrets", as_bytes("HEX"), as_bytes(forms[2])).ok());
        ASSERT_TRUE(tx.put("secrets", as_bytes("b64"), as_bytes(forms[3])).ok());
        ASSERT_TRUE(tx.put("secrets", canary, as_bytes("canary as a key")).ok());
        ASSERT_TRUE(tx.put("public:info", as_bytes("marker"), as_bytes(public_marker)).ok());
        ASSERT_TRUE(store.commit(std::move(tx)).ok());
        write_entries(store, **ledger, 15, "filler");
        ASSERT_TRUE((*ledger)->sign_now().ok());
        ASSERT_TRUE((*ledger)->flush().ok());
        auto receipt = (*ledger)->receipt(1, true);
        ASSERT_TRUE(receipt.ok()) << receipt.status().to_string();
        spdlog::debug("receipt {}", receipt_to_json(*receipt));
        auto verified = verify_ledger_directory(fs, dir, identities().service_cert);
        ASSERT_TRUE(verified.ok()) << verified.status().to_string();
    }

    auto files = files_under(tmp.path());
    ASSERT_FALSE(files.empty());
    bool public_seen = false;
    for (const std::string& path : files) {
        std::string content = read_file(path);
        for (const std::string& form : forms) {
            EXPECT_EQ(content.find(form), std::string::npos) << "canary found in " << path;
        }
        public_seen = public_seen || content.find(public_marker) != std::string::npos;
    }
    EXPECT_TRUE(public_seen) << "the scan must find the public value";
    std::string log_text = logs.text();
    EXPECT_FALSE(log_text.empty());
    for (const std::string& form : forms) {
        EXPECT_EQ(log_text.find(form), std::string::npos) << "canary found in the log";
    }
}

TEST(Ledger, ReopenWithAnotherSecretFailsNamingTheEntry) {
    MemoryFileSystem fs;
    {
        kv::Store store;
        auto ledger = Ledger::open(fs, test_options("l"), store, testing::test_secrets()).value();
        write_entries(store, *ledger, 4, "a");
        ASSERT_TRUE(ledger->sign_now().ok());
        ASSERT_TRUE(ledger->flush().ok());
    }
    kv::Store store;
    auto wrong = Ledger::open(fs, test_options("l"), store, testing::test_secrets());
    ASSERT_FALSE(wrong.ok());
    EXPECT_EQ(wrong.status().code(), Errc::kCrypto);
    EXPECT_NE(wrong.status().message().find("entry 1 ("), std::string::npos)
        << wrong.status().to_string();
}

// The secret must stay the same across reopen; keep it in one place.
class LedgerReopenTest : public ::testing::Test {
  protected:
    std::unique_ptr<Ledger> open(kv::Store& store, const std::string& dir = "l") {
        auto ledger = Ledger::open(fs_, test_options(dir), store, secrets_);
        EXPECT_TRUE(ledger.ok()) << ledger.status().to_string();
        return ledger.ok() ? std::move(ledger).value() : nullptr;
    }

    MemoryFileSystem fs_;
    LedgerSecrets secrets_ = testing::test_secrets();
};

TEST_F(LedgerReopenTest, ReopenGivesIdenticalStateRootAndAHigherView) {
    StoreDump before;
    Hash root_before{};
    kv::TxId last_before;
    {
        kv::Store store;
        auto ledger = open(store);
        write_entries(store, *ledger, 40, "a");
        ASSERT_TRUE(ledger->sign_now().ok());
        ASSERT_TRUE(ledger->flush().ok());
        before = dump_with_versions(store);
        root_before = ledger->root();
        last_before = store.current();
    }
    kv::Store store;
    auto ledger = open(store);
    ASSERT_NE(ledger, nullptr);
    EXPECT_EQ(dump_with_versions(store), before);
    EXPECT_EQ(store.current(), last_before);
    EXPECT_EQ(ledger->root(), root_before);
    EXPECT_EQ(ledger->committed(), last_before.seqno);
    EXPECT_EQ(store.committed(), last_before.seqno);

    ASSERT_TRUE(put_and_commit(store, "private", "after", "reopen").ok());
    EXPECT_GT(store.current().view, last_before.view);
    EXPECT_EQ(store.current().seqno, last_before.seqno + 1);
    ASSERT_TRUE(ledger->sign_now().ok());
    ASSERT_TRUE(ledger->flush().ok());
    auto summary = verify_ledger_directory(fs_, "l", identities().service_cert);
    ASSERT_TRUE(summary.ok()) << summary.status().to_string();
    EXPECT_EQ(summary->entries, last_before.seqno + 2);
    EXPECT_EQ(summary->unsigned_tail, 0u);
}

// Disaster recovery's first phase: the public part of every entry is replayed without any
// secret, private maps stay empty, new public entries are written under a secret made above
// every version used, and a full reopen with the old and the new secret reads everything.
TEST_F(LedgerReopenTest, PublicOnlyReplayKeepsPrivateMapsEmptyUntilReopenedWithSecrets) {
    {
        kv::Store store;
        auto ledger = open(store);
        ASSERT_TRUE(put_and_commit(store, "public:records", "p", "public value").ok());
        ASSERT_TRUE(put_and_commit(store, "records", "s", "private value").ok());
        ASSERT_TRUE(ledger->sign_now().ok());
        ASSERT_TRUE(ledger->flush().ok());
    }
    LedgerOptions options = test_options("l");
    options.public_only_replay = true;
    LedgerSecret fresh = make_random_ledger_secret(0);
    {
        kv::Store store;
        auto ledger = Ledger::open(fs_, options, store, LedgerSecrets{});
        ASSERT_TRUE(ledger.ok()) << ledger.status().to_string();
        kv::Transaction tx = store.begin();
        ASSERT_TRUE(tx.get("public:records", as_bytes("p")).has_value());
        EXPECT_FALSE(tx.get("records", as_bytes("s")).has_value());
        EXPECT_EQ((*ledger)->max_secret_version_used(), 1u);
        // Nothing can be written before a secret is added.
        EXPECT_FALSE(put_and_commit(store, "public:records", "q", "x").ok());
        fresh.version = (*ledger)->max_secret_version_used() + 1;
        ASSERT_TRUE((*ledger)->add_secret(fresh).ok());
        ASSERT_TRUE(put_and_commit(store, "public:records", "q", "after recovery").ok());
        ASSERT_TRUE((*ledger)->sign_now().ok());
        ASSERT_TRUE((*ledger)->flush().ok());
    }
    LedgerSecrets all = secrets_;
    ASSERT_TRUE(all.add(fresh).ok());
    kv::Store store;
    auto ledger = Ledger::open(fs_, test_options("l"), store, all);
    ASSERT_TRUE(ledger.ok()) << ledger.status().to_string();
    kv::Transaction tx = store.begin();
    EXPECT_EQ(to_string(*tx.get("records", as_bytes("s"))), "private value");
    EXPECT_EQ(to_string(*tx.get("public:records", as_bytes("q"))), "after recovery");
    // Without the recovered secrets the full replay names what is missing.
    kv::Store other;
    LedgerSecrets only_fresh;
    ASSERT_TRUE(only_fresh.add(fresh).ok());
    auto missing = Ledger::open(fs_, test_options("l"), other, only_fresh);
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.status().message().find("needs ledger secret version 1"), std::string::npos)
        << missing.status().to_string();
}

// Two threads that both find a signature due (a node's replication and background threads)
// sign once: a signature entry never directly follows another one.
TEST_F(LedgerReopenTest, ConcurrentMaybeSignNeverSignsASignature) {
    kv::Store store;
    LedgerOptions options = test_options("l");
    options.signature_interval_entries = 1;
    auto opened = Ledger::open(fs_, options, store, secrets_);
    ASSERT_TRUE(opened.ok()) << opened.status().to_string();
    Ledger& ledger = **opened;
    std::atomic<bool> done{false};
    auto signer = [&] {
        while (!done.load()) {
            (void)ledger.maybe_sign();
        }
    };
    std::thread a(signer);
    std::thread b(signer);
    for (int i = 0; i < 200; ++i) {
        ASSERT_TRUE(put_and_commit(store, "public:records", std::to_string(i), "v").ok());
    }
    done.store(true);
    a.join();
    b.join();
    bool previous_was_signature = false;
    for (uint64_t seqno = 1; seqno <= ledger.last_seqno(); ++seqno) {
        auto entry = parse_entry(ledger.entry_bytes(seqno).value());
        ASSERT_TRUE(entry.ok());
        bool signature = entry->header.is_signature();
        EXPECT_FALSE(signature && previous_was_signature) << "entry " << seqno;
        previous_was_signature = signature;
    }
}

TEST_F(LedgerReopenTest, ViewNeverRepeatsAcrossCrashesWithoutDurableWrites) {
    uint64_t last_view = 0;
    for (int round = 0; round < 3; ++round) {
        kv::Store store;
        auto ledger = open(store);
        ASSERT_NE(ledger, nullptr);
        ASSERT_TRUE(put_and_commit(store, "private", "k", "v" + std::to_string(round)).ok());
        EXPECT_GT(store.current().view, last_view);
        last_view = store.current().view;
        // Never flushed: the entry is lost, but its view is not reused.
        ledger.reset();
        fs_.crash();
    }
}

TEST_F(LedgerReopenTest, TornLastEntryIsRepairedOnReopen) {
    uint64_t last = 0;
    StoreDump expected;
    {
        kv::Store store;
        auto ledger = open(store);
        write_entries(store, *ledger, 12, "t");
        ASSERT_TRUE(ledger->sign_now().ok());
        ASSERT_TRUE(ledger->flush().ok());
        expected = dump_with_versions(store);
        ASSERT_TRUE(put_and_commit(store, "private", "torn", "never committed").ok());
        ASSERT_TRUE(ledger->flush().ok());
        last = ledger->last_seqno();
    }
    // Cut the last chunk in the middle of its last entry.
    std::string file;
    uint64_t offset = 0;
    {
        auto ro = ChunkStore::open_read_only(fs_, "l", nullptr).value();
        auto loc = ro->locate(last).value();
        file = loc.file;
        offset = loc.offset;
    }
    Bytes content = fs_.read_file(file).value();
    content.resize(offset + kFrameHeaderSize + 20);
    ASSERT_TRUE(fs_.write_file(file, content).ok());

    kv::Store store;
    auto ledger = open(store);
    ASSERT_NE(ledger, nullptr);
    EXPECT_EQ(ledger->last_seqno(), last - 1);
    EXPECT_EQ(dump_with_versions(store), expected);
    EXPECT_EQ(ledger->tx_status(kv::TxId{1, last}), TxStatus::kUnknown);
    ASSERT_TRUE(put_and_commit(store, "private", "new", "value").ok());
    ASSERT_TRUE(ledger->sign_now().ok());
    ASSERT_TRUE(ledger->flush().ok());
    EXPECT_EQ(ledger->tx_status(kv::TxId{1, last}), TxStatus::kInvalid);
    EXPECT_TRUE(verify_ledger_directory(fs_, "l", identities().service_cert).ok());
}

TEST_F(LedgerReopenTest, FlippedByteIsFoundWithItsSeqnoAndFile) {
    {
        kv::Store store;
        auto ledger = open(store);
        write_entries(store, *ledger, 25, "f");
        ASSERT_TRUE(ledger->sign_now().ok());
        ASSERT_TRUE(put_and_commit(store, "private", "tail", "unsigned").ok());
        ASSERT_TRUE(ledger->flush().ok());
    }
    // Map every byte of every chunk to the seqno whose frame holds it.
    struct Span {
        std::string file;
        uint64_t begin;
        uint64_t end;
        uint64_t seqno;
    };
    std::vector<Span> spans;
    {
        auto ro = ChunkStore::open_read_only(fs_, "l", nullptr).value();
        for (uint64_t s = 1; s <= ro->last_seqno(); ++s) {
            auto loc = ro->locate(s).value();
            if (!spans.empty() && spans.back().file == loc.file) {
                spans.back().end = loc.offset;
            }
            spans.push_back(Span{loc.file, loc.offset, 0, s});
        }
        for (auto& span : spans) {
            if (span.end == 0) {
                span.end = fs_.read_file(span.file).value().size();
            }
        }
    }
    ASSERT_GE(spans.size(), 26u);
    int flips = 0;
    for (size_t i = 0; i < spans.size(); ++i) {
        const Span& span = spans[i];
        Bytes original = fs_.read_file(span.file).value();
        uint64_t step = std::max<uint64_t>(1, (span.end - span.begin) / 7);
        for (uint64_t off = span.begin; off < span.end; off += step) {
            Bytes changed = original;
            changed[off] ^= 0x40;
            ASSERT_TRUE(fs_.write_file(span.file, changed).ok());
            auto verified = verify_ledger_directory(fs_, "l", identities().service_cert);
            ASSERT_FALSE(verified.ok()) << "flip at " << span.file << ":" << off;
            const std::string& msg = verified.status().message();
            EXPECT_NE(msg.find(span.file), std::string::npos) << msg;
            bool names_seqno =
                msg.find("seqno=" + std::to_string(span.seqno)) != std::string::npos ||
                msg.find("entry " + std::to_string(span.seqno) + " ") != std::string::npos;
            EXPECT_TRUE(names_seqno) << "expected seqno " << span.seqno << ": " << msg;
            if (flips % 4 == 0) {
                kv::Store store;
                auto reopened = Ledger::open(fs_, test_options("l"), store, secrets_);
                EXPECT_FALSE(reopened.ok()) << "flip at " << span.file << ":" << off;
            }
            ++flips;
        }
        ASSERT_TRUE(fs_.write_file(span.file, original).ok());
    }
    EXPECT_GT(flips, 150);
    EXPECT_TRUE(verify_ledger_directory(fs_, "l", identities().service_cert).ok());
}

TEST_F(LedgerReopenTest, VerifySummaryReportsSignaturesAndTail) {
    kv::Store store;
    auto ledger = open(store);
    write_entries(store, *ledger, 23, "s");  // signatures after every 10 entries
    ASSERT_TRUE(ledger->flush().ok());
    auto summary = verify_ledger_directory(fs_, "l", identities().service_cert);
    ASSERT_TRUE(summary.ok()) << summary.status().to_string();
    EXPECT_EQ(summary->signatures, 2u);
    EXPECT_EQ(summary->entries, 25u);
    ASSERT_TRUE(summary->last_signed.has_value());
    EXPECT_EQ(summary->last_signed->seqno, 22u);
    EXPECT_EQ(summary->unsigned_tail, 3u);
    EXPECT_EQ(*summary->root, ledger->root());

    auto wrong_service =
        verify_ledger_directory(fs_, "l", testing::other_identities().service_cert);
    EXPECT_FALSE(wrong_service.ok());
    EXPECT_TRUE(verify_ledger_directory(fs_, "l", std::nullopt).ok());

    int shown = 0;
    Status s = for_each_ledger_entry(fs_, "l", 20, std::nullopt, [&](const LedgerEntryInfo& e) {
        EXPECT_EQ(e.tx_id.seqno, static_cast<uint64_t>(20 + shown));
        EXPECT_EQ(e.signature.has_value(), e.tx_id.seqno == 22);
        ++shown;
        return Status::ok_status();
    });
    EXPECT_TRUE(s.ok()) << s.to_string();
    EXPECT_EQ(shown, 6);
}

TEST_F(LedgerReopenTest, ApplicationsCannotWriteTheSignatureMap) {
    kv::Store store;
    auto ledger = open(store);
    ASSERT_TRUE(put_and_commit(store, "public:x", "k", "v").ok());
    Status forged = put_and_commit(store, std::string(kSignaturesMap), "latest", "forged");
    ASSERT_FALSE(forged.ok());
    EXPECT_EQ(forged.code(), Errc::kPermissionDenied);
    EXPECT_EQ(store.current().seqno, 1u);
    EXPECT_EQ(ledger->last_seqno(), 1u);
}

TEST_F(LedgerReopenTest, TxStatusMovesFromPendingToCommitted) {
    kv::Store store;
    auto ledger = open(store);
    ASSERT_TRUE(put_and_commit(store, "private", "a", "1").ok());
    kv::TxId id = store.current();
    EXPECT_EQ(ledger->tx_status(id), TxStatus::kPending);
    EXPECT_EQ(ledger->tx_status(kv::TxId{id.view, id.seqno + 5}), TxStatus::kUnknown);
    ASSERT_TRUE(ledger->sign_now().ok());
    EXPECT_EQ(ledger->tx_status(id), TxStatus::kPending);  // signed but not durable
    ASSERT_TRUE(ledger->flush().ok());
    EXPECT_EQ(ledger->tx_status(id), TxStatus::kCommitted);
    EXPECT_EQ(ledger->tx_status(kv::TxId{id.view + 1, id.seqno}), TxStatus::kInvalid);

    // An unsigned tail rolled back and overwritten in a later view becomes Invalid.
    ASSERT_TRUE(put_and_commit(store, "private", "b", "2").ok());
    kv::TxId lost = store.current();
    ASSERT_TRUE(ledger->rollback(ledger->committed()).ok());
    EXPECT_EQ(ledger->tx_status(lost), TxStatus::kUnknown);
    ASSERT_TRUE(put_and_commit(store, "private", "c", "3").ok());
    EXPECT_GT(store.current().view, lost.view);
    EXPECT_EQ(ledger->tx_status(lost), TxStatus::kUnknown);
    ASSERT_TRUE(ledger->sign_now().ok());
    ASSERT_TRUE(ledger->flush().ok());
    EXPECT_EQ(ledger->tx_status(lost), TxStatus::kInvalid);
    EXPECT_EQ(ledger->tx_status(store.current()), TxStatus::kCommitted);
}

TEST_F(LedgerReopenTest, FollowerLedgerIsByteIdentical) {
    kv::Store leader_store;
    auto leader = open(leader_store, "leader");
    kv::Store follower_store;
    auto follower = open(follower_store, "follower");
    ASSERT_TRUE(leader && follower);

    uint64_t replicated = 0;
    auto replicate = [&]() {
        for (uint64_t s = replicated + 1; s <= leader->last_seqno(); ++s) {
            Status st = follower->append_replicated(leader->entry_bytes(s).value());
            ASSERT_TRUE(st.ok()) << st.to_string();
        }
        replicated = leader->last_seqno();
    };
    write_entries(leader_store, *leader, 30, "r");
    ASSERT_TRUE(leader->sign_now().ok());
    replicate();

    // The follower refuses out-of-order and tampered entries.
    Bytes first = leader->entry_bytes(1).value();
    EXPECT_EQ(follower->append_replicated(first).code(), Errc::kFailedPrecondition);
    ASSERT_TRUE(put_and_commit(leader_store, "private", "x", "y").ok());
    Bytes next = leader->entry_bytes(leader->last_seqno()).value();
    next[next.size() - 3] ^= 1;
    EXPECT_EQ(follower->append_replicated(next).code(), Errc::kCrypto);

    // An unsigned tail, rolled back on both, then writing goes on.
    replicate();
    ASSERT_TRUE(put_and_commit(leader_store, "public:log", "z", "tail").ok());
    replicate();
    ASSERT_TRUE(leader->flush().ok());
    ASSERT_TRUE(follower->flush().ok());
    uint64_t signed_at = leader->committed();
    ASSERT_TRUE(leader->rollback(signed_at).ok());
    ASSERT_TRUE(follower->rollback(signed_at).ok());
    replicated = signed_at;
    EXPECT_EQ(testing::dump_store(leader_store), testing::dump_store(follower_store));
    write_entries(leader_store, *leader, 12, "after");
    ASSERT_TRUE(leader->sign_now().ok());
    replicate();
    ASSERT_TRUE(leader->flush().ok());
    ASSERT_TRUE(follower->flush().ok());

    EXPECT_EQ(leader->root(), follower->root());
    EXPECT_EQ(testing::dump_store(leader_store), testing::dump_store(follower_store));
    auto leader_files = leader->chunk_files();
    auto follower_files = follower->chunk_files();
    ASSERT_EQ(leader_files.size(), follower_files.size());
    ASSERT_GE(leader_files.size(), 2u);
    for (size_t i = 0; i < leader_files.size(); ++i) {
        EXPECT_EQ(leader_files[i].substr(std::string("leader").size()),
                  follower_files[i].substr(std::string("follower").size()));
        EXPECT_EQ(fs_.read_file(leader_files[i]).value(), fs_.read_file(follower_files[i]).value())
            << leader_files[i];
    }
    EXPECT_TRUE(verify_ledger_directory(fs_, "follower", identities().service_cert).ok());
}

TEST_F(LedgerReopenTest, ConsensusViewsAreNeverBumpedByTheLedger) {
    LedgerOptions options = test_options("c");
    options.commit_at_durable_signature = false;
    options.views_from_consensus = true;
    kv::View used_view = 0;
    {
        kv::Store store;
        store.set_view(3);  // the Raft term this node leads in
        auto ledger = Ledger::open(fs_, options, store, secrets_);
        ASSERT_TRUE(ledger.ok()) << ledger.status().to_string();
        write_entries(store, **ledger, 5, "t");
        ASSERT_TRUE((*ledger)->sign_now().ok());
        ASSERT_TRUE((*ledger)->flush().ok());
        EXPECT_EQ((*ledger)->committed(), 0u);  // only commit_to moves it
        ASSERT_TRUE((*ledger)->commit_to((*ledger)->last_seqno()).ok());
        ASSERT_TRUE(put_and_commit(store, "private", "tail", "x").ok());
        ASSERT_TRUE((*ledger)->rollback((*ledger)->committed()).ok());
        EXPECT_EQ(store.view(), 3u);  // no bump: a new term comes from consensus
        used_view = store.current().view;
        ASSERT_TRUE((*ledger)->flush().ok());
    }
    kv::Store store;
    auto reopened = Ledger::open(fs_, options, store, secrets_);
    ASSERT_TRUE(reopened.ok()) << reopened.status().to_string();
    EXPECT_EQ(store.view(), used_view);  // open keeps the last view too
    // Only closed chunks carry a commit marker; consensus learns the rest from the leader.
    EXPECT_LE((*reopened)->committed(), (*reopened)->last_seqno());

    LedgerOptions bad = options;
    bad.commit_at_durable_signature = true;
    kv::Store other;
    EXPECT_EQ(Ledger::open(fs_, bad, other, secrets_).status().code(), Errc::kInvalidArgument);
}

TEST_F(LedgerReopenTest, ForgedSignatureEntryIsRefusedByAFollower) {
    kv::Store leader_store;
    auto leader = open(leader_store, "leader");
    kv::Store follower_store;
    auto follower = open(follower_store, "follower");
    write_entries(leader_store, *leader, 3, "g");
    for (uint64_t s = 1; s <= 3; ++s) {
        ASSERT_TRUE(follower->append_replicated(leader->entry_bytes(s).value()).ok());
    }
    // A signature over a different root, correctly signed by the node key.
    Hash wrong_root = leader->root();
    wrong_root[0] ^= 1;
    auto record = make_signature_record(kv::TxId{leader_store.view(), 4}, wrong_root, "node-1",
                                        identities().node_cert, identities().node_key);
    ASSERT_TRUE(record.ok());
    EntryEncoder encoder;
    auto bytes = encoder.encode(kv::TxId{leader_store.view(), 4}, signature_write_set(*record),
                                *secrets_.current(), true);
    ASSERT_TRUE(bytes.ok());
    Status refused = follower->append_replicated(*bytes);
    EXPECT_EQ(refused.code(), Errc::kCorrupt) << refused.to_string();
    EXPECT_EQ(follower->last_seqno(), 3u);
}

// What an attacker with write access to the ledger directory, but no secret or key, can
// append: a public-only entry (no GCM tag) with correct frame checksums.
void forge_public_entry(FileSystem& fs, const std::string& dir) {
    ChunkStoreOptions co;
    co.dir = dir;
    auto chunks = ChunkStore::open(fs, co, nullptr).value();
    uint64_t seqno = chunks->last_seqno() + 1;
    Bytes last = chunks->read(seqno - 1).value();
    EntryHeader previous = parse_entry_header(ByteSpan(last).first(kEntryHeaderSize)).value();
    kv::WriteSet ws;
    ws.maps["public:gov"][to_bytes("member")] = to_bytes("attacker");
    Bytes pub = kv::serialize_write_set(ws, kv::Visibility::kPublic);
    EntryHeader h;
    h.secret_version = previous.secret_version;
    h.view = previous.view;
    h.seqno = seqno;
    h.public_size = static_cast<uint32_t>(pub.size());
    Bytes entry = encode_entry_header(h);
    entry.insert(entry.end(), pub.begin(), pub.end());
    ASSERT_TRUE(chunks->append(seqno, entry, false).ok());
    ASSERT_TRUE(chunks->flush().ok());
}

std::vector<std::string> lines_with(const std::string& text, const std::string& needle) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        if (line.find(needle) != std::string::npos) {
            out.push_back(line);
        }
    }
    return out;
}

TEST_F(LedgerReopenTest, ForgedUnsignedEntryIsDiscardedOnOpenNeverAppliedOrSigned) {
    uint64_t signed_last = 0;
    {
        kv::Store store;
        auto ledger = open(store);
        write_entries(store, *ledger, 12, "u");
        ASSERT_TRUE(ledger->sign_now().ok());
        ASSERT_TRUE(ledger->flush().ok());
        signed_last = ledger->last_seqno();
    }
    forge_public_entry(fs_, "l");
    std::string forged_file =
        ChunkStore::open_read_only(fs_, "l", nullptr).value()->locate(signed_last + 1).value().file;

    LogCapture logs;
    kv::Store store;
    auto ledger = open(store);
    ASSERT_NE(ledger, nullptr);
    std::vector<std::string> warned = lines_with(logs.text(), "[warning]");
    ASSERT_EQ(warned.size(), 1u) << logs.text();
    EXPECT_NE(warned[0].find("ledger.unsigned_tail_discarded file=" + forged_file +
                             " from_seqno=" + std::to_string(signed_last + 1) + " count=1"),
              std::string::npos)
        << warned[0];
    EXPECT_EQ(ledger->last_seqno(), signed_last);
    EXPECT_EQ(testing::dump_store(store).count("public:gov"), 0u) << "the forgery was applied";

    ASSERT_TRUE(ledger->sign_now().ok());
    ASSERT_TRUE(ledger->flush().ok());
    auto next = parse_entry(ledger->entry_bytes(signed_last + 1).value()).value();
    EXPECT_TRUE(next.header.is_signature()) << "the next signature took the forged seqno";
    auto summary = verify_ledger_directory(fs_, "l", identities().service_cert);
    ASSERT_TRUE(summary.ok()) << summary.status().to_string();
    EXPECT_EQ(summary->entries, signed_last + 1);
    kv::Store again;
    ASSERT_NE(open(again), nullptr);
    EXPECT_EQ(testing::dump_store(again).count("public:gov"), 0u);
}

TEST_F(LedgerReopenTest, UnsignedTailIsDroppedOnRestartUnlessKeptOnPurpose) {
    StoreDump signed_state;
    kv::TxId tail{};
    {
        kv::Store store;
        auto ledger = open(store);
        write_entries(store, *ledger, 20, "s");  // signatures at 11 and 22
        signed_state = dump_with_versions(store);
        write_entries(store, *ledger, 3, "t");  // 23..25 unsigned
        ASSERT_TRUE(ledger->flush().ok());
        tail = kv::TxId{store.current().view, 23};
        EXPECT_EQ(ledger->committed(), 22u);
    }
    // keep_unsigned_tail: replayed as before.
    {
        kv::Store store;
        LedgerOptions options = test_options("l");
        options.keep_unsigned_tail = true;
        auto ledger = Ledger::open(fs_, options, store, secrets_);
        ASSERT_TRUE(ledger.ok()) << ledger.status().to_string();
        EXPECT_EQ((*ledger)->last_seqno(), 25u);
    }
    kv::Store store;
    auto ledger = open(store);
    ASSERT_NE(ledger, nullptr);
    EXPECT_EQ(ledger->last_seqno(), 22u);
    EXPECT_EQ(ledger->committed(), 22u) << "nothing committed was lost";
    EXPECT_EQ(dump_with_versions(store), signed_state);
    EXPECT_EQ(ledger->tx_status(tail), TxStatus::kUnknown);
    EXPECT_EQ(ChunkStore::open_read_only(fs_, "l", nullptr).value()->last_seqno(), 22u)
        << "cut from the chunk files";
    ASSERT_TRUE(put_and_commit(store, "private", "after", "restart").ok());
    EXPECT_GT(store.current().view, tail.view) << "a new view, as on every restart";
    ASSERT_TRUE(ledger->sign_now().ok());
    ASSERT_TRUE(ledger->flush().ok());
    EXPECT_EQ(ledger->tx_status(tail), TxStatus::kInvalid);
}

TEST_F(LedgerReopenTest, LedgerWithoutAnySignatureRestartsEmptyInANewView) {
    kv::TxId first{};
    {
        kv::Store store;
        auto ledger = open(store);
        write_entries(store, *ledger, 5, "n");
        ASSERT_TRUE(ledger->flush().ok());
        first = kv::TxId{store.current().view, 1};
    }
    kv::Store store;
    auto ledger = open(store);
    ASSERT_NE(ledger, nullptr);
    EXPECT_EQ(ledger->last_seqno(), 0u);
    EXPECT_TRUE(testing::dump_store(store).empty());
    ASSERT_TRUE(put_and_commit(store, "public:a", "k", "v").ok());
    EXPECT_EQ(store.current().seqno, 1u);
    EXPECT_GT(store.current().view, first.view);
    ASSERT_TRUE(ledger->sign_now().ok());
    ASSERT_TRUE(ledger->flush().ok());
    EXPECT_EQ(ledger->tx_status(first), TxStatus::kInvalid);
}

// Rewrites the first occurrence of `from` inside entry `seqno` (same length) and fixes the
// frame checksum, as a tool with write access could: only the Merkle root can notice.
void rewrite_entry(MemoryFileSystem& fs, const std::string& dir, uint64_t seqno,
                   const std::string& from, const std::string& to) {
    ASSERT_EQ(from.size(), to.size());
    auto loc = ChunkStore::open_read_only(fs, dir, nullptr).value()->locate(seqno).value();
    Bytes data = fs.read_file(loc.file).value();
    uint32_t size = static_cast<uint32_t>(data[loc.offset + 8]) |
                    (static_cast<uint32_t>(data[loc.offset + 9]) << 8) |
                    (static_cast<uint32_t>(data[loc.offset + 10]) << 16) |
                    (static_cast<uint32_t>(data[loc.offset + 11]) << 24);
    auto entry = data.begin() + static_cast<ptrdiff_t>(loc.offset + kFrameHeaderSize);
    auto hit = std::search(entry, entry + size, from.begin(), from.end());
    ASSERT_NE(hit, entry + size) << from;
    std::copy(to.begin(), to.end(), hit);
    crypto::Sha256Hasher hasher;
    hasher.update(ByteSpan(data.data() + loc.offset, 16));
    hasher.update(ByteSpan(&*entry, size));
    crypto::Sha256Digest digest = hasher.finish();
    std::copy(digest.begin(), digest.begin() + 8, entry + size);
    ASSERT_TRUE(fs.write_file(loc.file, data).ok());
}

TEST_F(LedgerReopenTest, ChangedEntryIsReportedWithTheRangeItsSignatureCovers) {
    {
        kv::Store store;
        auto ledger = open(store);
        write_entries(store, *ledger, 25, "c");  // signatures at 11, 22 and 28
        ASSERT_TRUE(ledger->sign_now().ok());
        ASSERT_TRUE(ledger->flush().ok());
    }
    rewrite_entry(fs_, "l", 16, "public c14", "public X14");
    auto verified = verify_ledger_directory(fs_, "l", identities().service_cert);
    ASSERT_FALSE(verified.ok());
    EXPECT_EQ(verified.status().code(), Errc::kCorrupt);
    const std::string& msg = verified.status().message();
    EXPECT_NE(msg.find("entry 22 ("), std::string::npos) << msg;
    EXPECT_NE(msg.find("the signed root over entries 1..21 differs"), std::string::npos) << msg;
    EXPECT_NE(msg.find("one of entries 12..21 (or the signature entry 11 itself) was changed"),
              std::string::npos)
        << msg;
}

TEST_F(LedgerReopenTest, MaybeSignFollowsTheEntryInterval) {
    kv::Store store;
    auto ledger = open(store);
    for (int i = 0; i < 9; ++i) {
        ASSERT_TRUE(put_and_commit(store, "public:a", "k", std::to_string(i)).ok());
        ASSERT_TRUE(ledger->maybe_sign().ok());
    }
    EXPECT_EQ(ledger->last_seqno(), 9u);
    ASSERT_TRUE(put_and_commit(store, "public:a", "k", "10").ok());
    ASSERT_TRUE(ledger->maybe_sign().ok());
    EXPECT_EQ(ledger->last_seqno(), 11u);
    ASSERT_TRUE(ledger->maybe_sign().ok());
    EXPECT_EQ(ledger->last_seqno(), 11u);
}

TEST_F(LedgerReopenTest, FullDiskDropsTheUnflushedTailAndWritingGoesOn) {
    kv::Store store;
    auto ledger = open(store);
    write_entries(store, *ledger, 5, "d");
    ASSERT_TRUE(ledger->sign_now().ok());
    ASSERT_TRUE(ledger->flush().ok());
    uint64_t durable = ledger->durable_seqno();
    fs_.set_disk_full_after(10);
    ASSERT_TRUE(put_and_commit(store, "private", "lost", "value").ok());
    auto flushed = ledger->flush();
    ASSERT_FALSE(flushed.ok());
    EXPECT_EQ(flushed.status().code(), Errc::kNoSpace);
    EXPECT_EQ(ledger->last_seqno(), durable);
    EXPECT_EQ(store.current().seqno, durable);
    fs_.clear_disk_full();
    ASSERT_TRUE(put_and_commit(store, "private", "kept", "value").ok());
    ASSERT_TRUE(ledger->sign_now().ok());
    ASSERT_TRUE(ledger->flush().ok());
    EXPECT_TRUE(verify_ledger_directory(fs_, "l", identities().service_cert).ok());
}

// ---- rekey: secrets learned from write sets ----------------------------------------------

// The tests' stand-in for the node's hook: a write to kRekeyMap carries a secret in clear
// (version as the key, the 32 key bytes as the value); kFailMap makes the hook fail.
constexpr std::string_view kRekeyMap = "public:test.rekey";
constexpr std::string_view kFailMap = "public:test.rekey_fails";

Result<std::optional<LedgerSecret>> secret_in_clear(const kv::WriteSet& ws) {
    if (ws.maps.count(std::string(kFailMap)) != 0) {
        return error(Errc::kCrypto, "update names this node but does not open");
    }
    auto it = ws.maps.find(std::string(kRekeyMap));
    if (it == ws.maps.end() || it->second.empty() || !it->second.begin()->second.has_value()) {
        return std::optional<LedgerSecret>();
    }
    uint32_t version = static_cast<uint32_t>(std::stoul(to_string(it->second.begin()->first)));
    return std::optional<LedgerSecret>(LedgerSecret{version, *it->second.begin()->second});
}

Status commit_rekey(kv::Store& store, const LedgerSecret& secret) {
    return put_and_commit(store, kRekeyMap, std::to_string(secret.version), secret.key);
}

uint32_t secret_version_of(const Ledger& ledger, uint64_t seqno) {
    Bytes bytes = ledger.entry_bytes(seqno).value();
    return parse_entry(bytes).value().header.secret_version;
}

class LedgerRekeyTest : public LedgerReopenTest {
  protected:
    std::unique_ptr<Ledger> open_learning(kv::Store& store, const std::string& dir) {
        LedgerOptions options = test_options(dir);
        options.secret_from_write_set = secret_in_clear;
        auto ledger = Ledger::open(fs_, options, store, secrets_);
        EXPECT_TRUE(ledger.ok()) << ledger.status().to_string();
        return ledger.ok() ? std::move(ledger).value() : nullptr;
    }

    LedgerSecret v2_ = make_random_ledger_secret(2);
};

TEST_F(LedgerRekeyTest, LeaderEncryptsTheUpdateUnderTheOldSecretAndLaterEntriesUnderTheNew) {
    kv::Store store;
    auto ledger = open_learning(store, "l");
    ASSERT_NE(ledger, nullptr);
    ASSERT_TRUE(put_and_commit(store, "private", "before", "1").ok());
    ASSERT_TRUE(commit_rekey(store, v2_).ok());
    uint64_t update = ledger->last_seqno();
    ASSERT_TRUE(put_and_commit(store, "private", "after", "2").ok());

    EXPECT_EQ(secret_version_of(*ledger, update - 1), 1u);
    EXPECT_EQ(secret_version_of(*ledger, update), 1u);
    EXPECT_EQ(secret_version_of(*ledger, update + 1), 2u);
    EXPECT_EQ(ledger->newest_learned_version(false), 2u);
    EXPECT_EQ(ledger->newest_learned_version(true), 0u);  // not committed yet
    ASSERT_TRUE(ledger->sign_now().ok());
    ASSERT_TRUE(ledger->flush().ok());
    EXPECT_EQ(ledger->newest_learned_version(true), 2u);
    auto learned = ledger->learned_secrets(true);
    ASSERT_EQ(learned.size(), 1u);
    EXPECT_EQ(learned[0].key, v2_.key);
}

TEST_F(LedgerRekeyTest, FollowerLearnsTheSecretInLedgerOrderAndReadsEverything) {
    kv::Store leader_store;
    auto leader = open_learning(leader_store, "leader");
    kv::Store follower_store;
    auto follower = open_learning(follower_store, "follower");
    ASSERT_TRUE(leader && follower);
    write_entries(leader_store, *leader, 5, "a");
    ASSERT_TRUE(commit_rekey(leader_store, v2_).ok());
    write_entries(leader_store, *leader, 5, "b");
    ASSERT_TRUE(leader->sign_now().ok());

    for (uint64_t s = 1; s <= leader->last_seqno(); ++s) {
        Status st = follower->append_replicated(leader->entry_bytes(s).value());
        ASSERT_TRUE(st.ok()) << "seqno " << s << ": " << st.to_string();
    }
    EXPECT_EQ(testing::dump_store(follower_store), testing::dump_store(leader_store));
    EXPECT_EQ(follower->newest_learned_version(false), 2u);

    // A follower without the hook holds only version 1 and cannot read past the update.
    kv::Store plain_store;
    auto plain = open(plain_store, "plain");
    ASSERT_NE(plain, nullptr);
    Status refused;
    for (uint64_t s = 1; s <= leader->last_seqno() && refused.ok(); ++s) {
        refused = plain->append_replicated(leader->entry_bytes(s).value());
    }
    EXPECT_EQ(refused.code(), Errc::kNotFound) << refused.to_string();
}

TEST_F(LedgerRekeyTest, ReplayAfterReopenLearnsTheSecretAgain) {
    std::map<std::string, std::map<Bytes, Bytes>> before;
    {
        kv::Store store;
        auto ledger = open_learning(store, "l");
        ASSERT_NE(ledger, nullptr);
        write_entries(store, *ledger, 3, "a");
        ASSERT_TRUE(commit_rekey(store, v2_).ok());
        write_entries(store, *ledger, 3, "b");
        ASSERT_TRUE(ledger->sign_now().ok());
        ASSERT_TRUE(ledger->flush().ok());
        before = testing::dump_store(store);
    }
    kv::Store store;
    auto ledger = open_learning(store, "l");
    ASSERT_NE(ledger, nullptr);
    EXPECT_EQ(testing::dump_store(store), before);
    EXPECT_EQ(ledger->newest_learned_version(true), 2u);
    ASSERT_TRUE(put_and_commit(store, "private", "reopened", "3").ok());
    EXPECT_EQ(secret_version_of(*ledger, ledger->last_seqno()), 2u);

    // Without the hook the entries under version 2 do not open.
    kv::Store other;
    auto blind = Ledger::open(fs_, test_options("l"), other, secrets_);
    ASSERT_FALSE(blind.ok());
    EXPECT_EQ(blind.status().code(), Errc::kNotFound) << blind.status().to_string();
}

TEST_F(LedgerRekeyTest, HookErrorRefusesTheEntryOnLeaderAndFollower) {
    kv::Store leader_store;
    LedgerOptions lenient = test_options("leader");
    auto leader = Ledger::open(fs_, lenient, leader_store, secrets_).value();
    kv::Store follower_store;
    auto follower = open_learning(follower_store, "follower");
    ASSERT_NE(follower, nullptr);
    ASSERT_TRUE(put_and_commit(leader_store, kFailMap, "k", "v").ok());
    Status refused = follower->append_replicated(leader->entry_bytes(1).value());
    EXPECT_EQ(refused.code(), Errc::kCrypto);
    EXPECT_EQ(follower->last_seqno(), 0u);
    EXPECT_TRUE(testing::dump_store(follower_store).empty());

    kv::Store store;
    auto learning = open_learning(store, "learning");
    ASSERT_NE(learning, nullptr);
    EXPECT_EQ(put_and_commit(store, kFailMap, "k", "v").code(), Errc::kCrypto);
    EXPECT_EQ(learning->last_seqno(), 0u);
    EXPECT_EQ(store.current().seqno, 0u);
    ASSERT_TRUE(put_and_commit(store, "private", "still", "writable").ok());
}

TEST_F(LedgerRekeyTest, HeldVersionWithAnotherKeyOrAnOlderVersionIsRefused) {
    kv::Store store;
    auto ledger = open_learning(store, "l");
    ASSERT_NE(ledger, nullptr);
    ASSERT_TRUE(commit_rekey(store, v2_).ok());
    // The same secret again changes nothing.
    ASSERT_TRUE(commit_rekey(store, v2_).ok());
    EXPECT_EQ(ledger->learned_secrets(false).size(), 1u);
    EXPECT_EQ(commit_rekey(store, make_random_ledger_secret(2)).code(), Errc::kCorrupt);
    EXPECT_EQ(commit_rekey(store, make_random_ledger_secret(1)).code(), Errc::kCorrupt);
    EXPECT_EQ(ledger->newest_learned_version(false), 2u);
}

TEST_F(LedgerRekeyTest, RollbackForgetsTheSecretOfADiscardedEntry) {
    kv::Store store;
    auto ledger = open_learning(store, "l");
    ASSERT_NE(ledger, nullptr);
    ASSERT_TRUE(put_and_commit(store, "private", "a", "1").ok());
    ASSERT_TRUE(ledger->sign_now().ok());
    ASSERT_TRUE(ledger->flush().ok());
    uint64_t kept = ledger->committed();
    ASSERT_TRUE(commit_rekey(store, v2_).ok());
    EXPECT_EQ(ledger->newest_learned_version(false), 2u);

    ASSERT_TRUE(ledger->rollback(kept).ok());
    EXPECT_EQ(ledger->newest_learned_version(false), 0u);
    EXPECT_TRUE(ledger->learned_secrets(false).empty());
    ASSERT_TRUE(put_and_commit(store, "private", "b", "2").ok());
    EXPECT_EQ(secret_version_of(*ledger, ledger->last_seqno()), 1u);
    // A later rekey may use the same version number with a fresh key.
    LedgerSecret again = make_random_ledger_secret(2);
    ASSERT_TRUE(commit_rekey(store, again).ok());
    ASSERT_TRUE(put_and_commit(store, "private", "c", "3").ok());
    EXPECT_EQ(secret_version_of(*ledger, ledger->last_seqno()), 2u);
    EXPECT_EQ(ledger->learned_secrets(false).at(0).key, again.key);
}

TEST_F(LedgerReopenTest, SetSignatureIntervalChangesWhenMaybeSignSigns) {
    kv::Store store;
    auto ledger = open(store);
    ASSERT_NE(ledger, nullptr);
    EXPECT_EQ(ledger->set_signature_interval(0, 10).code(), Errc::kInvalidArgument);
    EXPECT_EQ(ledger->set_signature_interval(10, 0).code(), Errc::kInvalidArgument);
    ASSERT_TRUE(ledger->set_signature_interval(3, 1000000).ok());
    for (int i = 0; i < 2; ++i) {
        ASSERT_TRUE(put_and_commit(store, "private", "k" + std::to_string(i), "v").ok());
        ASSERT_TRUE(ledger->maybe_sign().ok());
    }
    EXPECT_EQ(ledger->last_seqno(), 2u);  // 2 entries: not due yet
    ASSERT_TRUE(put_and_commit(store, "private", "k2", "v").ok());
    ASSERT_TRUE(ledger->maybe_sign().ok());
    EXPECT_EQ(ledger->last_seqno(), 4u);  // the third entry made a signature due
}

}  // namespace
}  // namespace coffer::ledger

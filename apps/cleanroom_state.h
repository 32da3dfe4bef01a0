// The clean room's stored state: map names, parties, datasets, analyses, approvals and the
// rows of committed uploads (docs/cleanroom.md, "Maps"). Every function reads or writes
// through the transaction it is given, so a caller decides which snapshot it sees and which
// writes commit together. Thread-compatible: one transaction per thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cleanroom/schema.h"
#include "common/bytes.h"
#include "common/result.h"
#include "kv/store.h"

namespace coffer::apps::cr {

// Private: the X25519 key pair, written by Node::write_genesis.
constexpr std::string_view kServiceKeyMap = "cleanroom.service_key";
constexpr std::string_view kServiceKeyKey = "current";
constexpr std::string_view kDatasetsMap = "public:cleanroom.datasets";
// Private: key "<dataset>/<version, 10 digits>/<part, 4 digits>", the plaintext CSV of one
// committed upload cut into parts of at most kRowsPartBytes (a KV value holds 16 MiB).
constexpr std::string_view kRowsMap = "cleanroom.rows";
constexpr std::string_view kAnalysesMap = "public:cleanroom.analyses";
constexpr std::string_view kApprovalsMap = "public:cleanroom.approvals";
constexpr std::string_view kRunsMap = "public:cleanroom.runs";
constexpr std::string_view kRunCounterMap = "public:cleanroom.run_counter";
constexpr std::string_view kRunCounterKey = "next";
// Private: key "<run id>/<recipient>", {"enc", "ciphertext"} hex.
constexpr std::string_view kResultsMap = "cleanroom.results";

// HPKE `info` strings and the prefix of the signed key statement (docs/cleanroom.md).
constexpr std::string_view kUploadInfo = "coffer-cleanroom-upload-v1";
constexpr std::string_view kResultInfo = "coffer-cleanroom-result-v1";
constexpr std::string_view kKeyStatementPrefix = "coffer-cleanroom-key-v1:";

// Public: key party id, {"datasets": n, "analyses": n}: what the party declared and
// proposed, for the per-party quotas below.
constexpr std::string_view kPartyCountsMap = "public:cleanroom.party_counts";

// Per-party quotas: no party fills the datasets or analyses maps that every party reads
// (declarations and analyses cannot be deleted).
constexpr int64_t kMaxDatasetsPerParty = 64;
constexpr int64_t kMaxAnalysesPerParty = 256;
// Stored plaintext bytes of one dataset, all uploads together: a run parses every upload of
// the datasets it reads into the leader's memory.
constexpr int64_t kMaxDatasetBytes = 256LL * 1024 * 1024;

constexpr size_t kRowsPartBytes = 8 * 1024 * 1024;
// Parts of one upload: kMaxUploadPlaintextBytes / kRowsPartBytes, with room to spare.
constexpr size_t kMaxRowsParts = 64;
// The most users, datasets, analyses or runs one request reads from a map. Not supported
// yet: paging through longer lists, because no client needs it at this scale; a map past
// the bound makes its listing fail with kResourceExhausted.
constexpr size_t kMaxListedEntries = 10000;

// Calls fn(key, parsed value) for every entry of `map`, in key order, stopping at fn's
// first error. Errors: fn's; kCorrupt for a value that is not a JSON object;
// kResourceExhausted beyond kMaxListedEntries entries.
Status for_each_json(kv::Transaction& tx, std::string_view map,
                     const std::function<Status(const std::string&, const nlohmann::json&)>& fn);

// A user that can take part: its certificate's commonName is unique among users and it
// registered an X25519 encryption key.
struct Party {
    std::string id;
    std::string fingerprint;
    Bytes encryption_key;  // 32 bytes
};

// Every user of the users map, by commonName.
struct PartyDirectory {
    struct User {
        std::string fingerprint;
        std::optional<Bytes> encryption_key;
    };
    std::map<std::string, std::vector<User>> by_name;
    std::map<std::string, std::string> name_by_fingerprint;
};

// Reads the users map. Errors: kCorrupt for an unreadable stored user; kResourceExhausted
// beyond kMaxListedEntries users.
Result<PartyDirectory> load_parties(kv::Transaction& tx);

// The party called `id`. Errors: kNotFound (no user has that name), kFailedPrecondition
// ("party \"x\" is ambiguous: 2 users have that name", or no encryption key).
Result<Party> resolve_party(const PartyDirectory& parties, std::string_view id);

// The party of the user with certificate fingerprint `fingerprint`. Errors:
// kPermissionDenied naming why the caller is not a party.
Result<Party> caller_party(const PartyDirectory& parties, std::string_view fingerprint);
// The same, reading the users map through `tx` (for callers that need nothing else of the
// directory). Errors: those of load_parties and of the overload above.
Result<Party> caller_party(kv::Transaction& tx, std::string_view fingerprint);

struct DatasetRecord {
    cleanroom::DatasetSchema schema;
    std::string owner;
    std::string owner_fingerprint;
    int64_t version = 0;  // committed uploads
    int64_t rows = 0;     // rows of all committed uploads
    // Plaintext bytes of all committed uploads (at most kMaxDatasetBytes); a record stored
    // before this field existed reads as 0.
    int64_t bytes = 0;

    nlohmann::json to_json() const;
};

// nullopt when no dataset has that name. Errors: kCorrupt for an unreadable record.
Result<std::optional<DatasetRecord>> read_dataset(kv::Transaction& tx, std::string_view name);
Result<std::map<std::string, DatasetRecord>> read_all_datasets(kv::Transaction& tx);
Status write_dataset(kv::Transaction& tx, const DatasetRecord& record);

// Stores the plaintext CSV of version `version` of `dataset` (in parts). Errors: those of
// Transaction::put; kResourceExhausted beyond kMaxRowsParts parts.
Status write_rows(kv::Transaction& tx, std::string_view dataset, int64_t version,
                  std::string_view csv);

// The CURRENT table of a dataset: every committed upload parsed and concatenated, owner set.
// Every run parses the stored CSV again: a parsed copy is not kept between runs, so that rows
// stay only in the encrypted store and in the memory of the run that reads them.
// Errors: kCorrupt when a stored upload is missing or does not parse any more.
Result<cleanroom::Table> load_table(kv::Transaction& tx, const DatasetRecord& record);

struct PartyCounts {
    int64_t datasets = 0;  // declared
    int64_t analyses = 0;  // proposed first by this party
};

// The counts of `party` (zeros when it has none yet). Errors: kCorrupt.
Result<PartyCounts> read_party_counts(kv::Transaction& tx, std::string_view party);
Status write_party_counts(kv::Transaction& tx, std::string_view party, const PartyCounts& counts);

struct AnalysisRecord {
    std::string id;
    std::string document;  // the exact bytes that were submitted
    std::string proposer;
    std::vector<std::string> owners;  // parties whose approval is needed, sorted
    int64_t runs = 0;                 // runs committed so far

    nlohmann::json to_json() const;
};

Result<std::optional<AnalysisRecord>> read_analysis(kv::Transaction& tx, std::string_view id);
Status write_analysis(kv::Transaction& tx, const AnalysisRecord& record);

struct Approval {
    bool approved = false;  // false: revoked
    std::optional<int64_t> max_runs;
    // The version of every dataset the analysis reads, when the approval was given: the
    // approval covers those rows only (a later upload needs a new approval).
    std::map<std::string, int64_t> versions;
};

// The approvals recorded for `record`'s owners (an owner without one is absent).
Result<std::map<std::string, Approval>> read_approvals(kv::Transaction& tx,
                                                       const AnalysisRecord& record);
Status write_approval(kv::Transaction& tx, std::string_view analysis_id, std::string_view party,
                      const Approval& approval);

// The current version of every dataset the analysis `record` reads, by name. Errors:
// kCorrupt when the stored document does not parse or a dataset vanished.
Result<std::map<std::string, int64_t>> dataset_versions(kv::Transaction& tx,
                                                        const AnalysisRecord& record);

// OK when every owner approved, no approval is revoked, every approval covers the `current`
// version of every dataset the analysis reads, and the run cap (the smallest max_runs among
// the approvals) is not reached. kPermissionDenied naming the first missing or revoked
// approval, the first approval given on an older version ("approval of bank_a covers
// dataset x version 1, which is now version 2: approve again"), or the cap.
Status check_runnable(const AnalysisRecord& record,
                      const std::map<std::string, Approval>& approvals,
                      const std::map<std::string, int64_t>& current);

// "run-" followed by `sequence` on 10 digits.
std::string run_id(int64_t sequence);

// Reads and increments the run counter; returns the sequence of the new run (from 1).
Result<int64_t> next_run_sequence(kv::Transaction& tx);

}  // namespace coffer::apps::cr

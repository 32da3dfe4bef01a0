// Open upload sessions of the clean room, kept in the leader's memory until their commit
// (docs/cleanroom.md, "Endpoints"). Nothing of an upload reaches the ledger before it is
// committed; a leader change loses the open sessions and the client starts again.
//
// Thread-safe: every method takes the manager's lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "common/bytes.h"
#include "common/result.h"

namespace coffer::apps::cr {

constexpr size_t kMaxOpenUploads = 16;
// Open uploads of one party (one certificate fingerprint), under kMaxOpenUploads, so that no
// party holds every session: opening one more closes that party's least recently active one.
constexpr size_t kMaxOpenUploadsPerParty = 2;
constexpr int64_t kUploadIdleTimeoutMs = 10 * 60 * 1000;
// One chunk's plaintext.
constexpr size_t kMaxChunkPlaintextBytes = 512 * 1024;
// One upload's plaintext. Bounded by what one transaction may write (a write set holds at
// most 64 MiB, kv/write_set.h), not by the CSV parser's own limit. Not supported yet: larger
// uploads, because their commit would span several transactions and could no longer be all
// or nothing; a party splits a larger dataset into several uploads.
constexpr size_t kMaxUploadPlaintextBytes = 48 * 1024 * 1024;

struct UploadSession {
    std::string dataset;
    std::string owner_fingerprint;
    uint64_t next_index = 0;
    std::string plaintext;
    std::chrono::steady_clock::time_point last_activity;
};

class UploadSessions {
  public:
    // Opens a session and returns its id (32 random hex digits). Sessions idle for
    // kUploadIdleTimeoutMs are closed first; when `owner_fingerprint` already holds
    // kMaxOpenUploadsPerParty sessions, its least recently active one is closed too (its
    // chunks are lost and its commit answers kNotFound). Errors: kResourceExhausted when
    // kMaxOpenUploads are open.
    Result<std::string> open(const std::string& dataset, const std::string& owner_fingerprint);

    // Appends chunk `index` (already decrypted) to session `id` of `owner_fingerprint`.
    // Errors: kNotFound (no such open session of this caller), kInvalidArgument (index out of
    // order, chunk or upload too large).
    Status append(const std::string& id, const std::string& owner_fingerprint, uint64_t index,
                  const Bytes& plaintext);

    // Closes session `id` of `owner_fingerprint` and returns it. Errors: kNotFound.
    Result<UploadSession> take(const std::string& id, const std::string& owner_fingerprint);

    // Fails unless session `id` of `owner_fingerprint` is open (kNotFound).
    Status check_open(const std::string& id, const std::string& owner_fingerprint);

  private:
    void expire_idle_locked();
    void close_oldest_of_party_locked(const std::string& owner_fingerprint);

    std::mutex mu_;
    std::map<std::string, UploadSession> sessions_;
};

}  // namespace coffer::apps::cr

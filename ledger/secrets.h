// Ledger secrets: the versioned AES-256 keys that encrypt the private part of ledger entries.
//
// Every entry header names the version of the secret that encrypted it, so a node that
// holds all versions can read the whole ledger after any number of rekeys. Key material is
// never logged and is wiped (OPENSSL_cleanse) when a LedgerSecrets is destroyed.
//
// LedgerSecrets is a value type: copyable, thread-compatible (concurrent const use is safe;
// add() needs exclusive access).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

#include "common/bytes.h"
#include "common/result.h"

namespace coffer::ledger {

// AES-256: every ledger secret is exactly 32 bytes.
constexpr size_t kLedgerSecretSize = 32;
// How many secret versions one LedgerSecrets holds at most (one per rekey).
constexpr size_t kMaxLedgerSecrets = 4096;

struct LedgerSecret {
    uint32_t version = 0;
    Bytes key;  // kLedgerSecretSize bytes; secret
};

// A fresh random secret with the given version (OpenSSL's DRBG).
LedgerSecret make_random_ledger_secret(uint32_t version);

class LedgerSecrets {
  public:
    LedgerSecrets() = default;
    ~LedgerSecrets();
    LedgerSecrets(const LedgerSecrets& other) = default;
    LedgerSecrets& operator=(const LedgerSecrets& other);
    LedgerSecrets(LedgerSecrets&& other) noexcept = default;
    LedgerSecrets& operator=(LedgerSecrets&& other) noexcept;

    // Adds a secret. Versions must strictly increase (a rekey makes a newer one), so that
    // current() is always the newest.
    // Errors: kInvalidArgument for a key that is not kLedgerSecretSize bytes or a version not
    // above every existing one; kResourceExhausted beyond kMaxLedgerSecrets.
    Status add(LedgerSecret secret);

    // The newest secret, or nullptr when there is none. Valid until the next add() or
    // destruction.
    const LedgerSecret* current() const;

    // The secret of `version`, or nullptr. Valid as for current().
    const LedgerSecret* get(uint32_t version) const;

    size_t size() const { return secrets_.size(); }
    bool empty() const { return secrets_.empty(); }

  private:
    void wipe();

    std::map<uint32_t, LedgerSecret> secrets_;
};

}  // namespace coffer::ledger

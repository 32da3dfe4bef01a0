#include "ledger/secrets.h"

#include <openssl/crypto.h>

#include <string>
#include <utility>

#include "crypto/random.h"

namespace coffer::ledger {

LedgerSecret make_random_ledger_secret(uint32_t version) {
    return LedgerSecret{version, crypto::random_bytes(kLedgerSecretSize)};
}

LedgerSecrets::~LedgerSecrets() {
    wipe();
}

LedgerSecrets& LedgerSecrets::operator=(const LedgerSecrets& other) {
    if (this != &other) {
        wipe();
        secrets_ = other.secrets_;
    }
    return *this;
}

LedgerSecrets& LedgerSecrets::operator=(LedgerSecrets&& other) noexcept {
    if (this != &other) {
        wipe();
        secrets_ = std::move(other.secrets_);
    }
    return *this;
}

void LedgerSecrets::wipe() {
    for (auto& [version, secret] : secrets_) {
        OPENSSL_cleanse(secret.key.data(), secret.key.size());
    }
    secrets_.clear();
}

Status LedgerSecrets::add(LedgerSecret secret) {
    if (secret.key.size() != kLedgerSecretSize) {
        return error(Errc::kInvalidArgument,
                     "ledger secret must be " + std::to_string(kLedgerSecretSize) + " bytes, got " +
                         std::to_string(secret.key.size()));
    }
    if (!secrets_.empty() && secret.version <= secrets_.rbegin()->first) {
        return error(Errc::kInvalidArgument, "ledger secret version " +
                                                 std::to_string(secret.version) +
                                                 " is not above the newest version " +
                                                 std::to_string(secrets_.rbegin()->first));
    }
    if (secrets_.size() >= kMaxLedgerSecrets) {
        return error(Errc::kResourceExhausted, "too many ledger secret versions");
    }
    uint32_t version = secret.version;
    secrets_.emplace(version, std::move(secret));
    return Status::ok_status();
}

const LedgerSecret* LedgerSecrets::current() const {
    if (secrets_.empty()) {
        return nullptr;
    }
    return &secrets_.rbegin()->second;
}

const LedgerSecret* LedgerSecrets::get(uint32_t version) const {
    auto it = secrets_.find(version);
    return it == secrets_.end() ? nullptr : &it->second;
}

}  // namespace coffer::ledger

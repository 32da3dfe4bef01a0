// Helpers shared by the ledger tests (not part of the library).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "common/bytes.h"
#include "crypto/ecdsa.h"
#include "crypto/x509.h"
#include "kv/store.h"
#include "kv/write_set.h"
#include "ledger/ledger.h"
#include "ledger/secrets.h"

namespace coffer::ledger::testing {

// A service identity and one node endorsed by it, made once per process (key generation
// dominates test time otherwise).
struct Identities {
    crypto::EcdsaPrivateKey service_key;
    crypto::Certificate service_cert;
    crypto::EcdsaPrivateKey node_key;
    crypto::Certificate node_cert;
};

inline Identities make_identities(const std::string& service_cn) {
    auto service_key = crypto::EcdsaPrivateKey::generate().value();
    crypto::CertificateOptions so;
    so.common_name = service_cn;
    so.not_before_unix = 1700000000;
    so.not_after_unix = 1700000000 + 3600;  // expired long ago: receipts must still verify
    so.is_ca = true;
    auto service_cert = crypto::make_self_signed_certificate(service_key, so).value();
    auto node_key = crypto::EcdsaPrivateKey::generate().value();
    crypto::CertificateOptions no;
    no.common_name = "node-1";
    no.not_before_unix = 1700000000;
    no.not_after_unix = 1700000000 + 3600;
    auto node_cert =
        crypto::make_issued_certificate(node_key.public_key(), no, service_key, service_cert)
            .value();
    return Identities{service_key, service_cert, node_key, node_cert};
}

inline const Identities& identities() {
    static const Identities ids = make_identities("service");
    return ids;
}

inline const Identities& other_identities() {
    static const Identities ids = make_identities("other service");
    return ids;
}

inline LedgerSecrets test_secrets() {
    LedgerSecrets s;
    EXPECT_TRUE(s.add(make_random_ledger_secret(1)).ok());
    return s;
}

inline LedgerOptions test_options(const std::string& dir) {
    LedgerOptions o;
    o.dir = dir;
    o.chunk_size_bytes = 4096;
    o.signature_interval_entries = 10;
    o.signature_interval_ms = 1000000;
    o.node_id = "node-1";
    o.node_key = identities().node_key;
    o.node_cert = identities().node_cert;
    o.service_cert = identities().service_cert;
    return o;
}

inline Status put_and_commit(kv::Store& store, std::string_view map, std::string_view key,
                             ByteSpan value) {
    kv::Transaction tx = store.begin();
    COFFER_RETURN_IF_ERROR(tx.put(map, as_bytes(key), value));
    return store.commit(std::move(tx)).status();
}

inline Status put_and_commit(kv::Store& store, std::string_view map, std::string_view key,
                             std::string_view value) {
    return put_and_commit(store, map, key, as_bytes(value));
}

// Every (map, key, value) visible in a store, for comparing two stores.
inline std::map<std::string, std::map<Bytes, Bytes>> dump_store(kv::Store& store) {
    std::map<std::string, std::map<Bytes, Bytes>> out;
    kv::Transaction tx = store.begin();
    for (const std::string& map : store.map_names()) {
        Status s = tx.range(map, {}, std::nullopt, 0, [&](ByteSpan k, ByteSpan v) {
            out[map][Bytes(k.begin(), k.end())] = Bytes(v.begin(), v.end());
            return true;
        });
        EXPECT_TRUE(s.ok()) << s.to_string();
    }
    return out;
}

class TempDir {
  public:
    TempDir() {
        std::string tmpl = "/tmp/coffer_ledger_parts_XXXXXX";
        char* made = ::mkdtemp(tmpl.data());
        EXPECT_NE(made, nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

}  // namespace coffer::ledger::testing

// Helpers for attestation tests: the shared SEV-SNP reference data, test-only AMD-like
// certificate chains (ARK -> ASK -> VCEK with AMD's VCEK extensions) and synthetic reports
// signed by a test VCEK. Everything made here is trusted only inside the tests.
#pragma once

#include <gtest/gtest.h>

#include "common/testing/reference_data.h"

#include <array>
#include <cstdint>
#include <map>
#include <string>

#include "attestation/snp_report.h"
#include "common/bytes.h"
#include "crypto/ecdsa.h"
#include "crypto/x509.h"

namespace coffer::attestation::testing {

// Full path of a file under COFFER_DATA_DIR.
using ::coffer::reference_data::data_exists;
using ::coffer::reference_data::data_path;
// True if COFFER_ALLOW_MISSING_DATA=1.
using ::coffer::reference_data::allow_missing_data;
// Whole file contents; fails the test (ADD_FAILURE) if unreadable.
using ::coffer::reference_data::read_file;
Bytes read_file_bytes(const std::string& path);

// The i-th certificate of a PEM bundle, as PEM.
std::string bundle_cert_pem(const std::string& bundle, size_t index);
// Re-orders a bundle: the certificates at `order`, concatenated as PEM.
std::string reorder_bundle(const std::string& bundle, std::initializer_list<size_t> order);

// The value (extnValue contents) of each VCEK extension, keyed by OID text.
using ExtensionMap = std::map<std::string, Bytes>;

// AMD-style extensions for a VCEK issued for `tcb` on chip `chip_id`: blSPL, teeSPL, snpSPL,
// ucodeSPL as canonical DER INTEGERs and hwID as the raw 64 bytes.
ExtensionMap vcek_extensions_for(const SnpTcb& tcb, ByteSpan chip_id);

struct TestChain {
    crypto::EcdsaPrivateKey ark_key;
    crypto::EcdsaPrivateKey ask_key;
    crypto::EcdsaPrivateKey vcek_key;
    crypto::Certificate ark;
    crypto::Certificate ask;
    crypto::Certificate vcek;

    // VCEK, ASK, ARK as one PEM bundle.
    std::string bundle_pem() const;
};

// A fresh ECDSA P-384 chain "Test-ARK" -> "Test-ASK" -> "SEV-VCEK" whose VCEK carries
// exactly `extensions`. Aborts the test run on OpenSSL failure (our own test set-up).
TestChain make_test_chain(const ExtensionMap& extensions);

// Fields of a synthetic version-3 report; everything else is zero.
struct SyntheticReport {
    uint32_t version = 3;
    uint64_t policy = 0x30000;  // SMT allowed, reserved bit 17 set, debug off
    uint32_t flags = 0;         // signing key VCEK
    uint32_t signature_algo = 1;
    SnpTcb current_tcb;
    SnpTcb reported_tcb;
    std::array<uint8_t, kSnpChipIdSize> chip_id{};
    std::array<uint8_t, kSnpReportDataSize> report_data{};
    std::array<uint8_t, kSnpMeasurementSize> measurement{};
};

// Lays the fields out per the ABI (Milan CPUID 0x19/0x01) and signs bytes [0, 0x2A0) with
// `vcek_key`, storing r and s little-endian in their 72-byte fields.
Bytes make_signed_report(const SyntheticReport& fields, const crypto::EcdsaPrivateKey& vcek_key);

// Re-signs a (modified) report in place.
void resign_report(Bytes& report, const crypto::EcdsaPrivateKey& vcek_key);

// Substring check with a readable failure message.
::testing::AssertionResult message_contains(const Status& status, std::string_view needle);

}  // namespace coffer::attestation::testing

// A one-node fixture for the clean-room service tests, and the client side of the protocol
// done by hand with crypto/hpke.h: sealing upload chunks to the published key and opening
// results with a recipient's private key (docs/cleanroom.md).
//
// Parties (users with an encryption key, all made with `coffer keygen`): bank_a, bank_b,
// bank_c, user0 (the party the registry's examples name), and two users both called "twin"
// (an ambiguous party). viewer is a user without an
// encryption key (not a party); member0 is the member. Not thread-safe.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cleanroom/schema.h"
#include "common/bytes.h"
#include "tests/e2e_util.h"

namespace coffer::e2e {

// One answer: status, parsed body (null if not JSON) and raw body.
struct Answer {
    int status = 0;
    nlohmann::json body;
    std::string raw;
};

struct UploadOptions {
    // Sent as the commit's sha256 instead of the real digest.
    std::optional<std::string> sha256_override;
};

// A parsed table made of several CSV uploads, as the service builds a dataset's current
// version. Fails the test on bad input.
cleanroom::Table table_of(const std::string& declaration, const std::string& owner,
                          const std::vector<std::string>& uploads);

class CleanroomFixture : public ::testing::Test {
  protected:
    void SetUp() override;

    // Sends a request as `who` (nullptr: anonymous). Writes wait for their commit. Every
    // answer is also kept in answers_.
    Answer call(const Identity* who, const std::string& method, const std::string& target,
                const std::string& body = "");
    Answer call(const Identity& who, const std::string& method, const std::string& target,
                const std::string& body = "") {
        return call(&who, method, target, body);
    }

    // The service's clean-room public key, from GET /app/cleanroom/key.
    Bytes service_key();

    // Uploads `csv` to `dataset` in chunks of `chunk_bytes`; the answer of the commit, or of
    // the first step that failed.
    Answer upload(const Identity& who, const std::string& dataset, const std::string& csv,
                  size_t chunk_bytes, const UploadOptions& options = {});

    // Seals `plaintext` to `key` with `aad` and posts it as chunk `index` of `upload_id`.
    Answer send_chunk(const Identity& who, const std::string& upload_id, uint64_t index,
                      const Bytes& plaintext, const Bytes& key, const std::string& aad);

    // Fetches and opens `who`'s result of `run_id` with its private key ("" on failure).
    std::string open_result(const Identity& who, const std::string& run_id);

    // Waits until every entry is signed and committed; returns the last seqno.
    uint64_t settled_last_seqno();

    // Calls every listed endpoint (GETs everywhere, POSTs of /app/cleanroom) as each party,
    // viewer, the member and anonymous, with query parameters from `params` (analysis, run,
    // dataset). The answers land in answers_.
    void walk_every_endpoint(const std::map<std::string, std::string>& params);

    TempDir dir_;
    Identity member_;
    Identity bank_a_;
    Identity bank_b_;
    Identity bank_c_;
    Identity user0_;
    Identity twin_;
    Identity twin2_;
    Identity viewer_;
    std::unique_ptr<NodeProcess> node_;
    std::vector<std::string> answers_;

  private:
    std::map<const Identity*, std::unique_ptr<net::HttpClient>> clients_;
};

}  // namespace coffer::e2e

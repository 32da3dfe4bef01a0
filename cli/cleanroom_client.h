// The client side of the clean-room service (docs/cleanroom.md): checking the published
// service key, encrypting upload chunks, opening results, and an HTTPS session that follows
// the service's redirects to the leader. `coffer cleanroom` (cli/cleanroom_command.cc) is
// built on it; everything here except CleanroomSession is pure and unit-tested.
//
// Free functions are thread-safe. A CleanroomSession is not: one request at a time.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "attestation/platform.h"
#include "common/bytes.h"
#include "common/result.h"
#include "crypto/x509.h"
#include "net/client.h"

namespace coffer::cli {

// HPKE `info` strings and the signature label of docs/cleanroom.md ("HPKE", "The service key
// and its publication").
constexpr std::string_view kCleanroomUploadInfo = "coffer-cleanroom-upload-v1";
constexpr std::string_view kCleanroomResultInfo = "coffer-cleanroom-result-v1";
constexpr std::string_view kCleanroomKeyLabel = "coffer-cleanroom-key-v1:";
constexpr int64_t kCleanroomKeyVersion = 1;

// The service takes at most 512 KiB of plaintext per chunk and 48 MiB per upload (one
// transaction writes at most 64 MiB; docs/cleanroom.md). A bigger dataset is uploaded in
// several parts, each a new version.
constexpr size_t kMaxUploadChunkBytes = 512 * 1024;
constexpr size_t kMaxUploadBytes = size_t{48} << 20;
// Bound on the number of chunks of one upload (reached only with tiny --chunk-bytes).
constexpr size_t kMaxUploadChunks = size_t{1} << 20;
// Bound on the nodes a key publication may list.
constexpr size_t kMaxPublishedNodes = 64;

// One chunk of an upload: bytes [offset, offset + size) of the plaintext.
struct ChunkRange {
    size_t offset = 0;
    size_t size = 0;
};

// Splits `total_bytes` into consecutive chunks of `chunk_bytes` (the last one shorter), in
// order, covering every byte exactly once. Errors: kInvalidArgument for total_bytes 0 or
// chunk_bytes outside 1..kMaxUploadChunkBytes; kResourceExhausted past kMaxUploadBytes or
// kMaxUploadChunks.
Result<std::vector<ChunkRange>> plan_chunks(size_t total_bytes, size_t chunk_bytes);

// "<upload id>/<chunk index>", the aad of an upload chunk.
std::string upload_chunk_aad(std::string_view upload_id, uint64_t index);

// One chunk request body: enc (32 bytes) || HPKE ciphertext of `plaintext` sealed to the
// clean room's X25519 key, with kCleanroomUploadInfo and upload_chunk_aad. A fresh
// encapsulation every call. Errors: those of crypto::hpke_seal (kInvalidArgument for a key
// that is not 32 bytes, kCrypto for a low-order key).
Result<Bytes> seal_upload_chunk(ByteSpan service_public_key, std::string_view upload_id,
                                uint64_t index, ByteSpan plaintext);

// The analysis id: lower-case hex SHA-256 of the document's exact bytes.
std::string analysis_id_of(std::string_view document_bytes);

// One node of a checked key publication.
struct PublishedNode {
    std::string node_id;
    std::string platform;         // "virtual" or "sev-snp"
    std::string measurement_hex;  // lower-case
    bool hardware_backed = false;
};

struct PublishedServiceKey {
    Bytes public_key;  // 32 bytes, X25519
    std::vector<PublishedNode> nodes;
};

struct KeyCheckOptions {
    // When set (hex, any case), every node's measurement must equal it.
    std::optional<std::string> expect_measurement_hex;
    attestation::VerifyOptions verify;
};

// Checks the answer of GET /app/cleanroom/key against the pinned service certificate:
// version 1; the signature (DER ECDSA P-384) over kCleanroomKeyLabel || public key verifies
// with the pinned certificate's key; at least one node; for every node its certificate was
// issued by the pinned certificate, its node_id is the hex SHA-256 of the certificate's key,
// its evidence verifies and binds that key, and (if asked) carries the expected measurement.
// The `service_cert` member the service sends is not trusted for anything.
// Errors: kInvalidArgument for a malformed document; kCrypto for a bad signature or a node
// certificate from another issuer; kPermissionDenied for evidence that fails, does not bind
// the node's key, or has another measurement. Messages name the node.
Result<PublishedServiceKey> check_published_key(const nlohmann::json& doc,
                                                const crypto::Certificate& service_cert,
                                                const KeyCheckOptions& options);

// A result as GET /app/cleanroom/results serves it.
struct SealedResult {
    std::string run_id;
    std::string recipient;
    Bytes enc;
    Bytes ciphertext;
};

// Parses {"run_id", "recipient", "enc", "ciphertext"} (hex for the last two; other members
// ignored). Errors: kInvalidArgument naming the member.
Result<SealedResult> parse_sealed_result(const nlohmann::json& doc);

// "<run id>/<recipient>", the aad of a result.
std::string result_aad(std::string_view run_id, std::string_view recipient);

// Opens a result with the recipient's X25519 private key (32 bytes). The aad is made from
// the result's own run_id and recipient, so changing either makes opening fail; the
// plaintext must be a JSON object whose "recipient" equals the sealed one.
// Errors: kCrypto when the ciphertext does not open (wrong key, altered run id, recipient or
// bytes); kInvalidArgument for a key of the wrong size; kCorrupt for a plaintext that is not
// the result document of that recipient.
Result<nlohmann::json> open_result(const SealedResult& sealed, ByteSpan recipient_private_key);

// Checks that the audit record of the run (an element of GET /app/cleanroom/runs) names this
// result: same run id, and its `results[recipient]` is the hex SHA-256 of the ciphertext.
// Errors: kNotFound when the record lists no result for the recipient; kCorrupt when the
// digest differs.
Status check_result_against_record(const SealedResult& sealed, const nlohmann::json& record);

// A result document (docs/formats/analysis.md, "Result document") for people: a header
// line, a table of columns and rows (at most max_rows; the rest counted), then the
// aggregates as indented JSON. Never fails: unexpected shapes are printed as JSON.
std::string format_result_document(const nlohmann::json& result, size_t max_rows = 1000);

// Parses "HOST:PORT" (HOST an IPv4 literal, a name, or [IPv6]). Errors: kInvalidArgument.
Result<std::pair<std::string, uint16_t>> parse_host_port(std::string_view text);

// The host and port of a 307 Location "https://HOST:PORT/...". Errors: kInvalidArgument for
// another scheme or a malformed authority.
Result<std::pair<std::string, uint16_t>> parse_redirect_location(std::string_view location);

// Where and as whom `--sandbox DIR --as NAME` connects, from DIR/sandbox.json
// (docs/sandbox.md) and DIR/identities/NAME_*.
struct SandboxParty {
    std::string service_cert_path;
    std::vector<std::string> client_addresses;  // in the file's order
    std::string cert_path;
    std::string key_path;
    std::string enc_key_path;
};

// Builds the paths from the parsed sandbox.json of `dir`. Errors: kInvalidArgument for a
// file without service_cert or nodes, or a name that is not [A-Za-z0-9_.-]{1,64}.
Result<SandboxParty> sandbox_party(const nlohmann::json& sandbox_file, const std::string& dir,
                                   const std::string& name);

// Upload progress on a stream: a redrawn bar when `tty`, otherwise one line per tenth of the
// total. Not thread-safe.
class UploadProgress {
  public:
    UploadProgress(std::ostream& out, bool tty, size_t total_bytes);
    // Records `bytes` more sent.
    void advance(size_t bytes);
    // Ends the bar's line (tty only).
    void finish();

  private:
    void draw();

    std::ostream& out_;
    bool tty_;
    size_t total_;
    size_t done_ = 0;
    int last_tenth_ = 0;
};

// An HTTP answer with its body parsed (null when empty or not JSON).
struct ApiAnswer {
    int status = 0;
    std::string body;
    nlohmann::json json;
    net::HeaderList headers;
};

struct SessionOptions {
    // Tried in order until one connects; later redirects replace the current one.
    std::vector<std::pair<std::string, uint16_t>> addresses;
    std::string service_cert_pem;
    std::optional<std::string> client_cert_pem;
    std::optional<std::string> client_key_pem;
    uint32_t timeout_ms = 120000;
    // GETs carry consistency=linearizable, so that a follower redirects them to the leader,
    // which holds every write this client saw committed (read-your-writes across commands).
    bool reads_on_leader = true;
};

// Most 307 redirects followed for one request, and most 503 "come back" answers waited out.
constexpr int kMaxRedirects = 4;
constexpr int kMaxUnavailableRetries = 30;
constexpr int kUnavailableRetryMs = 1000;
// How long writes ask the node to hold the answer until the transaction commits.
constexpr uint64_t kCommitWaitMs = 10000;

// An HTTPS session with the service. After a 307 it stays on the node the Location names
// (the leader), so an upload's chunks all reach the node that holds the upload session.
// Not thread-safe.
class CleanroomSession {
  public:
    // Connects to the first reachable address. Errors: those of net::HttpClient::connect
    // for the last address tried; kInvalidArgument with no address.
    static Result<std::unique_ptr<CleanroomSession>> connect(SessionOptions options);

    // Sends a request, following 307 redirects (at most kMaxRedirects) and waiting out 503
    // answers and redirects to a leader that does not accept connections (together at most
    // kMaxUnavailableRetries, kUnavailableRetryMs apart, reconnecting to the configured
    // addresses in between); POSTs carry x-coffer-wait-ms so that their
    // answer comes once committed. Any other HTTP status is a successful Result.
    // Errors: kIo/kCrypto from the connection; kFailedPrecondition when the redirects or
    // retries run out.
    Result<ApiAnswer> request(std::string_view method, const std::string& target,
                              std::string_view body = "",
                              std::string_view content_type = "application/json");

    // As request, but a status other than 200 becomes an error carrying the service's
    // message: kInvalidArgument (400), kPermissionDenied (401, 403), kNotFound (404),
    // kFailedPrecondition (409 and others).
    Result<ApiAnswer> call(std::string_view method, const std::string& target,
                           std::string_view body = "",
                           std::string_view content_type = "application/json");

    // Drops the current connection and connects again to the first reachable configured
    // address (after a node failed; a redirect then leads to the new leader). Errors: as
    // connect.
    Status reconnect();

    // "HOST:PORT" of the node in use.
    std::string current_address() const;

  private:
    explicit CleanroomSession(SessionOptions options) : options_(std::move(options)) {}
    Status connect_to(const std::pair<std::string, uint16_t>& address);

    SessionOptions options_;
    std::pair<std::string, uint16_t> current_;
    std::unique_ptr<net::HttpClient> client_;
};

// The message of a JSON error answer {"error": {"code", "message"}}, or the body itself.
std::string service_error_message(const ApiAnswer& answer);

// Percent-encodes a query parameter value (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view value);

}  // namespace coffer::cli

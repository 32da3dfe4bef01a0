#include "cli/cleanroom_client.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <iomanip>
#include <ostream>
#include <sstream>
#include <thread>

#include "crypto/hpke.h"
#include "crypto/sha256.h"

namespace coffer::cli {

namespace {

using nlohmann::json;

constexpr size_t kProgressBarWidth = 30;
constexpr size_t kMaxCellChars = 48;
constexpr size_t kMaxSandboxNameChars = 64;

const crypto::HpkeSuite kSuite{crypto::kHpkeKemX25519Sha256, crypto::kHpkeKdfHkdfSha256,
                               crypto::kHpkeAeadAes256Gcm};

std::string string_member(const json& doc, const char* name) {
    auto it = doc.find(name);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
}

// A hex member of exactly `size` bytes (any size when 0). Errors: kInvalidArgument.
Result<Bytes> hex_member(const json& doc, const char* name, size_t size) {
    std::string text = string_member(doc, name);
    auto bytes = from_hex(text);
    if (text.empty() || !bytes.ok() || (size != 0 && bytes->size() != size)) {
        return error(Errc::kInvalidArgument,
                     std::string("\"") + name + "\" is not " +
                         (size != 0 ? std::to_string(size) + " bytes of hex" : "hex"));
    }
    return *bytes;
}

// One node of the publication: issued by the service, named by its key, attested.
Result<PublishedNode> check_published_node(const json& node, const crypto::Certificate& service,
                                           const KeyCheckOptions& options) {
    if (!node.is_object()) {
        return error(Errc::kInvalidArgument, "a node entry is not an object");
    }
    PublishedNode out;
    out.node_id = string_member(node, "node_id");
    std::string label = "node " + (out.node_id.empty() ? std::string("(no id)") : out.node_id);
    auto cert = crypto::Certificate::from_pem(string_member(node, "cert"));
    if (!cert.ok()) {
        return error(Errc::kInvalidArgument, label + ": certificate: " + cert.status().message());
    }
    Status issued = crypto::verify_certificate_chain(*cert, {}, service,
                                                     static_cast<int64_t>(std::time(nullptr)));
    if (!issued.ok()) {
        return error(Errc::kCrypto,
                     label + ": certificate not issued by the pinned service: " + issued.message());
    }
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPublicKey key, cert->ecdsa_public_key());
    Bytes key_der = key.to_der();
    crypto::Sha256Digest key_hash = crypto::sha256(key_der);
    if (lower(out.node_id) != to_hex(key_hash)) {
        return error(Errc::kInvalidArgument, label + ": node_id is not the hash of its key");
    }
    auto found = node.find("attestation");
    if (found == node.end()) {
        return error(Errc::kInvalidArgument, label + ": no attestation evidence");
    }
    auto evidence = attestation::evidence_from_json(*found);
    if (!evidence.ok()) {
        return error(Errc::kInvalidArgument, label + ": " + evidence.status().message());
    }
    auto claims = attestation::verify_evidence(*evidence, options.verify);
    if (!claims.ok()) {
        return error(Errc::kPermissionDenied,
                     label + ": evidence rejected: " + claims.status().message());
    }
    Status bound = attestation::check_key_binding(*claims, key_der);
    if (!bound.ok()) {
        return error(Errc::kPermissionDenied, label + ": " + bound.message());
    }
    out.platform = std::string(attestation::platform_kind_name(claims->kind));
    out.measurement_hex = to_hex(claims->measurement);
    out.hardware_backed = claims->hardware_backed;
    if (options.expect_measurement_hex.has_value() &&
        lower(*options.expect_measurement_hex) != out.measurement_hex) {
        return error(Errc::kPermissionDenied, label + ": measurement " + out.measurement_hex +
                                                  " is not the expected " +
                                                  *options.expect_measurement_hex);
    }
    return out;
}

std::string cell_text(const json& value) {
    std::string text = value.is_null() ? "NULL"
                       : value.is_string()
                           ? value.get<std::string>()
                           : value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() > kMaxCellChars) {
        text = text.substr(0, kMaxCellChars - 3) + "...";
    }
    return text;
}

std::string format_table(const json& columns, const json& rows, size_t max_rows) {
    std::vector<std::string> names;
    for (const json& c : columns) {
        names.push_back(cell_text(c));
    }
    size_t shown = std::min(rows.size(), max_rows);
    // A row that is not an array is shown as one cell; the widths come from the very cells
    // that are printed, so no cell is wider than its column.
    std::vector<std::vector<std::string>> table;
    for (size_t r = 0; r < shown; ++r) {
        std::vector<std::string> cells;
        for (const json& v : rows[r].is_array() ? rows[r] : json::array({rows[r]})) {
            cells.push_back(cell_text(v));
        }
        table.push_back(std::move(cells));
    }
    std::vector<size_t> widths;
    for (const std::string& n : names) {
        widths.push_back(n.size());
    }
    for (const std::vector<std::string>& cells : table) {
        for (size_t c = 0; c < widths.size() && c < cells.size(); ++c) {
            widths[c] = std::max(widths[c], cells[c].size());
        }
    }

    std::ostringstream out;
    auto line = [&](const std::vector<std::string>& cells) {
        std::string text;
        for (size_t c = 0; c < widths.size(); ++c) {
            std::string cell = c < cells.size() ? cells[c] : "";
            text += (c == 0 ? "" : "  ") + cell +
                    std::string(widths[c] - std::min(widths[c], cell.size()), ' ');
        }
        out << text.substr(0, text.find_last_not_of(' ') + 1) << "\n";
    };
    line(names);
    std::vector<std::string> rule;
    for (size_t w : widths) {
        rule.emplace_back(w, '-');
    }
    line(rule);
    for (const std::vector<std::string>& cells : table) {
        line(cells);
    }
    if (rows.size() > shown) {
        out << "... " << rows.size() - shown << " more rows not shown\n";
    }
    return out.str();
}

Errc errc_for_http(int status) {
    switch (status) {
        case 400:
            return Errc::kInvalidArgument;
        case 401:
        case 403:
            return Errc::kPermissionDenied;
        case 404:
            return Errc::kNotFound;
        default:
            return Errc::kFailedPrecondition;
    }
}

}  // namespace

Result<std::vector<ChunkRange>> plan_chunks(size_t total_bytes, size_t chunk_bytes) {
    if (total_bytes == 0) {
        return error(Errc::kInvalidArgument, "nothing to upload: the data is empty");
    }
    if (chunk_bytes == 0 || chunk_bytes > kMaxUploadChunkBytes) {
        return error(Errc::kInvalidArgument,
                     "chunk size must be 1 to " + std::to_string(kMaxUploadChunkBytes) + " bytes");
    }
    if (total_bytes > kMaxUploadBytes) {
        return error(Errc::kResourceExhausted,
                     "an upload holds at most " + std::to_string(kMaxUploadBytes) + " bytes");
    }
    size_t count = (total_bytes + chunk_bytes - 1) / chunk_bytes;
    if (count > kMaxUploadChunks) {
        return error(Errc::kResourceExhausted, std::to_string(count) + " chunks; at most " +
                                                   std::to_string(kMaxUploadChunks) +
                                                   ": use a larger chunk size");
    }
    std::vector<ChunkRange> chunks;
    chunks.reserve(count);
    for (size_t offset = 0; offset < total_bytes; offset += chunk_bytes) {
        chunks.push_back({offset, std::min(chunk_bytes, total_bytes - offset)});
    }
    return chunks;
}

std::string upload_chunk_aad(std::string_view upload_id, uint64_t index) {
    return std::string(upload_id) + "/" + std::to_string(index);
}

Result<Bytes> seal_upload_chunk(ByteSpan service_public_key, std::string_view upload_id,
                                uint64_t index, ByteSpan plaintext) {
    std::string aad = upload_chunk_aad(upload_id, index);
    COFFER_ASSIGN_OR_RETURN(
        crypto::HpkeSealed sealed,
        crypto::hpke_seal(kSuite, service_public_key, as_bytes(kCleanroomUploadInfo), as_bytes(aad),
                          plaintext));
    Bytes body = std::move(sealed.enc);
    put_bytes(body, sealed.ciphertext);
    return body;
}

std::string analysis_id_of(std::string_view document_bytes) {
    return to_hex(crypto::sha256(as_bytes(document_bytes)));
}

Result<PublishedServiceKey> check_published_key(const json& doc,
                                                const crypto::Certificate& service_cert,
                                                const KeyCheckOptions& options) {
    if (!doc.is_object()) {
        return error(Errc::kInvalidArgument, "the key publication is not a JSON object");
    }
    auto version = doc.find("version");
    if (version == doc.end() || !version->is_number_integer() ||
        version->get<int64_t>() != kCleanroomKeyVersion) {
        return error(Errc::kInvalidArgument, "the key publication is not version 1");
    }
    PublishedServiceKey out;
    COFFER_ASSIGN_OR_RETURN(out.public_key, hex_member(doc, "public_key", crypto::kX25519KeySize));
    COFFER_ASSIGN_OR_RETURN(Bytes signature, hex_member(doc, "signature", 0));

    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPublicKey service_key, service_cert.ecdsa_public_key());
    Bytes signed_bytes = to_bytes(kCleanroomKeyLabel);
    put_bytes(signed_bytes, out.public_key);
    Status signed_ok = service_key.verify(signed_bytes, signature);
    if (!signed_ok.ok()) {
        return error(Errc::kCrypto,
                     "the clean-room key is not signed by the pinned service certificate: " +
                         signed_ok.message());
    }

    auto nodes = doc.find("nodes");
    if (nodes == doc.end() || !nodes->is_array() || nodes->empty()) {
        return error(Errc::kInvalidArgument, "the key publication lists no node");
    }
    if (nodes->size() > kMaxPublishedNodes) {
        return error(Errc::kResourceExhausted, "the key publication lists more than " +
                                                   std::to_string(kMaxPublishedNodes) + " nodes");
    }
    for (const json& node : *nodes) {
        COFFER_ASSIGN_OR_RETURN(PublishedNode checked,
                                check_published_node(node, service_cert, options));
        out.nodes.push_back(std::move(checked));
    }
    return out;
}

Result<SealedResult> parse_sealed_result(const json& doc) {
    if (!doc.is_object()) {
        return error(Errc::kInvalidArgument, "the result is not a JSON object");
    }
    SealedResult out;
    out.run_id = string_member(doc, "run_id");
    out.recipient = string_member(doc, "recipient");
    if (out.run_id.empty() || out.recipient.empty()) {
        return error(Errc::kInvalidArgument, "the result has no \"run_id\" or \"recipient\"");
    }
    COFFER_ASSIGN_OR_RETURN(out.enc, hex_member(doc, "enc", crypto::kHpkeEncSize));
    COFFER_ASSIGN_OR_RETURN(out.ciphertext, hex_member(doc, "ciphertext", 0));
    return out;
}

std::string result_aad(std::string_view run_id, std::string_view recipient) {
    return std::string(run_id) + "/" + std::string(recipient);
}

Result<json> open_result(const SealedResult& sealed, ByteSpan recipient_private_key) {
    std::string aad = result_aad(sealed.run_id, sealed.recipient);
    auto plaintext =
        crypto::hpke_open(kSuite, recipient_private_key, sealed.enc, as_bytes(kCleanroomResultInfo),
                          as_bytes(aad), sealed.ciphertext);
    if (!plaintext.ok()) {
        if (plaintext.status().code() == Errc::kInvalidArgument) {
            return plaintext.status();
        }
        return error(Errc::kCrypto, "the result of " + sealed.run_id + " for " + sealed.recipient +
                                        " does not open with this key (wrong key, or the run "
                                        "id, recipient or ciphertext was altered)");
    }
    json doc = json::parse(to_string(*plaintext), nullptr, false);
    if (!doc.is_object()) {
        return error(Errc::kCorrupt, "the decrypted result is not a JSON object");
    }
    if (string_member(doc, "recipient") != sealed.recipient) {
        return error(Errc::kCorrupt, "the decrypted result names recipient \"" +
                                         string_member(doc, "recipient") + "\", not \"" +
                                         sealed.recipient + "\"");
    }
    return doc;
}

Status check_result_against_record(const SealedResult& sealed, const json& record) {
    auto results = record.is_object() ? record.find("results") : record.end();
    if (string_member(record, "run_id") != sealed.run_id || results == record.end() ||
        !results->is_object() || !results->contains(sealed.recipient)) {
        return error(Errc::kNotFound, "the audit record of " + sealed.run_id +
                                          " lists no result for " + sealed.recipient);
    }
    std::string digest = to_hex(crypto::sha256(sealed.ciphertext));
    const json& recorded = (*results)[sealed.recipient];
    if (!recorded.is_string() || lower(recorded.get<std::string>()) != digest) {
        return error(Errc::kCorrupt, "the ciphertext served for " + sealed.recipient +
                                         " is not the one the audit record of " + sealed.run_id +
                                         " names");
    }
    return Status();
}

std::string format_result_document(const json& result, size_t max_rows) {
    if (!result.is_object()) {
        return result.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
    }
    std::ostringstream out;
    out << "analysis " << string_member(result, "analysis_id") << " ("
        << string_member(result, "kind") << "), result for " << string_member(result, "recipient")
        << "\n\n";
    auto columns = result.find("columns");
    auto rows = result.find("rows");
    if (columns != result.end() && columns->is_array() && rows != result.end() &&
        rows->is_array()) {
        out << format_table(*columns, *rows, max_rows);
        out << "(" << rows->size() << (rows->size() == 1 ? " row" : " rows") << ")\n";
    }
    auto aggregates = result.find("aggregates");
    if (aggregates != result.end()) {
        out << "\naggregates:\n"
            << aggregates->dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    }
    return out.str();
}

Result<std::pair<std::string, uint16_t>> parse_host_port(std::string_view text) {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
        return error(Errc::kInvalidArgument,
                     "\"" + std::string(text) + "\" is not HOST:PORT (e.g. 127.0.0.1:8000)");
    }
    std::string host(text.substr(0, colon));
    if (host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    std::string port_text(text.substr(colon + 1));
    if (host.empty() || port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(),
                     [](unsigned char c) { return std::isdigit(c) != 0; })) {
        return error(Errc::kInvalidArgument, "\"" + std::string(text) + "\" is not HOST:PORT");
    }
    int port = std::stoi(port_text);
    if (port < 1 || port > 65535) {
        return error(Errc::kInvalidArgument, "port out of range in \"" + std::string(text) + "\"");
    }
    return std::make_pair(host, static_cast<uint16_t>(port));
}

Result<std::pair<std::string, uint16_t>> parse_redirect_location(std::string_view location) {
    constexpr std::string_view kScheme = "https://";
    if (!location.starts_with(kScheme)) {
        return error(Errc::kInvalidArgument,
                     "redirect to a non-https location: " + std::string(location));
    }
    location.remove_prefix(kScheme.size());
    return parse_host_port(location.substr(0, location.find('/')));
}

Result<SandboxParty> sandbox_party(const json& sandbox_file, const std::string& dir,
                                   const std::string& name) {
    bool name_ok = !name.empty() && name.size() <= kMaxSandboxNameChars && name != "." &&
                   name != ".." && std::all_of(name.begin(), name.end(), [](unsigned char c) {
                       return std::isalnum(c) != 0 || c == '_' || c == '-' || c == '.';
                   });
    if (!name_ok) {
        return error(Errc::kInvalidArgument, "--as must be 1 to 64 characters of [A-Za-z0-9_.-]");
    }
    SandboxParty out;
    out.service_cert_path = string_member(sandbox_file, "service_cert");
    auto nodes = sandbox_file.find("nodes");
    if (out.service_cert_path.empty() || nodes == sandbox_file.end() || !nodes->is_array()) {
        return error(Errc::kInvalidArgument,
                     dir + "/sandbox.json has no service_cert or nodes (docs/sandbox.md)");
    }
    for (const json& n : *nodes) {
        std::string address = n.is_object() ? string_member(n, "client_address") : "";
        if (!address.empty()) {
            out.client_addresses.push_back(address);
        }
    }
    if (out.client_addresses.empty()) {
        return error(Errc::kInvalidArgument, dir + "/sandbox.json lists no node address");
    }
    std::string base = dir + "/identities/" + name;
    out.cert_path = base + "_cert.pem";
    out.key_path = base + "_privk.pem";
    out.enc_key_path = base + "_enc_privk.pem";
    return out;
}

UploadProgress::UploadProgress(std::ostream& out, bool tty, size_t total_bytes)
    : out_(out), tty_(tty), total_(total_bytes) {
    if (tty_) {
        draw();
    }
}

void UploadProgress::advance(size_t bytes) {
    done_ = std::min(total_, done_ + bytes);
    if (tty_) {
        draw();
        return;
    }
    int tenth = total_ == 0 ? 10 : static_cast<int>(done_ * 10 / total_);
    if (tenth > last_tenth_) {
        last_tenth_ = tenth;
        out_ << "upload: " << tenth * 10 << "% (" << done_ << " of " << total_ << " bytes)\n"
             << std::flush;
    }
}

void UploadProgress::finish() {
    if (tty_) {
        out_ << "\n" << std::flush;
    }
}

void UploadProgress::draw() {
    size_t filled = total_ == 0 ? kProgressBarWidth : done_ * kProgressBarWidth / total_;
    size_t percent = total_ == 0 ? 100 : done_ * 100 / total_;
    out_ << "\rupload [" << std::string(filled, '#') << std::string(kProgressBarWidth - filled, ' ')
         << "] " << std::setw(3) << percent << "%  " << done_ << " / " << total_ << " bytes"
         << std::flush;
}

Result<std::unique_ptr<CleanroomSession>> CleanroomSession::connect(SessionOptions options) {
    if (options.addresses.empty()) {
        return error(Errc::kInvalidArgument, "no service address");
    }
    std::unique_ptr<CleanroomSession> session(new CleanroomSession(std::move(options)));
    COFFER_RETURN_IF_ERROR(session->reconnect());
    return session;
}

Status CleanroomSession::reconnect() {
    client_.reset();
    Status last = error(Errc::kInvalidArgument, "no service address");
    for (const auto& address : options_.addresses) {
        last = connect_to(address);
        if (last.ok()) {
            return last;
        }
    }
    return last;
}

Status CleanroomSession::connect_to(const std::pair<std::string, uint16_t>& address) {
    net::ClientOptions client;
    client.host = address.first;
    client.port = address.second;
    client.ca_cert_pem = options_.service_cert_pem;
    client.client_cert_pem = options_.client_cert_pem;
    client.client_key_pem = options_.client_key_pem;
    client.timeout_ms = options_.timeout_ms;
    auto connected = net::HttpClient::connect(std::move(client));
    if (!connected.ok()) {
        return connected.status().with_context(address.first + ":" +
                                               std::to_string(address.second) + ": ");
    }
    client_ = std::move(*connected);
    current_ = address;
    return Status();
}

std::string CleanroomSession::current_address() const {
    return current_.first + ":" + std::to_string(current_.second);
}

Result<ApiAnswer> CleanroomSession::request(std::string_view method, const std::string& target,
                                            std::string_view body, std::string_view content_type) {
    net::HeaderList headers;
    std::string full_target = target;
    if (method == "GET" && options_.reads_on_leader) {
        full_target += (target.find('?') == std::string::npos ? "?" : "&");
        full_target += "consistency=linearizable";
    }
    if (method != "GET") {
        headers.emplace_back("content-type", std::string(content_type));
        headers.emplace_back("x-coffer-wait-ms", std::to_string(kCommitWaitMs));
    }
    int redirects = 0;
    int waits = 0;
    while (true) {
        COFFER_ASSIGN_OR_RETURN(net::HttpResponse response,
                                client_->request(method, full_target, body, headers));
        if (response.status == 307) {
            auto location = response.header("Location");
            if (!location.has_value() || redirects >= kMaxRedirects) {
                return error(Errc::kFailedPrecondition,
                             "too many redirects, or a redirect without Location, for " + target);
            }
            COFFER_ASSIGN_OR_RETURN(auto next, parse_redirect_location(*location));
            Status moved = connect_to(next);
            if (moved.ok()) {
                ++redirects;
                continue;
            }
            // The node named as leader does not answer: it may just have failed, before the
            // others noticed. Nothing was sent to it, so wait for an election and ask again.
            if (++waits > kMaxUnavailableRetries) {
                return moved;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(kUnavailableRetryMs));
            COFFER_RETURN_IF_ERROR(reconnect());
            continue;
        }
        if (response.status == 503 && ++waits <= kMaxUnavailableRetries) {
            std::this_thread::sleep_for(std::chrono::milliseconds(kUnavailableRetryMs));
            continue;
        }
        ApiAnswer answer;
        answer.status = response.status;
        answer.json = json::parse(response.body, nullptr, false);
        if (answer.json.is_discarded()) {
            answer.json = nullptr;
        }
        answer.body = std::move(response.body);
        answer.headers = std::move(response.headers);
        return answer;
    }
}

Result<ApiAnswer> CleanroomSession::call(std::string_view method, const std::string& target,
                                         std::string_view body, std::string_view content_type) {
    COFFER_ASSIGN_OR_RETURN(ApiAnswer answer, request(method, target, body, content_type));
    if (answer.status != 200) {
        return error(errc_for_http(answer.status), "the service answered " +
                                                       std::to_string(answer.status) + ": " +
                                                       service_error_message(answer));
    }
    return answer;
}

std::string service_error_message(const ApiAnswer& answer) {
    if (answer.json.is_object()) {
        auto err = answer.json.find("error");
        if (err != answer.json.end() && err->is_object()) {
            std::string message = string_member(*err, "message");
            if (!message.empty()) {
                return message;
            }
        }
    }
    return answer.body.empty() ? "(no message)" : answer.body;
}

std::string url_encode(std::string_view value) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : value) {
        if (std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(kHex[c >> 4]);
            out.push_back(kHex[c & 0xF]);
        }
    }
    return out;
}

}  // namespace coffer::cli

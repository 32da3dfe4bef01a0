// `coffer cleanroom ...`: the client of the clean-room service (docs/cleanroom.md,
// docs/cli.md "coffer cleanroom"). Every command talks to one service over HTTPS, pinning its
// certificate, as the user whose TLS identity it is given (or reads both from a sandbox).
// Every command that encrypts first checks the published clean-room key (signature by the
// pinned service, node certificates issued by it, attestation binding each node's key) and
// refuses to encrypt when any check fails.
//
// Exit codes: 0 success; 1 the service refused, a check failed or the service was
// unreachable; 2 bad usage or unreadable input.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/cleanroom_client.h"
#include "cli/commands.h"
#include "crypto/sha256.h"
#include "crypto/x25519.h"

namespace coffer::cli {

namespace {

using nlohmann::json;

constexpr size_t kMaxPemBytes = 64 * 1024;
constexpr size_t kMaxSchemaBytes = 1 << 20;
constexpr size_t kMaxSandboxFileBytes = 1 << 20;
constexpr size_t kMaxAnalysisFileBytes = 256 * 1024;
constexpr size_t kMaxResultFileBytes = 64 << 20;
constexpr int64_t kMaxTimeoutS = 3600;
constexpr int kExitRefused = 1;
constexpr int kExitUsage = 2;
// Upload sessions started for one `upload` command (the first one and restarts).
constexpr int kMaxUploadAttempts = 3;
// After a lost session, how often and how long apart the client tries to reach a node again:
// while the network elects a new leader, a node may refuse or reset connections for a moment.
constexpr int kMaxReconnectTries = 40;
constexpr int kReconnectPauseMs = 250;

// Options shared by every subcommand (given before or after the subcommand's name).
struct CommonArgs {
    std::string service;
    std::string service_cert;
    std::string cert;
    std::string key;
    std::string sandbox;
    std::string as;
    int64_t timeout_s = 120;
    bool json_output = false;
};

// Options of the subcommands; each subcommand reads only its own.
struct CommandArgs {
    std::string expect_measurement;
    std::string schema;
    std::string dataset;
    std::string csv;
    size_t chunk_bytes = kMaxUploadChunkBytes;
    std::string analysis_file;
    std::string analysis;
    int64_t max_runs = -1;
    std::string run;
    std::string out;
    std::string in;
    std::string enc_key;
};

// What a command failed with and the exit code it maps to.
struct Failure {
    int code;
    std::string message;
};

int report(const Failure& f) {
    std::cerr << "error: " << f.message << std::endl;
    return f.code;
}

int report(const Status& s, int code) {
    return report(Failure{code, s.message()});
}

// Where to connect and as whom, resolved from the common options.
struct Connection {
    SessionOptions session;
    crypto::Certificate service_cert;
};

Result<std::string> read_input(const std::string& path, size_t max_bytes, const char* what) {
    auto text = read_file(path, max_bytes);
    if (!text.ok()) {
        return text.status().with_context(std::string(what) + ": ");
    }
    return text;
}

// Fills the addresses and the certificate and key paths from --sandbox/--as. Errors: usage.
Status apply_sandbox(const CommonArgs& args, Connection& conn, std::string& cert_path,
                     std::string& key_path, std::string& cert_pem_path) {
    COFFER_ASSIGN_OR_RETURN(std::string text, read_input(args.sandbox + "/sandbox.json",
                                                         kMaxSandboxFileBytes, "--sandbox"));
    json file = json::parse(text, nullptr, false);
    if (!file.is_object()) {
        return error(Errc::kInvalidArgument, args.sandbox + "/sandbox.json is not JSON");
    }
    if (args.as.empty()) {
        return error(Errc::kInvalidArgument, "--sandbox needs --as NAME (a user of the sandbox)");
    }
    COFFER_ASSIGN_OR_RETURN(SandboxParty party, sandbox_party(file, args.sandbox, args.as));
    for (const std::string& address : party.client_addresses) {
        COFFER_ASSIGN_OR_RETURN(auto parsed, parse_host_port(address));
        conn.session.addresses.push_back(parsed);
    }
    cert_pem_path = party.service_cert_path;
    cert_path = party.cert_path;
    key_path = party.key_path;
    return Status();
}

// Errors: kInvalidArgument/kNotFound/kIo for bad options or unreadable files (usage).
Result<Connection> resolve_connection(const CommonArgs& args, bool needs_identity) {
    Connection conn;
    std::string cert_path = args.cert;
    std::string key_path = args.key;
    std::string service_cert_path = args.service_cert;
    if (!args.sandbox.empty()) {
        std::string sb_cert, sb_key, sb_service_cert;
        COFFER_RETURN_IF_ERROR(apply_sandbox(args, conn, sb_cert, sb_key, sb_service_cert));
        cert_path = cert_path.empty() ? sb_cert : cert_path;
        key_path = key_path.empty() ? sb_key : key_path;
        service_cert_path = service_cert_path.empty() ? sb_service_cert : service_cert_path;
    }
    if (!args.service.empty()) {
        COFFER_ASSIGN_OR_RETURN(auto parsed, parse_host_port(args.service));
        conn.session.addresses = {parsed};
    }
    if (conn.session.addresses.empty() || service_cert_path.empty()) {
        return error(Errc::kInvalidArgument,
                     "give --service HOST:PORT and --service-cert PEM, or --sandbox DIR --as NAME");
    }
    COFFER_ASSIGN_OR_RETURN(conn.session.service_cert_pem,
                            read_input(service_cert_path, kMaxPemBytes, "--service-cert"));
    COFFER_ASSIGN_OR_RETURN(conn.service_cert,
                            crypto::Certificate::from_pem(conn.session.service_cert_pem));
    if (needs_identity && (cert_path.empty() || key_path.empty())) {
        return error(Errc::kInvalidArgument,
                     "this command needs the user's identity: --cert PEM --key PEM, or "
                     "--sandbox DIR --as NAME");
    }
    if (!cert_path.empty() && !key_path.empty()) {
        COFFER_ASSIGN_OR_RETURN(conn.session.client_cert_pem,
                                read_input(cert_path, kMaxPemBytes, "--cert"));
        COFFER_ASSIGN_OR_RETURN(conn.session.client_key_pem,
                                read_input(key_path, kMaxPemBytes, "--key"));
    }
    conn.session.timeout_ms = static_cast<uint32_t>(args.timeout_s * 1000);
    return conn;
}

// A connected session, or the failure (usage for bad options, refused when unreachable).
struct Opened {
    Connection conn;
    std::unique_ptr<CleanroomSession> session;
};

Result<Opened> open_session(const CommonArgs& args, bool needs_identity, Failure& failure) {
    auto conn = resolve_connection(args, needs_identity);
    if (!conn.ok()) {
        failure = {kExitUsage, conn.status().message()};
        return conn.status();
    }
    auto session = CleanroomSession::connect(conn->session);
    if (!session.ok()) {
        failure = {kExitRefused, "cannot reach the service: " + session.status().message()};
        return session.status();
    }
    return Opened{std::move(*conn), std::move(*session)};
}

// A JSON value for people: scalars plainly, strings unquoted, the rest compact JSON.
std::string plain(const json& value) {
    if (value.is_string()) {
        return value.get<std::string>();
    }
    bool all_strings = value.is_array() && std::all_of(value.begin(), value.end(),
                                                       [](const json& v) { return v.is_string(); });
    if (all_strings) {
        std::string joined;
        for (const json& v : value) {
            joined += (joined.empty() ? "" : ", ") + v.get<std::string>();
        }
        return joined.empty() ? "(none)" : joined;
    }
    return value.is_null() ? "-" : value.dump();
}

std::string field(const json& doc, const char* name) {
    if (!doc.is_object() || !doc.contains(name)) {
        return "-";
    }
    return plain(doc[name]);
}

// The list in an answer that is either the list itself or an object holding it at `key`.
json list_in(const json& answer, const char* key) {
    if (answer.is_array()) {
        return answer;
    }
    if (answer.is_object() && answer.contains(key) && answer[key].is_array()) {
        return answer[key];
    }
    return json::array();
}

// Prints every member of an object as "name: value", one a line.
void print_members(const json& doc, const std::string& indent = "") {
    if (!doc.is_object()) {
        std::cout << indent << plain(doc) << "\n";
        return;
    }
    for (const auto& [name, value] : doc.items()) {
        std::cout << indent << name << ": " << plain(value) << "\n";
    }
}

// The answer as JSON (--json) or via `human`.
int print_answer(const CommonArgs& args, const ApiAnswer& answer,
                 const std::function<void(const json&)>& human) {
    if (args.json_output) {
        std::cout << (answer.json.is_null() ? answer.body : answer.json.dump(2)) << "\n";
    } else {
        human(answer.json);
    }
    return 0;
}

// A GET whose answer is printed as JSON (--json) or via `human`.
int simple_read(const CommonArgs& args, const std::string& target,
                const std::function<void(const json&)>& human) {
    Failure failure{0, ""};
    auto opened = open_session(args, true, failure);
    if (!opened.ok()) {
        return report(failure);
    }
    auto answer = opened->session->call("GET", target);
    if (!answer.ok()) {
        return report(answer.status(), kExitRefused);
    }
    return print_answer(args, *answer, human);
}

// --- key ---

Result<PublishedServiceKey> fetch_checked_key(Opened& opened, const std::string& expect,
                                              Failure& failure) {
    auto answer = opened.session->call("GET", "/app/cleanroom/key");
    if (!answer.ok()) {
        failure = {kExitRefused, "GET /app/cleanroom/key: " + answer.status().message()};
        return answer.status();
    }
    KeyCheckOptions options;
    if (!expect.empty()) {
        options.expect_measurement_hex = expect;
    }
    auto key = check_published_key(answer->json, opened.conn.service_cert, options);
    if (!key.ok()) {
        failure = {kExitRefused,
                   "the clean-room key publication was rejected: " + key.status().message()};
    }
    return key;
}

int cmd_key(const CommonArgs& args, const CommandArgs& cmd) {
    Failure failure{0, ""};
    auto opened = open_session(args, false, failure);
    if (!opened.ok()) {
        return report(failure);
    }
    auto key = fetch_checked_key(*opened, cmd.expect_measurement, failure);
    if (!key.ok()) {
        return report(failure);
    }
    std::cout << "clean-room key " << to_hex(key->public_key) << "\n"
              << "signed by the pinned service certificate "
              << opened->conn.service_cert.fingerprint_sha256_hex() << "\n";
    bool all_hardware = true;
    for (const PublishedNode& n : key->nodes) {
        std::cout << "node " << n.node_id << "  " << n.platform << "  measurement "
                  << n.measurement_hex << "  certificate issued by the service, evidence binds "
                  << "its key\n";
        all_hardware = all_hardware && n.hardware_backed;
    }
    if (!all_hardware) {
        std::cout << "WARNING: evidence not hardware-backed (virtual platform): anyone can "
                     "produce evidence like this\n";
    }
    return 0;
}

// --- datasets ---

int cmd_declare(const CommonArgs& args, const CommandArgs& cmd) {
    auto schema = read_input(cmd.schema, kMaxSchemaBytes, "--schema");
    if (!schema.ok()) {
        return report(schema.status(), kExitUsage);
    }
    Failure failure{0, ""};
    auto opened = open_session(args, true, failure);
    if (!opened.ok()) {
        return report(failure);
    }
    auto answer = opened->session->call("POST", "/app/cleanroom/datasets", *schema);
    if (!answer.ok()) {
        return report(answer.status(), kExitRefused);
    }
    return print_answer(args, *answer, [](const json& doc) {
        std::cout << "dataset declared\n";
        print_members(doc, "  ");
    });
}

void print_dataset(const json& d) {
    std::cout << field(d, "name") << "  owner " << field(d, "owner") << "  version "
              << field(d, "version") << "  rows " << field(d, "rows") << "\n";
    json declaration = d.is_object() ? d.value("declaration", json::object()) : json::object();
    for (const json& c : list_in(declaration, "columns")) {
        std::cout << "    " << field(c, "name") << " " << field(c, "type") << "\n";
    }
}

int cmd_datasets(const CommonArgs& args, const CommandArgs&) {
    return simple_read(args, "/app/cleanroom/datasets", [](const json& doc) {
        json list = list_in(doc, "datasets");
        std::cout << list.size() << (list.size() == 1 ? " dataset" : " datasets") << "\n";
        for (const json& d : list) {
            print_dataset(d);
        }
    });
}

// --- upload ---

// Sends every chunk of `data` to the open upload. Errors: refused (1).
Status send_chunks(CleanroomSession& session, ByteSpan key, const std::string& upload_id,
                   const std::string& data, const std::vector<ChunkRange>& chunks) {
    UploadProgress progress(std::cerr, ::isatty(STDERR_FILENO) == 1, data.size());
    for (size_t i = 0; i < chunks.size(); ++i) {
        ByteSpan plain = as_bytes(std::string_view(data).substr(chunks[i].offset, chunks[i].size));
        COFFER_ASSIGN_OR_RETURN(Bytes body, seal_upload_chunk(key, upload_id, i, plain));
        std::string target = "/app/cleanroom/uploads/chunk?upload=" + url_encode(upload_id) +
                             "&index=" + std::to_string(i);
        auto sent = session.call("POST", target, to_string(body), "application/octet-stream");
        if (!sent.ok()) {
            progress.finish();
            return sent.status().with_context("chunk " + std::to_string(i) + ": ");
        }
        progress.advance(chunks[i].size);
    }
    progress.finish();
    return Status();
}

// Whether a failed upload attempt may start again from scratch: true only when nothing of it
// can have been stored (the session was lost, or the connection failed before the commit).
bool restartable(const Status& status, bool commit_sent) {
    if (status.code() == Errc::kNotFound) {
        return true;
    }
    return status.code() == Errc::kIo && !commit_sent;
}

// One upload session: start, every chunk, commit. Sets commit_sent once the commit request
// may have reached the service.
Result<ApiAnswer> upload_once(CleanroomSession& session, ByteSpan key, const std::string& dataset,
                              const std::string& data, const std::vector<ChunkRange>& chunks,
                              bool& commit_sent) {
    commit_sent = false;
    auto started =
        session.call("POST", "/app/cleanroom/uploads?dataset=" + url_encode(dataset), "{}");
    if (!started.ok()) {
        // A refused start (unknown dataset, not the owner) is not a lost session.
        Errc code = started.status().code() == Errc::kNotFound ? Errc::kFailedPrecondition
                                                               : started.status().code();
        return error(code, "starting the upload: " + started.status().message());
    }
    std::string upload_id = field(started->json, "upload_id");
    if (upload_id == "-" || upload_id.empty()) {
        return error(Errc::kFailedPrecondition, "the service answered no upload_id");
    }
    COFFER_RETURN_IF_ERROR(send_chunks(session, key, upload_id, data, chunks));
    json commit = {{"chunks", chunks.size()}, {"sha256", to_hex(crypto::sha256(as_bytes(data)))}};
    commit_sent = true;
    auto committed = session.call(
        "POST", "/app/cleanroom/uploads/commit?upload=" + url_encode(upload_id), commit.dump());
    if (!committed.ok()) {
        return committed.status().with_context("upload refused: ");
    }
    return committed;
}

// Reconnects to any node of the service, trying again for a while (kMaxReconnectTries).
Status reconnect_patiently(CleanroomSession& session) {
    Status last;
    for (int i = 0; i < kMaxReconnectTries; ++i) {
        last = session.reconnect();
        if (last.ok()) {
            return last;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(kReconnectPauseMs));
    }
    return last.with_context("no node of the service answers: ");
}

// Upload sessions live in the leader's memory: a leader change loses them, and the client
// starts again (docs/cleanroom.md), at most kMaxUploadAttempts times in all. A commit whose
// outcome is unknown is never repeated, since it may have stored the rows.
Result<ApiAnswer> upload_with_restarts(CleanroomSession& session, ByteSpan key,
                                       const std::string& dataset, const std::string& data,
                                       const std::vector<ChunkRange>& chunks) {
    for (int attempt = 1;; ++attempt) {
        bool commit_sent = false;
        auto committed = upload_once(session, key, dataset, data, chunks, commit_sent);
        if (committed.ok() || !restartable(committed.status(), commit_sent) ||
            attempt == kMaxUploadAttempts) {
            if (!committed.ok() && commit_sent && committed.status().code() == Errc::kIo) {
                return committed.status().with_context(
                    "the commit's outcome is unknown; see `coffer cleanroom datasets` for the "
                    "dataset's version before uploading again: ");
            }
            return committed;
        }
        std::cerr << "upload interrupted (" << committed.status().message()
                  << "); starting again, attempt " << attempt + 1 << " of " << kMaxUploadAttempts
                  << std::endl;
        COFFER_RETURN_IF_ERROR(reconnect_patiently(session));
    }
}

int cmd_upload(const CommonArgs& args, const CommandArgs& cmd) {
    auto data = read_input(cmd.csv, kMaxUploadBytes, "--csv");
    if (!data.ok()) {
        std::string hint = data.status().code() == Errc::kResourceExhausted
                               ? " (the service takes at most that much per upload: split the "
                                 "file, each part becomes a new version of the dataset)"
                               : "";
        return report(Failure{kExitUsage, data.status().message() + hint});
    }
    auto chunks = plan_chunks(data->size(), cmd.chunk_bytes);
    if (!chunks.ok()) {
        return report(chunks.status().with_context(cmd.csv + ": "), kExitUsage);
    }
    Failure failure{0, ""};
    auto opened = open_session(args, true, failure);
    if (!opened.ok()) {
        return report(failure);
    }
    auto key = fetch_checked_key(*opened, cmd.expect_measurement, failure);
    if (!key.ok()) {
        return report(Failure{failure.code, failure.message + "; nothing was encrypted or sent"});
    }
    auto committed =
        upload_with_restarts(*opened->session, key->public_key, cmd.dataset, *data, *chunks);
    if (!committed.ok()) {
        return report(committed.status(), kExitRefused);
    }
    return print_answer(args, *committed, [&](const json& doc) {
        std::cout << "uploaded " << field(doc, "dataset") << ": " << field(doc, "rows")
                  << " rows, version " << field(doc, "version") << " (" << field(doc, "total_rows")
                  << " rows in all), transaction " << field(doc, "tx_id") << "\n";
    });
}

// --- analyses ---

int cmd_propose(const CommonArgs& args, const CommandArgs& cmd) {
    auto document = read_input(cmd.analysis_file, kMaxAnalysisFileBytes, "--analysis");
    if (!document.ok()) {
        return report(document.status(), kExitUsage);
    }
    std::string id = analysis_id_of(*document);
    // Printed before anything is sent: the id is what owners approve, and anyone holding the
    // file can recompute it.
    std::cout << "analysis id " << id << std::endl;
    Failure failure{0, ""};
    auto opened = open_session(args, true, failure);
    if (!opened.ok()) {
        return report(failure);
    }
    auto answer = opened->session->call("POST", "/app/cleanroom/analyses", *document);
    if (!answer.ok()) {
        return report(answer.status().with_context("analysis refused: "), kExitRefused);
    }
    std::string served = field(answer->json, "id");
    if (served != id) {
        return report(Failure{kExitRefused,
                              "the service registered the analysis as " + served + ", not " + id});
    }
    return print_answer(args, *answer, [](const json& doc) {
        std::cout << "submitted; approvals needed from: " << field(doc, "owners") << "\n";
    });
}

int simple_write(const CommonArgs& args, const std::string& target, const std::string& body,
                 const std::string& done) {
    Failure failure{0, ""};
    auto opened = open_session(args, true, failure);
    if (!opened.ok()) {
        return report(failure);
    }
    auto answer = opened->session->call("POST", target, body);
    if (!answer.ok()) {
        return report(answer.status(), kExitRefused);
    }
    return print_answer(args, *answer, [&](const json& doc) {
        std::cout << done << "\n";
        print_members(doc, "  ");
    });
}

int cmd_approve(const CommonArgs& args, const CommandArgs& cmd) {
    json body = json::object();
    if (cmd.max_runs >= 0) {
        body["max_runs"] = cmd.max_runs;
    }
    return simple_write(args, "/app/cleanroom/approvals?analysis=" + url_encode(cmd.analysis),
                        body.dump(), "approved " + cmd.analysis);
}

int cmd_revoke(const CommonArgs& args, const CommandArgs& cmd) {
    return simple_write(args, "/app/cleanroom/revocations?analysis=" + url_encode(cmd.analysis),
                        "{}", "approval revoked for " + cmd.analysis);
}

int cmd_analyses(const CommonArgs& args, const CommandArgs&) {
    return simple_read(args, "/app/cleanroom/analyses", [](const json& doc) {
        json list = list_in(doc, "analyses");
        std::cout << list.size() << (list.size() == 1 ? " analysis" : " analyses") << "\n";
        for (const json& a : list) {
            std::cout << field(a, "id") << "\n";
            json rest = a.is_object() ? a : json::object();
            rest.erase("id");
            rest.erase("document");
            // approvals print as JSON, with the dataset versions each one covers.
            print_members(rest, "  ");
        }
    });
}

// Prints one analysis after checking that the served document hashes to the id asked for:
// owners read it here before approving, and the id is what their approval binds.
int cmd_show(const CommonArgs& args, const CommandArgs& cmd) {
    Failure failure{0, ""};
    auto opened = open_session(args, true, failure);
    if (!opened.ok()) {
        return report(failure);
    }
    auto answer =
        opened->session->call("GET", "/app/cleanroom/analysis?id=" + url_encode(cmd.analysis));
    if (!answer.ok()) {
        return report(answer.status(), kExitRefused);
    }
    auto document = answer->json.is_object() ? answer->json.find("document") : answer->json.end();
    if (document == answer->json.end() || !document->is_string() ||
        analysis_id_of(document->get<std::string>()) != cmd.analysis) {
        return report(Failure{
            kExitRefused, "the service served a document whose SHA-256 is not " + cmd.analysis});
    }
    return print_answer(args, *answer, [](const json& doc) {
        json rest = doc;
        std::string text = rest["document"].get<std::string>();
        rest.erase("document");
        print_members(rest);
        std::cout << "document (its SHA-256 is the id):\n" << text << "\n";
    });
}

// --- runs ---

void print_run(const json& run) {
    std::cout << field(run, "run_id") << "  analysis " << field(run, "analysis_id") << "  trigger "
              << field(run, "trigger") << "\n";
    for (const json& d : list_in(run, "datasets")) {
        std::cout << "  read " << field(d, "name") << " version " << field(d, "version") << " ("
                  << field(d, "rows") << " rows)\n";
    }
    if (run.is_object() && run.contains("results") && run["results"].is_object()) {
        for (const auto& [recipient, hash] : run["results"].items()) {
            std::cout << "  result for " << recipient << ": ciphertext sha256 " << plain(hash)
                      << "\n";
        }
    }
    std::cout << "  suppressed rows " << field(run, "suppressed_rows") << ", "
              << field(run, "duration_ms") << " ms";
    if (run.is_object() && run.contains("tx_id")) {
        std::cout << ", transaction " << field(run, "tx_id");
    }
    std::cout << "\n";
}

int cmd_run(const CommonArgs& args, const CommandArgs& cmd) {
    Failure failure{0, ""};
    auto opened = open_session(args, true, failure);
    if (!opened.ok()) {
        return report(failure);
    }
    auto answer =
        opened->session->call("POST", "/app/cleanroom/runs?analysis=" + url_encode(cmd.analysis));
    if (!answer.ok()) {
        return report(answer.status().with_context("run refused: "), kExitRefused);
    }
    return print_answer(args, *answer, [](const json& doc) {
        // The audit record may be the answer itself or nested beside the tx_id.
        json record = doc.is_object() && doc.contains("record") ? doc["record"] : doc;
        if (record.is_object() && doc.is_object() && doc.contains("tx_id")) {
            record["tx_id"] = doc["tx_id"];
        }
        print_run(record);
    });
}

int cmd_runs(const CommonArgs& args, const CommandArgs& cmd) {
    std::string target = "/app/cleanroom/runs";
    if (!cmd.analysis.empty()) {
        target += "?analysis=" + url_encode(cmd.analysis);
    }
    return simple_read(args, target, [](const json& doc) {
        json list = list_in(doc, "runs");
        std::cout << list.size() << (list.size() == 1 ? " run" : " runs") << "\n";
        for (const json& r : list) {
            print_run(r);
        }
    });
}

// --- results ---

Result<Bytes> load_enc_key(const std::string& path) {
    COFFER_ASSIGN_OR_RETURN(std::string pem, read_input(path, kMaxPemBytes, "--enc-key"));
    COFFER_ASSIGN_OR_RETURN(crypto::X25519KeyPair pair, crypto::x25519_private_from_pem(pem));
    return pair.private_key;
}

// Opens a served result and prints it, or writes the plaintext to `out`.
int open_and_print(const SealedResult& sealed, const Bytes& key, const std::string& out,
                   const CommonArgs& args) {
    auto doc = open_result(sealed, key);
    if (!doc.ok()) {
        return report(doc.status(), kExitRefused);
    }
    if (!out.empty()) {
        Status written = write_file(out, doc->dump(2) + "\n");
        if (!written.ok()) {
            return report(written, kExitUsage);
        }
        std::cout << "decrypted the result of " << sealed.run_id << " for " << sealed.recipient
                  << " into " << out << "\n";
        return 0;
    }
    std::cout << (args.json_output ? doc->dump(2) + "\n" : format_result_document(*doc));
    return 0;
}

// The --enc-key path, defaulting to the sandbox party's key; empty when neither is given.
std::string enc_key_path(const CommonArgs& args, const CommandArgs& cmd) {
    if (!cmd.enc_key.empty() || args.sandbox.empty() || args.as.empty()) {
        return cmd.enc_key;
    }
    return args.sandbox + "/identities/" + args.as + "_enc_privk.pem";
}

// The served ciphertext must be the one the run's audit record (in the ledger, in clear)
// names, so that what a recipient decrypts is what every other party can audit.
Status check_against_audit(CleanroomSession& session, const SealedResult& sealed) {
    auto runs = session.call("GET", "/app/cleanroom/runs");
    if (!runs.ok()) {
        return runs.status().with_context("reading the audit records: ");
    }
    for (const json& record : list_in(runs->json, "runs")) {
        if (field(record, "run_id") == sealed.run_id) {
            return check_result_against_record(sealed, record);
        }
    }
    return error(Errc::kNotFound, "no audit record of " + sealed.run_id + " is visible to you");
}

int cmd_fetch(const CommonArgs& args, const CommandArgs& cmd) {
    std::string key_path = cmd.out.empty() ? enc_key_path(args, cmd) : cmd.enc_key;
    if (cmd.out.empty() && key_path.empty()) {
        return report(Failure{kExitUsage,
                              "give --out FILE (to keep the encrypted result) or "
                              "--enc-key PEM (to decrypt it)"});
    }
    Result<Bytes> key = Bytes();
    if (!key_path.empty()) {
        key = load_enc_key(key_path);
        if (!key.ok()) {
            return report(key.status(), kExitUsage);
        }
    }
    Failure failure{0, ""};
    auto opened = open_session(args, true, failure);
    if (!opened.ok()) {
        return report(failure);
    }
    auto answer = opened->session->call("GET", "/app/cleanroom/results?run=" + url_encode(cmd.run));
    if (!answer.ok()) {
        return report(answer.status(), kExitRefused);
    }
    auto sealed = parse_sealed_result(answer->json);
    if (!sealed.ok() || sealed->run_id != cmd.run) {
        return report(Failure{kExitRefused,
                              "the service answered something other than the "
                              "result of " +
                                  cmd.run});
    }
    Status audited = check_against_audit(*opened->session, *sealed);
    if (!audited.ok()) {
        return report(audited, kExitRefused);
    }
    if (!cmd.out.empty()) {
        Status written = write_file(cmd.out, answer->body);
        if (!written.ok()) {
            return report(written, kExitUsage);
        }
        std::cout << "encrypted result of " << cmd.run << " for " << sealed->recipient
                  << " written to " << cmd.out << "\n";
    }
    return key_path.empty() ? 0 : open_and_print(*sealed, *key, "", args);
}

int cmd_decrypt(const CommonArgs& args, const CommandArgs& cmd) {
    std::string key_path = enc_key_path(args, cmd);
    if (key_path.empty()) {
        return report(Failure{kExitUsage, "give --enc-key PEM (or --sandbox DIR --as NAME)"});
    }
    auto key = load_enc_key(key_path);
    auto text = read_input(cmd.in, kMaxResultFileBytes, "--in");
    if (!key.ok() || !text.ok()) {
        return report(key.ok() ? text.status() : key.status(), kExitUsage);
    }
    auto sealed = parse_sealed_result(json::parse(*text, nullptr, false));
    if (!sealed.ok()) {
        return report(sealed.status().with_context(cmd.in + ": "), kExitUsage);
    }
    return open_and_print(*sealed, *key, cmd.out, args);
}

// --- registration ---

void add_common_options(CLI::App* app, CommonArgs& args) {
    app->add_option("--service", args.service, "a node's client address HOST:PORT");
    app->add_option("--service-cert", args.service_cert, "the service certificate to pin (PEM)");
    app->add_option("--cert", args.cert, "your user certificate (PEM)");
    app->add_option("--key", args.key, "your user private key (PEM)");
    app->add_option("--sandbox", args.sandbox,
                    "a running sandbox's folder: service address and certificate from its "
                    "sandbox.json, identity from identities/NAME_*");
    app->add_option("--as", args.as, "with --sandbox: the user to act as");
    app->add_option("--timeout-s", args.timeout_s, "bound on each request")
        ->check(CLI::Range(int64_t{1}, kMaxTimeoutS))
        ->capture_default_str();
    app->add_flag("--json", args.json_output, "print the service's answers as JSON");
}

using Handler = int (*)(const CommonArgs&, const CommandArgs&);

CLI::App* add(CLI::App* parent, const char* name, const char* help, Handler handler,
              std::shared_ptr<CommonArgs> common, std::shared_ptr<CommandArgs> args,
              int& exit_code) {
    CLI::App* sub = parent->add_subcommand(name, help);
    sub->fallthrough();
    sub->callback([&exit_code, handler, common, args] { exit_code = handler(*common, *args); });
    return sub;
}

void add_result_commands(CLI::App* cr, std::shared_ptr<CommonArgs> common,
                         std::shared_ptr<CommandArgs> args, int& exit_code) {
    CLI::App* fetch =
        add(cr, "fetch", "fetch a run's result (encrypted to you); keep or decrypt it", cmd_fetch,
            common, args, exit_code);
    fetch->add_option("--run", args->run, "run id")->required();
    fetch->add_option("--out", args->out, "write the encrypted result JSON as served");
    fetch->add_option("--enc-key", args->enc_key, "your X25519 private key: decrypt and print");

    CLI::App* decrypt = add(cr, "decrypt", "decrypt a fetched result offline", cmd_decrypt, common,
                            args, exit_code);
    decrypt->add_option("--in", args->in, "encrypted result JSON (from fetch --out)")->required();
    decrypt->add_option("--enc-key", args->enc_key, "your X25519 private key (PEM)");
    decrypt->add_option("--out", args->out, "write the decrypted result JSON here");
}

void add_analysis_commands(CLI::App* cr, std::shared_ptr<CommonArgs> common,
                           std::shared_ptr<CommandArgs> args, int& exit_code) {
    CLI::App* propose = add(cr, "propose", "submit an analysis document (prints its id first)",
                            cmd_propose, common, args, exit_code);
    propose->add_option("--analysis", args->analysis_file, "analysis document (JSON)")->required();
    CLI::App* approve =
        add(cr, "approve", "approve an analysis by id", cmd_approve, common, args, exit_code);
    approve->add_option("--analysis", args->analysis, "analysis id")->required();
    approve->add_option("--max-runs", args->max_runs, "most runs this approval allows")
        ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
    CLI::App* revoke = add(cr, "revoke", "withdraw your approval of an analysis", cmd_revoke,
                           common, args, exit_code);
    revoke->add_option("--analysis", args->analysis, "analysis id")->required();
    add(cr, "analyses", "list analyses with their approvals", cmd_analyses, common, args,
        exit_code);
    CLI::App* show =
        add(cr, "show", "one analysis with its document", cmd_show, common, args, exit_code);
    show->add_option("--analysis", args->analysis, "analysis id")->required();
    CLI::App* run =
        add(cr, "run", "run an approved analysis now", cmd_run, common, args, exit_code);
    run->add_option("--analysis", args->analysis, "analysis id")->required();
    CLI::App* runs =
        add(cr, "runs", "audit records of the runs you may see", cmd_runs, common, args, exit_code);
    runs->add_option("--analysis", args->analysis, "only runs of this analysis");
}

}  // namespace

void add_cleanroom_commands(CLI::App& app, int& exit_code) {
    CLI::App* cr = app.add_subcommand(
        "cleanroom", "use the clean-room service: datasets, uploads, analyses, runs, results");
    cr->require_subcommand(1);
    auto common = std::make_shared<CommonArgs>();
    auto args = std::make_shared<CommandArgs>();
    add_common_options(cr, *common);

    CLI::App* key = add(cr, "key", "fetch and check the published clean-room key", cmd_key, common,
                        args, exit_code);
    key->add_option("--expect-measurement", args->expect_measurement,
                    "every node's measurement must be this (hex)");
    CLI::App* declare = add(cr, "declare", "declare a dataset (you become its owner)", cmd_declare,
                            common, args, exit_code);
    declare->add_option("--schema", args->schema, "dataset declaration (JSON)")->required();
    add(cr, "datasets", "list declared datasets (metadata only)", cmd_datasets, common, args,
        exit_code);
    CLI::App* upload = add(cr, "upload", "encrypt and upload a CSV file into your dataset",
                           cmd_upload, common, args, exit_code);
    upload->add_option("--dataset", args->dataset, "dataset name")->required();
    upload->add_option("--csv", args->csv, "CSV file (header row = declared columns)")->required();
    upload->add_option("--chunk-bytes", args->chunk_bytes, "plaintext bytes per chunk")
        ->check(CLI::Range(size_t{1}, kMaxUploadChunkBytes))
        ->capture_default_str();
    upload->add_option("--expect-measurement", args->expect_measurement,
                       "every node's measurement must be this (hex)");

    add_analysis_commands(cr, common, args, exit_code);
    add_result_commands(cr, common, args, exit_code);
}

}  // namespace coffer::cli

// `coffer member propose|vote|withdraw|list|show`: a member's governance requests, signed
// with the member's key (gov/signed_request.h) and sent over TLS with the member's
// certificate, following redirects to the leader. See docs/cli.md, "coffer member".
#include <openssl/crypto.h>

#include <ctime>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "crypto/ecdsa.h"
#include "crypto/x25519.h"
#include "crypto/x509.h"
#include "gov/recovery.h"
#include "gov/signed_request.h"
#include "net/client.h"

namespace coffer::cli {

namespace {

using nlohmann::json;

// How many 307 redirects a request follows (a follower names the leader; a second hop only
// happens during an election).
constexpr int kMaxRedirects = 4;
// How long a write's answer waits for its commit (x-coffer-wait-ms).
constexpr uint64_t kCommitWaitMs = 5000;
// Bound on each connection and request.
constexpr uint32_t kRequestTimeoutMs = 15000;
// The largest proposal file read.
constexpr size_t kMaxProposalFileBytes = gov::kMaxRequestPayloadBytes;

struct MemberArgs {
    std::string service;  // host:port
    std::string service_cert;
    std::string cert;
    std::string key;
    std::string proposal;  // a file (propose) or a proposal id (vote, withdraw, show)
    std::string action;
    std::string args = "{}";
    bool yes = false;
    bool no = false;
    std::string enc_key;  // the member's X25519 private key (share --decrypt)
    bool decrypt = false;
    bool submit = false;                // share --submit
    std::string previous_service_cert;  // share --submit: the lost service's certificate
};

// Exit codes: 2 for unusable input, 1 for a refused request or a failed connection.
struct Failure {
    int exit_code;
    std::string message;
};

Result<std::pair<std::string, uint16_t>> split_address(const std::string& address) {
    size_t colon = address.rfind(':');
    if (colon == std::string::npos || colon == 0) {
        return error(Errc::kInvalidArgument, "expected HOST:PORT, got \"" + address + "\"");
    }
    std::string host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    std::string port_text = address.substr(colon + 1);
    if (port_text.empty() || port_text.size() > 5 ||
        port_text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(port_text) == 0 || std::stoul(port_text) > 65535) {
        return error(Errc::kInvalidArgument, "bad port in \"" + address + "\"");
    }
    return std::make_pair(host, static_cast<uint16_t>(std::stoul(port_text)));
}

// The member's identity and the service it talks to, read from the files.
struct Session {
    std::string service_cert_pem;
    std::optional<std::string> cert_pem;
    std::optional<std::string> key_pem;
};

Result<Session> open_session(const MemberArgs& a, bool need_identity) {
    Session s;
    COFFER_ASSIGN_OR_RETURN(s.service_cert_pem, read_file(a.service_cert));
    if (a.cert.empty() != a.key.empty()) {
        return error(Errc::kInvalidArgument, "--cert and --key go together");
    }
    if (need_identity && a.cert.empty()) {
        return error(Errc::kInvalidArgument, "this command needs the member's --cert and --key");
    }
    if (!a.cert.empty()) {
        COFFER_ASSIGN_OR_RETURN(s.cert_pem, read_file(a.cert));
        COFFER_ASSIGN_OR_RETURN(s.key_pem, read_file(a.key));
    }
    return s;
}

// Sends one request to `address`, following up to kMaxRedirects 307 answers. Any final
// HTTP status is a successful Result.
Result<net::HttpResponse> send(const Session& s, std::string address, const std::string& method,
                               std::string target, const std::string& body) {
    for (int hop = 0;; ++hop) {
        COFFER_ASSIGN_OR_RETURN(auto host_port, split_address(address));
        net::ClientOptions options;
        options.host = host_port.first;
        options.port = host_port.second;
        options.ca_cert_pem = s.service_cert_pem;
        options.client_cert_pem = s.cert_pem;
        options.client_key_pem = s.key_pem;
        options.timeout_ms = kRequestTimeoutMs;
        COFFER_ASSIGN_OR_RETURN(auto client, net::HttpClient::connect(std::move(options)));
        net::HeaderList headers = {{"content-type", "application/cose"}};
        if (method == "POST") {
            headers.emplace_back("x-coffer-wait-ms", std::to_string(kCommitWaitMs));
        }
        COFFER_ASSIGN_OR_RETURN(net::HttpResponse r,
                                client->request(method, target, body, std::move(headers)));
        auto location = r.header("location");
        if (r.status != 307 || !location.has_value()) {
            return r;
        }
        if (hop >= kMaxRedirects) {
            return error(Errc::kFailedPrecondition, "too many redirects");
        }
        // Location is "https://host:port/target" (apps/service.cc).
        constexpr std::string_view kScheme = "https://";
        size_t slash = location->find('/', kScheme.size());
        if (location->rfind(kScheme, 0) != 0 || slash == std::string::npos) {
            return error(Errc::kInvalidArgument, "unusable redirect to " + *location);
        }
        address = location->substr(kScheme.size(), slash - kScheme.size());
        target = location->substr(slash);
    }
}

// Signs `payload` as a request of `type` with the member's key.
Result<Bytes> sign(const Session& s, const std::string& type,
                   const std::optional<std::string>& proposal_id, const std::string& payload) {
    COFFER_ASSIGN_OR_RETURN(crypto::Certificate member, crypto::Certificate::from_pem(*s.cert_pem));
    COFFER_ASSIGN_OR_RETURN(crypto::Certificate service,
                            crypto::Certificate::from_pem(s.service_cert_pem));
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPrivateKey key,
                            crypto::EcdsaPrivateKey::from_pem(*s.key_pem));
    gov::SignedRequestHeader header;
    header.type = type;
    header.created_at = static_cast<uint64_t>(std::time(nullptr));
    header.proposal_id = proposal_id;
    COFFER_ASSIGN_OR_RETURN(header.kid, from_hex(member.fingerprint_sha256_hex()));
    COFFER_ASSIGN_OR_RETURN(header.service_fingerprint, from_hex(service.fingerprint_sha256_hex()));
    return gov::sign_request(header, as_bytes(payload), key);
}

// Prints the answer (JSON pretty-printed when it parses) and returns the exit code.
int report(const Result<net::HttpResponse>& r) {
    if (!r.ok()) {
        std::cerr << "error: " << r.status().message() << "\n";
        if (net::is_server_certificate_refusal(r.status())) {
            std::cerr << "hint: the node does not present the certificate given by "
                         "--service-cert; a recovered service has a new one (the recovering "
                         "node's DATA_DIR/service_cert.pem, docs/recovery.md)\n";
        }
        return 1;
    }
    json body = json::parse(r->body, nullptr, false);
    std::string text = body.is_discarded() ? r->body : body.dump(2);
    if (r->status >= 200 && r->status < 300) {
        std::cout << text << "\n";
        if (auto status = r->header("x-coffer-tx-status"); status.has_value()) {
            std::cout << "transaction status: " << *status << "\n";
        }
        return 0;
    }
    std::cerr << "refused (HTTP " << r->status << "): " << text << "\n";
    return 1;
}

int input_error(const Status& s) {
    std::cerr << "error: " << s.message() << "\n";
    return 2;
}

// The proposal document: the file's JSON, or one action built from --action and --args.
Result<std::string> proposal_payload(const MemberArgs& a) {
    if (a.proposal.empty() == a.action.empty()) {
        return error(Errc::kInvalidArgument, "give either --proposal FILE or --action NAME");
    }
    json doc;
    if (!a.proposal.empty()) {
        COFFER_ASSIGN_OR_RETURN(std::string text, read_file(a.proposal, kMaxProposalFileBytes));
        doc = json::parse(text, nullptr, false);
        if (doc.is_discarded() || !doc.is_object()) {
            return error(Errc::kInvalidArgument, a.proposal + " is not a JSON object");
        }
    } else {
        json args = json::parse(a.args, nullptr, false);
        if (args.is_discarded() || !args.is_object()) {
            return error(Errc::kInvalidArgument, "--args must be a JSON object");
        }
        doc = {{"actions", json::array({{{"name", a.action}, {"args", args}}})}};
    }
    return doc.dump();
}

int run_write(const MemberArgs& a, const std::string& type, const std::string& path) {
    auto session = open_session(a, true);
    if (!session.ok()) {
        return input_error(session.status());
    }
    std::string payload;
    std::optional<std::string> proposal_id;
    if (type == "proposal") {
        auto p = proposal_payload(a);
        if (!p.ok()) {
            return input_error(p.status());
        }
        payload = std::move(*p);
    } else {
        proposal_id = a.proposal;
        payload = type == "ballot" ? json{{"vote", a.yes}}.dump() : "{}";
        if (type == "ballot" && a.yes == a.no) {
            return input_error(error(Errc::kInvalidArgument, "give exactly one of --yes, --no"));
        }
    }
    auto signed_request = sign(*session, type, proposal_id, payload);
    if (!signed_request.ok()) {
        return input_error(signed_request.status());
    }
    return report(send(*session, a.service, "POST", path, to_string(*signed_request)));
}

int run_read(const MemberArgs& a, const std::string& target) {
    auto session = open_session(a, false);
    if (!session.ok()) {
        return input_error(session.status());
    }
    return report(send(*session, a.service, "GET", target, ""));
}

// Before a share leaves this machine: the service asking for it must say it was recovered
// from the service whose certificate the member pinned, else an operator could collect
// shares with a service of its own (docs/recovery.md, "Submitting a share").
Status check_recovers_pinned_service(const Session& s, const MemberArgs& a) {
    if (a.previous_service_cert.empty()) {
        return error(Errc::kInvalidArgument,
                     "--submit needs --previous-service-cert PEM (the lost service's certificate)");
    }
    auto pem = read_file(a.previous_service_cert);
    auto pinned =
        pem.ok() ? crypto::Certificate::from_pem(*pem) : Result<crypto::Certificate>(pem.status());
    if (!pinned.ok()) {
        return error(Errc::kInvalidArgument,
                     "--previous-service-cert: " + pinned.status().message());
    }
    COFFER_ASSIGN_OR_RETURN(net::HttpResponse r, send(s, a.service, "GET", "/gov/recovery", ""));
    json status = json::parse(r.body, nullptr, false);
    if (r.status != 200 || !status.is_object()) {
        return error(Errc::kFailedPrecondition,
                     "GET /gov/recovery answered " + std::to_string(r.status) + ": " + r.body);
    }
    json previous = status.value("previous_fingerprints", json::array());
    if (!previous.is_array() || previous.empty() ||
        previous.back() != pinned->fingerprint_sha256_hex()) {
        return error(Errc::kPermissionDenied,
                     "this service does not recover the service of " + a.previous_service_cert +
                         " (fingerprint " + pinned->fingerprint_sha256_hex() +
                         "): its previous identity is " +
                         (previous.is_array() && !previous.empty() ? previous.back().dump()
                                                                   : std::string("none")) +
                         "; the share is not sent");
    }
    return Status();
}

// `share`: fetches the member's encrypted recovery share (GET /gov/recovery_share); with
// --decrypt opens it with the member's X25519 key and prints the share in its text form;
// with --submit sends it, signed, to a recovering service instead (docs/recovery.md). The
// share is secret: it is printed only with --decrypt and never with --submit.
int run_share(const MemberArgs& a) {
    auto session = open_session(a, true);
    if (!session.ok()) {
        return input_error(session.status());
    }
    auto cert = crypto::Certificate::from_pem(*session->cert_pem);
    if (!cert.ok()) {
        return input_error(cert.status());
    }
    std::string fingerprint = cert->fingerprint_sha256_hex();
    bool open = a.decrypt || a.submit;
    if (open && a.enc_key.empty()) {
        return input_error(
            error(Errc::kInvalidArgument, "--decrypt and --submit need --enc-key PEM"));
    }
    if (a.submit) {
        Status checked = check_recovers_pinned_service(*session, a);
        if (!checked.ok()) {
            std::cerr << "error: " << checked.message() << "\n";
            return checked.code() == Errc::kInvalidArgument ? 2 : 1;
        }
    }
    auto r = send(*session, a.service, "GET", "/gov/recovery_share?member=" + fingerprint, "");
    if (!open || !r.ok() || r->status != 200) {
        return report(std::move(r));
    }
    json answer = json::parse(r->body, nullptr, false);
    auto key_pem = read_file(a.enc_key);
    auto key = key_pem.ok() ? crypto::x25519_private_from_pem(*key_pem)
                            : Result<crypto::X25519KeyPair>(key_pem.status());
    if (!key.ok()) {
        return input_error(key.status());
    }
    auto share = gov::decrypt_share(answer.is_object() ? answer["share"] : json(), key->private_key,
                                    fingerprint);
    if (!share.ok()) {
        std::cerr << "error: " << share.status().message() << "\n";
        return 1;
    }
    std::string text = gov::recovery_share_to_text(*share);
    OPENSSL_cleanse(share->data(), share->size());
    if (!a.submit) {
        std::cout << text << "\n";
        return 0;
    }
    auto signed_request =
        sign(*session, "recovery_share", std::nullopt, json{{"share", text}}.dump());
    OPENSSL_cleanse(text.data(), text.size());
    if (!signed_request.ok()) {
        return input_error(signed_request.status());
    }
    return report(
        send(*session, a.service, "POST", "/gov/recovery_shares", to_string(*signed_request)));
}

void add_connection_options(CLI::App* cmd, MemberArgs& a, bool identity_required) {
    cmd->add_option("--service", a.service, "a node's client address, HOST:PORT")->required();
    cmd->add_option("--service-cert", a.service_cert, "the service certificate (PEM)")->required();
    auto* cert = cmd->add_option("--cert", a.cert, "the member's certificate (PEM)");
    auto* key = cmd->add_option("--key", a.key, "the member's private key (PEM)");
    if (identity_required) {
        cert->required();
        key->required();
    }
}

}  // namespace

void add_member_commands(CLI::App& app, int& exit_code) {
    auto a = std::make_shared<MemberArgs>();
    CLI::App* member = app.add_subcommand("member", "a member's governance requests");
    member->require_subcommand(1);

    CLI::App* propose = member->add_subcommand("propose", "submit a signed proposal");
    add_connection_options(propose, *a, true);
    propose->add_option("--proposal", a->proposal, "proposal file: {\"actions\": [...]}");
    propose->add_option("--action", a->action, "one action's name (instead of --proposal)");
    propose->add_option("--args", a->args, "that action's arguments, a JSON object")
        ->capture_default_str();
    propose->callback([&exit_code, a] { exit_code = run_write(*a, "proposal", "/gov/proposals"); });

    CLI::App* vote = member->add_subcommand("vote", "vote on an open proposal");
    add_connection_options(vote, *a, true);
    vote->add_option("--proposal", a->proposal, "proposal id")->required();
    vote->add_flag("--yes", a->yes, "vote for");
    vote->add_flag("--no", a->no, "vote against");
    vote->callback([&exit_code, a] { exit_code = run_write(*a, "ballot", "/gov/ballots"); });

    CLI::App* withdraw = member->add_subcommand("withdraw", "withdraw your open proposal");
    add_connection_options(withdraw, *a, true);
    withdraw->add_option("--proposal", a->proposal, "proposal id")->required();
    withdraw->callback(
        [&exit_code, a] { exit_code = run_write(*a, "withdrawal", "/gov/withdrawals"); });

    CLI::App* list = member->add_subcommand("list", "list the proposals");
    add_connection_options(list, *a, false);
    list->callback([&exit_code, a] { exit_code = run_read(*a, "/gov/proposals"); });

    CLI::App* share =
        member->add_subcommand("share", "fetch your encrypted recovery share (and decrypt it)");
    add_connection_options(share, *a, true);
    share->add_flag("--decrypt", a->decrypt, "decrypt it locally and print the share");
    share->add_option("--enc-key", a->enc_key,
                      "your X25519 private key (PEM), for --decrypt and --submit");
    share->add_flag("--submit", a->submit,
                    "decrypt it locally and submit it to this recovering service");
    share->add_option("--previous-service-cert", a->previous_service_cert,
                      "for --submit: the certificate of the service being recovered (PEM)");
    share->callback([&exit_code, a] { exit_code = run_share(*a); });

    CLI::App* recovery = member->add_subcommand(
        "recovery", "show a recovery's state: service status, previous identities, shares");
    add_connection_options(recovery, *a, false);
    recovery->callback([&exit_code, a] { exit_code = run_read(*a, "/gov/recovery"); });

    CLI::App* show = member->add_subcommand("show", "show one proposal and its ballots");
    add_connection_options(show, *a, false);
    show->add_option("--proposal", a->proposal, "proposal id")->required();
    show->callback([&exit_code, a] {
        bool hex = !a->proposal.empty() &&
                   a->proposal.find_first_not_of("0123456789abcdef") == std::string::npos;
        if (!hex) {
            exit_code =
                input_error(error(Errc::kInvalidArgument, "a proposal id is lower-case hex"));
            return;
        }
        exit_code = run_read(*a, "/gov/proposal?id=" + a->proposal);
    });
}

}  // namespace coffer::cli

// `coffer attestation verify`: offline verification of attestation evidence.
//
//   --report FILE --endorsements PEM [--trusted-root PEM] [--allow-debug]
//       an AMD SEV-SNP report (raw 1,184 bytes) with its VCEK/ASK/ARK bundle;
//   --quote FILE
//       the JSON of a node's GET /node/quote: the evidence is verified for its platform and
//       must bind the key of the node certificate it carries.
//
// Exit codes: 0 verified, 1 verification failed, 2 bad usage or unreadable input.
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "attestation/platform.h"
#include "attestation/snp.h"
#include "cli/commands.h"
#include "crypto/x509.h"
#include "net/http.h"

namespace coffer::cli {

namespace {

constexpr size_t kMaxReportFileBytes = 64 * 1024;
constexpr size_t kMaxQuoteFileBytes = 256 * 1024;

struct VerifyArgs {
    std::string report;
    std::string endorsements;
    std::string trusted_root;
    std::string quote;
    bool allow_debug = false;
};

int print_claims(const Result<attestation::VerifiedClaims>& claims) {
    if (!claims.ok()) {
        std::cerr << "attestation rejected: " << claims.status().message() << "\n";
        return 1;
    }
    std::cout << "attestation verified\n" << attestation::describe(*claims) << "\n";
    if (!claims->hardware_backed) {
        std::cout << "WARNING: not hardware-backed (virtual evidence or an unpinned root): "
                     "anyone can produce evidence like this\n";
    }
    return 0;
}

int verify_snp(const VerifyArgs& args) {
    auto report = read_file(args.report, kMaxReportFileBytes);
    auto endorsements = read_file(args.endorsements, attestation::kMaxEndorsementsPemBytes);
    if (!report.ok() || !endorsements.ok()) {
        std::cerr << "error: " << (report.ok() ? endorsements.status() : report.status()).message()
                  << "\n";
        return 2;
    }
    attestation::SnpVerifyOptions options;
    options.allow_debug = args.allow_debug;
    if (!args.trusted_root.empty()) {
        auto root = read_file(args.trusted_root, attestation::kMaxEndorsementsPemBytes);
        if (!root.ok()) {
            std::cerr << "error: " << root.status().message() << "\n";
            return 2;
        }
        options.trusted_root_pem = *root;
    }
    return print_claims(attestation::verify_snp_report(as_bytes(*report), *endorsements, options));
}

int verify_quote(const VerifyArgs& args) {
    auto text = read_file(args.quote, kMaxQuoteFileBytes);
    if (!text.ok()) {
        std::cerr << "error: " << text.status().message() << "\n";
        return 2;
    }
    auto doc = net::parse_json(*text);
    if (!doc.ok() || !doc->is_object() || !doc->contains("evidence") ||
        !doc->contains("node_certificate") || !(*doc)["node_certificate"].is_string()) {
        std::cerr << "error: " << args.quote
                  << " is not the JSON of GET /node/quote (evidence, node_certificate)\n";
        return 2;
    }
    auto evidence = attestation::evidence_from_json((*doc)["evidence"]);
    auto cert = crypto::Certificate::from_pem((*doc)["node_certificate"].get<std::string>());
    if (!evidence.ok() || !cert.ok()) {
        std::cerr << "attestation rejected: "
                  << (evidence.ok() ? cert.status() : evidence.status()).message() << "\n";
        return 1;
    }
    attestation::VerifyOptions options;
    options.snp.allow_debug = args.allow_debug;
    auto claims = attestation::verify_evidence(*evidence, options);
    if (claims.ok()) {
        auto key = cert->ecdsa_public_key();
        Status bound =
            key.ok() ? attestation::check_key_binding(*claims, key->to_der()) : key.status();
        if (!bound.ok()) {
            std::cerr << "attestation rejected: " << bound.message() << "\n";
            return 1;
        }
        std::cout << "the evidence binds the key of node certificate "
                  << cert->fingerprint_sha256_hex() << "\n";
    }
    return print_claims(claims);
}

}  // namespace

void add_attestation_commands(CLI::App& app, int& exit_code) {
    CLI::App* att = app.add_subcommand("attestation", "verify attestation evidence offline");
    att->require_subcommand(1);
    CLI::App* verify = att->add_subcommand(
        "verify", "verify an SEV-SNP report with its endorsements, or a node's /node/quote");
    auto args = std::make_shared<VerifyArgs>();
    CLI::Option* report =
        verify->add_option("--report", args->report, "SEV-SNP report (raw binary)");
    CLI::Option* endorsements = verify->add_option("--endorsements", args->endorsements,
                                                   "PEM bundle: VCEK, ASK, ARK in that order");
    verify->add_option("--trusted-root", args->trusted_root, "PEM of the AMD ARK to pin");
    CLI::Option* quote =
        verify->add_option("--quote", args->quote, "JSON answer of GET /node/quote");
    verify->add_flag("--allow-debug", args->allow_debug, "accept debuggable guests");
    report->needs(endorsements);
    endorsements->needs(report);
    quote->excludes(report);
    verify->callback([&exit_code, args] {
        if (args->quote.empty() && args->report.empty()) {
            std::cerr << "error: give --report and --endorsements, or --quote\n";
            exit_code = 2;
            return;
        }
        exit_code = args->quote.empty() ? verify_snp(*args) : verify_quote(*args);
    });
}

}  // namespace coffer::cli

// `coffer receipt verify FILE --service-cert PEM`: offline receipt verification.
#include <ctime>
#include <iostream>

#include "cli/commands.h"
#include "common/time.h"
#include "crypto/encoding.h"
#include "crypto/x509.h"
#include "ledger/receipt.h"

namespace coffer::cli {

namespace {

int verify_receipt_file(const std::string& receipt_path, const std::string& cert_path) {
    auto receipt_json = read_file(receipt_path, ledger::kMaxReceiptJsonSize);
    auto cert_pem = read_file(cert_path);
    if (!receipt_json.ok() || !cert_pem.ok()) {
        const Status& s = receipt_json.ok() ? cert_pem.status() : receipt_json.status();
        std::cerr << "error: " << s.message() << "\n";
        return 2;
    }
    auto service_cert = crypto::Certificate::from_pem(*cert_pem);
    if (!service_cert.ok()) {
        std::cerr << "error: " << cert_path << ": " << service_cert.status().message() << "\n";
        return 2;
    }
    auto receipt = ledger::parse_receipt(*receipt_json);
    if (!receipt.ok()) {
        std::cerr << "receipt rejected: " << receipt.status().message() << "\n";
        return 1;
    }
    auto verified = ledger::verify_receipt(*receipt, *service_cert);
    if (!verified.ok()) {
        std::cerr << "receipt rejected: " << verified.status().message() << "\n";
        return 1;
    }

    const ledger::ReceiptVerification& v = *verified;
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    bool cert_current = now >= v.node_cert_not_before_unix && now <= v.node_cert_not_after_unix;
    std::cout << "receipt verified\n"
              << "  transaction " << v.tx_id.to_string()
              << (v.is_signature_entry ? " (a signature entry)" : "") << " is in the ledger\n"
              << "  as leaf " << receipt->leaf_index << " of a Merkle tree of "
              << receipt->tree_size << " entries with root " << to_hex(v.root) << "\n"
              << "  signed at transaction " << v.signed_at.to_string() << " by node " << v.node_id
              << "\n"
              << "  whose certificate was issued by the service certificate "
              << service_cert->fingerprint_sha256_hex() << "\n"
              << "  node certificate valid " << format_utc_time(v.node_cert_not_before_unix)
              << " to " << format_utc_time(v.node_cert_not_after_unix)
              << (cert_current ? " (valid now)"
                               : " (not valid now; the signature still proves "
                                 "the entry was signed by that node)")
              << "\n"
              << "  public writes "
              << (v.public_part_checked ? "included and checked"
                                        : "not included (only their digest)")
              << "\n";
    return 0;
}

}  // namespace

void add_receipt_commands(CLI::App& app, int& exit_code) {
    CLI::App* receipt = app.add_subcommand("receipt", "work with transaction receipts");
    receipt->require_subcommand(1);

    CLI::App* verify = receipt->add_subcommand(
        "verify", "verify a receipt offline against the service certificate");
    auto receipt_path = std::make_shared<std::string>();
    auto cert_path = std::make_shared<std::string>();
    verify->add_option("file", *receipt_path, "receipt JSON file")->required();
    verify->add_option("--service-cert", *cert_path, "service certificate (PEM)")->required();
    verify->callback([&exit_code, receipt_path, cert_path] {
        exit_code = verify_receipt_file(*receipt_path, *cert_path);
    });
}

}  // namespace coffer::cli

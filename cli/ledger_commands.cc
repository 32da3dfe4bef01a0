// `coffer ledger verify DIR` and `coffer ledger show DIR`: offline inspection of a ledger
// directory. Neither needs any secret; private parts are shown only as their size.
#include <filesystem>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "crypto/x509.h"
#include "ledger/file_system.h"
#include "ledger/verify.h"

namespace coffer::cli {

namespace {

// Bytes shown as text when printable, otherwise as hex; long values are cut.
constexpr size_t kMaxShownValueBytes = 64;

std::string printable(ByteSpan bytes) {
    bool text = true;
    for (uint8_t b : bytes) {
        if (b < 0x20 || b > 0x7e) {
            text = false;
            break;
        }
    }
    ByteSpan shown = bytes.first(std::min(bytes.size(), kMaxShownValueBytes));
    std::string out = text ? "\"" + to_string(shown) + "\"" : "0x" + to_hex(shown);
    if (shown.size() < bytes.size()) {
        out += "... (" + std::to_string(bytes.size()) + " bytes)";
    }
    return out;
}

Result<std::optional<crypto::Certificate>> load_optional_cert(const std::string& path) {
    if (path.empty()) {
        return std::optional<crypto::Certificate>();
    }
    COFFER_ASSIGN_OR_RETURN(std::string pem, read_file(path));
    auto cert = crypto::Certificate::from_pem(pem);
    if (!cert.ok()) {
        return cert.status().with_context(path);
    }
    return std::optional<crypto::Certificate>(std::move(cert).value());
}

// A ledger directory must exist, be a directory and hold at least one chunk file: an empty
// or mistyped path must not "verify" as an empty ledger.
Status check_ledger_dir(const std::string& dir) {
    std::error_code ec;
    if (!std::filesystem::exists(dir, ec)) {
        return error(Errc::kNotFound, dir + " does not exist");
    }
    if (!std::filesystem::is_directory(dir, ec)) {
        return error(Errc::kInvalidArgument, dir + " is not a directory");
    }
    for (const auto& item : std::filesystem::directory_iterator(dir, ec)) {
        std::string name = item.path().filename().string();
        if (name.starts_with("ledger_") && item.is_regular_file(ec)) {
            return Status();
        }
    }
    return error(Errc::kNotFound, dir + " holds no ledger chunk files (ledger_*)");
}

// What verify and show both start with: the optional service certificate, a check that
// `dir` is a ledger directory, and a full verification. On failure prints the reason and
// sets `exit_code` (2 for unusable input, 1 for a ledger that does not verify).
struct VerifiedLedger {
    std::optional<crypto::Certificate> service_cert;
    ledger::VerifySummary summary;
};

// The recovered_seqno of the service record whose certificate is `cert`, when the ledger in
// `dir` belongs to a recovered service (docs/recovery.md): read from the public writes, with
// every entry checked but no service certificate, since that is what is being found out.
std::optional<uint64_t> recovered_seqno_of(const std::string& dir,
                                           const crypto::Certificate& cert) {
    constexpr std::string_view kServiceMap = "public:coffer.gov.service";
    std::string fingerprint = cert.fingerprint_sha256_hex();
    std::optional<uint64_t> found;
    ledger::PosixFileSystem fs;
    Status scanned = ledger::for_each_ledger_entry(
        fs, dir, 1, std::nullopt, [&](const ledger::LedgerEntryInfo& e) -> Status {
            auto map = e.public_write_set.maps.find(std::string(kServiceMap));
            if (map == e.public_write_set.maps.end()) {
                return Status();
            }
            for (const auto& [key, value] : map->second) {
                if (!value.has_value()) {
                    continue;
                }
                auto record = nlohmann::json::parse(to_string(*value), nullptr, false);
                if (record.is_object() && record.value("fingerprint", "") == fingerprint &&
                    record.contains("recovered_seqno") &&
                    record["recovered_seqno"].is_number_unsigned()) {
                    found = record["recovered_seqno"].get<uint64_t>();
                }
            }
            return Status();
        });
    return scanned.ok() ? found : std::nullopt;
}

// `recovered_seqno` (0: none given) is set when the ledger turns out to be a recovered
// service's whose record names it.
std::optional<VerifiedLedger> verify_inputs(const std::string& dir, const std::string& cert_path,
                                            uint64_t& recovered_seqno, int& exit_code) {
    auto cert = load_optional_cert(cert_path);
    if (!cert.ok()) {
        std::cerr << "error: " << cert.status().message() << "\n";
        exit_code = 2;
        return std::nullopt;
    }
    Status dir_ok = check_ledger_dir(dir);
    if (!dir_ok.ok()) {
        std::cerr << "error: " << dir_ok.message() << "\n";
        exit_code = 2;
        return std::nullopt;
    }
    ledger::PosixFileSystem fs;
    auto summary = ledger::verify_ledger_directory(fs, dir, *cert, recovered_seqno);
    if (!summary.ok() && summary.status().code() == Errc::kCrypto && cert->has_value() &&
        recovered_seqno == 0) {
        // Perhaps a recovered service: its ledger begins with an earlier identity's entries.
        if (auto found = recovered_seqno_of(dir, **cert); found.has_value()) {
            recovered_seqno = *found;
            std::cout << "a recovered service: its record names recovered_seqno " << recovered_seqno
                      << " (see --recovered-seqno)\n";
            summary = ledger::verify_ledger_directory(fs, dir, *cert, recovered_seqno);
        }
    }
    if (!summary.ok()) {
        std::cerr << "ledger verification failed: " << summary.status().message() << "\n";
        exit_code = summary.status().code() == Errc::kNotFound ? 2 : 1;
        return std::nullopt;
    }
    return VerifiedLedger{std::move(cert).value(), std::move(summary).value()};
}

int verify_command(const std::string& dir, const std::string& cert_path, uint64_t recovered_seqno) {
    int exit_code = 0;
    std::optional<VerifiedLedger> verified =
        verify_inputs(dir, cert_path, recovered_seqno, exit_code);
    if (!verified) {
        return exit_code;
    }
    const ledger::VerifySummary& s = verified->summary;
    if (s.torn_file) {
        std::cerr << "ledger verification failed: torn tail in " << *s.torn_file << " at offset "
                  << s.torn_offset << " (" << s.torn_bytes
                  << " bytes of an incomplete entry; a node cuts them off when it starts)\n";
        return 1;
    }
    std::cout << "ledger ok: " << s.entries << " entries, " << s.signatures << " signatures, "
              << s.chunks << " chunks, last signed transaction "
              << (s.last_signed ? s.last_signed->to_string() : std::string("none"))
              << ", unsigned tail " << s.unsigned_tail
              << (!verified->service_cert ? std::string(", service certificate not checked")
                  : recovered_seqno > 0
                      ? ", node certificates after seqno " + std::to_string(recovered_seqno) +
                            " issued by the service"
                      : std::string(", node certificates issued by the service"))
              << "\n";
    return 0;
}

void print_entry(const ledger::LedgerEntryInfo& e) {
    std::cout << e.tx_id.to_string() << (e.header.is_signature() ? "  signature" : "") << "  "
              << e.file << "@" << e.offset << "  secret v" << e.header.secret_version << "  leaf "
              << to_hex(e.leaf).substr(0, 16) << "\n";
    for (const auto& [map, writes] : e.public_write_set.maps) {
        for (const auto& [key, value] : writes) {
            std::cout << "    " << map << "[" << printable(key)
                      << "] = " << (value ? printable(*value) : std::string("(removed)")) << "\n";
        }
    }
    if (e.signature) {
        std::cout << "    signs root " << to_hex(e.signature->root) << " over "
                  << e.signature->tree_size << " entries, node " << e.signature->node_id << "\n";
    }
    if (e.header.private_size > 0) {
        std::cout << "    private part: " << e.header.private_size << " bytes (encrypted)\n";
    }
}

// Verifies the whole directory before printing anything, so that nothing is shown from a
// ledger whose signatures do not hold; entries after the last signature are marked as not
// covered by one.
int show_command(const std::string& dir, const std::string& cert_path, uint64_t recovered_seqno,
                 uint64_t from, uint64_t limit) {
    int exit_code = 0;
    std::optional<VerifiedLedger> verified =
        verify_inputs(dir, cert_path, recovered_seqno, exit_code);
    if (!verified) {
        return exit_code;
    }
    const ledger::VerifySummary& summary = verified->summary;
    const std::optional<crypto::Certificate>& cert = verified->service_cert;
    uint64_t last_signed = summary.last_signed ? summary.last_signed->seqno : 0;

    ledger::PosixFileSystem fs;
    uint64_t shown = 0;
    Status s = ledger::for_each_ledger_entry(
        fs, dir, from, cert,
        [&](const ledger::LedgerEntryInfo& e) -> Status {
            if (limit != 0 && shown >= limit) {
                return error(Errc::kResourceExhausted, "limit reached");
            }
            print_entry(e);
            if (e.tx_id.seqno > last_signed) {
                std::cout << "    (not covered by a signature yet)\n";
            }
            ++shown;
            return Status();
        },
        recovered_seqno);
    if (!s.ok() && s.code() != Errc::kResourceExhausted) {
        std::cerr << "error: " << s.message() << "\n";
        return 1;
    }
    if (summary.torn_file) {
        std::cout << "torn tail in " << *summary.torn_file << " at offset " << summary.torn_offset
                  << " (" << summary.torn_bytes << " bytes)\n";
    }
    return 0;
}

}  // namespace

void add_ledger_commands(CLI::App& app, int& exit_code) {
    CLI::App* ledger = app.add_subcommand("ledger", "inspect and verify ledger directories");
    ledger->require_subcommand(1);

    struct Args {
        std::string dir;
        std::string service_cert;
        uint64_t from = 1;
        uint64_t limit = 0;
        uint64_t recovered_seqno = 0;
    };
    // A recovered service's ledger starts with the entries of the services it was recovered
    // from, whose nodes the current service certificate did not endorse (docs/recovery.md).
    constexpr const char* kRecoveredSeqnoHelp =
        "with --service-cert of a recovered service: the service record's recovered_seqno; "
        "signatures up to it are checked against the certificates they carry";
    auto args = std::make_shared<Args>();

    CLI::App* verify = ledger->add_subcommand(
        "verify", "check every entry, the Merkle chain and every signature (no secrets needed)");
    verify->add_option("dir", args->dir, "ledger directory")->required();
    verify->add_option("--service-cert", args->service_cert,
                       "also check that signing nodes were endorsed by this service (PEM)");
    verify->callback([&exit_code, args] {
        exit_code = verify_command(args->dir, args->service_cert, args->recovered_seqno);
    });
    verify->add_option("--recovered-seqno", args->recovered_seqno, kRecoveredSeqnoHelp);

    CLI::App* show = ledger->add_subcommand(
        "show", "print entries: public writes in clear, private parts as their size");
    show->add_option("dir", args->dir, "ledger directory")->required();
    show->add_option("--service-cert", args->service_cert, "service certificate (PEM)");
    show->add_option("--recovered-seqno", args->recovered_seqno, kRecoveredSeqnoHelp);
    show->add_option("--from", args->from, "first seqno to print")
        ->capture_default_str()
        ->check(CLI::Range(uint64_t{1}, UINT64_MAX));
    show->add_option("--limit", args->limit, "print at most this many entries (0 = all)")
        ->capture_default_str()
        ->check(CLI::NonNegativeNumber);
    show->callback([&exit_code, args] {
        exit_code = show_command(args->dir, args->service_cert, args->recovered_seqno, args->from,
                                 args->limit);
    });

    add_sample_command(*ledger, exit_code);
}

}  // namespace coffer::cli

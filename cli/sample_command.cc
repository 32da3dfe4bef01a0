// `coffer ledger sample --out DIR`: writes a sample ledger through the real store and ledger,
// closes it, reopens it to check that replay gives the same state, and writes a receipt.
// It is what `make demo` shows until the node service exists. The ledger secret lives only
// in this process's memory: the files hold nothing private in clear.
#include <chrono>
#include <filesystem>
#include <iostream>

#include "cli/commands.h"
#include "crypto/ecdsa.h"
#include "crypto/random.h"
#include "crypto/x509.h"
#include "kv/store.h"
#include "ledger/file_system.h"
#include "ledger/ledger.h"
#include "ledger/receipt.h"

namespace coffer::cli {

namespace {

constexpr std::string_view kPrivateMap = "records";
constexpr std::string_view kPublicMap = "public:records";
constexpr int64_t kSampleCertValiditySeconds = 365 * 24 * 3600;

struct Identities {
    crypto::EcdsaPrivateKey node_key;
    crypto::Certificate service_cert;
    crypto::Certificate node_cert;
};

Result<Identities> make_identities() {
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    COFFER_ASSIGN_OR_RETURN(auto service_key, crypto::EcdsaPrivateKey::generate());
    crypto::CertificateOptions service_opts;
    service_opts.common_name = "coffer sample service";
    service_opts.not_before_unix = now - 60;
    service_opts.not_after_unix = now + kSampleCertValiditySeconds;
    service_opts.is_ca = true;
    COFFER_ASSIGN_OR_RETURN(auto service_cert,
                            crypto::make_self_signed_certificate(service_key, service_opts));
    COFFER_ASSIGN_OR_RETURN(auto node_key, crypto::EcdsaPrivateKey::generate());
    crypto::CertificateOptions node_opts;
    node_opts.common_name = "coffer sample node 0";
    node_opts.not_before_unix = now - 60;
    node_opts.not_after_unix = now + kSampleCertValiditySeconds;
    COFFER_ASSIGN_OR_RETURN(auto node_cert,
                            crypto::make_issued_certificate(node_key.public_key(), node_opts,
                                                            service_key, service_cert));
    return Identities{std::move(node_key), std::move(service_cert), std::move(node_cert)};
}

ledger::LedgerOptions ledger_options(const std::string& dir, const Identities& ids,
                                     uint64_t signature_interval) {
    ledger::LedgerOptions opts;
    opts.dir = dir;
    opts.chunk_size_bytes = 256 * 1024;
    opts.signature_interval_entries = signature_interval;
    opts.node_id = "n0";
    opts.node_key = ids.node_key;
    opts.node_cert = ids.node_cert;
    opts.service_cert = ids.service_cert;
    return opts;
}

// Writes `count` transactions, each a private and a public record; signs and flushes as a
// node would. Returns the id of the transaction the receipt is made for.
Result<kv::TxId> write_records(kv::Store& store, ledger::Ledger& ledger, uint64_t count) {
    kv::TxId middle;
    for (uint64_t i = 1; i <= count; ++i) {
        kv::Transaction tx = store.begin();
        std::string key = "record-" + std::to_string(i);
        std::string secret = "private payload " + std::to_string(i) + " of the sample";
        std::string shared = "public note " + std::to_string(i);
        COFFER_RETURN_IF_ERROR(tx.put(kPrivateMap, as_bytes(key), as_bytes(secret)));
        COFFER_RETURN_IF_ERROR(tx.put(kPublicMap, as_bytes(key), as_bytes(shared)));
        COFFER_ASSIGN_OR_RETURN(kv::CommitResult committed, store.commit(std::move(tx)));
        if (i == (count + 1) / 2) {
            middle = committed.id;
        }
        COFFER_RETURN_IF_ERROR(ledger.maybe_sign());
        if (ledger.flush_due()) {
            COFFER_RETURN_IF_ERROR(ledger.flush().status());
        }
    }
    COFFER_RETURN_IF_ERROR(ledger.sign_now());
    COFFER_RETURN_IF_ERROR(ledger.flush().status());
    return middle;
}

// Every key of both sample maps with its value, for comparing two stores.
Result<std::map<std::string, std::string>> dump(kv::Store& store) {
    std::map<std::string, std::string> out;
    kv::Transaction tx = store.begin();
    for (std::string_view map : {kPrivateMap, kPublicMap}) {
        COFFER_RETURN_IF_ERROR(
            tx.range(map, ByteSpan(), std::nullopt, 0, [&](ByteSpan k, ByteSpan v) {
                out[std::string(map) + "/" + to_string(k)] = to_string(v);
                return true;
            }));
    }
    return out;
}

Status run_sample(const std::string& out_dir, uint64_t count, uint64_t signature_interval) {
    std::error_code ec;
    if (std::filesystem::exists(out_dir + "/ledger", ec)) {
        return error(Errc::kFailedPrecondition, out_dir + "/ledger already exists");
    }
    std::filesystem::create_directories(out_dir, ec);
    COFFER_ASSIGN_OR_RETURN(Identities ids, make_identities());
    COFFER_RETURN_IF_ERROR(write_file(out_dir + "/service_cert.pem", ids.service_cert.to_pem()));

    ledger::LedgerSecrets secrets;
    COFFER_RETURN_IF_ERROR(secrets.add(ledger::make_random_ledger_secret(1)));
    ledger::PosixFileSystem fs;
    std::string dir = out_dir + "/ledger";
    auto started = std::chrono::steady_clock::now();

    kv::Store store;
    COFFER_ASSIGN_OR_RETURN(
        auto ledger,
        ledger::Ledger::open(fs, ledger_options(dir, ids, signature_interval), store, secrets));
    COFFER_ASSIGN_OR_RETURN(kv::TxId receipt_id, write_records(store, *ledger, count));
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::cout << "wrote " << count << " transactions (" << ledger->last_seqno()
              << " entries with signatures) in " << secs << " s; committed up to seqno "
              << ledger->committed() << "\n";

    COFFER_ASSIGN_OR_RETURN(ledger::Receipt receipt, ledger->receipt(receipt_id.seqno, true));
    COFFER_RETURN_IF_ERROR(write_file(out_dir + "/receipt.json", ledger::receipt_to_json(receipt)));
    COFFER_ASSIGN_OR_RETURN(auto before, dump(store));
    ledger::Hash root_before = ledger->root();
    ledger.reset();

    kv::Store reopened;
    COFFER_ASSIGN_OR_RETURN(
        auto ledger2,
        ledger::Ledger::open(fs, ledger_options(dir, ids, signature_interval), reopened, secrets));
    COFFER_ASSIGN_OR_RETURN(auto after, dump(reopened));
    if (after != before || ledger2->root() != root_before) {
        return error(Errc::kCorrupt, "the reopened ledger does not give the same state");
    }
    std::cout << "closed and reopened: " << after.size() << " keys and the Merkle root "
              << to_hex(root_before).substr(0, 16) << "... are identical after replay\n"
              << "receipt for transaction " << receipt_id.to_string() << " written to " << out_dir
              << "/receipt.json\n";
    return Status();
}

}  // namespace

void add_sample_command(CLI::App& ledger_app, int& exit_code) {
    struct Args {
        std::string out;
        uint64_t transactions = 1000;
        uint64_t signature_interval = 50;
    };
    auto args = std::make_shared<Args>();
    CLI::App* sample = ledger_app.add_subcommand(
        "sample", "write a sample ledger (private and public records), reopen it, make a receipt");
    sample->add_option("--out", args->out, "output directory (must not hold a ledger)")->required();
    sample->add_option("--transactions", args->transactions, "number of transactions")
        ->capture_default_str()
        ->check(CLI::Range(uint64_t{1}, uint64_t{10'000'000}));
    sample
        ->add_option("--signature-interval", args->signature_interval, "entries between signatures")
        ->capture_default_str()
        ->check(CLI::Range(uint64_t{1}, uint64_t{1'000'000}));
    sample->callback([&exit_code, args] {
        Status s = run_sample(args->out, args->transactions, args->signature_interval);
        if (!s.ok()) {
            std::cerr << "error: " << s.message() << "\n";
            exit_code = 1;
        }
    });
}

}  // namespace coffer::cli

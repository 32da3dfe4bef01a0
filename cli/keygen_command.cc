// `coffer keygen --name NAME --out DIR`: a member or user identity (docs/node.md,
// "Identities"): NAME_privk.pem (P-384, 0600), NAME_cert.pem (self-signed, CN=NAME),
// NAME_enc_privk.pem (X25519, 0600) and NAME_enc_pubk.pem. Existing files are never
// overwritten.
#include <ctime>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "node/files.h"
#include "node/identity.h"

namespace coffer::cli {

namespace {

constexpr int64_t kSecondsPerDay = 24 * 3600;
constexpr int64_t kMaxValidityDays = 100 * 365;

bool valid_name(const std::string& name) {
    if (name.empty() || name.size() > 64) {
        return false;
    }
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return name != "." && name != "..";
}

int keygen(const std::string& name, const std::string& out_dir, int64_t validity_days) {
    if (!valid_name(name)) {
        std::cerr << "error: --name must be 1 to 64 characters of [A-Za-z0-9_.-]\n";
        return 2;
    }
    if (validity_days < 1 || validity_days > kMaxValidityDays) {
        std::cerr << "error: --validity-days must be between 1 and " << kMaxValidityDays << "\n";
        return 2;
    }
    auto identity = node::make_client_identity(name, static_cast<int64_t>(std::time(nullptr)),
                                               validity_days * kSecondsPerDay);
    if (!identity.ok()) {
        std::cerr << "error: " << identity.status().message() << "\n";
        return 1;
    }
    Status dir = node::make_private_dir(out_dir);
    if (!dir.ok()) {
        std::cerr << "error: " << dir.message() << "\n";
        return 2;
    }
    std::string base = out_dir + "/" + name;
    struct Output {
        std::string path;
        const std::string* contents;
        mode_t mode;
    };
    const Output outputs[] = {
        {base + "_privk.pem", &identity->private_key_pem, 0600},
        {base + "_cert.pem", &identity->certificate_pem, 0644},
        {base + "_enc_privk.pem", &identity->encryption_private_key_pem, 0600},
        {base + "_enc_pubk.pem", &identity->encryption_public_key_pem, 0644},
    };
    for (const Output& o : outputs) {
        if (node::path_exists(o.path)) {
            std::cerr << "error: " << o.path << " already exists; not overwriting\n";
            return 2;
        }
    }
    for (const Output& o : outputs) {
        Status written = node::create_file_exclusive(o.path, *o.contents, o.mode);
        if (!written.ok()) {
            std::cerr << "error: " << written.message() << "\n";
            return 2;
        }
        std::cout << o.path << "\n";
    }
    return 0;
}

}  // namespace

void add_keygen_command(CLI::App& app, int& exit_code) {
    CLI::App* cmd = app.add_subcommand(
        "keygen", "make a member or user identity: signing key, certificate, encryption keys");
    auto name = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    auto validity_days = std::make_shared<int64_t>(365);
    cmd->add_option("--name", *name, "identity name (certificate CN and file prefix)")->required();
    cmd->add_option("--out", *out, "output folder (created if missing)")->required();
    cmd->add_option("--validity-days", *validity_days, "certificate validity in days")
        ->capture_default_str();
    cmd->callback([&exit_code, name, out, validity_days] {
        exit_code = keygen(*name, *out, *validity_days);
    });
}

}  // namespace coffer::cli

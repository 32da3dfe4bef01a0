// `coffer`: the command-line tool. See docs/cli.md.
#include <CLI/CLI.hpp>

#include <cstdlib>

#include "cli/commands.h"
#include "common/log.h"

int main(int argc, char** argv) {
    CLI::App app{"coffer: a confidential consortium framework"};
    app.require_subcommand(1);
    std::string log_level = "warn";
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
        ->capture_default_str();
    app.parse_complete_callback([&] { coffer::init_logging(log_level); });

    int exit_code = 0;
    coffer::cli::add_ledger_commands(app, exit_code);
    coffer::cli::add_receipt_commands(app, exit_code);
    coffer::cli::add_node_commands(app, exit_code);
    coffer::cli::add_keygen_command(app, exit_code);
    coffer::cli::add_attestation_commands(app, exit_code);
    coffer::cli::add_sandbox_command(app, exit_code);
    coffer::cli::add_member_commands(app, exit_code);
    coffer::cli::add_cleanroom_commands(app, exit_code);
    coffer::cli::add_cleanroom_sample_command(*app.get_subcommand("cleanroom"), exit_code);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e) == 0 ? 0 : 2;
    }
    return exit_code;
}

// The subcommands of the `coffer` command, one registration function per group.
//
// Each function adds its subcommands to the app; when a subcommand runs, its callback stores
// the process exit code in `exit_code` (0 = success, 1 = the check failed, 2 = bad usage or
// unreadable input).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "common/result.h"

namespace coffer::cli {

void add_ledger_commands(CLI::App& app, int& exit_code);
void add_receipt_commands(CLI::App& app, int& exit_code);
void add_node_commands(CLI::App& app, int& exit_code);
void add_keygen_command(CLI::App& app, int& exit_code);
void add_attestation_commands(CLI::App& app, int& exit_code);
// `coffer sandbox`: a local service of several nodes, children of this process.
void add_sandbox_command(CLI::App& app, int& exit_code);
// `coffer cleanroom ...`: the clean-room client (docs/cli.md, docs/cleanroom.md).
void add_cleanroom_commands(CLI::App& app, int& exit_code);
// `coffer cleanroom sample aml|hospitals`, added under the `cleanroom` subcommand.
void add_cleanroom_sample_command(CLI::App& cleanroom_app, int& exit_code);
// `coffer member propose|vote|withdraw|list|show`: signed governance requests.
void add_member_commands(CLI::App& app, int& exit_code);
// `coffer ledger sample`, added under the `ledger` subcommand.
void add_sample_command(CLI::App& ledger_app, int& exit_code);

// Reads a whole file. Errors: kNotFound / kIo naming the path; kResourceExhausted past
// max_bytes.
Result<std::string> read_file(const std::string& path, size_t max_bytes = 64u << 20);

// Writes a whole file and fsyncs it (new files only get durable contents).
Status write_file(const std::string& path, std::string_view contents);

}  // namespace coffer::cli

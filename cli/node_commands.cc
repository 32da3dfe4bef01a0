// `coffer node start --config FILE`, `coffer node join --config FILE` and `coffer node recover
// --config FILE --ledger DIR`: run one node in the foreground until SIGTERM, SIGINT or SIGHUP
// (docs/node.md, docs/replication.md, docs/recovery.md). `start` creates a new service (or
// restarts this node); `join` asks a running network to admit a new node (or restarts a node
// that joined earlier); `recover` brings a lost service back from a ledger folder. Exit codes: 0
// after a clean stop, 1 when the node failed (at start or later, e.g. a failed fsync), 2 for an
// unusable configuration.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <ctime>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "apps/apps.h"
#include "cli/commands.h"
#include "common/log.h"
#include "ledger/file_system.h"
#include "ledger/verify.h"
#include "node/config.h"
#include "node/node.h"

namespace coffer::cli {

namespace {

// The most --ledger folders `node recover` compares.
constexpr int kMaxLedgerFolders = 64;
// How often the waiting main thread checks whether the node failed.
constexpr long kFailurePollNs = 200L * 1000 * 1000;

// Blocks SIGINT, SIGTERM and SIGHUP in this thread and in every thread started after it, so that
// they are delivered only through sigtimedwait below.
sigset_t block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    // A closed terminal must not kill the node without its final signature and flush.
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    return set;
}

// Waits for a stop signal, a node failure, or `done()` to turn true (checked at every poll).
// Returns the exit code after a stop or failure, nullopt once done.
std::optional<int> wait_for_stop_or(node::Node& node, const sigset_t& signals,
                                    const std::function<bool()>& done) {
    while (true) {
        timespec timeout{0, kFailurePollNs};
        int sig = sigtimedwait(&signals, nullptr, &timeout);
        if (sig > 0) {
            spdlog::info("node.stopping signal={}", sig == SIGTERM  ? "SIGTERM"
                                                    : sig == SIGINT ? "SIGINT"
                                                                    : "SIGHUP");
            node.stop();
            return node.failure().ok() ? 0 : 1;
        }
        Status failed = node.failure();
        if (!failed.ok()) {
            node.stop();
            std::cerr << "error: node failed: " << failed.message() << "\n";
            return 1;
        }
        if (done()) {
            return std::nullopt;
        }
    }
}

// Waits for a stop signal or a node failure. Returns the exit code.
int wait_until_stopped(node::Node& node, const sigset_t& signals) {
    return *wait_for_stop_or(node, signals, [] { return false; });
}

// Serves `node` with the default applications. Returns the exit code on failure.
std::optional<int> serve_node(node::Node& node) {
    auto registry = apps::make_default_registry(node);
    if (!registry.ok()) {
        std::cerr << "error: " << registry.status().message() << "\n";
        return 1;
    }
    Status served = node.serve(apps::make_http_handler(node, *registry));
    if (!served.ok()) {
        spdlog::error("node.serve_failed error={}", served.to_string());
        std::cerr << "error: " << served.message() << "\n";
        return 1;
    }
    return std::nullopt;
}

int start_node(const std::string& config_path, bool join) {
    auto config = node::load_config(config_path);
    if (!config.ok()) {
        std::cerr << "error: " << config.status().message() << "\n";
        return 2;
    }
    if (join && !config->join.has_value()) {
        std::cerr << "error: " << config_path
                  << ": `node join` needs a \"join\" section (target, service_cert_file)\n";
        return 2;
    }
    if (!join && config->join.has_value()) {
        std::cerr << "error: " << config_path
                  << ": has a \"join\" section; use `coffer node join` to join a network\n";
        return 2;
    }
    init_logging(config->log_level);
    signal(SIGPIPE, SIG_IGN);
    sigset_t signals = block_stop_signals();

    // A joining node may wait a long time for the members' proposal: a stop signal during
    // open() ends the wait (exit 0, nothing kept but the data directory's fresh files).
    std::atomic<bool> stop_requested{false};
    std::atomic<bool> opened{false};
    std::thread watcher([&] {
        while (!opened.load()) {
            timespec timeout{0, kFailurePollNs};
            if (sigtimedwait(&signals, nullptr, &timeout) > 0) {
                stop_requested.store(true);
                return;
            }
        }
    });
    auto node = node::Node::open(*config, &stop_requested);
    opened.store(true);
    watcher.join();
    if (stop_requested.load()) {
        spdlog::info("node.stopping signal=received while starting");
        if (node.ok()) {
            (*node)->stop();
        }
        return 0;
    }
    if (!node.ok()) {
        spdlog::error("node.start_failed error={}", node.status().to_string());
        std::cerr << "error: " << node.status().message() << "\n";
        return 1;
    }
    if (auto failed = serve_node(**node); failed.has_value()) {
        return *failed;
    }
    return wait_until_stopped(**node, signals);
}

// `coffer node recover`: the two phases of docs/recovery.md, "Recovering a service", in one
// process. The node serves governance while it collects shares; with k of them it stops,
// reopens over the same folder with every ledger secret (a full replay, private parts
// included), opens the service and serves on the same ports.
// The folder to recover from among the lost nodes' ledger folders: the one whose last
// signature entry comes last in (view, seqno) order. Raft elects only a node whose log is at
// least that far along, so it holds every committed entry. Folders that do not verify are
// skipped with a message. Errors: kInvalidArgument when none verifies.
Result<std::string> choose_ledger_folder(const std::vector<std::string>& folders) {
    if (folders.size() == 1) {
        return folders.front();
    }
    ledger::PosixFileSystem fs;
    std::optional<std::pair<kv::TxId, std::string>> best;
    for (const std::string& folder : folders) {
        auto summary = ledger::verify_ledger_directory(fs, folder, std::nullopt);
        if (!summary.ok() || !summary->last_signed.has_value()) {
            std::cerr << "skipping " << folder << ": "
                      << (summary.ok() ? std::string("no signed entry")
                                       : summary.status().message())
                      << "\n";
            continue;
        }
        kv::TxId last = *summary->last_signed;
        std::cerr << folder << ": last signed transaction " << last.to_string() << "\n";
        if (!best.has_value() ||
            std::pair(last.view, last.seqno) > std::pair(best->first.view, best->first.seqno)) {
            best.emplace(last, folder);
        }
    }
    if (!best.has_value()) {
        return error(Errc::kInvalidArgument, "no ledger folder given verifies");
    }
    std::cerr << "recovering from " << best->second << "\n";
    return best->second;
}

int recover_node(const std::string& config_path, const std::vector<std::string>& folders) {
    auto config = node::load_config(config_path);
    if (!config.ok()) {
        std::cerr << "error: " << config.status().message() << "\n";
        return 2;
    }
    init_logging(config->log_level);
    signal(SIGPIPE, SIG_IGN);
    sigset_t signals = block_stop_signals();

    auto ledger_dir = choose_ledger_folder(folders);
    if (!ledger_dir.ok()) {
        std::cerr << "error: " << ledger_dir.status().message() << "\n";
        return 1;
    }
    auto recovering = node::Node::open_for_recovery(*config, *ledger_dir);
    if (!recovering.ok()) {
        spdlog::error("node.recovery_failed error={}", recovering.status().to_string());
        std::cerr << "error: " << recovering.status().message() << "\n";
        return 1;
    }
    if (auto failed = serve_node(**recovering); failed.has_value()) {
        return *failed;
    }
    std::cerr << "recovering: the public state is replayed; members accept it with a "
                 "transition_service_to_open proposal, then submit their recovery shares\n";
    node::Node& waiting = **recovering;
    if (auto stopped =
            wait_for_stop_or(waiting, signals, [&] { return waiting.wait_recovery_secrets(0); });
        stopped.has_value()) {
        return *stopped;
    }
    auto secrets = (*recovering)->recovered_secrets();
    (*recovering)->stop();
    recovering->reset();
    if (!secrets.ok()) {
        std::cerr << "error: " << secrets.status().message() << "\n";
        return 1;
    }
    auto node = node::Node::open_recovered(*config, std::move(secrets).value());
    if (!node.ok()) {
        spdlog::error("node.recovery_failed error={}", node.status().to_string());
        std::cerr << "error: recovery: " << node.status().message() << "\n";
        return 1;
    }
    Status finished = apps::finish_recovery(**node);
    if (!finished.ok()) {
        spdlog::error("node.recovery_failed error={}", finished.to_string());
        std::cerr << "error: recovery: " << finished.message() << "\n";
        return 1;
    }
    if (auto failed = serve_node(**node); failed.has_value()) {
        return *failed;
    }
    std::cerr << "recovered: the service is open\n";
    return wait_until_stopped(**node, signals);
}

}  // namespace

void add_node_commands(CLI::App& app, int& exit_code) {
    CLI::App* node = app.add_subcommand("node", "run a Coffer node");
    node->require_subcommand(1);

    CLI::App* start = node->add_subcommand(
        "start",
        "start a new service, or restart this node from its data directory, and run "
        "until SIGTERM or SIGINT");
    auto config_path = std::make_shared<std::string>();
    start->add_option("--config", *config_path, "node configuration (JSON, docs/config.md)")
        ->required();
    start->callback([&exit_code, config_path] { exit_code = start_node(*config_path, false); });

    CLI::App* join = node->add_subcommand(
        "join",
        "join a running network (the configuration's \"join\" section names a node and the "
        "service certificate), or restart a node that joined earlier; runs until SIGTERM or "
        "SIGINT");
    auto join_path = std::make_shared<std::string>();
    join->add_option("--config", *join_path, "node configuration (JSON, docs/config.md)")
        ->required();
    join->callback([&exit_code, join_path] { exit_code = start_node(*join_path, true); });

    CLI::App* recover = node->add_subcommand(
        "recover",
        "start a new service from the ledger folder of a lost network (docs/recovery.md): "
        "replays the public part, waits for the members' proposal and recovery shares, then "
        "replays the private part, opens the service and runs until SIGTERM or SIGINT");
    auto recover_config = std::make_shared<std::string>();
    auto recover_ledger = std::make_shared<std::vector<std::string>>();
    recover->add_option("--config", *recover_config, "node configuration for the new node")
        ->required();
    recover
        ->add_option("--ledger", *recover_ledger,
                     "ledger folder of a node of the lost network (only read); give it once "
                     "per surviving node and the most advanced one is used")
        ->required()
        ->expected(1, kMaxLedgerFolders);
    recover->callback([&exit_code, recover_config, recover_ledger] {
        exit_code = recover_node(*recover_config, *recover_ledger);
    });
}

}  // namespace coffer::cli

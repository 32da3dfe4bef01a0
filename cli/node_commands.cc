// `coffer node start --config FILE` and `coffer node join --config FILE`: run one node in the
// foreground until SIGTERM, SIGINT or SIGHUP (docs/node.md, docs/replication.md). `start`
// creates a new service (or restarts this node); `join` asks a running network to admit a new
// node (or restarts a node that joined earlier). Exit codes: 0 after a clean stop, 1 when the node
// failed (at start or later, e.g. a failed fsync), 2 for an unusable configuration.
#include <pthread.h>
#include <signal.h>

#include <ctime>
#include <iostream>
#include <memory>

#include "apps/apps.h"
#include "cli/commands.h"
#include "common/log.h"
#include "node/config.h"
#include "node/node.h"

namespace coffer::cli {

namespace {

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

// Waits for a stop signal or a node failure. Returns the exit code.
int wait_until_stopped(node::Node& node, const sigset_t& signals) {
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
    }
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

    auto node = node::Node::open(*config);
    if (!node.ok()) {
        spdlog::error("node.start_failed error={}", node.status().to_string());
        std::cerr << "error: " << node.status().message() << "\n";
        return 1;
    }
    auto registry = apps::make_default_registry(**node);
    if (!registry.ok()) {
        std::cerr << "error: " << registry.status().message() << "\n";
        return 1;
    }
    Status served = (*node)->serve(apps::make_http_handler(**node, *registry));
    if (!served.ok()) {
        spdlog::error("node.serve_failed error={}", served.to_string());
        std::cerr << "error: " << served.message() << "\n";
        return 1;
    }
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
}

}  // namespace coffer::cli

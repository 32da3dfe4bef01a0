// load_bench: drives the logging app of a real node over TLS with 1, 16 and 64 persistent
// connections and prints writes/s, reads/s and latency percentiles beside the same client
// against a trivial endpoint (GET /node/commit), the cost of TLS + HTTP alone.
//
//   load_bench [--duration-s 3] [--connections 1,16,64] [--coffer PATH]
//       starts its own node (coffer keygen + coffer node start in a scratch folder) and opens
//       the service with its member's transition_service_to_open proposal
//   load_bench --port N --service-cert PEM --cert PEM --key PEM [--host 127.0.0.1] ...
//       drives a node that is already running, as the user whose certificate is given
//
// A plain program rather than a Google Benchmark: each figure is a fixed-duration run of
// many threads against another process. How to run it and what it measures: docs/node.md,
// section "Load benchmark".
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/client.h"

namespace {

using Clock = std::chrono::steady_clock;

// Bounds: connections per run, and how long to wait for the node to start.
constexpr int kMaxConnections = 256;
constexpr int kStartTimeoutMs = 30000;
// Each reading thread cycles over this many ids of its own.
constexpr uint64_t kReadKeysPerThread = 64;

struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 0;
    std::string service_cert;
    std::string cert;
    std::string key;
    std::string coffer = COFFER_BINARY;
    double duration_s = 3;
    std::vector<int> connections = {1, 16, 64};
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs `coffer args...` with its output sent to `log`; returns the pid (no wait).
pid_t spawn(const Options& o, const std::vector<std::string>& args, const std::string& log) {
    pid_t pid = ::fork();
    if (pid == 0) {
        int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        std::vector<char*> argv = {const_cast<char*>(o.coffer.c_str())};
        for (const std::string& a : args) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        ::execv(o.coffer.c_str(), argv.data());
        ::_exit(127);
    }
    return pid;
}

bool run(const Options& o, const std::vector<std::string>& args, const std::string& log) {
    int status = 0;
    ::waitpid(spawn(o, args, log), &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// Starts a node in `dir`; fills o.port, o.service_cert, o.cert, o.key. Returns its pid.
pid_t start_node(Options& o, const std::string& dir) {
    std::string log = dir + "/node.log";
    if (!run(o, {"keygen", "--name", "member0", "--out", dir}, log) ||
        !run(o, {"keygen", "--name", "user0", "--out", dir}, log)) {
        std::cerr << "coffer keygen failed; see " << log << "\n";
        return -1;
    }
    nlohmann::json config = {{"client_address", "127.0.0.1:0"},
                             {"node_address", "127.0.0.1:0"},
                             {"data_dir", dir + "/data"},
                             {"members",
                              {{{"certificate", dir + "/member0_cert.pem"},
                                {"encryption_public_key", dir + "/member0_enc_pubk.pem"}}}},
                             {"users", {{{"certificate", dir + "/user0_cert.pem"}}}},
                             {"http", {{"threads", 4}, {"max_connections", 1024}}},
                             {"log_level", "warn"}};
    std::ofstream(dir + "/config.json") << config.dump(2);
    pid_t pid = spawn(o, {"node", "start", "--config", dir + "/config.json"}, log);
    auto deadline = Clock::now() + std::chrono::milliseconds(kStartTimeoutMs);
    while (Clock::now() < deadline) {
        auto ports =
            nlohmann::json::parse(read_file(dir + "/data/node_ports.json"), nullptr, false);
        if (ports.is_object() && ports.value("pid", -1) == pid) {
            o.port = ports["client_port"].get<uint16_t>();
            o.service_cert = dir + "/data/service_cert.pem";
            o.cert = dir + "/user0_cert.pem";
            o.key = dir + "/user0_privk.pem";
            return pid;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::cerr << "node did not start; see " << log << "\n";
    ::kill(pid, SIGKILL);
    return -1;
}

// The JSON object a `coffer member` command prints (before its "transaction status" line).
nlohmann::json json_in(const std::string& output) {
    size_t open = output.find('{');
    size_t close = output.rfind('}');
    if (open == std::string::npos || close == std::string::npos || close < open) {
        return nlohmann::json();
    }
    return nlohmann::json::parse(output.substr(open, close - open + 1), nullptr, false);
}

// Opens the new service (docs/governance.md, "Service states") as member0, its only member:
// `coffer member propose --action transition_service_to_open`, then its yes vote. A proposal
// sent before the node leads is refused; it is sent again until kStartTimeoutMs.
bool open_service(const Options& o, const std::string& dir) {
    std::vector<std::string> connection = {"--service",      "127.0.0.1:" + std::to_string(o.port),
                                           "--service-cert", o.service_cert,
                                           "--cert",         dir + "/member0_cert.pem",
                                           "--key",          dir + "/member0_privk.pem"};
    std::string out = dir + "/governance.log";
    auto deadline = Clock::now() + std::chrono::milliseconds(kStartTimeoutMs);
    while (Clock::now() < deadline) {
        std::error_code ec;
        std::filesystem::remove(out, ec);
        std::vector<std::string> propose = {"member", "propose", "--action",
                                            "transition_service_to_open"};
        propose.insert(propose.end(), connection.begin(), connection.end());
        if (!run(o, propose, out)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            continue;
        }
        std::string id = json_in(read_file(out)).value("proposal_id", "");
        std::vector<std::string> vote = {"member", "vote", "--proposal", id, "--yes"};
        vote.insert(vote.end(), connection.begin(), connection.end());
        std::filesystem::remove(out, ec);
        if (run(o, vote, out) && json_in(read_file(out)).value("state", "") == "accepted") {
            return true;
        }
        break;
    }
    std::cerr << "the service did not open; see " << out << "\n";
    return false;
}

struct RunResult {
    uint64_t ops = 0;
    uint64_t errors = 0;
    double seconds = 0;
    double p50_ms = 0;
    double p99_ms = 0;
};

// One request of a workload: (client, thread index, operation counter) -> success.
using Operation = std::function<bool(coffer::net::HttpClient&, int, uint64_t)>;

RunResult run_workload(const Options& o, int connections, const Operation& op) {
    coffer::net::ClientOptions co;
    co.host = o.host;
    co.port = o.port;
    co.ca_cert_pem = read_file(o.service_cert);
    co.client_cert_pem = read_file(o.cert);
    co.client_key_pem = read_file(o.key);
    std::vector<std::unique_ptr<coffer::net::HttpClient>> clients;
    for (int i = 0; i < connections; ++i) {
        auto c = coffer::net::HttpClient::connect(co);
        if (!c.ok()) {
            std::cerr << "connect failed: " << c.status().to_string() << "\n";
            std::exit(1);
        }
        clients.push_back(std::move(c).value());
    }
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> errors{0};
    std::mutex mu;
    std::vector<double> latencies_ms;
    std::vector<std::thread> threads;
    auto start = Clock::now();
    for (int t = 0; t < connections; ++t) {
        threads.emplace_back([&, t] {
            std::vector<double> mine;
            for (uint64_t n = 0; !stop.load(std::memory_order_relaxed); ++n) {
                auto begin = Clock::now();
                bool ok = op(*clients[static_cast<size_t>(t)], t, n);
                mine.push_back(
                    std::chrono::duration<double, std::milli>(Clock::now() - begin).count());
                if (!ok) {
                    errors.fetch_add(1);
                }
            }
            std::lock_guard lock(mu);
            latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
        });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
    stop = true;
    for (auto& th : threads) {
        th.join();
    }
    RunResult r;
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    r.ops = latencies_ms.size();
    r.errors = errors.load();
    std::sort(latencies_ms.begin(), latencies_ms.end());
    if (!latencies_ms.empty()) {
        r.p50_ms = latencies_ms[latencies_ms.size() / 2];
        r.p99_ms = latencies_ms[std::min(latencies_ms.size() - 1, latencies_ms.size() * 99 / 100)];
    }
    return r;
}

void print(int connections, const char* workload, const RunResult& r, double baseline_rate) {
    double rate = static_cast<double>(r.ops) / r.seconds;
    std::printf("%11d  %-22s %10.0f %9.3f %9.3f %7llu   %5.2f\n", connections, workload, rate,
                r.p50_ms, r.p99_ms, static_cast<unsigned long long>(r.errors),
                baseline_rate > 0 ? rate / baseline_rate : 1.0);
}

bool parse_args(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--host") {
            o.host = next();
        } else if (a == "--port") {
            o.port = static_cast<uint16_t>(std::stoi(next()));
        } else if (a == "--service-cert") {
            o.service_cert = next();
        } else if (a == "--cert") {
            o.cert = next();
        } else if (a == "--key") {
            o.key = next();
        } else if (a == "--coffer") {
            o.coffer = next();
        } else if (a == "--duration-s") {
            o.duration_s = std::stod(next());
        } else if (a == "--connections") {
            o.connections.clear();
            std::stringstream ss(next());
            for (std::string part; std::getline(ss, part, ',');) {
                o.connections.push_back(std::clamp(std::stoi(part), 1, kMaxConnections));
            }
        } else {
            std::cerr << "unknown argument " << a << "\n";
            return false;
        }
    }
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (!parse_args(argc, argv, o)) {
        return 2;
    }
    std::string dir;
    pid_t node = -1;
    if (o.port == 0) {
        // mkdtemp replaces the six trailing 'X' characters.
        std::string pattern = "/tmp/coffer-load-" + std::string(6, 'X');
        if (::mkdtemp(pattern.data()) == nullptr) {
            std::cerr << "cannot make a scratch folder under /tmp\n";
            return 1;
        }
        dir = pattern;
        node = start_node(o, dir);
        if (node < 0) {
            return 1;
        }
        if (!open_service(o, dir)) {
            ::kill(node, SIGKILL);
            return 1;
        }
    }
    std::string body_prefix = R"({"msg":"load bench message of about sixty-four bytes....","id":)";
    Operation baseline = [](coffer::net::HttpClient& c, int, uint64_t) {
        auto r = c.request("GET", "/node/commit");
        return r.ok() && r->status == 200;
    };
    Operation write = [&](coffer::net::HttpClient& c, int t, uint64_t n) {
        uint64_t id = (static_cast<uint64_t>(t) << 32) | n;
        auto r = c.request("POST", "/app/log/private", body_prefix + std::to_string(id) + "}",
                           {{"content-type", "application/json"}});
        return r.ok() && r->status == 200;
    };
    Operation read = [](coffer::net::HttpClient& c, int t, uint64_t n) {
        // Ids the write run with the same connection count stored (a 404 still measures
        // the read path, and is counted as a success).
        uint64_t id = (static_cast<uint64_t>(t) << 32) | (n % kReadKeysPerThread);
        auto r = c.request("GET", "/app/log/private?id=" + std::to_string(id));
        return r.ok() && (r->status == 200 || r->status == 404);
    };

    std::printf("load_bench: %.1f s per run, node 127.0.0.1:%u, TLS 1.3, keep-alive\n",
                o.duration_s, o.port);
    std::printf("%11s  %-22s %10s %9s %9s %7s   %5s\n", "connections", "workload", "ops/s",
                "p50_ms", "p99_ms", "errors", "ratio");
    for (int n : o.connections) {
        RunResult base = run_workload(o, n, baseline);
        double base_rate = static_cast<double>(base.ops) / base.seconds;
        print(n, "GET /node/commit", base, 0);
        print(n, "POST /app/log/private", run_workload(o, n, write), base_rate);
        print(n, "GET /app/log/private", run_workload(o, n, read), base_rate);
    }
    std::printf("ratio = ops/s divided by GET /node/commit ops/s at the same connection count\n");

    if (node > 0) {
        ::kill(node, SIGTERM);
        int status = 0;
        ::waitpid(node, &status, 0);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    return 0;
}

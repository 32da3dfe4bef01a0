// replication_bench: the same durable write workload against a three-node Coffer network and
// a three-member etcd cluster on this machine, one after the other, printed side by side.
//
//   replication_bench [--clients 16] [--value-bytes 128] [--duration-s 5] [--warmup-s 0.5]
//                     [--only etcd|coffer] [--coffer-sandbox DIR] [--coffer PATH] [--etcd PATH]
//
// etcd: three `etcd` child processes on 127.0.0.1 with TLS for clients and peers (a CA and
// certificates made here with crypto/x509.h), client certificate authentication, and the
// default WAL fsync. A write is POST /v3/kv/put through etcd's JSON gateway; it is answered
// once committed on a majority.
// Coffer: `coffer sandbox --nodes 3` (or an already running sandbox with --coffer-sandbox).
// A write is POST /app/log/public, then GET /node/tx?wait_ms=... until the transaction is
// Committed.
// On both sides every client thread holds one persistent TLS connection to the leader, so
// no write pays a redirect or a forward. What it measures and how to run it:
// docs/performance.md, section "Replicated writes: Coffer vs etcd".
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bytes.h"
#include "common/result.h"
#include "crypto/ecdsa.h"
#include "crypto/encoding.h"
#include "crypto/x509.h"
#include "net/client.h"

namespace {

using coffer::Errc;
using coffer::Result;
using coffer::Status;
using Clock = std::chrono::steady_clock;

constexpr int kMaxClients = 256;
constexpr size_t kMaxValueBytes = 1 << 20;
constexpr double kMaxDurationS = 600;
constexpr int kEtcdMembers = 3;
// Bounds on every wait for another process.
constexpr int kStartTimeoutMs = 60000;
constexpr int kLeaderTimeoutMs = 30000;
constexpr int kStopGraceMs = 15000;
constexpr int kPollIntervalMs = 50;
// How long Coffer may hold GET /node/tx before answering Pending; the client's own request
// timeout must exceed it.
constexpr int kCommitWaitMs = 5000;
// A server that answers Pending before the wait it was given is asked again after a pause,
// at most this often per write (enough to cover kCommitWaitMs).
constexpr int kStatusRetryPauseMs = 1;
constexpr int kMaxStatusRequestsPerWrite = kCommitWaitMs / kStatusRetryPauseMs;
constexpr uint32_t kRequestTimeoutMs = 15000;
// Latencies kept per client thread: far more than a run of kMaxDurationS produces at the
// rates this machine reaches; a thread that fills its buffer stops writing.
constexpr size_t kMaxSamplesPerClient = 1 << 22;
// Error messages kept for printing (all errors are counted).
constexpr size_t kMaxKeptErrors = 5;
// How much of a failed child's log an error message quotes.
constexpr size_t kMaxLogTailBytes = 2000;
// Coffer write ids: 20 bits of run nonce, 8 of client, 24 of sequence (52 bits, exact in a
// JSON double should a client parse it as one).
constexpr uint64_t kMaxWritesPerClient = uint64_t{1} << 24;
static_assert(kMaxClients <= 256, "the client index has 8 bits in a write id");

// Set by SIGINT/SIGTERM: every wait and the workload stop, and cleanup runs as on an error.
volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_interrupt(int) {
    g_interrupted = 1;
}

bool interrupted() {
    return g_interrupted != 0;
}

struct Options {
    int clients = 16;
    size_t value_bytes = 128;
    double duration_s = 5;
    double warmup_s = 0.5;
    bool run_etcd = true;
    bool run_coffer = true;
    std::string coffer_sandbox;  // attach to this running sandbox instead of starting one
    std::string coffer = COFFER_BINARY;
    std::string etcd = "/usr/bin/etcd";
};

struct RunResult {
    std::string system;
    uint64_t writes = 0;
    uint64_t errors = 0;
    double seconds = 0;
    double p50_ms = 0;
    double p99_ms = 0;
    std::vector<std::string> first_errors;

    double writes_per_s() const { return seconds > 0 ? static_cast<double>(writes) / seconds : 0; }
};

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

Status write_file(const std::string& path, const std::string& data, mode_t mode) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
        return coffer::error(Errc::kIo, "cannot create " + path);
    }
    bool ok = ::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size());
    ok = ::close(fd) == 0 && ok;
    return ok ? Status() : coffer::error(Errc::kIo, "cannot write " + path);
}

// The end of a child's log, for an error message: the scratch folder holding the log is
// removed when the benchmark returns.
std::string log_tail(const std::string& path) {
    std::string log = read_file(path);
    if (log.size() > kMaxLogTailBytes) {
        log = "..." + log.substr(log.size() - kMaxLogTailBytes);
    }
    return log.empty() ? std::string(" (log empty)") : "; its log ends with:\n" + log;
}

void sleep_ms(int ms) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// A folder under /tmp, removed with everything in it when this object goes.
class ScratchDir {
  public:
    static Result<std::unique_ptr<ScratchDir>> make(const std::string& prefix) {
        // mkdtemp replaces the six trailing 'X' characters.
        std::string pattern = "/tmp/" + prefix + std::string(6, 'X');
        if (::mkdtemp(pattern.data()) == nullptr) {
            return coffer::error(Errc::kIo, "cannot make a scratch folder under /tmp");
        }
        return std::unique_ptr<ScratchDir>(new ScratchDir(pattern));
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    const std::string& path() const { return path_; }

  private:
    explicit ScratchDir(std::string path) : path_(std::move(path)) {}
    std::string path_;
};

// A child process that is stopped (stop_signal, then SIGKILL after kStopGraceMs) and reaped
// when this object goes. The kernel also sends it stop_signal if this process dies first
// (PR_SET_PDEATHSIG), so no child outlives the benchmark, even on SIGKILL.
class ChildProcess {
  public:
    // Starts argv[0] with stdout and stderr appended to log_path.
    static Result<std::unique_ptr<ChildProcess>> spawn(const std::vector<std::string>& argv,
                                                       const std::string& log_path,
                                                       int stop_signal) {
        // Everything the child needs is prepared before fork: only async-signal-safe calls
        // may follow it in a multi-threaded process.
        std::vector<char*> args;
        for (const std::string& a : argv) {
            args.push_back(const_cast<char*>(a.c_str()));
        }
        args.push_back(nullptr);
        int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log_fd < 0) {
            return coffer::error(Errc::kIo, "cannot open " + log_path);
        }
        pid_t parent = ::getpid();
        pid_t pid = ::fork();
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, stop_signal);
            if (::getppid() != parent) {
                ::_exit(126);
            }
            ::dup2(log_fd, 1);
            ::dup2(log_fd, 2);
            ::execv(args[0], args.data());
            ::_exit(127);
        }
        ::close(log_fd);
        if (pid < 0) {
            return coffer::error(Errc::kIo, "fork failed");
        }
        return std::unique_ptr<ChildProcess>(new ChildProcess(pid, stop_signal));
    }

    ~ChildProcess() { stop(); }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // False once the process has exited (it is then reaped).
    bool running() {
        if (pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == pid_) {
            pid_ = -1;
        }
        return pid_ > 0;
    }

    // Sends the stop signal once, without waiting.
    void request_stop() {
        if (running() && !stop_requested_) {
            ::kill(pid_, stop_signal_);
            stop_requested_ = true;
        }
    }

    void stop() {
        request_stop();
        if (!running()) {
            return;
        }
        auto deadline = Clock::now() + std::chrono::milliseconds(kStopGraceMs);
        while (running() && Clock::now() < deadline) {
            sleep_ms(20);
        }
        if (running()) {
            std::fprintf(stderr, "child %d ignored signal %d for %d ms; killing it\n",
                         static_cast<int>(pid_), stop_signal_, kStopGraceMs);
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
            pid_ = -1;
        }
    }

  private:
    ChildProcess(pid_t pid, int stop_signal) : pid_(pid), stop_signal_(stop_signal) {}
    pid_t pid_;
    int stop_signal_;
    bool stop_requested_ = false;
};

// `count` distinct free TCP ports on 127.0.0.1. They are released before the caller binds
// them, so another process could take one meanwhile; the servers then fail to start and the
// benchmark reports it.
Result<std::vector<uint16_t>> free_loopback_ports(int count) {
    std::vector<int> fds;
    std::vector<uint16_t> ports;
    Status status;
    for (int i = 0; i < count && status.ok(); ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof(addr);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            status = coffer::error(Errc::kIo, "cannot reserve a loopback port");
        } else {
            ports.push_back(ntohs(addr.sin_port));
        }
        if (fd >= 0) {
            fds.push_back(fd);
        }
    }
    for (int fd : fds) {
        ::close(fd);
    }
    if (!status.ok()) {
        return status;
    }
    return ports;
}

// ---------------------------------------------------------------------------------------
// The workload, shared by both systems.

// One durable write by client `t`, its `n`-th: OK once the system says it is committed.
using WriteOp = std::function<Status(coffer::net::HttpClient&, int t, uint64_t n)>;

struct ThreadSamples {
    std::vector<double> latencies_ms;
    uint64_t errors = 0;
    std::vector<std::string> first_errors;
};

// Writes in a loop until `stop`; only writes that start at or after `measure_from` count.
void client_loop(coffer::net::HttpClient& client, int t, const WriteOp& op,
                 const std::atomic<bool>& stop, const std::atomic<int64_t>& measure_from_ns,
                 ThreadSamples& out) {
    out.latencies_ms.reserve(1 << 14);
    for (uint64_t n = 0; !stop.load(std::memory_order_relaxed) && n < kMaxWritesPerClient &&
                         out.latencies_ms.size() < kMaxSamplesPerClient;
         ++n) {
        auto begin = Clock::now();
        Status s = op(client, t, n);
        auto end = Clock::now();
        if (begin.time_since_epoch().count() < measure_from_ns.load(std::memory_order_relaxed)) {
            continue;
        }
        if (s.ok()) {
            out.latencies_ms.push_back(
                std::chrono::duration<double, std::milli>(end - begin).count());
        } else if (++out.errors <= kMaxKeptErrors) {
            out.first_errors.push_back(s.to_string());
        }
    }
}

RunResult summarise(std::string system, std::vector<ThreadSamples>& samples, double seconds) {
    RunResult r;
    r.system = std::move(system);
    r.seconds = seconds;
    std::vector<double> all;
    for (ThreadSamples& s : samples) {
        all.insert(all.end(), s.latencies_ms.begin(), s.latencies_ms.end());
        r.errors += s.errors;
        for (std::string& e : s.first_errors) {
            if (r.first_errors.size() < kMaxKeptErrors) {
                r.first_errors.push_back(std::move(e));
            }
        }
    }
    r.writes = all.size();
    std::sort(all.begin(), all.end());
    if (!all.empty()) {
        r.p50_ms = all[all.size() / 2];
        r.p99_ms = all[std::min(all.size() - 1, all.size() * 99 / 100)];
    }
    return r;
}

// Connects o.clients persistent TLS clients with `co`, writes for warm-up + duration, and
// summarises the writes of the measured window.
Result<RunResult> run_workload(const std::string& system, const Options& o,
                               const coffer::net::ClientOptions& co, const WriteOp& op) {
    std::vector<std::unique_ptr<coffer::net::HttpClient>> clients;
    for (int i = 0; i < o.clients; ++i) {
        auto c = coffer::net::HttpClient::connect(co);
        if (!c.ok()) {
            return c.status().with_context(system + " client connect: ");
        }
        clients.push_back(std::move(c).value());
    }
    std::atomic<bool> stop{false};
    std::atomic<int64_t> measure_from_ns{INT64_MAX};
    std::vector<ThreadSamples> samples(static_cast<size_t>(o.clients));
    std::vector<std::thread> threads;
    for (int t = 0; t < o.clients; ++t) {
        threads.emplace_back(client_loop, std::ref(*clients[static_cast<size_t>(t)]), t,
                             std::cref(op), std::cref(stop), std::cref(measure_from_ns),
                             std::ref(samples[static_cast<size_t>(t)]));
    }
    auto wait_until = [](Clock::time_point deadline) {
        while (!interrupted() && Clock::now() < deadline) {
            sleep_ms(10);
        }
    };
    wait_until(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(o.warmup_s)));
    auto start = Clock::now();
    measure_from_ns = start.time_since_epoch().count();
    wait_until(start + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(o.duration_s)));
    // The window ends here: writes still in flight finish but are past the clock.
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    stop = true;
    for (auto& th : threads) {
        th.join();
    }
    if (interrupted()) {
        return coffer::error(Errc::kFailedPrecondition, "interrupted");
    }
    return summarise(system, samples, seconds);
}

std::string json_body(const nlohmann::json& j) {
    return j.dump();
}

// Parses a JSON response body; errors name `what` and the HTTP status.
Result<nlohmann::json> parse_response(const Result<coffer::net::HttpResponse>& r,
                                      const std::string& what) {
    if (!r.ok()) {
        return r.status().with_context(what + ": ");
    }
    auto j = nlohmann::json::parse(r->body, nullptr, false);
    if (r->status != 200 || !j.is_object()) {
        return coffer::error(Errc::kInvalidArgument, what + ": HTTP " + std::to_string(r->status) +
                                                         " " + r->body.substr(0, 200));
    }
    return j;
}

// ---------------------------------------------------------------------------------------
// etcd: three members on loopback with TLS everywhere.

struct EtcdTls {
    std::string ca_pem;
    std::string ca_path, server_cert_path, server_key_path, client_cert_path, client_key_path;
    std::string client_cert_pem, client_key_pem;
};

Result<coffer::crypto::Certificate> issue(const coffer::crypto::EcdsaPrivateKey& key,
                                          const std::string& cn, bool server,
                                          const coffer::crypto::EcdsaPrivateKey& ca_key,
                                          const coffer::crypto::Certificate& ca) {
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    coffer::crypto::CertificateOptions co;
    co.common_name = cn;
    co.not_before_unix = now - 3600;
    co.not_after_unix = now + 7 * 86400;
    if (server) {
        co.ip_addresses = {"127.0.0.1"};
    }
    return coffer::crypto::make_issued_certificate(key.public_key(), co, ca_key, ca);
}

// A CA, one server certificate for all members (they all listen on 127.0.0.1, and use it
// as their client certificate towards peers too) and one client certificate for the
// benchmark, written as PEM files into dir. All certificates have no extendedKeyUsage, so
// Go's TLS accepts them for both server and client authentication.
Result<EtcdTls> make_etcd_tls(const std::string& dir) {
    using coffer::crypto::EcdsaPrivateKey;
    COFFER_ASSIGN_OR_RETURN(EcdsaPrivateKey ca_key, EcdsaPrivateKey::generate());
    COFFER_ASSIGN_OR_RETURN(EcdsaPrivateKey server_key, EcdsaPrivateKey::generate());
    COFFER_ASSIGN_OR_RETURN(EcdsaPrivateKey client_key, EcdsaPrivateKey::generate());
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    coffer::crypto::CertificateOptions ca_options;
    ca_options.common_name = "replication-bench etcd CA";
    ca_options.not_before_unix = now - 3600;
    ca_options.not_after_unix = now + 7 * 86400;
    ca_options.is_ca = true;
    COFFER_ASSIGN_OR_RETURN(auto ca,
                            coffer::crypto::make_self_signed_certificate(ca_key, ca_options));
    COFFER_ASSIGN_OR_RETURN(auto server, issue(server_key, "etcd-member", true, ca_key, ca));
    COFFER_ASSIGN_OR_RETURN(auto client, issue(client_key, "bench-client", false, ca_key, ca));

    EtcdTls tls;
    tls.ca_pem = ca.to_pem();
    tls.client_cert_pem = client.to_pem();
    tls.client_key_pem = client_key.to_pem();
    tls.ca_path = dir + "/ca.pem";
    tls.server_cert_path = dir + "/server.pem";
    tls.server_key_path = dir + "/server-key.pem";
    tls.client_cert_path = dir + "/client.pem";
    tls.client_key_path = dir + "/client-key.pem";
    COFFER_RETURN_IF_ERROR(write_file(tls.ca_path, tls.ca_pem, 0644));
    COFFER_RETURN_IF_ERROR(write_file(tls.server_cert_path, server.to_pem(), 0644));
    COFFER_RETURN_IF_ERROR(write_file(tls.server_key_path, server_key.to_pem(), 0600));
    COFFER_RETURN_IF_ERROR(write_file(tls.client_cert_path, tls.client_cert_pem, 0644));
    COFFER_RETURN_IF_ERROR(write_file(tls.client_key_path, tls.client_key_pem, 0600));
    return tls;
}

struct EtcdMember {
    std::string name;
    uint16_t client_port = 0;
    uint16_t peer_port = 0;
    std::unique_ptr<ChildProcess> process;
};

std::vector<std::string> etcd_args(const Options& o, const std::string& dir, const EtcdTls& tls,
                                   const EtcdMember& m, const std::string& initial_cluster) {
    std::string client_url = "https://127.0.0.1:" + std::to_string(m.client_port);
    std::string peer_url = "https://127.0.0.1:" + std::to_string(m.peer_port);
    // Durability stays at etcd's default: the WAL is fsynced before a write is acknowledged
    // (--unsafe-no-fsync is not given).
    return {o.etcd,
            "--name=" + m.name,
            "--data-dir=" + dir + "/" + m.name + ".etcd",
            "--listen-client-urls=" + client_url,
            "--advertise-client-urls=" + client_url,
            "--listen-peer-urls=" + peer_url,
            "--initial-advertise-peer-urls=" + peer_url,
            "--initial-cluster=" + initial_cluster,
            "--initial-cluster-token=replication-bench",
            "--initial-cluster-state=new",
            "--cert-file=" + tls.server_cert_path,
            "--key-file=" + tls.server_key_path,
            "--trusted-ca-file=" + tls.ca_path,
            "--client-cert-auth=true",
            "--peer-cert-file=" + tls.server_cert_path,
            "--peer-key-file=" + tls.server_key_path,
            "--peer-trusted-ca-file=" + tls.ca_path,
            "--peer-client-cert-auth=true",
            "--logger=zap",
            "--log-level=warn"};
}

coffer::net::ClientOptions etcd_client_options(const EtcdTls& tls, uint16_t port) {
    coffer::net::ClientOptions co;
    co.host = "127.0.0.1";
    co.port = port;
    co.ca_cert_pem = tls.ca_pem;
    co.client_cert_pem = tls.client_cert_pem;
    co.client_key_pem = tls.client_key_pem;
    co.timeout_ms = kRequestTimeoutMs;
    return co;
}

Result<std::vector<EtcdMember>> start_etcd(const Options& o, const std::string& dir,
                                           const EtcdTls& tls) {
    COFFER_ASSIGN_OR_RETURN(auto ports, free_loopback_ports(2 * kEtcdMembers));
    std::vector<EtcdMember> members(kEtcdMembers);
    std::string initial_cluster;
    for (int i = 0; i < kEtcdMembers; ++i) {
        EtcdMember& m = members[static_cast<size_t>(i)];
        m.name = "member" + std::to_string(i);
        m.client_port = ports[static_cast<size_t>(2 * i)];
        m.peer_port = ports[static_cast<size_t>(2 * i + 1)];
        initial_cluster +=
            (i > 0 ? "," : "") + m.name + "=https://127.0.0.1:" + std::to_string(m.peer_port);
    }
    for (EtcdMember& m : members) {
        COFFER_ASSIGN_OR_RETURN(m.process,
                                ChildProcess::spawn(etcd_args(o, dir, tls, m, initial_cluster),
                                                    dir + "/" + m.name + ".log", SIGTERM));
    }
    return members;
}

// True once GET /health of the member answers {"health":"true"}.
bool etcd_member_healthy(const EtcdTls& tls, uint16_t port) {
    auto c = coffer::net::HttpClient::connect(etcd_client_options(tls, port));
    if (!c.ok()) {
        return false;
    }
    auto j = parse_response((*c)->request("GET", "/health"), "health");
    return j.ok() && j->value("health", "") == "true";
}

Status wait_etcd_healthy(const std::string& dir, const EtcdTls& tls,
                         std::vector<EtcdMember>& members) {
    auto deadline = Clock::now() + std::chrono::milliseconds(kStartTimeoutMs);
    for (EtcdMember& m : members) {
        while (!etcd_member_healthy(tls, m.client_port)) {
            if (!m.process->running()) {
                return coffer::error(
                    Errc::kFailedPrecondition,
                    "etcd " + m.name + " exited" + log_tail(dir + "/" + m.name + ".log"));
            }
            if (interrupted() || Clock::now() > deadline) {
                return coffer::error(Errc::kFailedPrecondition,
                                     "etcd " + m.name + " not healthy within " +
                                         std::to_string(kStartTimeoutMs) + " ms" +
                                         log_tail(dir + "/" + m.name + ".log"));
            }
            sleep_ms(kPollIntervalMs);
        }
    }
    return Status();
}

// The member whose status says it is the leader (leader == header.member_id; the gateway
// encodes both uint64 as JSON strings).
Result<uint16_t> find_etcd_leader(const EtcdTls& tls, const std::vector<EtcdMember>& members) {
    auto deadline = Clock::now() + std::chrono::milliseconds(kLeaderTimeoutMs);
    while (!interrupted() && Clock::now() < deadline) {
        for (const EtcdMember& m : members) {
            auto c = coffer::net::HttpClient::connect(etcd_client_options(tls, m.client_port));
            if (!c.ok()) {
                continue;
            }
            auto j =
                parse_response((*c)->request("POST", "/v3/maintenance/status", "{}"), "status");
            if (!j.ok() || !j->contains("header") || !(*j)["header"].is_object()) {
                continue;
            }
            std::string self = (*j)["header"].value("member_id", "");
            if (!self.empty() && j->value("leader", "") == self) {
                return m.client_port;
            }
        }
        sleep_ms(kPollIntervalMs);
    }
    return coffer::error(Errc::kFailedPrecondition, "no etcd leader found");
}

WriteOp etcd_write(const Options& o) {
    std::string value =
        coffer::crypto::base64_encode(coffer::Bytes(o.value_bytes, static_cast<uint8_t>('x')));
    return [value](coffer::net::HttpClient& c, int t, uint64_t n) -> Status {
        std::string key = "bench/" + std::to_string(t) + "/" + std::to_string(n);
        std::string body = json_body(
            {{"key", coffer::crypto::base64_encode(coffer::Bytes(key.begin(), key.end()))},
             {"value", value}});
        auto j = parse_response(
            c.request("POST", "/v3/kv/put", body, {{"content-type", "application/json"}}), "put");
        if (!j.ok()) {
            return j.status();
        }
        // A successful put answers with the header of the revision it created.
        return j->contains("header") ? Status()
                                     : coffer::error(Errc::kInvalidArgument, "put: no header");
    };
}

Result<RunResult> run_etcd(const Options& o) {
    COFFER_ASSIGN_OR_RETURN(auto scratch, ScratchDir::make("replication-bench-etcd-"));
    COFFER_ASSIGN_OR_RETURN(EtcdTls tls, make_etcd_tls(scratch->path()));
    COFFER_ASSIGN_OR_RETURN(auto members, start_etcd(o, scratch->path(), tls));
    // Destroyed first: signals every member, so that they stop together rather than one by
    // one (a member alone waits for a lost quorum). members then reap them, before scratch
    // removes their folder.
    struct StopAllFirst {
        std::vector<EtcdMember>& members;
        ~StopAllFirst() {
            for (EtcdMember& m : members) {
                m.process->request_stop();
            }
        }
    } stop_all_first{members};
    COFFER_RETURN_IF_ERROR(wait_etcd_healthy(scratch->path(), tls, members));
    COFFER_ASSIGN_OR_RETURN(uint16_t leader_port, find_etcd_leader(tls, members));
    std::printf("etcd: %d members up (TLS, client certificates), leader on 127.0.0.1:%u\n",
                kEtcdMembers, leader_port);
    std::fflush(stdout);
    return run_workload("etcd", o, etcd_client_options(tls, leader_port), etcd_write(o));
}

// ---------------------------------------------------------------------------------------
// Coffer: a three-node sandbox.

struct CofferNetwork {
    std::string service_cert_pem;
    std::string user_cert_pem;
    std::string user_key_pem;
    std::vector<std::pair<std::string, uint16_t>> nodes;  // node id, client port
};

// Only loopback addresses are accepted: the benchmark aims at nothing else.
Result<uint16_t> loopback_port(const std::string& address) {
    size_t colon = address.rfind(':');
    std::string host = colon == std::string::npos ? "" : address.substr(0, colon);
    if (host != "127.0.0.1") {
        return coffer::error(Errc::kInvalidArgument,
                             "client_address " + address + " is not 127.0.0.1:PORT");
    }
    int port = std::atoi(address.c_str() + colon + 1);
    if (port <= 0 || port > 65535) {
        return coffer::error(Errc::kInvalidArgument, "bad port in " + address);
    }
    return static_cast<uint16_t>(port);
}

Result<CofferNetwork> read_sandbox(const std::string& dir) {
    auto j = nlohmann::json::parse(read_file(dir + "/sandbox.json"), nullptr, false);
    if (!j.is_object() || !j.contains("nodes") || !j["nodes"].is_array()) {
        return coffer::error(Errc::kInvalidArgument, dir + "/sandbox.json is not as expected");
    }
    CofferNetwork net;
    net.service_cert_pem = read_file(j.value("service_cert", ""));
    net.user_cert_pem = read_file(j.value("user_cert", ""));
    net.user_key_pem = read_file(j.value("user_key", ""));
    if (net.service_cert_pem.empty() || net.user_cert_pem.empty() || net.user_key_pem.empty()) {
        return coffer::error(Errc::kInvalidArgument,
                             "cannot read the service or user certificate named in sandbox.json");
    }
    for (const auto& node : j["nodes"]) {
        if (!node.is_object()) {
            return coffer::error(Errc::kInvalidArgument, "a node of sandbox.json is not an object");
        }
        COFFER_ASSIGN_OR_RETURN(uint16_t port, loopback_port(node.value("client_address", "")));
        net.nodes.emplace_back(node.value("node_id", ""), port);
    }
    return net;
}

// Waits for DIR/sandbox.json to appear and parse, while the sandbox process lives.
Result<CofferNetwork> wait_sandbox(const std::string& dir, const std::string& log,
                                   ChildProcess& sandbox) {
    auto deadline = Clock::now() + std::chrono::milliseconds(kStartTimeoutMs);
    while (!std::filesystem::exists(dir + "/sandbox.json")) {
        if (!sandbox.running()) {
            return coffer::error(Errc::kFailedPrecondition,
                                 "coffer sandbox exited" + log_tail(log));
        }
        if (interrupted() || Clock::now() > deadline) {
            return coffer::error(Errc::kFailedPrecondition, "no sandbox.json within " +
                                                                std::to_string(kStartTimeoutMs) +
                                                                " ms" + log_tail(log));
        }
        sleep_ms(kPollIntervalMs);
    }
    // The file may be seen before its writer finished: retry the parse until the deadline.
    while (true) {
        auto net = read_sandbox(dir);
        if (net.ok() || interrupted() || Clock::now() > deadline) {
            return net;
        }
        sleep_ms(kPollIntervalMs);
    }
}

coffer::net::ClientOptions coffer_client_options(const CofferNetwork& net, uint16_t port) {
    coffer::net::ClientOptions co;
    co.host = "127.0.0.1";
    co.port = port;
    co.ca_cert_pem = net.service_cert_pem;
    co.client_cert_pem = net.user_cert_pem;
    co.client_key_pem = net.user_key_pem;
    co.timeout_ms = kRequestTimeoutMs;
    return co;
}

Result<uint16_t> find_coffer_leader(const CofferNetwork& net) {
    auto deadline = Clock::now() + std::chrono::milliseconds(kLeaderTimeoutMs);
    while (!interrupted() && Clock::now() < deadline) {
        for (const auto& [id, port] : net.nodes) {
            auto c = coffer::net::HttpClient::connect(coffer_client_options(net, port));
            if (!c.ok()) {
                continue;
            }
            auto j = parse_response((*c)->request("GET", "/node/state"), "node state");
            if (j.ok() && j->value("role", "") == "leader") {
                return port;
            }
        }
        sleep_ms(kPollIntervalMs);
    }
    return coffer::error(Errc::kFailedPrecondition, "no Coffer leader found");
}

// Asks GET /node/tx until the transaction leaves Pending or kCommitWaitMs has passed since
// `begin`. The server holds each answer while the transaction is Pending, up to the wait_ms
// it is given, so one request normally suffices; asking again covers an early answer.
Status wait_committed(coffer::net::HttpClient& c, const std::string& tx, Clock::time_point begin) {
    auto deadline = begin + std::chrono::milliseconds(kCommitWaitMs);
    std::string s = "Pending";
    for (int i = 0; i < kMaxStatusRequestsPerWrite && s == "Pending"; ++i) {
        auto left_ms =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left_ms.count() <= 0) {
            break;
        }
        auto status =
            parse_response(c.request("GET", "/node/tx?transaction_id=" + tx +
                                                "&wait_ms=" + std::to_string(left_ms.count())),
                           "tx status");
        if (!status.ok()) {
            return status.status();
        }
        s = status->value("status", "");
        if (s == "Pending") {
            sleep_ms(kStatusRetryPauseMs);
        }
    }
    return s == "Committed" ? Status()
                            : coffer::error(Errc::kFailedPrecondition, "tx " + tx + " " + s);
}

// POST /app/log/public with x-coffer-wait-ms, so that the node answers once the write is
// Committed (one request per write, as etcd's put); anything else is an error. A node that
// answers early (still Pending) is asked again with GET /node/tx.
WriteOp coffer_write(const Options& o) {
    std::string msg(o.value_bytes, 'x');
    uint64_t nonce = static_cast<uint64_t>(std::time(nullptr)) & 0xFFFFF;
    return [msg, nonce](coffer::net::HttpClient& c, int t, uint64_t n) -> Status {
        auto begin = Clock::now();
        uint64_t id = (nonce << 32) | (static_cast<uint64_t>(t) << 24) | n;
        auto response = c.request("POST", "/app/log/public", json_body({{"id", id}, {"msg", msg}}),
                                  {{"content-type", "application/json"},
                                   {"x-coffer-wait-ms", std::to_string(kCommitWaitMs)}});
        if (!response.ok()) {
            return response.status();
        }
        std::optional<std::string> status = response->header("x-coffer-tx-status");
        auto post = parse_response(response, "write");
        if (!post.ok()) {
            return post.status();
        }
        if (status.has_value() && *status == "Committed") {
            return Status();
        }
        std::string tx = post->value("transaction_id", "");
        if (tx.empty() || tx.find_first_not_of("0123456789.") != std::string::npos) {
            return coffer::error(Errc::kInvalidArgument, "write: no transaction_id");
        }
        return wait_committed(c, tx, begin);
    };
}

Result<RunResult> drive_coffer(const Options& o, const CofferNetwork& net) {
    COFFER_ASSIGN_OR_RETURN(uint16_t leader_port, find_coffer_leader(net));
    std::printf("coffer: %zu nodes up (TLS, user certificate), leader on 127.0.0.1:%u\n",
                net.nodes.size(), leader_port);
    std::fflush(stdout);
    return run_workload("coffer", o, coffer_client_options(net, leader_port), coffer_write(o));
}

Result<RunResult> run_coffer(const Options& o) {
    if (!o.coffer_sandbox.empty()) {
        COFFER_ASSIGN_OR_RETURN(CofferNetwork net, read_sandbox(o.coffer_sandbox));
        return drive_coffer(o, net);
    }
    COFFER_ASSIGN_OR_RETURN(auto scratch, ScratchDir::make("replication-bench-coffer-"));
    std::string dir = scratch->path() + "/sandbox";
    // SIGTERM lets the sandbox stop its nodes cleanly.
    std::string log = scratch->path() + "/sandbox.log";
    COFFER_ASSIGN_OR_RETURN(
        auto sandbox,
        ChildProcess::spawn({o.coffer, "sandbox", "--nodes", "3", "--dir", dir}, log, SIGTERM));
    auto net = wait_sandbox(dir, log, *sandbox);
    if (!net.ok()) {
        return net.status();
    }
    return drive_coffer(o, *net);
}

// ---------------------------------------------------------------------------------------
// Output and arguments.

void print_results(const Options& o, const std::vector<RunResult>& results) {
    std::printf("\n%-8s %8s %12s %10s %9s %9s %8s\n", "system", "clients", "value_bytes",
                "writes/s", "p50_ms", "p99_ms", "errors");
    for (const RunResult& r : results) {
        std::printf("%-8s %8d %12zu %10.0f %9.2f %9.2f %8llu\n", r.system.c_str(), o.clients,
                    o.value_bytes, r.writes_per_s(), r.p50_ms, r.p99_ms,
                    static_cast<unsigned long long>(r.errors));
        for (const std::string& e : r.first_errors) {
            std::printf("  %s error: %s\n", r.system.c_str(), e.c_str());
        }
    }
    auto find = [&](const std::string& system) -> const RunResult* {
        for (const RunResult& r : results) {
            if (r.system == system) {
                return &r;
            }
        }
        return nullptr;
    };
    const RunResult* c = find("coffer");
    const RunResult* e = find("etcd");
    if (c != nullptr && e != nullptr && e->writes_per_s() > 0 && e->p50_ms > 0 && e->p99_ms > 0) {
        std::printf("ratio coffer/etcd: writes/s %.2f, p50 %.2f, p99 %.2f\n",
                    c->writes_per_s() / e->writes_per_s(), c->p50_ms / e->p50_ms,
                    c->p99_ms / e->p99_ms);
    }
    std::printf(
        "Both systems ran one after the other on this %u-core machine; the client threads and "
        "all three servers share those cores, so absolute figures are a floor.\n",
        std::thread::hardware_concurrency());
}

bool parse_args(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (i + 1 >= argc) {
            std::fprintf(stderr, "missing value after %s\n", a.c_str());
            return false;
        }
        std::string v = argv[++i];
        if (a == "--clients") {
            o.clients = std::clamp(std::atoi(v.c_str()), 1, kMaxClients);
        } else if (a == "--value-bytes") {
            o.value_bytes =
                std::clamp<size_t>(std::strtoull(v.c_str(), nullptr, 10), 1, kMaxValueBytes);
        } else if (a == "--duration-s") {
            o.duration_s = std::clamp(std::atof(v.c_str()), 0.1, kMaxDurationS);
        } else if (a == "--warmup-s") {
            o.warmup_s = std::clamp(std::atof(v.c_str()), 0.0, kMaxDurationS);
        } else if (a == "--only" && (v == "etcd" || v == "coffer")) {
            o.run_etcd = v == "etcd";
            o.run_coffer = v == "coffer";
        } else if (a == "--coffer-sandbox") {
            o.coffer_sandbox = v;
        } else if (a == "--coffer") {
            o.coffer = v;
        } else if (a == "--etcd") {
            o.etcd = v;
        } else {
            std::fprintf(stderr, "bad argument %s %s\n", a.c_str(), v.c_str());
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
    std::signal(SIGINT, on_interrupt);
    std::signal(SIGTERM, on_interrupt);
    std::signal(SIGPIPE, SIG_IGN);
    std::printf(
        "replication_bench: %d clients, %zu-byte values, %.1f s (after %.1f s warm-up) "
        "per system, TLS, durable writes, clients on the leader\n",
        o.clients, o.value_bytes, o.duration_s, o.warmup_s);
    std::fflush(stdout);

    std::vector<RunResult> results;
    int rc = 0;
    for (bool coffer_side : {false, true}) {
        bool wanted = coffer_side ? o.run_coffer : o.run_etcd;
        if (!wanted || interrupted()) {
            continue;
        }
        auto r = coffer_side ? run_coffer(o) : run_etcd(o);
        if (!r.ok()) {
            std::fprintf(stderr, "%s: %s\n", coffer_side ? "coffer" : "etcd",
                         r.status().to_string().c_str());
            rc = 1;
            continue;
        }
        results.push_back(std::move(r).value());
    }
    if (!results.empty()) {
        print_results(o, results);
    }
    return interrupted() ? 130 : rc;
}

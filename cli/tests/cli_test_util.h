// Helpers shared by the tests of the `coffer` command (cli/cli_test.cc,
// cli/tests/cleanroom_cli_test.cc): the real binary (COFFER_BIN, set by CMake) run in the
// foreground or in the background, and a `coffer sandbox` process. Not part of any library.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace coffer::cli_test {

using SteadyClock = std::chrono::steady_clock;

// Bounds of the sandbox tests: starting N nodes, and stopping them (10 s per the sandbox's
// own SIGTERM grace period, plus margin).
constexpr int kSandboxStartTimeoutS = 180;
constexpr int kSandboxStopTimeoutS = 30;

struct RunResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
};

// Runs `coffer ARGS` (a shell command line) and waits for it.
inline RunResult run(const std::string& args) {
    std::string command = std::string(COFFER_BIN) + " " + args + " 2>&1";
    RunResult result;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) {
        return result;
    }
    std::array<char, 4096> buffer{};
    size_t n = 0;
    while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) {
        result.output.append(buffer.data(), n);
    }
    int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

inline std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Runs `coffer args...` in the background with stdout+stderr to `output` (truncated). The
// argument vector is built before fork(): the child of a threaded process may only make
// async-signal-safe calls.
inline pid_t spawn_coffer(const std::vector<std::string>& args, const std::string& output) {
    std::vector<std::string> all = {COFFER_BIN};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(output.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv.data());
        _exit(127);
    }
    return pid;
}

// Waits for `pid` to exit; its exit code, or -1 (after SIGKILL) when it did not within
// timeout_s or was killed by a signal.
inline int wait_exit(pid_t pid, int timeout_s) {
    auto deadline = SteadyClock::now() + std::chrono::seconds(timeout_s);
    int status = 0;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (SteadyClock::now() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A running `coffer sandbox --dir DIR EXTRA...`; SIGKILLed if a test ends without stopping
// it (its nodes then get SIGTERM from the kernel, as their parent died).
class SandboxRun {
  public:
    SandboxRun(const std::string& dir, const std::vector<std::string>& extra)
        : dir_(dir), output_(dir + ".out") {
        std::vector<std::string> args = {"sandbox", "--dir", dir};
        args.insert(args.end(), extra.begin(), extra.end());
        pid_ = spawn_coffer(args, output_);
    }
    ~SandboxRun() {
        if (pid_ > 0) {
            wait_exit(pid_, 0);
        }
    }
    SandboxRun(const SandboxRun&) = delete;
    SandboxRun& operator=(const SandboxRun&) = delete;

    // The sandbox.json it wrote, or null if it exited or took longer than the bound.
    nlohmann::json wait_ready() {
        auto deadline = SteadyClock::now() + std::chrono::seconds(kSandboxStartTimeoutS);
        while (SteadyClock::now() < deadline) {
            auto info = nlohmann::json::parse(slurp(dir_ + "/sandbox.json"), nullptr, false);
            if (info.is_object() && info.value("pid", int64_t{0}) == pid_) {
                return info;
            }
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return nullptr;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return nullptr;
    }

    // SIGTERM, then its exit code (-1 if it did not exit in time).
    int stop() {
        kill(pid_, SIGTERM);
        int code = wait_exit(pid_, kSandboxStopTimeoutS);
        pid_ = -1;
        return code;
    }

    std::string output() const { return slurp(output_); }

  private:
    std::string dir_;
    std::string output_;
    pid_t pid_ = -1;
};

}  // namespace coffer::cli_test

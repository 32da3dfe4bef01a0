#include "consensus/sim/scenario.h"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

#include "consensus/sim/simulator.h"

namespace coffer::consensus::sim {
namespace {

using Args = std::vector<std::string>;

constexpr uint64_t kDefaultWaitMs = 3000;

RaftOptions scenario_raft_options() {
    RaftOptions raft;
    raft.election_timeout_min_ms = 150;
    raft.election_timeout_max_ms = 300;
    raft.heartbeat_interval_ms = 30;
    raft.max_entries_per_message = 8;
    raft.max_bytes_per_message = kMessageOverheadBytes + 256;  // snapshots span 2 chunks
    return raft;
}

Result<uint64_t> parse_number(const std::string& text) {
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
        return error(Errc::kInvalidArgument, "not a number: " + text);
    }
    return value;
}

Result<bool> compare(uint64_t actual, const std::string& op, const std::string& expected_text) {
    COFFER_ASSIGN_OR_RETURN(uint64_t expected, parse_number(expected_text));
    if (op == "==") {
        return actual == expected;
    }
    if (op == ">=") {
        return actual >= expected;
    }
    if (op == "<=") {
        return actual <= expected;
    }
    if (op == ">") {
        return actual > expected;
    }
    if (op == "<") {
        return actual < expected;
    }
    return error(Errc::kInvalidArgument, "unknown comparison: " + op);
}

Status fail(const std::string& what) {
    return error(Errc::kFailedPrecondition, what);
}

class Runner {
  public:
    explicit Runner(uint64_t seed) : seed_(seed) {}

    Status run_line(const Args& args);
    Status run_simple(const Args& args);
    // One line per node: role, term, last/durable/commit index (for COFFER_SCENARIO_TRACE).
    std::string describe();

  private:
    Status cmd_nodes(const Args& a);
    Status cmd_planted_bug(const Args& a);
    Status cmd_elect(const Args& a);
    Status cmd_propose(const Args& a, bool signature);
    Status cmd_config(const Args& a);
    Status cmd_partition(const Args& a);
    Status cmd_crash(const Args& a);
    Status cmd_inject_append(const Args& a);
    Status cmd_expect(const Args& a, bool wait);
    Status cmd_switch(const Args& a);
    Result<NodeId> resolve(const std::string& name);
    Result<bool> evaluate(const Args& a);
    Result<bool> evaluate_node_fact(const Args& a);
    Result<bool> evaluate_entries(const Args& a);
    Status need(const Args& a, size_t count);
    Result<RaftNode*> running(const std::string& id);
    Simulator& sim();

    uint64_t seed_;
    std::unique_ptr<Simulator> sim_;
    LoadOptions load_;
    PlantedBug bug_ = PlantedBug::kNone;
};

std::string Runner::describe() {
    return sim_ ? sim_->describe() : "";
}

Simulator& Runner::sim() {
    COFFER_CHECK(sim_ != nullptr, "scenario: simulator used before `nodes`");
    return *sim_;
}

Status Runner::need(const Args& a, size_t count) {
    if (a.size() < count) {
        return error(Errc::kInvalidArgument, "`" + a[0] + "` needs more arguments");
    }
    if (a[0] != "nodes" && a[0] != "planted_bug" && !sim_) {
        return error(Errc::kInvalidArgument, "the script must start with `nodes N`");
    }
    return Status::ok_status();
}

Result<RaftNode*> Runner::running(const std::string& id) {
    if (std::find(sim().node_ids().begin(), sim().node_ids().end(), id) == sim().node_ids().end()) {
        return error(Errc::kInvalidArgument, "unknown node " + id);
    }
    RaftNode* node = sim().node(id);
    if (node == nullptr) {
        return fail("node " + id + " is down");
    }
    return node;
}

Status Runner::run_line(const Args& a) {
    const std::string& cmd = a[0];
    COFFER_RETURN_IF_ERROR(need(a, 1));
    if (cmd == "nodes") {
        return cmd_nodes(a);
    }
    if (cmd == "planted_bug") {
        return cmd_planted_bug(a);
    }
    if (cmd == "elect") {
        return cmd_elect(a);
    }
    if (cmd == "propose" || cmd == "sign") {
        return cmd_propose(a, cmd == "sign");
    }
    if (cmd == "config") {
        return cmd_config(a);
    }
    if (cmd == "partition") {
        return cmd_partition(a);
    }
    if (cmd == "crash") {
        return cmd_crash(a);
    }
    if (cmd == "inject_append") {
        return cmd_inject_append(a);
    }
    if (cmd == "expect" || cmd == "wait") {
        return cmd_expect(a, cmd == "wait");
    }
    if (cmd == "heal") {
        sim().heal();
        return Status::ok_status();
    }
    return run_simple(a);
}

// The commands that take plain arguments.
Status Runner::run_simple(const Args& a) {
    const std::string& cmd = a[0];
    COFFER_RETURN_IF_ERROR(need(a, 2));
    if (cmd == "autosign" || cmd == "load") {
        return cmd_switch(a);
    }
    if (cmd == "tick") {
        COFFER_ASSIGN_OR_RETURN(uint64_t ms, parse_number(a[1]));
        return sim().run_for(std::min(ms, kMaxScenarioWaitMs));
    }
    if (cmd == "restart") {
        return sim().restart(a[1]);
    }
    if (cmd == "add") {
        return sim().add_node(a[1], false);
    }
    if (cmd == "hold" || cmd == "release") {
        COFFER_RETURN_IF_ERROR(running(a[1]).status());
        sim().hold_flushes(a[1], cmd == "hold");
        return Status::ok_status();
    }
    if (cmd == "flush") {
        return sim().flush_now(a[1]);
    }
    if (cmd == "compact") {
        return sim().compact(a[1]);
    }
    COFFER_RETURN_IF_ERROR(need(a, 3));
    if (cmd == "block") {
        sim().block(a[1], a[2]);
        return Status::ok_status();
    }
    return error(Errc::kInvalidArgument, "unknown command " + cmd);
}

Status Runner::cmd_nodes(const Args& a) {
    COFFER_RETURN_IF_ERROR(need(a, 2));
    if (sim_) {
        return error(Errc::kInvalidArgument, "`nodes` given twice");
    }
    COFFER_ASSIGN_OR_RETURN(uint64_t count, parse_number(a[1]));
    if (count == 0 || count > kMaxConfigurationNodes) {
        return error(Errc::kInvalidArgument, "bad node count");
    }
    SimOptions options;
    options.seed = seed_;
    options.raft = scenario_raft_options();
    options.raft.planted_bug = bug_;
    sim_ = std::make_unique<Simulator>(options);
    for (uint64_t i = 1; i <= count; ++i) {
        COFFER_RETURN_IF_ERROR(sim_->add_node("n" + std::to_string(i), true));
    }
    return sim_->step();
}

// planted_bug 1|2|3, before `nodes`: runs the script against a planted bug (self-test).
Status Runner::cmd_planted_bug(const Args& a) {
    COFFER_RETURN_IF_ERROR(need(a, 2));
    COFFER_ASSIGN_OR_RETURN(uint64_t bug, parse_number(a[1]));
    if (sim_ || bug > 3) {
        return error(Errc::kInvalidArgument, "planted_bug 1..3 goes before `nodes`");
    }
    bug_ = static_cast<PlantedBug>(bug);
    return Status::ok_status();
}

Status Runner::cmd_elect(const Args& a) {
    COFFER_RETURN_IF_ERROR(need(a, 2));
    COFFER_RETURN_IF_ERROR(running(a[1]).status());
    COFFER_RETURN_IF_ERROR(sim().campaign(a[1]));
    const NodeId id = a[1];
    return sim().run_until(
        [&]() {
            RaftNode* n = sim().node(id);
            return n != nullptr && n->role() == Role::kLeader;
        },
        kDefaultWaitMs, id + " to become leader");
}

// `*` names the current leader (the running leader of the highest term).
Result<NodeId> Runner::resolve(const std::string& name) {
    if (name != "*") {
        return name;
    }
    auto leader = sim().leader();
    if (!leader) {
        return fail("no leader for `*`");
    }
    return *leader;
}

// autosign on|off (a new leader signs at once) / load on|off (client writes and periodic
// signatures on every leader, without faults)
Status Runner::cmd_switch(const Args& a) {
    if (a[1] != "on" && a[1] != "off") {
        return error(Errc::kInvalidArgument, "expected on or off");
    }
    bool on = a[1] == "on";
    LoadOptions load = load_;
    if (a[0] == "autosign") {
        load.sign_on_election = on;
    } else {
        load.auto_propose = on;
        load.periodic_signatures = on;
        load.read_per_step = 0;
    }
    load_ = load;
    sim().set_load(load);
    return Status::ok_status();
}

// propose NODE VALUE [fails] / sign NODE [fails]
Status Runner::cmd_propose(const Args& a, bool signature) {
    COFFER_RETURN_IF_ERROR(need(a, signature ? 2 : 3));
    COFFER_ASSIGN_OR_RETURN(NodeId id, resolve(a[1]));
    COFFER_RETURN_IF_ERROR(running(id).status());
    std::string value = signature ? "sig" : a[2];
    bool expect_failure = a.back() == "fails";
    auto index = sim().propose(id, value, signature);
    if (index.ok() == expect_failure) {
        return fail("propose on " + id + (expect_failure ? " succeeded" : " failed: ") +
                    (index.ok() ? "" : index.status().to_string()));
    }
    return Status::ok_status();
}

// config LEADER VOTER... [fails]
Status Runner::cmd_config(const Args& a) {
    COFFER_RETURN_IF_ERROR(need(a, 3));
    bool expect_failure = a.back() == "fails";
    std::vector<NodeId> voters(a.begin() + 2, a.end() - (expect_failure ? 1 : 0));
    COFFER_ASSIGN_OR_RETURN(NodeId id, resolve(a[1]));
    auto index = sim().propose_configuration(id, voters);
    if (index.ok() == expect_failure) {
        return fail("configuration change on " + id +
                    (index.ok() ? " succeeded" : " failed: " + index.status().to_string()));
    }
    return Status::ok_status();
}

// partition A B | C D   (nodes not named stay connected to everyone)
Status Runner::cmd_partition(const Args& a) {
    std::vector<std::vector<NodeId>> groups(1);
    for (size_t i = 1; i < a.size(); ++i) {
        if (a[i] == "|") {
            groups.emplace_back();
        } else {
            groups.back().push_back(a[i]);
        }
    }
    sim().partition(groups);
    return Status::ok_status();
}

// crash NODE [tear]
Status Runner::cmd_crash(const Args& a) {
    COFFER_RETURN_IF_ERROR(need(a, 2));
    return sim().crash(a[1], a.size() > 2 && a[2] == "tear");
}

// inject_append LEADER FOLLOWER NEXT_INDEX MAX_ENTRIES
Status Runner::cmd_inject_append(const Args& a) {
    COFFER_RETURN_IF_ERROR(need(a, 5));
    COFFER_ASSIGN_OR_RETURN(RaftNode * leader, running(a[1]));
    COFFER_RETURN_IF_ERROR(running(a[2]).status());
    COFFER_ASSIGN_OR_RETURN(uint64_t next, parse_number(a[3]));
    COFFER_ASSIGN_OR_RETURN(uint64_t max, parse_number(a[4]));
    COFFER_ASSIGN_OR_RETURN(Message msg, leader->build_append_entries(a[2], next, max));
    return sim().inject(msg);
}

// expect FACT / wait FACT [within MS]
Status Runner::cmd_expect(const Args& a, bool wait) {
    COFFER_RETURN_IF_ERROR(need(a, 2));
    Args fact(a.begin() + 1, a.end());
    uint64_t max_ms = kDefaultWaitMs;
    if (fact.size() >= 3 && fact[fact.size() - 2] == "within") {
        COFFER_ASSIGN_OR_RETURN(max_ms, parse_number(fact.back()));
        max_ms = std::min(max_ms, kMaxScenarioWaitMs);
        fact.resize(fact.size() - 2);
    }
    COFFER_ASSIGN_OR_RETURN(bool holds, evaluate(fact));
    if (holds) {
        return Status::ok_status();
    }
    if (!wait) {
        return fail("expectation failed");
    }
    Status parse_error = Status::ok_status();
    Status waited = sim().run_until(
        [&]() {
            auto r = evaluate(fact);
            if (!r.ok()) {
                parse_error = r.status();
                return true;
            }
            return r.value();
        },
        max_ms, "the condition");
    COFFER_RETURN_IF_ERROR(parse_error);
    return waited.ok() ? waited : fail(waited.message());
}

Result<bool> Runner::evaluate(const Args& a) {
    const std::string& what = a[0];
    if (what == "committed_value" || what == "never_committed") {
        COFFER_RETURN_IF_ERROR(need(a, 2));
        return sim().value_committed(a[1]) == (what == "committed_value");
    }
    if (what == "no_leader" || what == "some_leader") {
        return sim().leader().has_value() == (what == "some_leader");
    }
    if (what == "down") {
        COFFER_RETURN_IF_ERROR(need(a, 2));
        return !sim().is_up(a[1]);
    }
    if (what == "entry" || what == "same_log") {
        return evaluate_entries(a);
    }
    return evaluate_node_fact(a);
}

// leader N | role N R | voter N | not_voter N | commit N OP X | last N OP X | term N OP X
// | durable N OP X | base N OP X
Result<bool> Runner::evaluate_node_fact(const Args& a) {
    COFFER_RETURN_IF_ERROR(need(a, 2));
    COFFER_ASSIGN_OR_RETURN(RaftNode * n, running(a[1]));
    const std::string& what = a[0];
    if (what == "leader") {
        return n->role() == Role::kLeader;
    }
    if (what == "voter" || what == "not_voter") {
        return n->is_voter() == (what == "voter");
    }
    if (what == "role") {
        COFFER_RETURN_IF_ERROR(need(a, 3));
        return role_name(n->role()) == a[2];
    }
    COFFER_RETURN_IF_ERROR(need(a, 4));
    std::map<std::string, uint64_t> values = {{"commit", n->commit_index()},
                                              {"last", n->log().last_index()},
                                              {"term", n->term()},
                                              {"durable", n->durable_index()},
                                              {"base", n->log().base_index()}};
    auto it = values.find(what);
    if (it == values.end()) {
        return error(Errc::kInvalidArgument, "unknown fact " + what);
    }
    return compare(it->second, a[2], a[3]);
}

// entry A I == B I | entry A I != B I | same_log A B (entries both hold, and equal length)
Result<bool> Runner::evaluate_entries(const Args& a) {
    if (a[0] == "same_log") {
        COFFER_RETURN_IF_ERROR(need(a, 3));
        COFFER_ASSIGN_OR_RETURN(RaftNode * x, running(a[1]));
        COFFER_ASSIGN_OR_RETURN(RaftNode * y, running(a[2]));
        if (x->log().last_index() != y->log().last_index()) {
            return false;
        }
        Index from = std::max(x->log().base_index(), y->log().base_index()) + 1;
        for (Index i = from; i <= x->log().last_index(); ++i) {
            if (!(x->log().at(i) == y->log().at(i))) {
                return false;
            }
        }
        return true;
    }
    COFFER_RETURN_IF_ERROR(need(a, 6));
    COFFER_ASSIGN_OR_RETURN(RaftNode * x, running(a[1]));
    COFFER_ASSIGN_OR_RETURN(RaftNode * y, running(a[4]));
    COFFER_ASSIGN_OR_RETURN(uint64_t i, parse_number(a[2]));
    COFFER_ASSIGN_OR_RETURN(uint64_t j, parse_number(a[5]));
    auto present = [](RaftNode* n, Index k) {
        return k > n->log().base_index() && k <= n->log().last_index();
    };
    if (!present(x, i) || !present(y, j)) {
        return a[3] == "!=";
    }
    bool same = x->log().at(i) == y->log().at(j);
    return a[3] == "==" ? same : !same;
}

Args split_words(const std::string& line) {
    Args words;
    std::istringstream in(line);
    std::string word;
    while (in >> word) {
        words.push_back(word);
    }
    return words;
}

}  // namespace

Status run_scenario(std::string_view script, uint64_t seed) {
    if (script.size() > kMaxScenarioBytes) {
        return error(Errc::kInvalidArgument, "scenario too large");
    }
    Runner runner(seed);
    std::istringstream in{std::string(script)};
    std::string line;
    size_t line_number = 0;
    size_t commands = 0;
    bool trace = std::getenv("COFFER_SCENARIO_TRACE") != nullptr;
    while (std::getline(in, line)) {
        ++line_number;
        line = line.substr(0, line.find('#'));
        Args words = split_words(line);
        if (words.empty()) {
            continue;
        }
        if (++commands > kMaxScenarioCommands) {
            return error(Errc::kInvalidArgument, "scenario has too many commands");
        }
        Status s = runner.run_line(words);
        if (trace) {
            std::fprintf(stderr, "%4zu %-40s %s\n", line_number, line.c_str(),
                         runner.describe().c_str());
        }
        if (!s.ok()) {
            return s.with_context("line " + std::to_string(line_number) + " (" + line + "): ");
        }
    }
    return Status::ok_status();
}

}  // namespace coffer::consensus::sim

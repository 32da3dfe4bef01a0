#include "lincheck/history_json.h"

#include <fmt/format.h>

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace coffer::lincheck {

namespace {

using nlohmann::json;

json operation_to_json(const Operation& op) {
    json out = json::object();
    out["id"] = op.id;
    out["client"] = op.client;
    out["kind"] = op_kind_name(op.kind);
    out["key"] = op.key;
    out["value"] = op.value ? json(*op.value) : json(nullptr);
    out["invoke_ns"] = op.invoke_ns;
    out["complete_ns"] = op.complete_ns == kNeverNs ? json(nullptr) : json(op.complete_ns);
    out["outcome"] = outcome_name(op.outcome);
    return out;
}

Status field_error(std::string_view field, std::string_view what) {
    return error(Errc::kInvalidArgument, fmt::format("field '{}' {}", field, what));
}

Result<int64_t> read_int64(const json& object, std::string_view field) {
    auto it = object.find(field);
    if (it == object.end()) {
        return field_error(field, "is missing");
    }
    if (it->is_number_unsigned()) {
        uint64_t value = it->get<uint64_t>();
        if (value > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            return field_error(field, "is out of range");
        }
        return static_cast<int64_t>(value);
    }
    if (!it->is_number_integer()) {
        return field_error(field, "must be an integer");
    }
    return it->get<int64_t>();
}

Result<std::string> read_string(const json& object, std::string_view field) {
    auto it = object.find(field);
    if (it == object.end()) {
        return field_error(field, "is missing");
    }
    if (!it->is_string()) {
        return field_error(field, "must be a string");
    }
    return it->get<std::string>();
}

// The field may be missing or null (nullopt) or a string.
Result<std::optional<std::string>> read_optional_string(const json& object,
                                                        std::string_view field) {
    auto it = object.find(field);
    if (it == object.end() || it->is_null()) {
        return std::optional<std::string>();
    }
    if (!it->is_string()) {
        return field_error(field, "must be a string or null");
    }
    return std::optional<std::string>(it->get<std::string>());
}

Status check_fields(const json& object, std::initializer_list<std::string_view> allowed) {
    for (const auto& item : object.items()) {
        bool known = false;
        for (std::string_view name : allowed) {
            known = known || item.key() == name;
        }
        if (!known) {
            return error(Errc::kInvalidArgument, fmt::format("unknown field '{}'", item.key()));
        }
    }
    return Status::ok_status();
}

Result<OpKind> parse_kind(std::string_view text) {
    if (text == "write") {
        return OpKind::kWrite;
    }
    if (text == "read") {
        return OpKind::kRead;
    }
    return field_error("kind", "must be \"write\" or \"read\"");
}

Result<Outcome> parse_outcome(std::string_view text) {
    for (Outcome outcome : {Outcome::kOk, Outcome::kUnknown, Outcome::kFailed}) {
        if (text == outcome_name(outcome)) {
            return outcome;
        }
    }
    return field_error("outcome", "must be \"ok\", \"unknown\" or \"failed\"");
}

Result<int64_t> parse_complete_ns(const json& object, Outcome outcome) {
    auto it = object.find("complete_ns");
    bool absent = it == object.end() || it->is_null();
    if (outcome == Outcome::kUnknown) {
        if (!absent) {
            return field_error("complete_ns", "must be null for an unknown outcome");
        }
        return kNeverNs;
    }
    return read_int64(object, "complete_ns");
}

Result<Operation> parse_operation(const json& object, size_t index) {
    if (!object.is_object()) {
        return error(Errc::kInvalidArgument, "not an object");
    }
    COFFER_RETURN_IF_ERROR(check_fields(
        object, {"id", "client", "kind", "key", "value", "invoke_ns", "complete_ns", "outcome"}));
    Operation op;
    COFFER_ASSIGN_OR_RETURN(int64_t id, read_int64(object, "id"));
    if (id < 0 || static_cast<uint64_t>(id) != index) {
        return field_error("id", fmt::format("must equal the operation's index {}", index));
    }
    COFFER_ASSIGN_OR_RETURN(int64_t client, read_int64(object, "client"));
    if (client < 0 || client > std::numeric_limits<ClientId>::max()) {
        return field_error("client", "is out of range");
    }
    op.client = static_cast<ClientId>(client);
    COFFER_ASSIGN_OR_RETURN(std::string kind, read_string(object, "kind"));
    COFFER_ASSIGN_OR_RETURN(op.kind, parse_kind(kind));
    COFFER_ASSIGN_OR_RETURN(op.key, read_string(object, "key"));
    COFFER_ASSIGN_OR_RETURN(op.value, read_optional_string(object, "value"));
    COFFER_ASSIGN_OR_RETURN(op.invoke_ns, read_int64(object, "invoke_ns"));
    COFFER_ASSIGN_OR_RETURN(std::string outcome, read_string(object, "outcome"));
    COFFER_ASSIGN_OR_RETURN(op.outcome, parse_outcome(outcome));
    COFFER_ASSIGN_OR_RETURN(op.complete_ns, parse_complete_ns(object, op.outcome));
    if (op.kind == OpKind::kRead && op.outcome != Outcome::kOk && op.value) {
        return field_error("value", "must be null for a read without an ok outcome");
    }
    return op;
}

Status check_header(const json& root) {
    if (!root.is_object()) {
        return error(Errc::kInvalidArgument, "history must be a JSON object");
    }
    COFFER_RETURN_IF_ERROR(check_fields(root, {"format", "version", "operations"}));
    COFFER_ASSIGN_OR_RETURN(std::string format, read_string(root, "format"));
    if (format != kHistoryFormatName) {
        return field_error("format", fmt::format("must be \"{}\"", kHistoryFormatName));
    }
    COFFER_ASSIGN_OR_RETURN(int64_t version, read_int64(root, "version"));
    if (version != kHistoryFormatVersion) {
        return error(Errc::kUnsupported,
                     fmt::format("history format version {} is not supported (only {})", version,
                                 kHistoryFormatVersion));
    }
    auto it = root.find("operations");
    if (it == root.end() || !it->is_array()) {
        return field_error("operations", "must be an array");
    }
    if (it->size() > kMaxHistoryOps) {
        return error(Errc::kResourceExhausted,
                     fmt::format("history has more than {} operations", kMaxHistoryOps));
    }
    return Status::ok_status();
}

Result<History> history_from_parsed(const json& root) {
    COFFER_RETURN_IF_ERROR(check_header(root));
    History history;
    const json& ops = root.at("operations");
    for (size_t i = 0; i < ops.size(); ++i) {
        Result<Operation> op = parse_operation(ops[i], i);
        if (!op.ok()) {
            return op.status().with_context(fmt::format("operation {}: ", i));
        }
        Status added = history.add(std::move(op).value());
        if (!added.ok()) {
            return added.with_context(fmt::format("operation {}: ", i));
        }
    }
    return history;
}

}  // namespace

Result<std::string> history_to_json(const History& history) {
    std::string out = fmt::format("{{\"format\":\"{}\",\"version\":{},\"operations\":[\n",
                                  kHistoryFormatName, kHistoryFormatVersion);
    try {
        const std::vector<Operation>& ops = history.operations();
        for (size_t i = 0; i < ops.size(); ++i) {
            out += operation_to_json(ops[i]).dump();
            out += i + 1 < ops.size() ? ",\n" : "\n";
        }
    } catch (const json::exception& e) {
        return error(Errc::kInvalidArgument,
                     fmt::format("history cannot be written as JSON: {}", e.what()));
    }
    out += "]}\n";
    return out;
}

Result<History> history_from_json(std::string_view text) {
    json root;
    try {
        root = json::parse(text);
    } catch (const json::exception& e) {
        return error(Errc::kInvalidArgument, fmt::format("history is not JSON: {}", e.what()));
    }
    return history_from_parsed(root);
}

Status write_history_file(const History& history, const std::string& path) {
    COFFER_ASSIGN_OR_RETURN(std::string text, history_to_json(history));
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    if (!file) {
        return error(Errc::kIo, fmt::format("cannot open {} for writing", path));
    }
    file.write(text.data(), static_cast<std::streamsize>(text.size()));
    file.close();
    if (!file) {
        return error(Errc::kIo, fmt::format("cannot write {}", path));
    }
    return Status::ok_status();
}

Result<History> read_history_file(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) {
        return error(Errc::kIo, fmt::format("cannot open {}", path));
    }
    file.seekg(0, std::ios::end);
    std::streamoff size = file.tellg();
    if (size < 0) {
        return error(Errc::kIo, fmt::format("cannot size {}", path));
    }
    if (static_cast<uint64_t>(size) > kMaxHistoryFileBytes) {
        return error(Errc::kResourceExhausted,
                     fmt::format("{} is larger than {} bytes", path, kMaxHistoryFileBytes));
    }
    file.seekg(0, std::ios::beg);
    std::string text(static_cast<size_t>(size), '\0');
    if (!file.read(text.data(), size)) {
        return error(Errc::kIo, fmt::format("cannot read {}", path));
    }
    Result<History> history = history_from_json(text);
    if (!history.ok()) {
        return history.status().with_context(path + ": ");
    }
    return history;
}

}  // namespace coffer::lincheck

#include "consensus/log_store.h"

namespace coffer::consensus {

Status apply_log_ops(LogStore& store, const std::vector<LogOp>& ops) {
    for (const LogOp& op : ops) {
        switch (op.kind) {
            case LogOp::Kind::kAppend:
                COFFER_RETURN_IF_ERROR(store.append(op.entry));
                break;
            case LogOp::Kind::kTruncate:
                COFFER_RETURN_IF_ERROR(store.truncate(op.index));
                break;
            case LogOp::Kind::kSnapshotReset:
                COFFER_RETURN_IF_ERROR(store.reset_to_snapshot(op.index, op.term));
                break;
        }
    }
    return Status::ok_status();
}

}  // namespace coffer::consensus

#include "apps/cleanroom_uploads.h"

#include "crypto/random.h"

namespace coffer::apps::cr {

namespace {

constexpr size_t kUploadIdBytes = 16;

Status no_such_upload(const std::string& id) {
    return error(Errc::kNotFound, "no open upload " + id + " of this caller on this node");
}

}  // namespace

void UploadSessions::expire_idle_locked() {
    auto now = std::chrono::steady_clock::now();
    for (auto it = sessions_.begin(); it != sessions_.end();) {
        if (now - it->second.last_activity > std::chrono::milliseconds(kUploadIdleTimeoutMs)) {
            it = sessions_.erase(it);
        } else {
            ++it;
        }
    }
}

void UploadSessions::close_oldest_of_party_locked(const std::string& owner_fingerprint) {
    size_t held = 0;
    auto oldest = sessions_.end();
    for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
        if (it->second.owner_fingerprint != owner_fingerprint) {
            continue;
        }
        ++held;
        if (oldest == sessions_.end() || it->second.last_activity < oldest->second.last_activity) {
            oldest = it;
        }
    }
    if (held >= kMaxOpenUploadsPerParty) {
        sessions_.erase(oldest);
    }
}

Result<std::string> UploadSessions::open(const std::string& dataset,
                                         const std::string& owner_fingerprint) {
    std::lock_guard lock(mu_);
    expire_idle_locked();
    close_oldest_of_party_locked(owner_fingerprint);
    if (sessions_.size() >= kMaxOpenUploads) {
        return error(Errc::kResourceExhausted, "too many open uploads (at most " +
                                                   std::to_string(kMaxOpenUploads) +
                                                   "); commit or wait for idle ones to close");
    }
    std::string id = to_hex(crypto::random_bytes(kUploadIdBytes));
    UploadSession session;
    session.dataset = dataset;
    session.owner_fingerprint = owner_fingerprint;
    session.last_activity = std::chrono::steady_clock::now();
    sessions_.emplace(id, std::move(session));
    return id;
}

Status UploadSessions::append(const std::string& id, const std::string& owner_fingerprint,
                              uint64_t index, const Bytes& plaintext) {
    std::lock_guard lock(mu_);
    expire_idle_locked();
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.owner_fingerprint != owner_fingerprint) {
        return no_such_upload(id);
    }
    UploadSession& s = it->second;
    if (index != s.next_index) {
        return error(Errc::kInvalidArgument, "expected chunk index " +
                                                 std::to_string(s.next_index) + ", got " +
                                                 std::to_string(index));
    }
    if (plaintext.size() > kMaxChunkPlaintextBytes) {
        return error(Errc::kInvalidArgument, "a chunk holds at most " +
                                                 std::to_string(kMaxChunkPlaintextBytes) +
                                                 " bytes of plaintext");
    }
    if (s.plaintext.size() + plaintext.size() > kMaxUploadPlaintextBytes) {
        return error(Errc::kInvalidArgument, "an upload holds at most " +
                                                 std::to_string(kMaxUploadPlaintextBytes) +
                                                 " bytes of plaintext");
    }
    s.plaintext.append(plaintext.begin(), plaintext.end());
    s.next_index += 1;
    s.last_activity = std::chrono::steady_clock::now();
    return Status();
}

Result<UploadSession> UploadSessions::take(const std::string& id,
                                           const std::string& owner_fingerprint) {
    std::lock_guard lock(mu_);
    expire_idle_locked();
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.owner_fingerprint != owner_fingerprint) {
        return no_such_upload(id);
    }
    UploadSession session = std::move(it->second);
    sessions_.erase(it);
    return session;
}

Status UploadSessions::check_open(const std::string& id, const std::string& owner_fingerprint) {
    std::lock_guard lock(mu_);
    expire_idle_locked();
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.owner_fingerprint != owner_fingerprint) {
        return no_such_upload(id);
    }
    return Status();
}

}  // namespace coffer::apps::cr

#include "ledger/memory_file_system.h"

#include <algorithm>
#include <random>

namespace coffer::ledger {

namespace {

bool is_root(const std::string& dir) {
    return dir == "/" || dir == "." || dir.empty();
}

// Makes the durable entries directly under `dir` equal to the current ones.
template <typename Map>
void sync_map_entries(const std::string& dir, const Map& from, Map& to) {
    std::erase_if(to, [&](const auto& kv) { return parent_path(kv.first) == dir; });
    for (const auto& kv : from) {
        if (parent_path(kv.first) == dir) {
            to.insert(kv);
        }
    }
}

void sync_set_entries(const std::string& dir, const std::set<std::string>& from,
                      std::set<std::string>& to) {
    std::erase_if(to, [&](const std::string& d) { return parent_path(d) == dir; });
    for (const auto& d : from) {
        if (parent_path(d) == dir) {
            to.insert(d);
        }
    }
}

}  // namespace

class MemoryFileSystem::MemoryFile final : public File {
  public:
    MemoryFile(MemoryFileSystem* fs, std::shared_ptr<Node> node, std::string path, bool writable,
               uint64_t epoch)
        : fs_(fs),
          node_(std::move(node)),
          path_(std::move(path)),
          writable_(writable),
          epoch_(epoch) {}

    Result<size_t> append(ByteSpan data) override {
        std::lock_guard lock(fs_->mu_);
        COFFER_RETURN_IF_ERROR(check_writable());
        size_t n = data.size();
        if (fs_->space_left_bytes_.has_value()) {
            n = static_cast<size_t>(std::min<uint64_t>(n, *fs_->space_left_bytes_));
            *fs_->space_left_bytes_ -= n;
        }
        if (n > 0) {
            node_->last_write_offset = node_->current.size();
            node_->last_write_size = n;
            node_->last_write_stamp = ++fs_->write_stamp_;
            node_->current.insert(node_->current.end(), data.begin(), data.begin() + n);
        }
        if (n < data.size()) {
            return error(Errc::kNoSpace, "disk full: write " + path_ + ": no space left on device");
        }
        return n;
    }

    Status sync() override {
        std::lock_guard lock(fs_->mu_);
        COFFER_RETURN_IF_ERROR(fs_->check_epoch_locked(epoch_, path_));
        if (fs_->fail_next_sync_) {
            fs_->fail_next_sync_ = false;
            return error(Errc::kIo, "fdatasync " + path_ + ": Input/output error (injected)");
        }
        node_->durable = node_->current;
        node_->last_write_size = 0;
        ++fs_->sync_count_;
        return Status::ok_status();
    }

    Result<size_t> read_at(uint64_t offset, std::span<uint8_t> out) override {
        std::lock_guard lock(fs_->mu_);
        COFFER_RETURN_IF_ERROR(fs_->check_epoch_locked(epoch_, path_));
        const Bytes& data = node_->current;
        if (offset >= data.size()) {
            return size_t{0};
        }
        size_t n = std::min<uint64_t>(out.size(), data.size() - offset);
        std::copy_n(data.begin() + static_cast<ptrdiff_t>(offset), n, out.begin());
        return n;
    }

    Result<uint64_t> size() override {
        std::lock_guard lock(fs_->mu_);
        COFFER_RETURN_IF_ERROR(fs_->check_epoch_locked(epoch_, path_));
        return static_cast<uint64_t>(node_->current.size());
    }

    Status truncate(uint64_t size_bytes) override {
        std::lock_guard lock(fs_->mu_);
        COFFER_RETURN_IF_ERROR(check_writable());
        if (size_bytes > node_->current.size()) {
            return error(Errc::kInvalidArgument, "truncate past the end of " + path_);
        }
        node_->current.resize(static_cast<size_t>(size_bytes));
        if (node_->last_write_offset + node_->last_write_size > size_bytes) {
            node_->last_write_size = 0;
        }
        return Status::ok_status();
    }

    const std::string& path() const override { return path_; }

  private:
    Status check_writable() const {
        COFFER_RETURN_IF_ERROR(fs_->check_epoch_locked(epoch_, path_));
        if (!writable_) {
            return error(Errc::kFailedPrecondition, "file opened read-only: " + path_);
        }
        return Status::ok_status();
    }

    MemoryFileSystem* fs_;
    std::shared_ptr<Node> node_;
    std::string path_;
    bool writable_;
    uint64_t epoch_;
};

Status MemoryFileSystem::check_epoch_locked(uint64_t epoch, const std::string& path) const {
    if (epoch != epoch_) {
        return error(Errc::kIo, "file " + path + " was open across a simulated crash");
    }
    return Status::ok_status();
}

bool MemoryFileSystem::dir_exists_locked(const std::string& dir) const {
    return is_root(dir) || dirs_.count(dir) > 0;
}

Result<std::unique_ptr<File>> MemoryFileSystem::open_locked(const std::string& path,
                                                            bool writable) {
    auto it = files_.find(path);
    if (it == files_.end()) {
        return error(Errc::kNotFound, "open " + path + ": No such file or directory");
    }
    return std::unique_ptr<File>(
        std::make_unique<MemoryFile>(this, it->second, path, writable, epoch_));
}

Result<std::unique_ptr<File>> MemoryFileSystem::open_for_append(const std::string& path) {
    std::lock_guard lock(mu_);
    return open_locked(path, true);
}

Result<std::unique_ptr<File>> MemoryFileSystem::create_new(const std::string& path) {
    std::lock_guard lock(mu_);
    if (files_.count(path) > 0 || dirs_.count(path) > 0) {
        return error(Errc::kFailedPrecondition, "open " + path + ": File exists");
    }
    if (!dir_exists_locked(parent_path(path))) {
        return error(Errc::kNotFound, "open " + path + ": No such file or directory");
    }
    files_[path] = std::make_shared<Node>();
    return open_locked(path, true);
}

Result<std::unique_ptr<File>> MemoryFileSystem::open_read(const std::string& path) {
    std::lock_guard lock(mu_);
    return open_locked(path, false);
}

Result<std::vector<std::string>> MemoryFileSystem::list_dir(const std::string& dir) {
    std::lock_guard lock(mu_);
    if (!dir_exists_locked(dir)) {
        return error(Errc::kNotFound, "opendir " + dir + ": No such file or directory");
    }
    std::vector<std::string> names;
    auto add = [&](const std::string& path) {
        if (parent_path(path) == dir && path != dir) {
            names.push_back(path.substr(path.rfind('/') + 1));
        }
    };
    for (const auto& [path, node] : files_) {
        add(path);
    }
    for (const auto& path : dirs_) {
        add(path);
    }
    std::sort(names.begin(), names.end());
    return names;
}

Status MemoryFileSystem::rename(const std::string& from, const std::string& to) {
    std::lock_guard lock(mu_);
    auto it = files_.find(from);
    if (it == files_.end()) {
        return error(Errc::kNotFound, "rename " + from + ": No such file or directory");
    }
    if (!dir_exists_locked(parent_path(to)) || dirs_.count(to) > 0) {
        return error(Errc::kNotFound, "rename to " + to + ": No such file or directory");
    }
    std::shared_ptr<Node> node = it->second;
    files_.erase(it);
    files_[to] = std::move(node);
    return Status::ok_status();
}

Status MemoryFileSystem::remove(const std::string& path) {
    std::lock_guard lock(mu_);
    if (files_.erase(path) == 0) {
        return error(Errc::kNotFound, "unlink " + path + ": No such file or directory");
    }
    return Status::ok_status();
}

Status MemoryFileSystem::sync_dir(const std::string& dir) {
    std::lock_guard lock(mu_);
    if (!dir_exists_locked(dir)) {
        return error(Errc::kNotFound, "open directory " + dir + ": No such file or directory");
    }
    if (fail_next_dir_sync_) {
        fail_next_dir_sync_ = false;
        return error(Errc::kIo, "fsync directory " + dir + ": Input/output error (injected)");
    }
    sync_map_entries(dir, files_, durable_files_);
    sync_set_entries(dir, dirs_, durable_dirs_);
    ++dir_sync_count_;
    return Status::ok_status();
}

Status MemoryFileSystem::make_dir(const std::string& dir) {
    std::lock_guard lock(mu_);
    std::vector<std::string> missing;
    for (std::string d = dir; !dir_exists_locked(d); d = parent_path(d)) {
        if (files_.count(d) > 0) {
            return error(Errc::kIo, "mkdir " + d + ": Not a directory");
        }
        missing.push_back(d);
    }
    dirs_.insert(missing.begin(), missing.end());
    return Status::ok_status();
}

Result<bool> MemoryFileSystem::file_exists(const std::string& path) {
    std::lock_guard lock(mu_);
    return files_.count(path) > 0 || dir_exists_locked(path);
}

void MemoryFileSystem::crash() {
    std::lock_guard lock(mu_);
    ++epoch_;
    dirs_ = durable_dirs_;
    files_.clear();
    for (const auto& [path, node] : durable_files_) {
        // An entry whose directory did not survive is gone with it.
        if (dir_exists_locked(parent_path(path))) {
            files_[path] = node;
        }
    }
    durable_files_ = files_;
    for (auto& [path, node] : files_) {
        node->current = node->durable;
        node->last_write_size = 0;
    }
}

Result<MemoryFileSystem::TornWrite> MemoryFileSystem::tear_last_write(uint64_t seed) {
    std::lock_guard lock(mu_);
    const std::string* best_path = nullptr;
    Node* best = nullptr;
    for (auto& [path, node] : files_) {
        if (node->last_write_size > 0 &&
            (best == nullptr || node->last_write_stamp > best->last_write_stamp)) {
            best = node.get();
            best_path = &path;
        }
    }
    if (best == nullptr) {
        return error(Errc::kNotFound, "no unflushed write to tear");
    }
    std::mt19937_64 rng(seed);
    TornWrite torn{*best_path, best->last_write_offset, best->last_write_size, 0};
    torn.kept_bytes = rng() % best->last_write_size;
    best->current.resize(static_cast<size_t>(torn.write_offset + torn.kept_bytes));
    best->durable = best->current;
    best->last_write_size = 0;
    return torn;
}

void MemoryFileSystem::fail_next_sync() {
    std::lock_guard lock(mu_);
    fail_next_sync_ = true;
}

void MemoryFileSystem::fail_next_dir_sync() {
    std::lock_guard lock(mu_);
    fail_next_dir_sync_ = true;
}

void MemoryFileSystem::set_disk_full_after(uint64_t bytes) {
    std::lock_guard lock(mu_);
    space_left_bytes_ = bytes;
}

void MemoryFileSystem::clear_disk_full() {
    std::lock_guard lock(mu_);
    space_left_bytes_.reset();
}

uint64_t MemoryFileSystem::sync_count() const {
    std::lock_guard lock(mu_);
    return sync_count_;
}

uint64_t MemoryFileSystem::dir_sync_count() const {
    std::lock_guard lock(mu_);
    return dir_sync_count_;
}

Result<Bytes> MemoryFileSystem::read_file(const std::string& path) const {
    std::lock_guard lock(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) {
        return error(Errc::kNotFound, "no file " + path);
    }
    return it->second->current;
}

Status MemoryFileSystem::write_file(const std::string& path, ByteSpan data) {
    std::lock_guard lock(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) {
        return error(Errc::kNotFound, "no file " + path);
    }
    it->second->current.assign(data.begin(), data.end());
    it->second->durable = it->second->current;
    it->second->last_write_size = 0;
    return Status::ok_status();
}

}  // namespace coffer::ledger

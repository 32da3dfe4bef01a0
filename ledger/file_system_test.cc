#include <gtest/gtest.h>
#include <stdlib.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <memory>
#include <string>

#include "ledger/file_system.h"
#include "ledger/memory_file_system.h"

namespace coffer::ledger {
namespace {

class TempDir {
  public:
    TempDir() {
        std::string tmpl = "/tmp/coffer_fs_test_" + std::string(6, 'X');
        char* made = ::mkdtemp(tmpl.data());
        EXPECT_NE(made, nullptr);
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

Bytes read_all(File& f) {
    Result<Bytes> data = read_whole_file(f, 1 << 20);
    EXPECT_TRUE(data.ok()) << data.status().to_string();
    return data.ok() ? *data : Bytes();
}

// The same contract checks run on both implementations.
void check_basic_contract(FileSystem& fs, const std::string& root) {
    std::string dir = join_path(root, "a/b");
    ASSERT_TRUE(fs.make_dir(dir).ok());
    ASSERT_TRUE(fs.make_dir(dir).ok()) << "make_dir of an existing directory is OK";
    std::string path = join_path(dir, "f1");

    Result<std::unique_ptr<File>> f = fs.create_new(path);
    ASSERT_TRUE(f.ok()) << f.status().to_string();
    EXPECT_EQ(fs.create_new(path).status().code(), Errc::kFailedPrecondition);
    ASSERT_TRUE((*f)->append(as_bytes("hello ")).ok());
    ASSERT_TRUE((*f)->append(as_bytes("world")).ok());
    ASSERT_TRUE((*f)->sync().ok());
    EXPECT_EQ(*(*f)->size(), 11u);

    uint8_t buf[5] = {};
    Result<size_t> n = (*f)->read_at(6, buf);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, 5u);
    EXPECT_EQ(to_string(ByteSpan(buf, 5)), "world");
    EXPECT_EQ(*(*f)->read_at(9, buf), 2u) << "short read at end of file";

    ASSERT_TRUE((*f)->truncate(5).ok());
    EXPECT_EQ(to_string(read_all(**f)), "hello");
    EXPECT_EQ((*f)->truncate(6).code(), Errc::kInvalidArgument);

    Result<std::unique_ptr<File>> r = fs.open_read(path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ((*r)->append(as_bytes("x")).status().code(), Errc::kFailedPrecondition);
    EXPECT_EQ((*r)->truncate(0).code(), Errc::kFailedPrecondition);

    ASSERT_TRUE(fs.rename(path, join_path(dir, "f2")).ok());
    EXPECT_FALSE(*fs.file_exists(path));
    EXPECT_TRUE(*fs.file_exists(join_path(dir, "f2")));
    ASSERT_TRUE(fs.create_new(join_path(dir, "f0")).ok());
    ASSERT_TRUE(fs.make_dir(join_path(dir, "sub")).ok());
    std::vector<std::string> expected = {"f0", "f2", "sub"};
    EXPECT_EQ(*fs.list_dir(dir), expected);
    ASSERT_TRUE(fs.sync_dir(dir).ok());

    ASSERT_TRUE(fs.remove(join_path(dir, "f0")).ok());
    EXPECT_EQ(fs.remove(join_path(dir, "f0")).code(), Errc::kNotFound);
    EXPECT_EQ(fs.open_for_append(join_path(dir, "nope")).status().code(), Errc::kNotFound);
    EXPECT_EQ(fs.open_read(join_path(dir, "nope")).status().code(), Errc::kNotFound);
    EXPECT_EQ(fs.list_dir(join_path(dir, "nope")).status().code(), Errc::kNotFound);
    EXPECT_EQ(fs.create_new(join_path(root, "nope/f")).status().code(), Errc::kNotFound);
}

TEST(PosixFileSystem, MeetsTheFileSystemContract) {
    TempDir tmp;
    PosixFileSystem fs;
    check_basic_contract(fs, tmp.path());
}

TEST(PosixFileSystem, ErrorsNameThePath) {
    PosixFileSystem fs;
    Result<std::unique_ptr<File>> f = fs.open_read("/tmp/coffer_no_such_dir_x/file");
    ASSERT_FALSE(f.ok());
    EXPECT_NE(f.status().message().find("/tmp/coffer_no_such_dir_x/file"), std::string::npos);
    EXPECT_NE(f.status().message().find("No such file"), std::string::npos);
}

// Opens `path` for reading on another thread and returns its status, or fails the test if
// the open has not returned within 5 s (a FIFO without a writer blocks open(2)); then a
// writer end is opened so that the blocked call returns and the test can finish.
Status open_read_with_deadline(PosixFileSystem& fs, const std::string& path) {
    auto pending = std::async(std::launch::async, [&] { return fs.open_read(path).status(); });
    if (pending.wait_for(std::chrono::seconds(5)) == std::future_status::ready) {
        return pending.get();
    }
    ADD_FAILURE() << "open_read(" << path << ") blocked";
    int unblock = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    Status st = pending.get();
    if (unblock >= 0) {
        ::close(unblock);
    }
    return st;
}

TEST(PosixFileSystem, RefusesAnythingButARegularFileWithoutBlocking) {
    TempDir tmp;
    PosixFileSystem fs;
    std::string fifo = join_path(tmp.path(), "ledger_1.open");
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    std::string dir = join_path(tmp.path(), "ledger_2.open");
    ASSERT_TRUE(fs.make_dir(dir).ok());
    std::string regular = join_path(tmp.path(), "regular");
    ASSERT_TRUE(fs.create_new(regular).ok());
    std::string link = join_path(tmp.path(), "ledger_3.open");
    std::filesystem::create_symlink(regular, link);
    std::string device_link = join_path(tmp.path(), "ledger_4.open");
    std::filesystem::create_symlink("/dev/zero", device_link);

    for (const std::string& path : {fifo, dir, link, device_link}) {
        SCOPED_TRACE(path);
        Status st = open_read_with_deadline(fs, path);
        EXPECT_EQ(st.code(), Errc::kInvalidArgument) << st.to_string();
        EXPECT_NE(st.message().find(path), std::string::npos) << st.message();
        EXPECT_EQ(fs.open_for_append(path).status().code(), Errc::kInvalidArgument);
    }
    EXPECT_NE(open_read_with_deadline(fs, link).message().find("symbolic link"), std::string::npos);
    EXPECT_NE(open_read_with_deadline(fs, fifo).message().find("not a regular file"),
              std::string::npos);
    EXPECT_EQ(fs.create_new(link).status().code(), Errc::kFailedPrecondition) << "exists";

    // A regular file still opens, and O_NONBLOCK is not left on it.
    Result<std::unique_ptr<File>> file = fs.open_for_append(regular);
    ASSERT_TRUE(file.ok()) << file.status().to_string();
    ASSERT_TRUE((*file)->append(as_bytes("data")).ok());
    EXPECT_EQ(*(*file)->size(), 4u);
}

TEST(MemoryFileSystem, MeetsTheFileSystemContract) {
    MemoryFileSystem fs;
    check_basic_contract(fs, "/root");
}

TEST(MemoryFileSystem, CrashDropsUnflushedBytes) {
    MemoryFileSystem fs;
    ASSERT_TRUE(fs.make_dir("/d").ok());
    ASSERT_TRUE(fs.sync_dir("/").ok());
    auto f = std::move(fs.create_new("/d/f")).value();
    ASSERT_TRUE(fs.sync_dir("/d").ok());
    ASSERT_TRUE(f->append(as_bytes("durable")).ok());
    ASSERT_TRUE(f->sync().ok());
    ASSERT_TRUE(f->append(as_bytes("-lost")).ok());
    fs.crash();

    EXPECT_EQ(f->append(as_bytes("x")).status().code(), Errc::kIo) << "stale handle after crash";
    EXPECT_EQ(to_string(*fs.read_file("/d/f")), "durable");
}

TEST(MemoryFileSystem, DirectoryEntriesAreVolatileUntilSyncDir) {
    MemoryFileSystem fs;
    ASSERT_TRUE(fs.make_dir("/d").ok());
    ASSERT_TRUE(fs.sync_dir("/").ok());
    {
        auto a = std::move(fs.create_new("/d/a")).value();
        ASSERT_TRUE(a->append(as_bytes("A")).ok());
        ASSERT_TRUE(a->sync().ok());
        auto b = std::move(fs.create_new("/d/b")).value();
        ASSERT_TRUE(b->sync().ok());
    }
    ASSERT_TRUE(fs.sync_dir("/d").ok());
    ASSERT_TRUE(fs.rename("/d/a", "/d/a2").ok());
    ASSERT_TRUE(fs.remove("/d/b").ok());
    auto c = std::move(fs.create_new("/d/c")).value();
    ASSERT_TRUE(c->sync().ok());
    fs.crash();

    std::vector<std::string> expected = {"a", "b"};
    EXPECT_EQ(*fs.list_dir("/d"), expected) << "rename, remove and create all undone";
    EXPECT_EQ(to_string(*fs.read_file("/d/a")), "A");
}

TEST(MemoryFileSystem, UnsyncedDirectoryVanishesWithItsFiles) {
    MemoryFileSystem fs;
    ASSERT_TRUE(fs.make_dir("/d").ok());
    auto f = std::move(fs.create_new("/d/f")).value();
    ASSERT_TRUE(f->sync().ok());
    ASSERT_TRUE(fs.sync_dir("/d").ok());
    fs.crash();
    EXPECT_FALSE(*fs.file_exists("/d"));
    EXPECT_FALSE(*fs.file_exists("/d/f"));
}

TEST(MemoryFileSystem, TearLastWriteKeepsADeterministicStrictPrefix) {
    std::vector<uint64_t> kept;
    for (int run = 0; run < 2; ++run) {
        MemoryFileSystem fs;
        auto f = std::move(fs.create_new("/f")).value();
        ASSERT_TRUE(fs.sync_dir("/").ok());
        ASSERT_TRUE(f->append(as_bytes("0123")).ok());
        ASSERT_TRUE(f->sync().ok());
        ASSERT_TRUE(f->append(Bytes(1000, 7)).ok());
        Result<MemoryFileSystem::TornWrite> torn = fs.tear_last_write(42);
        ASSERT_TRUE(torn.ok());
        EXPECT_EQ(torn->path, "/f");
        EXPECT_EQ(torn->write_offset, 4u);
        EXPECT_LT(torn->kept_bytes, 1000u);
        fs.crash();
        EXPECT_EQ(fs.read_file("/f")->size(), 4 + torn->kept_bytes);
        kept.push_back(torn->kept_bytes);
        EXPECT_EQ(fs.tear_last_write(42).status().code(), Errc::kNotFound);
    }
    EXPECT_EQ(kept[0], kept[1]) << "same seed, same tear";
}

TEST(MemoryFileSystem, InjectedSyncFailureLeavesDataUnflushed) {
    MemoryFileSystem fs;
    auto f = std::move(fs.create_new("/f")).value();
    ASSERT_TRUE(fs.sync_dir("/").ok());
    ASSERT_TRUE(f->append(as_bytes("abc")).ok());
    fs.fail_next_sync();
    EXPECT_EQ(f->sync().code(), Errc::kIo);
    fs.fail_next_dir_sync();
    EXPECT_EQ(fs.sync_dir("/").code(), Errc::kIo);
    EXPECT_EQ(fs.sync_count(), 0u);
    fs.crash();
    EXPECT_TRUE(fs.read_file("/f")->empty());
}

TEST(MemoryFileSystem, DiskFullWritesThePrefixThatFits) {
    MemoryFileSystem fs;
    auto f = std::move(fs.create_new("/f")).value();
    fs.set_disk_full_after(5);
    Result<size_t> n = f->append(as_bytes("0123456789"));
    EXPECT_EQ(n.status().code(), Errc::kNoSpace);
    EXPECT_NE(n.status().message().find("/f"), std::string::npos);
    EXPECT_EQ(to_string(*fs.read_file("/f")), "01234");
    fs.clear_disk_full();
    EXPECT_TRUE(f->append(as_bytes("x")).ok());
}

TEST(PathHelpers, JoinAndParent) {
    EXPECT_EQ(join_path("/a", "b"), "/a/b");
    EXPECT_EQ(join_path("/a/", "b"), "/a/b");
    EXPECT_EQ(join_path("", "b"), "b");
    EXPECT_EQ(parent_path("/a/b/c"), "/a/b");
    EXPECT_EQ(parent_path("/c"), "/");
    EXPECT_EQ(parent_path("c"), ".");
    EXPECT_EQ(parent_path("/a/b/"), "/a");
}

}  // namespace
}  // namespace coffer::ledger

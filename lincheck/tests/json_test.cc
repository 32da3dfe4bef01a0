#include "lincheck/history_json.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "lincheck/checker.h"
#include "lincheck/tests/test_histories.h"

namespace coffer::lincheck {
namespace {

using testing::HistoryBuilder;
using testing::kAbsentValue;

HistoryBuilder sample() {
    HistoryBuilder b;
    b.write(1, "k", "a", -50, 10);
    b.read(2, "k", kAbsentValue, 0, 5);
    b.read(2, "k", "a", 20, 30);
    b.write_unknown(3, "k", "b \"quoted\" \u00e9", 40);
    b.write_failed(4, "other", "c", 50, 60);
    b.read_unknown(4, "other", 70);
    b.write(4000000000u, "k", "d", 9'000'000'000'000'000'000, 9'000'000'000'000'000'001);
    return b;
}

void expect_same(const History& a, const History& b) {
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
        const Operation& x = a.operations()[i];
        const Operation& y = b.operations()[i];
        EXPECT_EQ(x.id, y.id);
        EXPECT_EQ(x.client, y.client);
        EXPECT_EQ(x.kind, y.kind);
        EXPECT_EQ(x.key, y.key);
        EXPECT_EQ(x.value, y.value);
        EXPECT_EQ(x.invoke_ns, y.invoke_ns);
        EXPECT_EQ(x.complete_ns, y.complete_ns);
        EXPECT_EQ(x.outcome, y.outcome);
    }
}

TEST(HistoryJson, RoundTripPreservesEveryField) {
    HistoryBuilder b = sample();
    Result<std::string> text = history_to_json(b.history());
    ASSERT_TRUE(text.ok()) << text.status().to_string();
    Result<History> parsed = history_from_json(*text);
    ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
    expect_same(b.history(), *parsed);
}

TEST(HistoryJson, EmptyHistoryRoundTrips) {
    History empty;
    Result<std::string> text = history_to_json(empty);
    ASSERT_TRUE(text.ok());
    Result<History> parsed = history_from_json(*text);
    ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
    EXPECT_EQ(parsed->size(), 0u);
}

TEST(HistoryJson, FileRoundTripKeepsTheVerdict) {
    HistoryBuilder b;
    b.write(1, "k", "old", 0, 10);
    b.write(2, "k", "new", 20, 30);
    b.read(3, "k", "old", 40, 50);
    std::string path = ::testing::TempDir() + "lincheck_history_roundtrip.json";
    ASSERT_TRUE(write_history_file(b.history(), path).ok());

    Result<History> loaded = read_history_file(path);
    std::remove(path.c_str());
    ASSERT_TRUE(loaded.ok()) << loaded.status().to_string();
    expect_same(b.history(), *loaded);
    Result<CheckResult> result = check_linearizable(*loaded);
    ASSERT_TRUE(result.ok());
    EXPECT_EQ(result->verdict, Verdict::kViolation);
}

TEST(HistoryJson, MissingFileIsIoError) {
    Result<History> loaded = read_history_file("/nonexistent/lincheck/history.json");
    ASSERT_FALSE(loaded.ok());
    EXPECT_EQ(loaded.status().code(), Errc::kIo);
}

TEST(HistoryJson, InvalidUtf8ValueCannotBeWritten) {
    HistoryBuilder b;
    b.write(1, "k", std::string("\xff\xfe", 2), 0, 10);
    Result<std::string> text = history_to_json(b.history());
    ASSERT_FALSE(text.ok());
    EXPECT_EQ(text.status().code(), Errc::kInvalidArgument);
}

std::string wrap(const std::string& op) {
    return R"({"format":"coffer-lincheck-history","version":1,"operations":[)" + op + "]}";
}

struct MalformedCase {
    const char* name;
    std::string text;
    Errc code;
    const char* message_part;
};

TEST(HistoryJson, MalformedHistoriesAreClearErrors) {
    const std::string good_fields =
        R"("client":1,"kind":"write","key":"k","value":"v","invoke_ns":1,)"
        R"("complete_ns":2,"outcome":"ok")";
    const MalformedCase cases[] = {
        {"not json", "{\"format\":", Errc::kInvalidArgument, "not JSON"},
        {"array root", "[]", Errc::kInvalidArgument, "JSON object"},
        {"wrong format", R"({"format":"x","version":1,"operations":[]})", Errc::kInvalidArgument,
         "format"},
        {"future version", R"({"format":"coffer-lincheck-history","version":2,"operations":[]})",
         Errc::kUnsupported, "version 2"},
        {"no operations", R"({"format":"coffer-lincheck-history","version":1})",
         Errc::kInvalidArgument, "operations"},
        {"extra top field",
         R"({"format":"coffer-lincheck-history","version":1,"operations":[],"x":1})",
         Errc::kInvalidArgument, "unknown field 'x'"},
        {"op not object", wrap("3"), Errc::kInvalidArgument, "operation 0"},
        {"wrong id", wrap(R"({"id":5,)" + good_fields + "}"), Errc::kInvalidArgument, "'id'"},
        {"missing key",
         wrap(R"({"id":0,"client":1,"kind":"read","invoke_ns":1,"complete_ns":2,)"
              R"("outcome":"ok"})"),
         Errc::kInvalidArgument, "'key' is missing"},
        {"bad kind",
         wrap(R"({"id":0,"client":1,"kind":"cas","key":"k","value":"v",)"
              R"("invoke_ns":1,"complete_ns":2,"outcome":"ok"})"),
         Errc::kInvalidArgument, "'kind'"},
        {"bad outcome",
         wrap(R"({"id":0,"client":1,"kind":"read","key":"k","value":null,)"
              R"("invoke_ns":1,"complete_ns":2,"outcome":"maybe"})"),
         Errc::kInvalidArgument, "'outcome'"},
        {"string time",
         wrap(R"({"id":0,"client":1,"kind":"read","key":"k","value":null,)"
              R"("invoke_ns":"1","complete_ns":2,"outcome":"ok"})"),
         Errc::kInvalidArgument, "'invoke_ns' must be an integer"},
        {"huge time",
         wrap(R"({"id":0,"client":1,"kind":"read","key":"k","value":null,)"
              R"("invoke_ns":18446744073709551615,"complete_ns":2,"outcome":"ok"})"),
         Errc::kInvalidArgument, "out of range"},
        {"client range",
         wrap(R"({"id":0,"client":-1,"kind":"read","key":"k","value":null,)"
              R"("invoke_ns":1,"complete_ns":2,"outcome":"ok"})"),
         Errc::kInvalidArgument, "'client'"},
        {"write without value",
         wrap(R"({"id":0,"client":1,"kind":"write","key":"k","value":null,)"
              R"("invoke_ns":1,"complete_ns":2,"outcome":"ok"})"),
         Errc::kInvalidArgument, "needs a value"},
        {"ok without completion",
         wrap(R"({"id":0,"client":1,"kind":"write","key":"k","value":"v",)"
              R"("invoke_ns":1,"complete_ns":null,"outcome":"ok"})"),
         Errc::kInvalidArgument, "'complete_ns'"},
        {"unknown with completion",
         wrap(R"({"id":0,"client":1,"kind":"write","key":"k","value":"v",)"
              R"("invoke_ns":1,"complete_ns":2,"outcome":"unknown"})"),
         Errc::kInvalidArgument, "must be null"},
        {"backwards time",
         wrap(R"({"id":0,"client":1,"kind":"read","key":"k","value":null,)"
              R"("invoke_ns":10,"complete_ns":2,"outcome":"ok"})"),
         Errc::kInvalidArgument, "precedes"},
        {"unknown read with value",
         wrap(R"({"id":0,"client":1,"kind":"read","key":"k","value":"v",)"
              R"("invoke_ns":1,"outcome":"unknown"})"),
         Errc::kInvalidArgument, "'value'"},
        {"unknown op field", wrap(R"({"id":0,"tag":1,)" + good_fields + "}"),
         Errc::kInvalidArgument, "unknown field 'tag'"},
    };
    for (const MalformedCase& c : cases) {
        SCOPED_TRACE(c.name);
        Result<History> parsed = history_from_json(c.text);
        ASSERT_FALSE(parsed.ok());
        EXPECT_EQ(parsed.status().code(), c.code) << parsed.status().to_string();
        EXPECT_NE(parsed.status().message().find(c.message_part), std::string::npos)
            << parsed.status().to_string();
    }
}

TEST(HistoryJson, ValidHandWrittenOperationParses) {
    Result<History> parsed = history_from_json(
        wrap(R"({"id":0,"client":1,"kind":"write","key":"k","value":"v","invoke_ns":1,)"
             R"("complete_ns":2,"outcome":"ok"},)"
             R"({"id":1,"client":2,"kind":"read","key":"k","invoke_ns":3,"outcome":"unknown"})"));
    ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
    EXPECT_EQ(parsed->size(), 2u);
    EXPECT_EQ(parsed->operations()[1].complete_ns, kNeverNs);
}

}  // namespace
}  // namespace coffer::lincheck

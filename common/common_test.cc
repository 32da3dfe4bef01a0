// Tests of the shared error, byte and time helpers.
#include <gtest/gtest.h>

#include "common/bytes.h"
#include "common/result.h"
#include "common/time.h"

namespace coffer {
namespace {

TEST(Status, WithContextAddsExactlyOneSeparator) {
    Status s = error(Errc::kIo, "disk gone");
    EXPECT_EQ(s.with_context("opening x").message(), "opening x: disk gone");
    EXPECT_EQ(s.with_context("opening x: ").message(), "opening x: disk gone");
    EXPECT_EQ(s.with_context("opening x:").code(), Errc::kIo);
    EXPECT_TRUE(Status().with_context("ignored").ok());
}

TEST(Bytes, HexRoundTripsAndRejectsMalformedInput) {
    Bytes data = {0x00, 0xab, 0xff};
    EXPECT_EQ(to_hex(data), "00abff");
    EXPECT_EQ(*from_hex("00ABff"), data);
    EXPECT_FALSE(from_hex("abc").ok());
    EXPECT_FALSE(from_hex("zz").ok());
}

TEST(ByteReader, StaysFailedAfterReadingPastTheEnd) {
    Bytes data;
    put_u32(data, 7);
    ByteReader reader(data);
    uint32_t v = 0;
    ASSERT_TRUE(reader.read_u32(v));
    EXPECT_EQ(v, 7u);
    uint8_t b = 0;
    EXPECT_FALSE(reader.read_u8(b));
    EXPECT_FALSE(reader.ok());
}

TEST(Time, FormatsUtcAsRfc3339) {
    EXPECT_EQ(format_utc_time(0), "1970-01-01T00:00:00Z");
    EXPECT_EQ(format_utc_time(1796400000), "2026-12-04T16:00:00Z");
}

}  // namespace
}  // namespace coffer

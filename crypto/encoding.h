// Base64 (RFC 4648 §4) and base64url (§5) encodings. Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "common/bytes.h"
#include "common/result.h"

namespace coffer::crypto {

// Standard alphabet with '=' padding, no line breaks.
std::string base64_encode(ByteSpan data);

// Strict decoder: the input must be canonical padded base64 without whitespace (length a
// multiple of 4, only alphabet characters, '=' only as the last one or two characters, and
// unused trailing bits zero). Errors: kInvalidArgument naming the problem.
Result<Bytes> base64_decode(std::string_view text);

// URL-safe alphabet ('-' and '_'), no padding (as JOSE uses it).
std::string base64url_encode(ByteSpan data);
// Strict: unpadded base64url only ('=' is refused). Errors: kInvalidArgument.
Result<Bytes> base64url_decode(std::string_view text);

}  // namespace coffer::crypto

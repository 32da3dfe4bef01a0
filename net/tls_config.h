// OpenSSL settings shared by the server and the client of this module (internal; not part
// of the public API). Boost-free, so that it stays cheap to include.
#pragma once

#include <openssl/ssl.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace coffer::net::detail {

// TLS 1.2 suites we allow: forward secrecy (ECDHE) and AEAD only. TLS 1.3 suites are all
// AEAD with (EC)DHE, so OpenSSL's defaults stand.
inline constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr const char* kTlsGroups = "X25519:P-256:P-384";

// The ALPN protocol list we offer and accept (RFC 7301 wire format).
inline constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// Drains OpenSSL's thread-local error queue into "reason; reason" ("" if empty).
std::string drain_openssl_errors();

// Applies the protocol settings common to both sides: TLS >= 1.2, the cipher and group
// lists, no compression, no renegotiation, no session resumption.
// Errors: kInternal if OpenSSL refuses a setting.
Status apply_common_tls_settings(SSL_CTX* ctx);

// Server side: requests (but does not require) a client certificate, accepts any, and
// selects ALPN http/1.1. Errors: kInternal.
Status apply_server_tls_settings(SSL_CTX* ctx);

// The peer's certificate as DER, if it sent one.
std::optional<std::string> peer_certificate_der(SSL* ssl);

}  // namespace coffer::net::detail

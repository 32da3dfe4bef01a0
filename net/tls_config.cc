#include "net/tls_config.h"

#include <openssl/err.h>
#include <openssl/x509.h>

namespace coffer::net::detail {
namespace {

// The application authenticates clients by certificate fingerprint, so any certificate is
// acceptable here. TLS itself still proves that the client holds the certificate's key
// (CertificateVerify, RFC 8446 section 4.4.3), which no verify callback can skip.
int accept_any_client_certificate(int /*preverify_ok*/, X509_STORE_CTX* /*ctx*/) {
    return 1;
}

int select_http11(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_len,
                  const unsigned char* in, unsigned int in_len, void* /*arg*/) {
    unsigned char* selected = nullptr;
    const int rc =
        SSL_select_next_proto(&selected, out_len, kAlpnHttp11, sizeof(kAlpnHttp11), in, in_len);
    if (rc != OPENSSL_NPN_NEGOTIATED) {
        // RFC 7301 section 3.2: no common protocol is a fatal no_application_protocol.
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

Status internal(std::string_view what) {
    return error(Errc::kInternal, std::string(what) + ": " + drain_openssl_errors());
}

}  // namespace

std::string drain_openssl_errors() {
    std::string out;
    while (const unsigned long code = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(code, buf, sizeof(buf));
        if (!out.empty()) {
            out += "; ";
        }
        const char* reason = ERR_reason_error_string(code);
        out += reason != nullptr ? reason : buf;
    }
    return out;
}

Status apply_common_tls_settings(SSL_CTX* ctx) {
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1) {
        return internal("setting the minimum TLS version");
    }
    // No compression (CRIME), no renegotiation (RFC 5746 attacks, and TLS 1.3 has none),
    // and no resumption: every connection proves its certificate afresh.
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_TICKET |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
        return internal("setting the TLS 1.2 cipher list");
    }
    if (SSL_CTX_set1_groups_list(ctx, kTlsGroups) != 1) {
        return internal("setting the key exchange groups");
    }
    return Status();
}

Status apply_server_tls_settings(SSL_CTX* ctx) {
    COFFER_RETURN_IF_ERROR(apply_common_tls_settings(ctx));
    if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
        return internal("disabling session tickets");
    }
    static const unsigned char kSessionContext[] = "coffer";
    if (SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1) != 1) {
        return internal("setting the session id context");
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_client_certificate);
    SSL_CTX_set_alpn_select_cb(ctx, select_http11, nullptr);
    return Status();
}

std::optional<std::string> peer_certificate_der(SSL* ssl) {
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (cert == nullptr) {
        return std::nullopt;
    }
    const int len = i2d_X509(cert, nullptr);
    if (len <= 0) {
        return std::nullopt;
    }
    std::string der(static_cast<size_t>(len), '\0');
    auto* p = reinterpret_cast<unsigned char*>(der.data());
    if (i2d_X509(cert, &p) != len) {
        return std::nullopt;
    }
    return der;
}

}  // namespace coffer::net::detail

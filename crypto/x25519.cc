#include "crypto/x25519.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/check.h"
#include "crypto/ecdsa.h"
#include "crypto/openssl_util.h"
#include "crypto/random.h"

namespace coffer::crypto {

namespace {

using detail::BioPtr;

int no_password(char* /*buf*/, int /*size*/, int /*rwflag*/, void* /*u*/) {
    return -1;
}

Status check_size(ByteSpan key, const char* what) {
    if (key.size() != kX25519KeySize) {
        return error(Errc::kInvalidArgument, std::string("X25519 ") + what +
                                                 " key must be 32 bytes, got " +
                                                 std::to_string(key.size()));
    }
    return {};
}

PkeyRef private_pkey(ByteSpan private_key) {
    PkeyRef pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(),
                                              private_key.size()));
    COFFER_CHECK(pkey.get() != nullptr, "EVP_PKEY_new_raw_private_key(X25519) failed");
    return pkey;
}

Bytes raw_public(EVP_PKEY* pkey) {
    Bytes out(kX25519KeySize);
    size_t len = out.size();
    COFFER_CHECK(EVP_PKEY_get_raw_public_key(pkey, out.data(), &len) == 1 && len == kX25519KeySize,
                 "EVP_PKEY_get_raw_public_key(X25519) failed");
    return out;
}

Bytes raw_private(EVP_PKEY* pkey) {
    Bytes out(kX25519KeySize);
    size_t len = out.size();
    COFFER_CHECK(EVP_PKEY_get_raw_private_key(pkey, out.data(), &len) == 1 && len == kX25519KeySize,
                 "EVP_PKEY_get_raw_private_key(X25519) failed");
    return out;
}

Status low_order_error() {
    return error(Errc::kCrypto, "invalid public key: shared secret is zero (low-order point)");
}

}  // namespace

X25519KeyPair x25519_generate() {
    Bytes sk = random_bytes(kX25519KeySize);
    auto pair = x25519_from_private(sk);
    COFFER_CHECK(pair.ok(), "X25519 key generation failed");
    return std::move(pair).value();
}

Result<X25519KeyPair> x25519_from_private(ByteSpan private_key) {
    COFFER_RETURN_IF_ERROR(check_size(private_key, "private"));
    PkeyRef pkey = private_pkey(private_key);
    return X25519KeyPair{Bytes(private_key.begin(), private_key.end()), raw_public(pkey.get())};
}

Result<Bytes> x25519_shared_secret(ByteSpan private_key, ByteSpan peer_public) {
    COFFER_RETURN_IF_ERROR(check_size(private_key, "private"));
    COFFER_RETURN_IF_ERROR(check_size(peer_public, "public"));
    PkeyRef sk = private_pkey(private_key);
    PkeyRef pk(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(),
                                           peer_public.size()));
    COFFER_CHECK(pk.get() != nullptr, "EVP_PKEY_new_raw_public_key(X25519) failed");

    detail::PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, sk.get(), nullptr));
    COFFER_CHECK(ctx != nullptr, "EVP_PKEY_CTX_new_from_pkey failed");
    COFFER_CHECK(EVP_PKEY_derive_init(ctx.get()) == 1, "EVP_PKEY_derive_init failed");
    COFFER_CHECK(EVP_PKEY_derive_set_peer_ex(ctx.get(), pk.get(), 0) == 1,
                 "EVP_PKEY_derive_set_peer_ex failed");

    // OpenSSL's X25519 refuses an all-zero result (RFC 7748 §6.1) and fails the derive; that
    // is the only way the derive can fail with valid sizes.
    Bytes secret(kX25519KeySize);
    size_t len = secret.size();
    if (EVP_PKEY_derive(ctx.get(), secret.data(), &len) != 1) {
        detail::clear_openssl_errors();
        return low_order_error();
    }
    COFFER_CHECK(len == kX25519KeySize, "X25519 shared secret has the wrong size");
    uint8_t acc = 0;
    for (uint8_t b : secret) {
        acc |= b;
    }
    if (acc == 0) {
        return low_order_error();
    }
    return secret;
}

Result<std::string> x25519_private_to_pem(ByteSpan private_key) {
    COFFER_RETURN_IF_ERROR(check_size(private_key, "private"));
    PkeyRef pkey = private_pkey(private_key);
    BioPtr bio(BIO_new(BIO_s_mem()));
    COFFER_CHECK(bio != nullptr, "BIO_new failed");
    COFFER_CHECK(PEM_write_bio_PKCS8PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr,
                                               nullptr) == 1,
                 "PEM_write_bio_PKCS8PrivateKey failed");
    return detail::bio_to_string(bio.get());
}

Result<std::string> x25519_public_to_pem(ByteSpan public_key) {
    COFFER_RETURN_IF_ERROR(check_size(public_key, "public"));
    PkeyRef pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, public_key.data(),
                                             public_key.size()));
    COFFER_CHECK(pkey.get() != nullptr, "EVP_PKEY_new_raw_public_key(X25519) failed");
    BioPtr bio(BIO_new(BIO_s_mem()));
    COFFER_CHECK(bio != nullptr, "BIO_new failed");
    COFFER_CHECK(PEM_write_bio_PUBKEY(bio.get(), pkey.get()) == 1, "PEM_write_bio_PUBKEY failed");
    return detail::bio_to_string(bio.get());
}

Result<X25519KeyPair> x25519_private_from_pem(std::string_view pem) {
    detail::clear_openssl_errors();
    BioPtr bio = detail::memory_bio(pem);
    PkeyRef pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, no_password, nullptr));
    if (pkey.get() == nullptr) {
        return detail::openssl_error(Errc::kInvalidArgument,
                                     "unparsable or encrypted private key PEM");
    }
    if (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_X25519) {
        return error(Errc::kInvalidArgument, "not an X25519 key");
    }
    return X25519KeyPair{raw_private(pkey.get()), raw_public(pkey.get())};
}

Result<Bytes> x25519_public_from_pem(std::string_view pem) {
    detail::clear_openssl_errors();
    BioPtr bio = detail::memory_bio(pem);
    PkeyRef pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, no_password, nullptr));
    if (pkey.get() == nullptr) {
        return detail::openssl_error(Errc::kInvalidArgument, "unparsable public key PEM");
    }
    if (EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_X25519) {
        return error(Errc::kInvalidArgument, "not an X25519 key");
    }
    return raw_public(pkey.get());
}

}  // namespace coffer::crypto

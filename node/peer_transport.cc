#include "node/peer_transport.h"

#include <chrono>
#include <ctime>

#include "common/log.h"
#include "net/client.h"
#include "node/identity.h"

namespace coffer::node {

struct PeerTransport::Peer {
    consensus::NodeId id;
    std::optional<ListenAddress> address;
    uint64_t address_generation = 0;  // bumped on every change: the sender reconnects
    std::deque<Bytes> queue;
    std::condition_variable cv;
    std::thread thread;
};

std::string frame_messages(const std::vector<Bytes>& encoded) {
    Bytes out;
    for (const Bytes& m : encoded) {
        put_u32(out, static_cast<uint32_t>(m.size()));
        out.insert(out.end(), m.begin(), m.end());
    }
    return std::string(out.begin(), out.end());
}

Result<std::vector<consensus::Message>> parse_framed_messages(std::string_view body) {
    ByteReader reader(as_bytes(body));
    std::vector<consensus::Message> messages;
    while (!reader.at_end()) {
        uint32_t size = 0;
        if (!reader.read_u32(size) || size > consensus::kMaxMessageBytes) {
            return error(Errc::kInvalidArgument, "consensus batch: bad message length");
        }
        ByteSpan bytes;
        if (!reader.read_span(size, bytes)) {
            return error(Errc::kInvalidArgument, "consensus batch: truncated message");
        }
        COFFER_ASSIGN_OR_RETURN(consensus::Message msg, consensus::decode_message(bytes));
        messages.push_back(std::move(msg));
    }
    return messages;
}

PeerTransport::PeerTransport(TransportOptions options, Deliver deliver)
    : options_(std::move(options)), deliver_(std::move(deliver)) {}

PeerTransport::~PeerTransport() {
    stop();
}

Result<std::unique_ptr<PeerTransport>> PeerTransport::start(TransportOptions options,
                                                            Deliver deliver) {
    std::unique_ptr<PeerTransport> transport(
        new PeerTransport(std::move(options), std::move(deliver)));
    net::ServerOptions server;
    server.address = transport->options_.listen.host;
    server.port = transport->options_.listen.port;
    server.cert_chain_pem =
        transport->options_.node_cert_pem + transport->options_.service_cert.to_pem();
    server.private_key_pem = transport->options_.node_key_pem;
    server.max_body_bytes = kMaxTransportBodyBytes;
    server.max_connections = 256;
    server.idle_timeout_ms = 60000;
    server.threads = 2;
    PeerTransport* self = transport.get();
    COFFER_ASSIGN_OR_RETURN(transport->server_,
                            net::HttpServer::start(std::move(server), [self](const auto& r) {
                                return self->handle(r);
                            }));
    return transport;
}

uint16_t PeerTransport::port() const {
    return server_ != nullptr ? server_->port() : 0;
}

ListenAddress PeerTransport::advertised_address() const {
    ListenAddress a = options_.listen;
    a.port = port();
    return a;
}

Result<std::string> PeerTransport::authenticate(const net::HttpRequest& request) {
    if (!request.client_cert_der.has_value() || !request.client_cert_fingerprint.has_value()) {
        return error(Errc::kPermissionDenied, "no client certificate");
    }
    int64_t now = static_cast<int64_t>(std::time(nullptr));
    {
        std::lock_guard lock(mu_);
        auto it = verified_.find(*request.client_cert_fingerprint);
        if (it != verified_.end() && now <= it->second.second) {
            return it->second.first;
        }
    }
    COFFER_ASSIGN_OR_RETURN(crypto::Certificate cert,
                            crypto::Certificate::from_der(as_bytes(*request.client_cert_der)));
    Status chain = crypto::verify_certificate_chain(cert, {}, options_.service_cert, now);
    if (!chain.ok()) {
        return error(Errc::kPermissionDenied,
                     "peer certificate not endorsed by the service: " + chain.message());
    }
    COFFER_ASSIGN_OR_RETURN(crypto::EcdsaPublicKey key, cert.ecdsa_public_key());
    std::string id = node_id_of(key);
    std::lock_guard lock(mu_);
    if (verified_.size() >= kMaxVerifiedPeerCerts) {
        verified_.clear();
    }
    verified_[*request.client_cert_fingerprint] = {id, cert.not_after_unix()};
    return id;
}

net::HttpResponse PeerTransport::handle(const net::HttpRequest& request) {
    if (request.path != kConsensusMessagesPath) {
        return net::HttpResponse::error(404, "not_found", "unknown node-to-node path");
    }
    if (request.method != "POST") {
        return net::HttpResponse::error(405, "method_not_allowed", "use POST");
    }
    auto peer = authenticate(request);
    if (!peer.ok()) {
        ++refused_;
        spdlog::warn("transport.peer_refused remote={} error={}", request.remote_address,
                     peer.status().to_string());
        return net::HttpResponse::error(403, "forbidden", peer.status().message());
    }
    auto version = request.header(kTransportVersionHeader);
    if (!version.has_value() || *version != std::to_string(kTransportFormatVersion)) {
        ++refused_;
        return net::HttpResponse::error(
            400, "unsupported",
            "transport version must be " + std::to_string(kTransportFormatVersion));
    }
    auto messages = parse_framed_messages(request.body);
    if (!messages.ok()) {
        ++refused_;
        return net::HttpResponse::error(400, "invalid_argument", messages.status().message());
    }
    for (const consensus::Message& m : *messages) {
        if (m.from != *peer || m.to != options_.node_id) {
            ++refused_;
            return net::HttpResponse::error(
                400, "invalid_argument", "message sender or recipient does not match the channel");
        }
    }
    if (auto header = request.header(kNodeAddressHeader); header.has_value()) {
        auto address = parse_listen_address(*header);
        if (address.ok() && address->port != 0) {
            set_address(*peer, *address);
        }
    }
    for (consensus::Message& m : *messages) {
        ++received_;
        deliver_(std::move(m));
    }
    net::HttpResponse ok;
    ok.status = 204;
    return ok;
}

void PeerTransport::set_address(const consensus::NodeId& peer, const ListenAddress& address) {
    if (peer == options_.node_id) {
        return;
    }
    std::lock_guard lock(mu_);
    if (stopping_) {
        return;
    }
    auto& p = peers_[peer];
    if (p == nullptr) {
        p = std::make_shared<Peer>();
        p->id = peer;
    }
    if (p->address.has_value() && p->address->to_string() == address.to_string()) {
        return;
    }
    p->address = address;
    ++p->address_generation;
    if (!p->thread.joinable()) {
        std::shared_ptr<Peer> shared = p;
        p->thread = std::thread([this, shared] { sender_loop(shared); });
    }
    p->cv.notify_all();
}

std::optional<ListenAddress> PeerTransport::address_of(const consensus::NodeId& peer) const {
    std::lock_guard lock(mu_);
    auto it = peers_.find(peer);
    if (it == peers_.end()) {
        return std::nullopt;
    }
    return it->second->address;
}

void PeerTransport::send(consensus::Message msg) {
    Bytes encoded = consensus::encode_message(msg);
    std::lock_guard lock(mu_);
    auto it = peers_.find(msg.to);
    if (stopping_ || it == peers_.end() || !it->second->address.has_value()) {
        ++dropped_;
        return;
    }
    Peer& peer = *it->second;
    if (peer.queue.size() >= kMaxQueuedMessagesPerPeer) {
        peer.queue.pop_front();
        ++dropped_;
    }
    peer.queue.push_back(std::move(encoded));
    peer.cv.notify_one();
}

void PeerTransport::sender_loop(const std::shared_ptr<Peer>& peer) {
    std::unique_ptr<net::HttpClient> client;
    uint64_t generation = 0;
    std::unique_lock lock(mu_);
    while (true) {
        peer->cv.wait(lock, [&] { return stopping_ || !peer->queue.empty(); });
        if (stopping_) {
            return;
        }
        std::vector<Bytes> batch;
        size_t bytes = 0;
        while (!peer->queue.empty() &&
               (batch.empty() || bytes + peer->queue.front().size() <= kMaxBatchBytes)) {
            bytes += peer->queue.front().size();
            batch.push_back(std::move(peer->queue.front()));
            peer->queue.pop_front();
        }
        ListenAddress address = *peer->address;
        if (peer->address_generation != generation) {
            client.reset();
            generation = peer->address_generation;
        }
        lock.unlock();

        Status sent = Status::ok_status();
        if (client == nullptr) {
            net::ClientOptions o;
            o.host = address.host;
            o.port = address.port;
            o.ca_cert_pem = options_.service_cert.to_pem();
            o.client_cert_pem = options_.node_cert_pem;
            o.client_key_pem = options_.node_key_pem;
            o.timeout_ms = options_.timeout_ms;
            auto connected = net::HttpClient::connect(std::move(o));
            if (connected.ok()) {
                client = std::move(connected).value();
            } else {
                sent = connected.status();
            }
        }
        if (client != nullptr) {
            net::HeaderList headers = {
                {std::string(kNodeAddressHeader), advertised_address().to_string()},
                {std::string(kTransportVersionHeader), std::to_string(kTransportFormatVersion)},
                {"Content-Type", "application/octet-stream"}};
            auto response = client->request("POST", kConsensusMessagesPath, frame_messages(batch),
                                            std::move(headers));
            if (!response.ok()) {
                sent = response.status();
                client.reset();
            } else if (response->status != 204) {
                sent = error(Errc::kPermissionDenied, "peer answered " +
                                                          std::to_string(response->status) + ": " +
                                                          response->body.substr(0, 200));
            }
        }
        if (sent.ok()) {
            sent_ += batch.size();
        } else {
            dropped_ += batch.size();
            spdlog::debug("transport.send_failed peer={} address={} error={}", peer->id,
                          address.to_string(), sent.to_string());
        }

        lock.lock();
        if (!sent.ok() && !stopping_) {
            peer->cv.wait_for(lock, std::chrono::milliseconds(kReconnectBackoffMs),
                              [&] { return stopping_; });
        }
    }
}

void PeerTransport::stop() {
    std::map<consensus::NodeId, std::shared_ptr<Peer>> peers;
    {
        std::lock_guard lock(mu_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
        peers = peers_;
        for (auto& [id, p] : peers) {
            p->cv.notify_all();
        }
    }
    for (auto& [id, p] : peers) {
        if (p->thread.joinable()) {
            p->thread.join();
        }
    }
    if (server_ != nullptr) {
        server_->stop();
    }
}

TransportStats PeerTransport::stats() const {
    return TransportStats{sent_.load(), received_.load(), dropped_.load(), refused_.load()};
}

}  // namespace coffer::node

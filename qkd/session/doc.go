// Package session derives the hybrid session key a client and a gateway
// share, and protects their requests and responses with it.
//
// Handshake (one round trip, then an optional confirmation):
//
//	client: takes a QKD key (key ID K, key Q) from the KME with enc_keys,
//	        draws an ephemeral ML-KEM-768 key pair (dk, ek)
//	client -> gateway: ClientHello{K, ek}
//	gateway: fetches Q with dec_keys(K), encapsulates to ek: (ss, ct)
//	gateway -> client: ServerHello{session ID, ct, server confirm}
//	client: decapsulates ct to ss, checks the server confirm
//	client -> gateway: ClientFinish{session ID, client confirm}
//
// Both sides compute
//
//	T  = SHA-256("qledger/session/v1" || len||K || len||ek || len||ct)
//	SK = HKDF-SHA256(secret = Q || ss, salt = T, info = "qledger session key v1")
//
// the concatenation combiner of ETSI TS 103 744: SK stays secret as long as
// either Q (information-theoretically, from QKD) or ss (ML-KEM-768) does.
// The ML-KEM key pair is ephemeral, so ss is forward secret. Confirm values
// are HMAC-SHA256 over T under keys expanded from SK, so a party that
// completes knows its peer derived the same SK.
//
// The envelope (Seal/Open) is AES-256-GCM with separate keys per direction.
// Each message carries the session ID, the key epoch and a sequence number;
// the nonce is a per-epoch IV XOR the sequence number, so it never repeats
// under a key. The receiver accepts exactly the next sequence number:
// replayed, reordered, dropped-then-resent and tampered messages are all
// rejected (a lost message therefore ends the session; open a new one).
// After Config.MaxMessages messages or Config.MaxBytes plaintext bytes in
// one direction, both ends ratchet that direction's key forward and erase
// the old one.
//
// ElectionKey(SK, requestID) = HKDF-SHA256(SK, info = label || requestID) is
// the per-request key of the stake election.
package session

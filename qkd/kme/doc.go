// Package kme is a key management entity with the ETSI GS QKD 014 V1.1.1
// key delivery REST API, and a Go client for any KME that speaks it.
//
// The server keeps one key pool per ordered (master SAE, slave SAE) pair,
// filled by the BB84 engine (qkd.Link) through Pool.Add or Server.Refill.
// A master SAE takes keys with enc_keys; the KME then holds each key for the
// slave SAE, which fetches it once with dec_keys, after which the KME erases
// it. A key is thus delivered exactly once to each side and never to an SAE
// outside its pair. The caller's SAE ID comes from its verified TLS client
// certificate (Config.CallerSAE, by default the certificate's Common Name).
//
// Keys added with Pool.AddKeys (all keys from Pool.Fill and Server.Refill)
// keep the IDs the QKD link gave them: a key handed out whole, at the size
// the link produced, carries the link's ID. Keys of other sizes, and bytes
// added with Pool.Add, get fresh random IDs.
//
// Client speaks the API over HTTPS to any KME; Server.Local gives one SAE
// the same operations in process, so code such as the gateway can use
// either.
//
// Server is an http.Handler for the paths below /api/v1/keys/; mount it at
// that prefix without stripping it:
//
//	GET       /api/v1/keys/{slave_SAE_ID}/status
//	POST|GET  /api/v1/keys/{slave_SAE_ID}/enc_keys
//	POST|GET  /api/v1/keys/{master_SAE_ID}/dec_keys
//
// Methods are matched exactly; any other is 405 with an Allow header.
// Errors are 400 (malformed request or parameters outside the KME's
// limits), 401 (no verified client certificate), 405, 503 (not enough key
// in the pool), with the body {"message": ..., "details": [...]}.
package kme

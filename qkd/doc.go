// Package qkd simulates BB84 quantum key distribution and implements the
// classical post-processing that turns raw detections into secret keys.
//
// Two modes exist. ModePaper is the seed paper's simplified protocol kept for
// reference and for its Table 4 golden vector: sift, publish the even sifted
// positions, keep the odd ones if every published bit matches. It has no
// error correction, no privacy amplification and no authentication, so it
// aborts on any noisy channel and is not secure (see DESIGN.md). ModeFull (the
// default) runs real BB84 post-processing between two endpoints that talk
// only through authenticated messages: sifting, parameter estimation with an
// abort threshold, Cascade reconciliation with exact leakage accounting, a
// verification hash, and Toeplitz privacy amplification to the finite-key
// length of Tomamichel et al. (2012).
//
// Only the quantum channel (photon preparation, transmission, loss, noise,
// dark counts and an intercept-resend eavesdropper) is simulated; every step
// after the detector is real code that would run unchanged next to a QKD
// device producing the same records (AliceRecord, BobRecord).
//
// Entry points: Run for one block with statistics (the CLI), Link for a
// persistent pair of endpoints that produces keys with IDs block after block
// (the key manager in qkd/kme), and Alice/Bob with a Transport for running
// the two endpoints in different processes.
//
// The package never imports raft. All exported functions are safe for
// concurrent use unless a type's documentation says otherwise; a Link is
// used by one goroutine at a time.
package qkd

package session_test

import (
	"fmt"

	"qledger/qkd/session"
)

// A client and a gateway agree a session key from a QKD key (taken from the
// KME) and an ephemeral ML-KEM-768 exchange, then exchange sealed messages.
func Example() {
	keyID, qkdKey := "6ba7b810-9dad-11d1-80b4-00c04fd430c8", make([]byte, 32) // from kme enc_keys / dec_keys

	hs, hello, _ := session.NewClientHandshake(keyID, qkdKey) // client -> gateway: hello
	gw, reply, _ := session.Accept(hello, qkdKey, session.DefaultConfig())
	client, finish, err := hs.Finish(reply, session.DefaultConfig()) // gateway -> client: reply
	fmt.Println(err, gw.VerifyFinish(finish))                        // client -> gateway: finish

	req, _ := client.Seal([]byte(`{"fn":"increment","arg":100}`), []byte("req-42"))
	body, err := gw.Open(req, []byte("req-42"))
	fmt.Println(string(body), err)
	_, err = gw.Open(req, []byte("req-42"))
	fmt.Println(err)

	k1, _ := client.ElectionKey("req-42")
	k2, _ := gw.ElectionKey("req-42")
	fmt.Println(k1 == k2)
	// Output:
	// <nil> <nil>
	// {"fn":"increment","arg":100} <nil>
	// qkd/session: replayed message: sequence 0, expected 1
	// true
}

// The election key of a request is HKDF-SHA256 of the session key with the
// request ID.
func ExampleElectionKey() {
	sessionKey := make([]byte, 32)
	k, _ := session.ElectionKey(sessionKey, "request-1")
	fmt.Printf("%x\n", k[:8])
	// Output: c3734d07464d9478
}

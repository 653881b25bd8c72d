package client

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"qledger/election"
)

// Both encodings a chain may hold decode to the same wire form.
func TestDecodeExecRecord(t *testing.T) {
	js, err := os.ReadFile("../../execrecord/testdata/record_v1.json")
	if err != nil {
		t.Fatal(err)
	}
	hx, err := os.ReadFile("../../execrecord/testdata/record_v2.hex")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := hex.DecodeString(strings.TrimSpace(string(hx)))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := DecodeExecRecord(js)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := DecodeExecRecord(bin)
	if err != nil {
		t.Fatal(err)
	}
	if v1.Version != 1 || v2.Version != 2 {
		t.Fatalf("versions %d %d", v1.Version, v2.Version)
	}
	if v1.Function != "inc" || v1.Outcome != "conflict" || v1.Agreed || len(v1.Executions) != 3 ||
		v1.Executions[0].Outcome != "ok" || v1.Executions[1].Outcome != "" || v1.Executions[1].Error == "" ||
		v1.RequestID != "01020300"+strings.Repeat("00", 28) {
		t.Fatalf("decoded: %+v", v1)
	}
	if err := election.Verify(v1.Election); err != nil {
		t.Fatal(err)
	}
	v1.Version = 2
	j1, _ := json.Marshal(v1)
	j2, _ := json.Marshal(v2)
	if string(j1) != string(j2) {
		t.Fatalf("the encodings decode differently:\n%s\n%s", j1, j2)
	}
	if _, err := DecodeExecRecord([]byte("not a record")); err == nil {
		t.Fatal("garbage decoded")
	}
}

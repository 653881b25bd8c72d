package election

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

type candidateJSON struct {
	NodeID string `json:"node_id"`
	H      string `json:"h"`
	Stake  string `json:"stake"`
	Nonce  string `json:"nonce"`
}

type recordJSON struct {
	Version       int             `json:"version"`
	RequestID     string          `json:"request_id"`
	KeyID         string          `json:"key_id"`
	KeyCommitment string          `json:"key_commitment"`
	Executor      string          `json:"executor"`
	Verifier      string          `json:"verifier,omitempty"`
	TieBreaker    string          `json:"tie_breaker,omitempty"`
	Candidates    []candidateJSON `json:"candidates"`
}

// MarshalJSON writes the record with hex byte fields and the derived roles:
//
//	{"version":1,"request_id":"<hex>","key_id":"...","key_commitment":"<hex>",
//	 "executor":"n1","verifier":"n2","tie_breaker":"n3",
//	 "candidates":[{"node_id":"n1","h":"<hex>","stake":"<hex>","nonce":"<hex>"},...]}
func (r Record) MarshalJSON() ([]byte, error) {
	j := recordJSON{
		Version:       recordVersion,
		RequestID:     hex.EncodeToString(r.RequestID),
		KeyID:         r.KeyID,
		KeyCommitment: hex.EncodeToString(r.KeyCommitment[:]),
		Executor:      r.Executor(),
		Verifier:      r.Verifier(),
		TieBreaker:    r.TieBreaker(),
		Candidates:    make([]candidateJSON, len(r.Candidates)),
	}
	for i, c := range r.Candidates {
		j.Candidates[i] = candidateJSON{
			NodeID: c.NodeID,
			H:      hex.EncodeToString(c.H[:]),
			Stake:  hex.EncodeToString(c.Stake[:]),
			Nonce:  hex.EncodeToString(c.Nonce[:]),
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads what MarshalJSON writes. It refuses unknown fields,
// unknown versions, malformed hex, more than MaxCandidates candidates and
// roles that do not match the candidate order; like UnmarshalBinary it does
// not verify the record.
func (r *Record) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j recordJSON
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if j.Version != recordVersion {
		return fmt.Errorf("%w: record version %d", ErrUnknownVersion, j.Version)
	}
	if len(j.Candidates) > MaxCandidates {
		return fmt.Errorf("%w: %d candidates", ErrTooLarge, len(j.Candidates))
	}
	var out Record
	var err error
	if out.RequestID, err = hex.DecodeString(j.RequestID); err != nil {
		return fmt.Errorf("%w: request_id: %v", ErrMalformed, err)
	}
	out.KeyID = j.KeyID
	if err := decodeHex32(&out.KeyCommitment, j.KeyCommitment, "key_commitment"); err != nil {
		return err
	}
	out.Candidates = make([]Candidate, len(j.Candidates))
	for i, c := range j.Candidates {
		out.Candidates[i].NodeID = c.NodeID
		for _, f := range []struct {
			dst  *[Size]byte
			src  string
			name string
		}{{&out.Candidates[i].H, c.H, "h"}, {&out.Candidates[i].Stake, c.Stake, "stake"}, {&out.Candidates[i].Nonce, c.Nonce, "nonce"}} {
			if err := decodeHex32(f.dst, f.src, fmt.Sprintf("candidates[%d].%s", i, f.name)); err != nil {
				return err
			}
		}
	}
	if j.Executor != out.Executor() || j.Verifier != out.Verifier() || j.TieBreaker != out.TieBreaker() {
		return fmt.Errorf("%w: roles do not match the candidate order", ErrMalformed)
	}
	*r = out
	return nil
}

func decodeHex32(dst *[Size]byte, s, field string) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != Size {
		return fmt.Errorf("%w: %s must be %d hex digits", ErrMalformed, field, 2*Size)
	}
	copy(dst[:], b)
	return nil
}

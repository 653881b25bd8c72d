package sharing

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
)

// JSON form of a share, as written by `qledger data export-shares` (one
// file per share) and read back for offline recovery. All binary values are
// lowercase hex except the share bytes, which are standard base64. Moduli
// are included for readers with other tools; on decoding they must equal
// the ones derived from the parameters. Example (dispersal, abridged):
//
//	{
//	  "format": "qledger-share", "version": 1, "scheme": "dispersal",
//	  "split_id": "9f0c…", "t": 3, "n": 5, "index": 4, "length": 1048576,
//	  "segment_size": 1048576,
//	  "dispersal": {
//	    "cipher": "AES-256-GCM",
//	    "reed_solomon": {"data_shards": 3, "parity_shards": 2, "field": "GF(2^8)"},
//	    "nonce_prefix": "…",
//	    "key_share": {"scheme": "asmuth-bloom", "d0_bits": 256, "modulus_bits": 395,
//	                  "modulus": "…", "residue": "…"},
//	    "merkle_root": "…", "manifest_tag": "…", "proof": ["…", "…"]
//	  },
//	  "share": "base64…",
//	  "hash": "…"
//	}
//
// Paper shares carry "paper": {"modulus_bits", "chunk_size", "modulus",
// "digest"} and asmuth-bloom shares "asmuth_bloom": {"d0_bits",
// "modulus_bits", "modulus"}. "share" holds the payload: the concatenated
// fixed-width residues (paper: ceil(length/chunk_size) residues of
// modulus_bits/8 bytes; asmuth-bloom: one residue of ceil(modulus_bits/8)
// bytes) or the Reed-Solomon shard of every segment. "hash" is the share
// hash of the binary encoding, so the JSON and binary forms convert into
// each other without loss.

const jsonFormat = "qledger-share"

type shareJSON struct {
	Format      string         `json:"format"`
	Version     int            `json:"version"`
	Scheme      Scheme         `json:"scheme"`
	SplitID     string         `json:"split_id"`
	T           int            `json:"t"`
	N           int            `json:"n"`
	Index       int            `json:"index"`
	Length      int64          `json:"length"`
	SegmentSize int            `json:"segment_size,omitempty"`
	Paper       *paperJSON     `json:"paper,omitempty"`
	AsmuthBloom *abJSON        `json:"asmuth_bloom,omitempty"`
	Dispersal   *dispersalJSON `json:"dispersal,omitempty"`
	Share       string         `json:"share"`
	Hash        string         `json:"hash"`
}

type paperJSON struct {
	ModulusBits int    `json:"modulus_bits"`
	ChunkSize   int    `json:"chunk_size"`
	Modulus     string `json:"modulus"`
	Digest      string `json:"digest"`
}

type abJSON struct {
	D0Bits      int    `json:"d0_bits"`
	ModulusBits int    `json:"modulus_bits"`
	Modulus     string `json:"modulus"`
}

type rsJSON struct {
	DataShards   int    `json:"data_shards"`
	ParityShards int    `json:"parity_shards"`
	Field        string `json:"field"`
}

type keyShareJSON struct {
	Scheme      string `json:"scheme"`
	D0Bits      int    `json:"d0_bits"`
	ModulusBits int    `json:"modulus_bits"`
	Modulus     string `json:"modulus"`
	Residue     string `json:"residue"`
}

type dispersalJSON struct {
	Cipher      string       `json:"cipher"`
	ReedSolomon rsJSON       `json:"reed_solomon"`
	NoncePrefix string       `json:"nonce_prefix"`
	KeyShare    keyShareJSON `json:"key_share"`
	MerkleRoot  string       `json:"merkle_root"`
	ManifestTag string       `json:"manifest_tag"`
	Proof       []string     `json:"proof"`
}

const (
	jsonCipher = "AES-256-GCM"
	jsonField  = "GF(2^8)"
)

// MarshalJSON returns the documented JSON form of a well-formed share.
func (s *Share) MarshalJSON() ([]byte, error) {
	if err := s.validate(); err != nil {
		return nil, shareErr(s.Index, err)
	}
	j := shareJSON{
		Format: jsonFormat, Version: s.Version, Scheme: s.Scheme,
		SplitID: hex.EncodeToString(s.SplitID[:]),
		T:       s.Threshold, N: s.Total, Index: s.Index,
		Length: s.Length, SegmentSize: s.SegmentSize,
		Share: base64.StdEncoding.EncodeToString(s.Payload),
		Hash:  hex.EncodeToString(s.Hash[:]),
	}
	switch s.Scheme {
	case Paper:
		m, err := s.Modulus()
		if err != nil {
			return nil, err
		}
		j.Paper = &paperJSON{
			ModulusBits: s.Paper.ModulusBits, ChunkSize: s.Paper.ChunkSize,
			Modulus: m.Text(16), Digest: hex.EncodeToString(s.Paper.Digest[:]),
		}
	case AsmuthBloom:
		m, err := s.Modulus()
		if err != nil {
			return nil, err
		}
		j.AsmuthBloom = &abJSON{D0Bits: 8 * int(s.Length), ModulusBits: s.AsmuthBloom.ModulusBits, Modulus: m.Text(16)}
	case Dispersal:
		d := s.Dispersal
		m, err := s.KeyModulus()
		if err != nil {
			return nil, err
		}
		dj := &dispersalJSON{
			Cipher:      jsonCipher,
			ReedSolomon: rsJSON{DataShards: s.Threshold, ParityShards: s.Total - s.Threshold, Field: jsonField},
			NoncePrefix: hex.EncodeToString(d.NoncePrefix[:]),
			KeyShare: keyShareJSON{
				Scheme: AsmuthBloom.String(), D0Bits: keyBits, ModulusBits: d.KeyModulusBits,
				Modulus: m.Text(16), Residue: hex.EncodeToString(d.KeyShare),
			},
			MerkleRoot:  hex.EncodeToString(d.Root[:]),
			ManifestTag: hex.EncodeToString(d.Tag[:]),
			Proof:       make([]string, len(d.Proof)),
		}
		for i, p := range d.Proof {
			dj.Proof[i] = hex.EncodeToString(p[:])
		}
		j.Dispersal = dj
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the JSON form. It rejects unknown fields, other
// formats and versions, and parameters or moduli that do not match the
// ones derived from the share; it does not check the hash (see Verify).
func (s *Share) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j shareJSON
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("%w: json: %w", ErrMalformed, err)
	}
	if dec.More() {
		return malformed("json: trailing data")
	}
	if j.Format != jsonFormat {
		return malformed("json: format %q", j.Format)
	}
	if j.Version != Version {
		return fmt.Errorf("%w: %d", ErrVersion, j.Version)
	}
	out := Share{
		Version: j.Version, Scheme: j.Scheme, Threshold: j.T, Total: j.N, Index: j.Index,
		Length: j.Length, SegmentSize: j.SegmentSize,
	}
	var hexErr error
	fixedHex := func(dst []byte, src, what string) {
		v, e := hex.DecodeString(src)
		if (e != nil || len(v) != len(dst)) && hexErr == nil {
			hexErr = malformed("json: %s", what)
		}
		copy(dst, v)
	}
	fixedHex(out.SplitID[:], j.SplitID, "split_id")
	fixedHex(out.Hash[:], j.Hash, "hash")
	var err error
	if out.Payload, err = base64.StdEncoding.Strict().DecodeString(j.Share); err != nil {
		return malformed("json: share: %v", err)
	}
	var modulus string
	switch {
	case j.Scheme == Paper && j.Paper != nil:
		out.Paper = &PaperParams{ModulusBits: j.Paper.ModulusBits, ChunkSize: j.Paper.ChunkSize}
		fixedHex(out.Paper.Digest[:], j.Paper.Digest, "digest")
		modulus = j.Paper.Modulus
	case j.Scheme == AsmuthBloom && j.AsmuthBloom != nil:
		out.AsmuthBloom = &AsmuthBloomParams{ModulusBits: j.AsmuthBloom.ModulusBits}
		if j.AsmuthBloom.D0Bits != 8*int(j.Length) {
			return malformed("json: d0_bits")
		}
		modulus = j.AsmuthBloom.Modulus
	case j.Scheme == Dispersal && j.Dispersal != nil:
		dj := j.Dispersal
		if dj.Cipher != jsonCipher || dj.ReedSolomon != (rsJSON{j.T, j.N - j.T, jsonField}) ||
			dj.KeyShare.Scheme != AsmuthBloom.String() || dj.KeyShare.D0Bits != keyBits {
			return malformed("json: dispersal parameters")
		}
		d := &DispersalParams{KeyModulusBits: dj.KeyShare.ModulusBits}
		fixedHex(d.NoncePrefix[:], dj.NoncePrefix, "nonce_prefix")
		fixedHex(d.Root[:], dj.MerkleRoot, "merkle_root")
		fixedHex(d.Tag[:], dj.ManifestTag, "manifest_tag")
		if len(dj.Proof) > maxProofLen {
			return malformed("json: proof")
		}
		d.Proof = make([][32]byte, len(dj.Proof))
		for i, p := range dj.Proof {
			fixedHex(d.Proof[i][:], p, "proof")
		}
		if d.KeyShare, err = hex.DecodeString(dj.KeyShare.Residue); err != nil {
			return malformed("json: key_share residue")
		}
		out.Dispersal = d
		modulus = dj.KeyShare.Modulus
	default:
		return malformed("json: scheme %v without its parameters", j.Scheme)
	}
	if hexErr != nil {
		return hexErr
	}
	if err := out.validate(); err != nil {
		return err
	}
	want, err := out.Modulus()
	if out.Scheme == Dispersal {
		want, err = out.KeyModulus()
	}
	if err != nil {
		return err
	}
	got, ok := new(big.Int).SetString(modulus, 16)
	if !ok || got.Cmp(want) != 0 || got.Text(16) != modulus {
		return malformed("json: modulus does not match the public modulus for index %d", out.Index)
	}
	*s = out
	return nil
}

// Package transparency speaks the C2SP transparency-log formats for a
// group's log, so that tooling qledger did not write (Go's
// golang.org/x/mod/sumdb/note and sumdb/tlog, transparency-dev clients,
// witnesses) can check it:
//
//   - a checkpoint (C2SP tlog-checkpoint) names the log (its origin), its
//     size and root hash, with extension lines for the block behind it;
//   - it is a signed note (C2SP signed-note) under an Ed25519 note key that
//     a node derives from its certificate key and endorses with that
//     certificate, so the cluster CA vouches for it (docs/AUDIT.md);
//   - tiles (C2SP tlog-tiles) carry the log's Merkle hashes 256 at a time,
//     and entry bundles its entries (each transaction's canonical bytes).
//
// The group log is the RFC 6962 tree of chain.LeafHash over each
// transaction's canonical bytes, which is what tlog.RecordHash computes.
package transparency

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"qledger/chain"
)

// Errors of the package.
var (
	// ErrKey: a certificate key from which no note key is derived.
	ErrKey = errors.New("transparency: unsupported certificate key")
	// ErrName: a cluster name unfit for an origin line.
	ErrName = errors.New("transparency: bad name")
	// ErrCheckpoint: a malformed checkpoint.
	ErrCheckpoint = errors.New("transparency: malformed checkpoint")
)

// TileHeight is the height of every tile (C2SP tlog-tiles): 256 hashes.
const TileHeight = 8

// TileWidth is the number of hashes in a full tile.
const TileWidth = 1 << TileHeight

// Origin is the origin line of group g's checkpoints: "qledger/<cluster>/group/<g>".
// cluster names the cluster (its CA's name); it must be printable ASCII
// without spaces or '+' (a note key name is the origin).
func Origin(cluster string, g int) (string, error) {
	if cluster == "" {
		return "", fmt.Errorf("%w: empty cluster name", ErrName)
	}
	for _, c := range cluster {
		if c <= ' ' || c > '~' || c == '+' {
			return "", fmt.Errorf("%w: cluster name %q has %q (want printable ASCII without spaces or '+')", ErrName, cluster, c)
		}
	}
	return "qledger/" + cluster + "/group/" + strconv.Itoa(g), nil
}

// ClusterName turns a CA's common name into the cluster name of origins:
// every character that may not stand in a key name becomes '-'.
func ClusterName(caName string) string {
	b := []byte(caName)
	for i, c := range b {
		if c <= ' ' || c > '~' || c == '+' {
			b[i] = '-'
		}
	}
	if len(b) == 0 {
		return "qledger"
	}
	return string(b)
}

// Checkpoint is a C2SP tlog-checkpoint body.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   chain.Hash
	// Extensions are the optional lines after the root, each without its
	// newline; qledger writes "height N", "block <hex>" and
	// "time <Unix nanoseconds>" for the block whose header commits to
	// Size and Root.
	Extensions []string
}

// Marshal returns the note text: origin, size, base64 root and the
// extension lines, each ending in a newline.
func (c Checkpoint) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root[:]))
	for _, e := range c.Extensions {
		b.WriteString(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// ParseCheckpoint reads a checkpoint body (the text of an opened note).
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return Checkpoint{}, fmt.Errorf("%w: want origin, size and root lines, each ending in a newline", ErrCheckpoint)
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil || strconv.FormatUint(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("%w: size %q", ErrCheckpoint, lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != len(chain.Hash{}) {
		return Checkpoint{}, fmt.Errorf("%w: root %q", ErrCheckpoint, lines[2])
	}
	c := Checkpoint{Origin: lines[0], Size: size, Extensions: lines[3 : len(lines)-1]}
	copy(c.Root[:], root)
	if c.Origin == "" {
		return Checkpoint{}, fmt.Errorf("%w: empty origin", ErrCheckpoint)
	}
	return c, nil
}

// HeadExtensions are the extension lines for the block header h.
func HeadExtensions(h chain.Header) []string {
	return []string{
		"height " + strconv.FormatUint(h.Height, 10),
		"block " + h.Hash().String(),
		"time " + strconv.FormatInt(h.Timestamp, 10),
	}
}

// noteKeyInfo separates the note key from every other use of a
// certificate key.
const noteKeyInfo = "qledger note key v1"

// NoteKey derives a node's Ed25519 note key from its certificate's
// private key: the seed is HKDF-SHA256 of the key's secret bytes with
// noteKeyInfo. The same certificate key always gives the same note key,
// so a note key rotates exactly when the certificate key does. ECDSA and
// Ed25519 keys are supported (an Ed25519 key is used as it is).
func NoteKey(key crypto.PrivateKey) (ed25519.PrivateKey, error) {
	switch k := key.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		secret, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		seed, err := hkdf.Key(sha256.New, secret, nil, noteKeyInfo, ed25519.SeedSize)
		clear(secret)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	return nil, fmt.Errorf("%w: %T", ErrKey, key)
}

// Signer returns a note signer named name (the origin) for key, and its
// verifier key (C2SP signed-note "name+hash+base64").
func Signer(name string, key ed25519.PrivateKey) (note.Signer, string, error) {
	vkey, err := note.NewEd25519VerifierKey(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrName, err)
	}
	parts := strings.SplitN(vkey, "+", 3)
	skey := "PRIVATE+KEY+" + name + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, key.Seed()...))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrName, err)
	}
	return s, vkey, nil
}

// Sign returns the checkpoint as a signed note.
func Sign(c Checkpoint, s note.Signer) ([]byte, error) {
	return note.Sign(&note.Note{Text: string(c.Marshal())}, s)
}

// endorsementTag begins every note key endorsement statement.
const endorsementTag = "qledger note key endorsement v1\n"

// EndorsementStatement is what a node signs with its certificate key to
// vouch for a note verifier key: the tag and the verifier key, one line
// each. A verifier that checks this signature against the node's
// certificate chain and the cluster CA (pki.VerifySignature) may trust
// vkey for as long as it trusts the certificate.
func EndorsementStatement(vkey string) []byte {
	return []byte(endorsementTag + vkey + "\n")
}

// TileHashes encodes hashes as a tile's contents: the 32-byte hashes one
// after another.
func TileHashes(hashes []chain.Hash) []byte {
	out := make([]byte, 0, len(hashes)*len(chain.Hash{}))
	for _, h := range hashes {
		out = append(out, h[:]...)
	}
	return out
}

// ErrTile: a malformed tile or entry bundle path.
var ErrTile = errors.New("transparency: no such tile")

// ErrEntryTooLarge: an entry over MaxEntrySize, which no entry bundle
// can carry.
var ErrEntryTooLarge = errors.New("transparency: entry too large for an entry bundle")

// ErrBundle: malformed entry bundle bytes.
var ErrBundle = errors.New("transparency: malformed entry bundle")

// MaxEntrySize is the largest entry a C2SP entry bundle carries: its
// length prefix is a big-endian uint16.
const MaxEntrySize = 1<<16 - 1

// ParseTile parses a C2SP tile path without its "tile/" prefix,
// "L/N[.p/W]", with N in 3-digit path elements all but the last prefixed
// by "x" (tlog.Tile's coordinates with height TileHeight). It parses hash
// tiles only: "entries/..." is ErrTile (ParseEntryBundle reads those),
// like any path not in canonical form.
func ParseTile(path string) (tlog.Tile, error) {
	t, err := tlog.ParseTilePath(fmt.Sprintf("tile/%d/%s", TileHeight, path))
	if err != nil || t.L < 0 || t.L*TileHeight > 63 {
		return tlog.Tile{}, fmt.Errorf("%w: %q (want L/N[.p/W], N in 3-digit path elements, x-prefixed but the last)", ErrTile, path)
	}
	return t, nil
}

// TilePath is t's C2SP path without the "tile/" prefix.
func TilePath(t tlog.Tile) string {
	return strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/", TileHeight))
}

// TileRange is what tile t carries: count perfect-subtree hashes at
// Merkle level level from index from (chain.NodeReader's coordinates).
func TileRange(t tlog.Tile) (level uint8, from uint64, count int) {
	return uint8(t.L * TileHeight), uint64(t.N) * TileWidth, t.W
}

// EntriesPrefix begins the path of every entry bundle (after "tile/").
const EntriesPrefix = "entries/"

// ParseEntryBundle parses a C2SP entry bundle path without its "tile/"
// prefix, "entries/N[.p/W]": the W (256 for a full bundle) entries of the
// log from index 256N. It returns the bundle as a tlog.Tile at level -1
// (sumdb's data tile), whose N and W those are.
func ParseEntryBundle(path string) (tlog.Tile, error) {
	rest, ok := strings.CutPrefix(path, EntriesPrefix)
	t, err := tlog.ParseTilePath(fmt.Sprintf("tile/%d/data/%s", TileHeight, rest))
	if !ok || err != nil || t.L != -1 {
		return tlog.Tile{}, fmt.Errorf("%w: %q (want entries/N[.p/W], N in 3-digit path elements, x-prefixed but the last)", ErrTile, path)
	}
	return t, nil
}

// EntryBundlePath is bundle t's C2SP path without the "tile/" prefix.
func EntryBundlePath(t tlog.Tile) string {
	return EntriesPrefix + strings.TrimPrefix(t.Path(), fmt.Sprintf("tile/%d/data/", TileHeight))
}

// EntryBundle encodes entries as a C2SP entry bundle: each entry's length
// as a big-endian uint16, then the entry. An entry over MaxEntrySize is
// ErrEntryTooLarge, naming its position in entries.
func EntryBundle(entries [][]byte) ([]byte, error) {
	n := 0
	for i, e := range entries {
		if len(e) > MaxEntrySize {
			return nil, fmt.Errorf("%w: entry %d is %d bytes, the limit is %d", ErrEntryTooLarge, i, len(e), MaxEntrySize)
		}
		n += 2 + len(e)
	}
	out := make([]byte, 0, n)
	for _, e := range entries {
		out = append(out, byte(len(e)>>8), byte(len(e)))
		out = append(out, e...)
	}
	return out, nil
}

// SplitEntryBundle decodes a C2SP entry bundle into its entries.
func SplitEntryBundle(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return nil, fmt.Errorf("%w: %d stray bytes after entry %d", ErrBundle, len(b), len(out))
		}
		n := int(b[0])<<8 | int(b[1])
		if len(b) < 2+n {
			return nil, fmt.Errorf("%w: entry %d wants %d bytes, %d left", ErrBundle, len(out), n, len(b)-2)
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out, nil
}

package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
)

// ProtocolVersion is the version of the internal protocol (raft transport
// and internal RPC on the shared listener, gossip metadata) this build
// speaks. A node of version N speaks N and N-1 (MinProtocolVersion), so a
// cluster upgrades one release at a time while old and new nodes run side
// by side; a peer outside that window is refused at the TLS handshake with
// ErrProtocolVersion, logged by both sides. Builds from before versioning
// offer no version and count as version 1.
//
// The version is negotiated per connection with TLS ALPN ("qledger/N"):
// the dialer offers its versions, newest first, and the listener picks the
// newest it speaks too. Without TLS (an --insecure cluster) nothing is
// negotiated and every peer is taken to speak version 1.
//
// protocolBuild, when set at link time (-ldflags "-X
// qledger/cluster.protocolBuild=2"), raises ProtocolVersion for upgrade
// tests: such a build speaks the formats of version 1 under the number 2,
// which exercises negotiation between a new and an old binary. A release
// that changes a format raises protocolVersion instead.
var ProtocolVersion = buildProtocol()

// protocolVersion is the version of this source tree.
const protocolVersion = 1

// protocolBuild overrides protocolVersion at link time (see ProtocolVersion).
var protocolBuild string

func buildProtocol() int {
	if v, err := strconv.Atoi(protocolBuild); err == nil && v >= protocolVersion {
		return v
	}
	return protocolVersion
}

// MinProtocolVersion is the oldest protocol version this build speaks.
func MinProtocolVersion() int { return max(1, ProtocolVersion-1) }

// ErrProtocolVersion: a peer speaks no protocol version this node speaks.
var ErrProtocolVersion = errors.New("cluster: peer speaks no protocol version this node speaks")

// protocols is the versions a node speaks, oldest first.
type protocols struct{ min, max int }

func localProtocols() protocols { return protocols{min: MinProtocolVersion(), max: ProtocolVersion} }

const alpnPrefix = "qledger/"

// offer is the ALPN list a dialer sends: newest first.
func (p protocols) offer() []string {
	out := make([]string, 0, p.max-p.min+1)
	for v := p.max; v >= p.min; v-- {
		out = append(out, alpnPrefix+strconv.Itoa(v))
	}
	return out
}

// pick is the version a listener agrees to with a dialer that offered
// offered: the newest both speak. A dialer that offers no qledger
// version predates versioning and speaks 1.
func (p protocols) pick(offered []string) (int, error) {
	var theirs []int
	for _, s := range offered {
		if v, err := strconv.Atoi(strings.TrimPrefix(s, alpnPrefix)); err == nil && strings.HasPrefix(s, alpnPrefix) {
			theirs = append(theirs, v)
		}
	}
	if len(theirs) == 0 {
		theirs = []int{1}
	}
	best := 0
	for _, v := range theirs {
		if v >= p.min && v <= p.max && v > best {
			best = v
		}
	}
	if best == 0 {
		return 0, fmt.Errorf("%w: the peer offers %v, this node speaks %d to %d", ErrProtocolVersion, theirs, p.min, p.max)
	}
	return best, nil
}

// agreed is the version of a dialed connection whose listener answered
// negotiated ("" from a listener that predates versioning: 1).
func (p protocols) agreed(negotiated string) (int, error) {
	v := 1
	if negotiated != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(negotiated, alpnPrefix))
		if err != nil || !strings.HasPrefix(negotiated, alpnPrefix) {
			return 0, fmt.Errorf("%w: the peer answers %q", ErrProtocolVersion, negotiated)
		}
		v = n
	}
	if v < p.min || v > p.max {
		return 0, fmt.Errorf("%w: the peer speaks %d, this node speaks %d to %d", ErrProtocolVersion, v, p.min, p.max)
	}
	return v, nil
}

// alertNoApplicationProtocol is the TLS alert a listener sends when no
// offered ALPN protocol is one it speaks (RFC 7301 §3.2).
const alertNoApplicationProtocol = tls.AlertError(120)

// versionedServer wraps a listener's TLS configuration so that each
// handshake agrees on a protocol version. A dialer with no common version
// is refused: refused is called with the reason, and the handshake fails
// with the no_application_protocol alert, which the dialer reports as
// ErrProtocolVersion.
func versionedServer(base *tls.Config, p protocols, refused func(remote net.Addr, err error)) *tls.Config {
	wrapped := base.Clone()
	wrapped.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		cfg := base
		if base.GetConfigForClient != nil {
			c, err := base.GetConfigForClient(hello)
			if err != nil {
				return nil, err
			}
			if c != nil {
				cfg = c
			}
		}
		cfg = cfg.Clone()
		cfg.GetConfigForClient = nil
		v, err := p.pick(hello.SupportedProtos)
		switch {
		case err != nil && len(hello.SupportedProtos) == 0:
			// A dialer from before versioning: it cannot read an ALPN
			// refusal, so end the handshake with an error of ours.
			refused(remoteOf(hello), err)
			return nil, err
		case err != nil:
			refused(remoteOf(hello), err)
			cfg.NextProtos = p.offer() // none in common: TLS sends alert 120
		case len(hello.SupportedProtos) > 0:
			cfg.NextProtos = []string{alpnPrefix + strconv.Itoa(v)}
		}
		return cfg, nil
	}
	return wrapped
}

func remoteOf(hello *tls.ClientHelloInfo) net.Addr {
	if hello.Conn == nil {
		return nil
	}
	return hello.Conn.RemoteAddr()
}

// dialError converts a failed client handshake: a listener that found no
// common protocol version answers with alert 120, which crypto/tls
// returns as a "remote error" carrying the alert's text.
func dialError(err error, p protocols) error {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" && oe.Err != nil && oe.Err.Error() == alertNoApplicationProtocol.Error() {
		return fmt.Errorf("%w: the peer speaks none of %d to %d (%v)", ErrProtocolVersion, p.min, p.max, err)
	}
	return err
}

package faults

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Errors of the harness.
var (
	// ErrNoNamespaces: the harness cannot make network namespaces here
	// (not root, or no `ip netns`).
	ErrNoNamespaces = errors.New("faults: network namespaces unavailable")
	// ErrNoLeader: no node reports a leader.
	ErrNoLeader = errors.New("faults: no leader")
)

// namePrefix starts every namespace and link the harness makes; the
// process ID that follows lets a later run tell its own from a killed
// run's.
const namePrefix = "qlf"

// Lab is one run's network: a bridge in the root namespace, which holds
// the address .1 so the test process reaches every host directly, and one
// network namespace per host joined to the bridge by a veth pair.
//
// Faults are `ip rule` blackhole rules inside a host's namespace that
// match a peer's source address: incoming packets from that peer are
// dropped silently (no ICMP, no reset), as a cut cable drops them, for
// every protocol (raft and RPC over TCP, gossip over TCP and UDP). The
// namespace's `local` rule is moved behind them so they apply to packets
// addressed to the host. A Lab's methods are safe for concurrent use.
type Lab struct {
	prefix string
	bridge string
	net    string // the /24 as "10.a.b."
	Hosts  []*Host

	mu    sync.Mutex
	drops map[[2]*Host]int // (host, from) -> references
}

// Host is one network namespace with one address.
type Host struct {
	Name string
	NS   string
	IP   string
	veth string
}

// Available reports why the harness cannot run here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not root", ErrNoNamespaces)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: no ip command (iproute2)", ErrNoNamespaces)
	}
	probe := fmt.Sprintf("%s%d-probe", namePrefix, os.Getpid())
	if err := ip("netns", "add", probe); err != nil {
		return fmt.Errorf("%w: %v", ErrNoNamespaces, err)
	}
	return ip("netns", "del", probe)
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// NewLab makes hosts named names on a fresh bridge. It first removes what
// killed runs left behind. On error nothing of the new lab remains.
func NewLab(names ...string) (*Lab, error) {
	CleanStale()
	pid := os.Getpid()
	// Each lab of a process gets its own names and subnet: the kernel
	// removes a deleted namespace's devices asynchronously, so names
	// reused by the next lab right away can still be taken.
	seq := int(labSeq.Add(1)-1) % 26
	l := &Lab{
		prefix: fmt.Sprintf("%s%d%c", namePrefix, pid, 'a'+seq),
		net:    fmt.Sprintf("10.%d.%d.", 150+(pid>>8)%100, (pid+seq*7)&0xff),
		drops:  map[[2]*Host]int{},
	}
	l.bridge = l.prefix + "br"
	if err := l.build(names); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) build(names []string) error {
	steps := [][]string{
		{"link", "add", l.bridge, "type", "bridge"},
		{"addr", "add", l.net + "1/24", "dev", l.bridge},
		{"link", "set", l.bridge, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	for i, name := range names {
		h := &Host{Name: name, NS: l.prefix + "-" + name, IP: fmt.Sprintf("%s%d", l.net, 11+i), veth: fmt.Sprintf("%sv%d", l.prefix, i)}
		l.Hosts = append(l.Hosts, h)
		steps := [][]string{
			{"netns", "add", h.NS},
			{"link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.NS},
			{"link", "set", h.veth, "master", l.bridge},
			{"link", "set", h.veth, "up"},
			{"-n", h.NS, "addr", "add", h.IP + "/24", "dev", "eth0"},
			{"-n", h.NS, "link", "set", "lo", "up"},
			{"-n", h.NS, "link", "set", "eth0", "up"},
			// Fault rules go before local delivery.
			{"-n", h.NS, "rule", "add", "pref", "100", "lookup", "local"},
			{"-n", h.NS, "rule", "del", "pref", "0", "lookup", "local"},
		}
		for _, s := range steps {
			if err := ip(s...); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close removes the lab's namespaces (their veth ends go with them) and
// its bridge. It reports the first failure but tries everything.
func (l *Lab) Close() error {
	var first error
	for _, h := range l.Hosts {
		// Deleting the host end removes the pair at once; a namespace's
		// own devices go only when the kernel gets to it.
		if linkExists(h.veth) {
			if err := ip("link", "del", h.veth); err != nil && first == nil {
				first = err
			}
		}
		if err := ip("netns", "del", h.NS); err != nil && first == nil {
			first = err
		}
	}
	if err := ip("link", "del", l.bridge); err != nil && first == nil && linkExists(l.bridge) {
		first = err
	}
	return first
}

func linkExists(name string) bool { return exec.Command("ip", "link", "show", name).Run() == nil }

var staleName = regexp.MustCompile(`^` + namePrefix + `(\d+)[a-z]?(-|br$|v\d+$)`)

// labSeq numbers the labs one process makes.
var labSeq atomic.Int64

// CleanStale removes namespaces and links left by runs whose process is
// gone (a run killed before its cleanup): their names carry the dead
// process's ID.
func CleanStale() {
	dead := func(name string) bool {
		m := staleName.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, _ := strconv.Atoi(m[1])
		_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
		return errors.Is(err, os.ErrNotExist)
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && dead(f[0]) {
				_ = ip("netns", "del", f[0])
			}
		}
	}
	if data, err := os.ReadFile("/proc/mounts"); err == nil {
		// Data directories on a tmpfs (Options.DataSize).
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 2 && f[2] == "tmpfs" && dead(f[0]) {
				_ = exec.Command("umount", f[1]).Run()
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
			if dead(name) {
				_ = ip("link", "del", name)
			}
		}
	}
}

// Exec returns a command that runs inside h's namespace.
func (h *Host) Exec(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
}

// Drop makes h drop every packet from each of from. Drops are counted: a
// drop added twice needs two Restores.
func (l *Lab) Drop(h *Host, from ...*Host) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range from {
		k := [2]*Host{h, f}
		if l.drops[k] == 0 {
			if err := ip("-n", h.NS, "rule", "add", "pref", "10", "from", f.IP, "blackhole"); err != nil {
				return err
			}
		}
		l.drops[k]++
	}
	return nil
}

// Restore undoes one Drop of each of from at h.
func (l *Lab) Restore(h *Host, from ...*Host) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first error
	for _, f := range from {
		k := [2]*Host{h, f}
		if l.drops[k] == 0 {
			continue
		}
		if l.drops[k]--; l.drops[k] == 0 {
			if err := ip("-n", h.NS, "rule", "del", "pref", "10", "from", f.IP, "blackhole"); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// Cut drops all traffic between every host of a and every host of b.
func (l *Lab) Cut(a, b []*Host) error {
	for _, x := range a {
		for _, y := range b {
			if err := l.Drop(x, y); err != nil {
				return err
			}
			if err := l.Drop(y, x); err != nil {
				return err
			}
		}
	}
	return nil
}

// Mend undoes one Cut of a and b.
func (l *Lab) Mend(a, b []*Host) error {
	var first error
	for _, x := range a {
		for _, y := range b {
			for _, err := range []error{l.Restore(x, y), l.Restore(y, x)} {
				if err != nil && first == nil {
					first = err
				}
			}
		}
	}
	return first
}

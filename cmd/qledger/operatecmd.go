package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"qledger/api/client"
)

// The operator's verbs: cluster transfer-leader and node leave, and the
// certificate probe behind cluster status.

func (a *app) clusterTransferLeaderCmd() *cobra.Command {
	var (
		group int
		to    string
	)
	cmd := &cobra.Command{
		Use:   "transfer-leader --group G [--to NODE]",
		Short: "hand a group's leadership to another voter (admin)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if group < 0 {
				return usageErrorf("usage: qledger cluster transfer-leader --group G [--to NODE]")
			}
			return a.transferLeader(group, to)
		},
	}
	cmd.Flags().IntVar(&group, "group", -1, "the group [required]")
	cmd.Flags().StringVar(&to, "to", "", "the voter to hand leadership to: its ID or a unique prefix (default: any up-to-date voter)")
	return cmd
}

// transferLeader finds group g's leader through the node at --addr and
// asks it to hand leadership to the voter to names.
func (a *app) transferLeader(g int, to string) error {
	c, ctx, cancel, err := a.client.connect(2)
	if err != nil {
		return err
	}
	defer cancel()
	gs, leader, err := groupLeader(ctx, c, g)
	if err != nil {
		return fmt.Errorf("cluster transfer-leader: %w", err)
	}
	if to != "" {
		m, err := voterByPrefix(gs.Members, to)
		if err != nil {
			return err
		}
		to = m.ID
	}
	lc, err := a.client.clientAt(leader.APIAddr)
	if err != nil {
		return err
	}
	now, err := lc.TransferLeader(ctx, g, to)
	if err != nil {
		return err
	}
	if a.out.JSON() {
		return a.printJSON(map[string]any{"group": g, "from": leader.ID, "leader": now})
	}
	if now == "" {
		now = "a voter not yet known (see qledger cluster status)"
	} else {
		now = short(now)
	}
	fmt.Fprintf(a.stdout, "group %d: leadership handed from %s to %s\n", g, short(leader.ID), now)
	return nil
}

// leaderWait is how long a command waits for a group to show a leader
// with an API address (an election in progress) before it gives up.
const leaderWait = 15 * time.Second

// groupLeader asks the node c talks to for group g's status until it names
// a leader with an API address, for up to leaderWait.
func groupLeader(ctx context.Context, c *client.Client, g int) (client.GroupStatus, client.Member, error) {
	ctx, cancel := context.WithTimeout(ctx, leaderWait)
	defer cancel()
	for {
		st, err := c.Cluster(ctx)
		if err != nil {
			return client.GroupStatus{}, client.Member{}, err
		}
		if g >= len(st.Groups) {
			return client.GroupStatus{}, client.Member{}, usageErrorf("group %d does not exist (the cluster has groups 0..%d)", g, len(st.Groups)-1)
		}
		gs := st.Groups[g]
		if leader, ok := memberByID(gs.Members, gs.Leader); gs.HasLeader && ok && leader.APIAddr != "" {
			return gs, leader, nil
		}
		select {
		case <-ctx.Done():
			return gs, client.Member{}, fmt.Errorf("group %d has no leader reachable over the API; retry", g)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func memberByID(ms []client.Member, id string) (client.Member, bool) {
	for _, m := range ms {
		if m.ID == id {
			return m, true
		}
	}
	return client.Member{}, false
}

// voterByPrefix is the one voter whose ID starts with prefix.
func voterByPrefix(ms []client.Member, prefix string) (client.Member, error) {
	var found []client.Member
	for _, m := range ms {
		if m.Suffrage == "voter" && strings.HasPrefix(m.ID, strings.ToLower(prefix)) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return client.Member{}, usageErrorf("cluster transfer-leader: no voter of the group has an ID starting %q", prefix)
	}
	return client.Member{}, usageErrorf("cluster transfer-leader: %d voters have IDs starting %q; give more digits", len(found), prefix)
}

func (a *app) nodeLeaveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "leave --addr API",
		Short: "make the node at --addr leave the cluster gracefully and stop (admin)",
		Long: `Make the node whose API is at --addr leave the cluster gracefully: it hands
over its group's leadership if it has it, leaves the group's raft
configuration and gossip, answers, and its process stops. The same as
sending it SIGTERM, from anywhere the API is reachable.`,
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			c, ctx, cancel, err := a.client.connect(2)
			if err != nil {
				return err
			}
			defer cancel()
			if err := c.Leave(ctx); err != nil {
				return err
			}
			if a.out.JSON() {
				return a.printJSON(map[string]any{"addr": c.Base(), "left": true})
			}
			fmt.Fprintf(a.stdout, "node at %s left the cluster; its process stops\n", c.Base())
			return nil
		},
	}
	a.client.register(cmd.Flags(), "timeout")
	a.out.register(cmd.Flags())
	return cmd
}

// certExpiry is when each member's API certificate chain stops being
// valid, as cluster status probes it.
type certExpiry struct {
	NotAfter time.Time `json:"not_after,omitzero"`
	Error    string    `json:"error,omitempty"`
}

// probeCertificates connects to every member's API (with TLS) and reads
// the certificate chain it serves. Members without an API address are
// left out.
func (a *app) probeCertificates(ctx context.Context, st client.ClusterStatus) map[string]certExpiry {
	out := map[string]certExpiry{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, g := range st.Groups {
		for _, m := range g.Members {
			if !strings.HasPrefix(m.APIAddr, "https://") {
				continue
			}
			wg.Add(1)
			go func(m client.Member) {
				defer wg.Done()
				var e certExpiry
				c, err := a.client.clientAt(m.APIAddr)
				if err == nil {
					e.NotAfter, err = c.ServerNotAfter(ctx)
				}
				if err != nil {
					e.Error = err.Error()
				}
				mu.Lock()
				out[m.ID] = e
				mu.Unlock()
			}(m)
		}
	}
	wg.Wait()
	return out
}

package main

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"qledger/api/client"
)

func (a *app) clusterCmd() *cobra.Command {
	return a.clientGroup(group("cluster", "status | join | remove | scale | transfer-leader | scrub | repair: show and change membership, check and repair chain stores",
		a.clusterStatusCmd(), a.clusterJoinCmd(), a.clusterRemoveCmd(), a.clusterScaleCmd(), a.clusterTransferLeaderCmd(),
		a.clusterScrubCmd(), a.clusterRepairCmd()))
}

func (a *app) clusterStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "groups, members, leaders, raft state and lag, versions, certificate expiry",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			c, ctx, cancel, err := a.client.connect(1)
			if err != nil {
				return err
			}
			defer cancel()
			st, err := c.Cluster(ctx)
			if err != nil {
				return err
			}
			certs := a.probeCertificates(ctx, st)
			if a.out.JSON() {
				return a.printJSON(struct {
					client.ClusterStatus
					Certificates map[string]certExpiry `json:"certificates,omitempty"`
				}{st, certs})
			}
			printCluster(a.stdout, st, certs, time.Now())
			return nil
		},
	}
}

func printCluster(w io.Writer, st client.ClusterStatus, certs map[string]certExpiry, now time.Time) {
	fmt.Fprintf(w, "answered by node %s (group %d)\n", short(st.Node.ID), st.Node.Group)
	if a := st.ChainAlarm; a != nil {
		fmt.Fprintf(w, "CHAIN ALARM on this node: group %d damaged at height %d: %s (found by %s)\n", a.Group, a.Height, a.What, a.Source)
	}
	for _, g := range st.Groups {
		leader := "NO LEADER"
		if g.HasLeader {
			leader = "leader " + short(g.Leader)
		}
		fmt.Fprintf(w, "group %d: %s  term %d  height %d  log size %d  commit %d\n  voters %d (healthy %d, failure tolerance %d)  non-voters %d  queue %d\n", g.Group, leader, g.Term, g.Height, g.LogSize, g.Commit, g.Voters, g.HealthyVoters, g.FailureTolerance, g.NonVoters, g.QueueDepth)
		if g.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", g.Error)
		}
		if d := g.Autoscale; d != nil {
			fmt.Fprintf(w, "  autoscale: %d executors, desired %d (wanted %d, %d in flight: %s) at %s\n", d.Executors, d.Desired, d.Wanted, d.InFlight, d.Reason, d.At.Format(time.TimeOnly))
			if d.Error != "" {
				fmt.Fprintf(w, "    provider error: %s\n", d.Error)
			}
		}
		for _, m := range g.Members {
			mark := " "
			if m.Leader {
				mark = "*"
			}
			health := "healthy"
			if !m.Healthy {
				health = "unhealthy"
				if m.Reason != "" {
					health += " (" + m.Reason + ")"
				}
			}
			fmt.Fprintf(w, "  %s %s  %-8s  %-8s  gossip %-7s  %s  raft %s  api %s\n", mark, short(m.ID), m.Suffrage, m.Role, m.Gossip, health, m.Addr, m.APIAddr)
			fmt.Fprintf(w, "      version %s  protocol %s  raft lag %s  certificate %s\n", orUnknown(m.Version), protocolText(m.Protocol), lagText(m.RaftLag), certText(certs, m.ID, now))
		}
		for _, a := range g.ChainAlarms {
			fmt.Fprintf(w, "  CHAIN ALARM: node %s: damaged at height %d: %s (%s)\n", short(a.Node), a.Height, a.What, a.Source)
		}
	}
}

func (a *app) clusterJoinCmd() *cobra.Command {
	var req client.JoinRequest
	cmd := &cobra.Command{
		Use:   "join --id ID --raft-addr HOST:PORT",
		Short: "add a node to its group's raft configuration",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if req.ID == "" || req.Addr == "" {
				return usageErrorf("usage: qledger cluster join --addr API --id ID --raft-addr HOST:PORT")
			}
			c, ctx, cancel, err := a.client.connect(1)
			if err != nil {
				return err
			}
			defer cancel()
			if err := c.Join(ctx, req); err != nil {
				return err
			}
			if a.out.JSON() {
				return a.printJSON(map[string]any{"id": req.ID, "joined": true})
			}
			fmt.Fprintf(a.stdout, "node %s joined\n", short(req.ID))
			return nil
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&req.ID, "id", "", "the new node's ID (64 hex digits) [required]")
	fs.StringVar(&req.Addr, "raft-addr", "", "the new node's raft/RPC address [required]")
	fs.StringVar(&req.APIAddr, "api-addr", "", "the new node's API address")
	return cmd
}

func (a *app) clusterRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove ID",
		Short: "remove a node from its group",
		Args:  argsUsage(1, 1, "usage: qledger cluster remove [--addr API] ID"),
		RunE: func(_ *cobra.Command, args []string) error {
			c, ctx, cancel, err := a.client.connect(1)
			if err != nil {
				return err
			}
			defer cancel()
			if err := c.Remove(ctx, args[0]); err != nil {
				return err
			}
			if a.out.JSON() {
				return a.printJSON(map[string]any{"id": args[0], "removed": true})
			}
			fmt.Fprintf(a.stdout, "node %s removed\n", short(args[0]))
			return nil
		},
	}
}

func (a *app) clusterScaleCmd() *cobra.Command {
	var k int
	cmd := &cobra.Command{
		Use:   "scale --executors K",
		Short: "run K executor nodes (embedded clusters)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if k < 0 {
				return usageErrorf("usage: qledger cluster scale --executors K")
			}
			c, ctx, cancel, err := a.client.connect(2)
			if err != nil {
				return err
			}
			defer cancel()
			n, err := c.Scale(ctx, k)
			if err != nil {
				return err
			}
			if a.out.JSON() {
				return a.printJSON(map[string]any{"executors": n})
			}
			fmt.Fprintf(a.stdout, "%d executor nodes running\n", n)
			return nil
		},
	}
	cmd.Flags().IntVar(&k, "executors", -1, "number of executor nodes to run [required]")
	return cmd
}

func (a *app) clusterScrubCmd() *cobra.Command {
	var g int
	var node string
	cmd := &cobra.Command{
		Use:   "scrub --group G [--node N]",
		Short: "verify the chain store of a group's replicas in full now (admin)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if g < 0 {
				return usageErrorf("usage: qledger cluster scrub --group G [--node N]")
			}
			c, ctx, cancel, err := a.client.connect(6)
			if err != nil {
				return err
			}
			defer cancel()
			reports, err := c.Scrub(ctx, g, node)
			if err != nil {
				return err
			}
			return a.printReports(reports, "verified")
		},
	}
	cmd.Flags().IntVar(&g, "group", -1, "the group [required]")
	cmd.Flags().StringVar(&node, "node", "", "one node of the group (ID or a prefix of 8+ digits); default every replica")
	return cmd
}

func (a *app) clusterRepairCmd() *cobra.Command {
	var g int
	var node string
	cmd := &cobra.Command{
		Use:   "repair --group G --node N",
		Short: "rebuild a replica's chain store from its raft snapshot and log, verify it and clear its alarm (admin)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if g < 0 || node == "" {
				return usageErrorf("usage: qledger cluster repair --group G --node N")
			}
			c, ctx, cancel, err := a.client.connect(6)
			if err != nil {
				return err
			}
			defer cancel()
			reports, err := c.Repair(ctx, g, node)
			if err != nil {
				return err
			}
			return a.printReports(reports, "rebuilt")
		},
	}
	cmd.Flags().IntVar(&g, "group", -1, "the group [required]")
	cmd.Flags().StringVar(&node, "node", "", "the node to repair (ID or a prefix of 8+ digits) [required]")
	return cmd
}

// printReports prints scrub or repair reports; any replica that failed
// or is still damaged makes the command fail.
func (a *app) printReports(reports []client.ScrubReport, done string) error {
	bad := 0
	for _, r := range reports {
		if r.Error != "" || r.Alarm != nil {
			bad++
		}
	}
	if a.out.JSON() {
		if err := a.printJSON(client.ScrubResponse{Reports: reports}); err != nil {
			return err
		}
	} else {
		for _, r := range reports {
			switch {
			case r.Error != "":
				fmt.Fprintf(a.stdout, "node %s: %s\n", short(r.Node), r.Error)
			case r.Alarm != nil:
				fmt.Fprintf(a.stdout, "node %s: DAMAGED at height %d: %s\n", short(r.Node), r.Alarm.Height, r.Alarm.What)
			default:
				fmt.Fprintf(a.stdout, "node %s: %s %d blocks, %d transactions in %.1fs\n", short(r.Node), done, r.Blocks, r.Txs, r.Seconds)
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("cluster: %d of %d replicas damaged or not done", bad, len(reports))
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// protocolText is a member's protocol version, or "?" when the answering
// node does not see it in gossip.
func protocolText(v int) string {
	if v == 0 {
		return "?"
	}
	return strconv.Itoa(v)
}

// lagText is a member's raft lag, or "?" where the answering node is not
// the group's leader.
func lagText(lag *uint64) string {
	if lag == nil {
		return "?"
	}
	return fmt.Sprintf("%d", *lag)
}

// certText is when a member's certificate expires and how far off that
// is, "none" without TLS, or why it could not be read.
func certText(certs map[string]certExpiry, id string, now time.Time) string {
	e, ok := certs[id]
	switch {
	case !ok:
		return "none"
	case e.Error != "":
		return "? (" + e.Error + ")"
	}
	left := e.NotAfter.Sub(now)
	when := e.NotAfter.UTC().Format("2006-01-02")
	if left <= 0 {
		return "EXPIRED " + when
	}
	return fmt.Sprintf("expires %s (%dd)", when, int(left.Hours()/24))
}

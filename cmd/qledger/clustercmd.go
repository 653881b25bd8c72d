package main

import (
	"errors"
	"flag"
	"fmt"

	"qledger/api/client"
)

func runCluster(args []string) error {
	return subcommand(args, "cluster", map[string]func([]string) error{"status": clusterStatus, "join": clusterJoin, "remove": clusterRemove, "scale": clusterScale}, []string{"status", "join", "remove", "scale"})
}

func clusterStatus(args []string) error {
	fs := flag.NewFlagSet("cluster status", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	c, ctx, cancel, err := cf.connect(1)
	if err != nil {
		return err
	}
	defer cancel()
	st, err := c.Cluster(ctx)
	if err != nil {
		return err
	}
	if cf.json {
		return printJSON(st)
	}
	fmt.Printf("answered by node %s (group %d)\n", short(st.Node.ID), st.Node.Group)
	for _, g := range st.Groups {
		leader := "NO LEADER"
		if g.HasLeader {
			leader = "leader " + short(g.Leader)
		}
		fmt.Printf("group %d: %s  term %d  height %d  log size %d  commit %d\n  voters %d (healthy %d, failure tolerance %d)  non-voters %d  queue %d\n", g.Group, leader, g.Term, g.Height, g.LogSize, g.Commit, g.Voters, g.HealthyVoters, g.FailureTolerance, g.NonVoters, g.QueueDepth)
		if g.Error != "" {
			fmt.Printf("  error: %s\n", g.Error)
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
			fmt.Printf("  %s %s  %-8s  %-8s  gossip %-7s  %s  raft %s  api %s\n", mark, short(m.ID), m.Suffrage, m.Role, m.Gossip, health, m.Addr, m.APIAddr)
		}
	}
	return nil
}

func clusterJoin(args []string) error {
	fs := flag.NewFlagSet("cluster join", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	var req client.JoinRequest
	fs.StringVar(&req.ID, "id", "", "the new node's ID (64 hex digits) [required]")
	fs.StringVar(&req.Addr, "raft-addr", "", "the new node's raft/RPC address [required]")
	fs.StringVar(&req.APIAddr, "api-addr", "", "the new node's API address")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if req.ID == "" || req.Addr == "" {
		return errors.New("usage: qledger cluster join --addr API --id ID --raft-addr HOST:PORT")
	}
	c, ctx, cancel, err := cf.connect(1)
	if err != nil {
		return err
	}
	defer cancel()
	if err := c.Join(ctx, req); err != nil {
		return err
	}
	fmt.Printf("node %s joined\n", short(req.ID))
	return nil
}

func clusterRemove(args []string) error {
	fs := flag.NewFlagSet("cluster remove", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: qledger cluster remove [--addr API] ID")
	}
	c, ctx, cancel, err := cf.connect(1)
	if err != nil {
		return err
	}
	defer cancel()
	if err := c.Remove(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Printf("node %s removed\n", short(pos[0]))
	return nil
}

func clusterScale(args []string) error {
	fs := flag.NewFlagSet("cluster scale", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	k := fs.Int("executors", -1, "number of executor nodes to run [required]")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *k < 0 {
		return errors.New("usage: qledger cluster scale --executors K")
	}
	c, ctx, cancel, err := cf.connect(2)
	if err != nil {
		return err
	}
	defer cancel()
	n, err := c.Scale(ctx, *k)
	if err != nil {
		return err
	}
	fmt.Printf("%d executor nodes running\n", n)
	return nil
}

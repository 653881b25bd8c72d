package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"qledger/demo"
)

func (a *app) demoCmd() *cobra.Command {
	s := demo.Scenario{Out: a.stdout}
	var logs logOptions
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "start a throwaway cluster, run the main scenario, print a report",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := s.Validate(); err != nil {
				return usageErrorf("%v", err)
			}
			s.Logger = a.logger(logs)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			return s.Run(ctx)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&s.Groups, "groups", 2, "node groups")
	fs.IntVar(&s.Replicas, "replicas", 3, "nodes per group")
	fs.IntVar(&s.Txs, "txs", 500, "transactions to submit")
	fs.BoolVar(&s.Keep, "keep", false, "keep the data directory")
	logs.register(fs, "off")
	return cmd
}

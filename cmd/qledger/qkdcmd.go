package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"qledger/qkd"
	"qledger/qkd/curve"
)

func (a *app) qkdCmd() *cobra.Command {
	return group("qkd", "run | curve: simulate BB84 key distribution", a.qkdRunCmd(), a.qkdCurveCmd())
}

// qkdRunCmd simulates one BB84 block and prints its statistics. An abort
// (eavesdropper detected, check failed, no secret key) prints the
// statistics with the reason and exits non-zero.
func (a *app) qkdRunCmd() *cobra.Command {
	cfg := qkd.DefaultConfig()
	var mode, seed string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "simulate one BB84 block: QBER, Cascade leak, key length",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			m, err := qkd.ParseMode(mode)
			if err != nil {
				return usageErrorf("%v", err)
			}
			cfg.Mode = m
			if seed != "" {
				cfg.Seed = []byte(seed)
			}
			return a.qkdRun(cfg)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&mode, "mode", string(qkd.ModeFull), "protocol: full (BB84 post-processing) or paper (the seed's simplified protocol)")
	fs.IntVar(&cfg.Qubits, "qubits", cfg.Qubits, "pulses Alice sends (paper mode: the seed's 1024 yield about 256 key bits, too few for one 256-bit key on ~40% of seeds; use --key-bits 128 or less with 1024, or --qubits 2048)")
	fs.IntVar(&cfg.KeyBits, "key-bits", cfg.KeyBits, "size of each issued key in bits (a multiple of 8); a block issues whole keys only")
	fs.Float64Var(&cfg.Channel.Noise, "noise", cfg.Channel.Noise, "depolarizing probability p (QBER p/2)")
	fs.Float64Var(&cfg.Channel.DistanceKM, "distance", cfg.Channel.DistanceKM, "fiber length in km (0.2 dB/km)")
	fs.Float64Var(&cfg.Channel.Eve, "eve", cfg.Channel.Eve, "fraction of qubits an eavesdropper intercepts and resends")
	fs.Float64Var(&cfg.Channel.DarkCount, "dark-count", cfg.Channel.DarkCount, "dark count probability per detector per pulse")
	fs.Float64Var(&cfg.QBERThreshold, "threshold", cfg.QBERThreshold, "abort when the estimated QBER is above this")
	fs.StringVar(&seed, "seed", "", "make the run reproducible (simulation only)")
	a.out.register(fs)
	return cmd
}

func (a *app) qkdRun(cfg qkd.Config) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	st, runErr := qkd.RunContext(ctx, cfg)
	if runErr != nil && !errors.Is(runErr, qkd.ErrAborted) {
		return runErr
	}
	if a.out.JSON() {
		out := map[string]any{"stats": st, "aborted": runErr != nil}
		if runErr != nil {
			out["abort_reason"] = runErr.Error()
		}
		if err := a.printJSON(out); err != nil {
			return err
		}
	} else if err := st.Write(a.stdout); err != nil {
		return err
	}
	return runErr
}

// qkdCurveCmd plots the secret-key fraction against the QBER and the key
// rate against distance.
func (a *app) qkdCurveCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "curve",
		Short: "plot the secret-key fraction against the QBER and the key rate against distance",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()
			if _, err := curve.WritePNG(ctx, out, curve.DefaultConfig()); err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, "wrote", out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "qkd-curve.png", "PNG file to write")
	return cmd
}

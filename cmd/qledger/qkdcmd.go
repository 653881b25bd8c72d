package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"qledger/qkd"
	"qledger/qkd/curve"
)

func runQKD(args []string) error {
	return subcommand(args, "qkd", map[string]func([]string) error{"run": qkdRun, "curve": qkdCurve}, []string{"run", "curve"})
}

// qkdRun simulates one BB84 block and prints its statistics. An abort
// (eavesdropper detected, check failed, no secret key) prints the
// statistics with the reason and exits non-zero.
func qkdRun(args []string) error {
	fs := flag.NewFlagSet("qkd run", flag.ExitOnError)
	cfg := qkd.DefaultConfig()
	mode := fs.String("mode", string(qkd.ModeFull), "protocol: full (BB84 post-processing) or paper (the seed's simplified protocol)")
	fs.IntVar(&cfg.Qubits, "qubits", cfg.Qubits, "pulses Alice sends (paper mode: use 1024, as the seed)")
	fs.IntVar(&cfg.KeyBits, "key-bits", cfg.KeyBits, "size of each issued key in bits (a multiple of 8); a block issues whole keys only")
	fs.Float64Var(&cfg.Channel.Noise, "noise", cfg.Channel.Noise, "depolarizing probability p (QBER p/2)")
	fs.Float64Var(&cfg.Channel.DistanceKM, "distance", cfg.Channel.DistanceKM, "fiber length in km (0.2 dB/km)")
	fs.Float64Var(&cfg.Channel.Eve, "eve", cfg.Channel.Eve, "fraction of qubits an eavesdropper intercepts and resends")
	fs.Float64Var(&cfg.Channel.DarkCount, "dark-count", cfg.Channel.DarkCount, "dark count probability per detector per pulse")
	fs.Float64Var(&cfg.QBERThreshold, "threshold", cfg.QBERThreshold, "abort when the estimated QBER is above this")
	seed := fs.String("seed", "", "make the run reproducible (simulation only)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	m, err := qkd.ParseMode(*mode)
	if err != nil {
		return err
	}
	cfg.Mode = m
	if *seed != "" {
		cfg.Seed = []byte(*seed)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	st, runErr := qkd.RunContext(ctx, cfg)
	if runErr != nil && !errors.Is(runErr, qkd.ErrAborted) {
		return runErr
	}
	if *asJSON {
		out := map[string]any{"stats": st, "aborted": runErr != nil}
		if runErr != nil {
			out["abort_reason"] = runErr.Error()
		}
		if err := printJSON(out); err != nil {
			return err
		}
	} else if err := st.Write(os.Stdout); err != nil {
		return err
	}
	return runErr
}

// qkdCurve plots the secret-key fraction against the QBER and the key
// rate against distance.
func qkdCurve(args []string) error {
	fs := flag.NewFlagSet("qkd curve", flag.ExitOnError)
	out := fs.String("out", "qkd-curve.png", "PNG file to write")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if _, err := curve.WritePNG(ctx, *out, curve.DefaultConfig()); err != nil {
		return err
	}
	fmt.Println("wrote", *out)
	return nil
}

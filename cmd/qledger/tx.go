package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"qledger/api/client"
	"qledger/qkd/session"
)

func runTx(args []string) error {
	return subcommand(args, "tx", map[string]func([]string) error{"submit": txSubmit, "get": txGet}, []string{"submit", "get"})
}

func txSubmit(args []string) error {
	fs := flag.NewFlagSet("tx submit", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	group := fs.Int("group", -1, "group to write to (default: chosen by the server)")
	key := fs.String("key", "", "idempotency key: retries with the same key and payload apply once")
	file := fs.String("file", "", "read the payload from this file ('-' for stdin) instead of the argument")
	secure := fs.Bool("secure", false, "send through the quantum-keyed channel: a QKD key from the key manager plus ML-KEM, AES-GCM envelope")
	kmeURL := fs.String("kme", env("QLEDGER_KME", ""), "key manager URL (with --secure)")
	tlsDir := fs.String("tls-dir", env("QLEDGER_TLS_DIR", ""), "directory with ca.pem and the SAE's certificate (with --secure)")
	sae := fs.String("sae", "client", "this client's SAE ID (with --secure)")
	gatewaySAE := fs.String("gateway-sae", "gateway", "the gateway's SAE ID (with --secure)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: qledger tx submit [flags] PAYLOAD | --file FILE")
		fs.PrintDefaults()
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var payload []byte
	switch {
	case *file == "-":
		payload, err = io.ReadAll(os.Stdin)
	case *file != "":
		payload, err = os.ReadFile(*file)
	case len(pos) == 1:
		payload = []byte(pos[0])
	default:
		fs.Usage()
		return errors.New("tx submit: give one PAYLOAD argument or --file")
	}
	if err != nil {
		return err
	}
	c, err := cf.client()
	if err != nil {
		return err
	}
	opt := client.SubmitOptions{IdempotencyKey: *key}
	if *group >= 0 {
		opt.Group = group
	}
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	start := time.Now()
	var (
		r        client.Receipt
		replayed bool
		via      string
	)
	if *secure {
		if *kmeURL == "" || *tlsDir == "" {
			return errors.New("tx submit --secure needs --kme and --tls-dir")
		}
		kc, err := kmeClient(*kmeURL, *tlsDir, *sae)
		if err != nil {
			return err
		}
		s, err := c.OpenSession(ctx, kc, *sae, *gatewaySAE, session.DefaultConfig())
		if err != nil {
			return err
		}
		via = fmt.Sprintf(" via the quantum-keyed channel (QKD key %s + ML-KEM-768)", s.KeyID)
		r, replayed, err = s.Submit(ctx, payload, opt)
		if err != nil {
			return err
		}
	} else if r, replayed, err = c.Submit(ctx, payload, opt); err != nil {
		return err
	}
	if cf.json {
		return printJSON(r)
	}
	note := ""
	if replayed {
		note = " (replayed: committed earlier under this idempotency key)"
	}
	fmt.Printf("committed %s\n  group %d  height %d  index %d  in %s%s%s\n", r.ID, r.Group, r.Height, r.Index, time.Since(start).Round(time.Microsecond), note, via)
	return nil
}

func txGet(args []string) error {
	fs := flag.NewFlagSet("tx get", flag.ExitOnError)
	var cf clientFlags
	cf.register(fs)
	level := fs.String("level", "", "read consistency: stale, default or linearizable")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return errors.New("usage: qledger tx get [flags] ID")
	}
	c, ctx, cancel, err := cf.connect(1)
	if err != nil {
		return err
	}
	defer cancel()
	tx, err := c.Tx(ctx, pos[0], client.Level(*level))
	if err != nil {
		return err
	}
	head, err := c.Head(ctx, tx.Group, client.Level(*level))
	if err != nil {
		return err
	}
	verr := client.VerifyTx(tx)
	if cf.json {
		out := map[string]any{"tx": tx, "verified": verr == nil}
		if verr != nil {
			out["verify_error"] = verr.Error()
		}
		if err := printJSON(out); err != nil {
			return err
		}
		return verr
	}
	fmt.Printf("transaction %s\n  group %d  height %d  index %d\n  kind %s  nonce %s\n", tx.ID, tx.Group, tx.Height, tx.Index, tx.Tx.Kind, tx.Tx.Nonce)
	if tx.Tx.IdempotencyKey != "" {
		fmt.Printf("  idempotency key %q\n", tx.Tx.IdempotencyKey)
	}
	fmt.Printf("  payload (%d bytes): %s\n", len(tx.Tx.Payload), printable(tx.Tx.Payload))
	fmt.Printf("  leaf %s\n  proof: leaf %d of %d, %d hashes, root %s\n", tx.LeafHash, tx.Proof.LeafIndex, tx.Proof.TreeSize, len(tx.Proof.Hashes), tx.Proof.Root)
	if verr != nil {
		fmt.Printf("  inclusion proof: FAILED: %v\n", verr)
		return verr
	}
	fmt.Printf("  inclusion proof: verified here\n")
	if head.LogSize == tx.Proof.TreeSize && head.LogRoot == tx.Proof.Root {
		fmt.Printf("  root matches head %d of group %d\n", head.Height, head.Group)
	}
	return nil
}

func printable(b []byte) string {
	const max = 200
	s := b
	if len(s) > max {
		s = s[:max]
	}
	for _, c := range s {
		if c < 0x20 && c != '\n' && c != '\t' || c > 0x7e {
			return fmt.Sprintf("%x", s)
		}
	}
	if len(b) > max {
		return string(s) + "…"
	}
	return string(s)
}

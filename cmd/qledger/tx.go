package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"qledger/api/client"
	"qledger/qkd/kme"
	"qledger/qkd/session"
)

func (a *app) txCmd() *cobra.Command {
	return a.clientGroup(group("tx", "submit | get transactions", a.txSubmitCmd(), a.txGetCmd()))
}

// submitOptions are the flags of tx submit.
type submitOptions struct {
	group                        int
	key, file                    string
	secure                       bool
	kme, tlsDir, sae, gatewaySAE string
}

func (a *app) txSubmitCmd() *cobra.Command {
	var o submitOptions
	cmd := &cobra.Command{
		Use:   "submit PAYLOAD | --file FILE",
		Short: "commit a transaction",
		Args:  argsUsage(0, 1, "usage: qledger tx submit [flags] PAYLOAD | --file FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			payload, err := a.payload(o.file, args)
			if err != nil {
				return err
			}
			return a.txSubmit(payload, o)
		},
	}
	fs := cmd.Flags()
	fs.IntVar(&o.group, "group", -1, "group to write to (default: chosen by the server)")
	fs.StringVar(&o.key, "key", "", "idempotency key: retries with the same key and payload apply once")
	fs.StringVar(&o.file, "file", "", "read the payload from this file ('-' for stdin) instead of the argument")
	fs.BoolVar(&o.secure, "secure", false, "send through the quantum-keyed channel: a QKD key from the key manager plus ML-KEM, AES-GCM envelope")
	fs.StringVar(&o.kme, "kme", "", "key manager URL (with --secure)")
	fs.StringVar(&o.tlsDir, "tls-dir", "", "directory with ca.pem and the SAE's certificate (with --secure)")
	fs.StringVar(&o.sae, "sae", "client", "this client's SAE ID (with --secure)")
	fs.StringVar(&o.gatewaySAE, "gateway-sae", "gateway", "the gateway's SAE ID (with --secure)")
	bindEnv(fs, "kme", "QLEDGER_KME")
	bindEnv(fs, "tls-dir", "QLEDGER_TLS_DIR")
	return cmd
}

// payload is the transaction's payload: the file ("-": stdin), or else
// the one argument.
func (a *app) payload(file string, args []string) ([]byte, error) {
	switch {
	case file == "-":
		return io.ReadAll(a.stdin)
	case file != "":
		return os.ReadFile(file)
	case len(args) == 1:
		return []byte(args[0]), nil
	}
	return nil, usageErrorf("tx submit: give one PAYLOAD argument or --file")
}

func (a *app) txSubmit(payload []byte, o submitOptions) error {
	c, err := a.client.client()
	if err != nil {
		return err
	}
	opt := client.SubmitOptions{IdempotencyKey: o.key}
	if o.group >= 0 {
		opt.Group = &o.group
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.client.timeout)
	defer cancel()
	start := time.Now()
	var (
		r        client.Receipt
		replayed bool
		via      string
	)
	if o.secure {
		if r, replayed, via, err = a.submitSealed(ctx, c, payload, opt, o); err != nil {
			return err
		}
	} else if r, replayed, err = c.Submit(ctx, payload, opt); err != nil {
		return err
	}
	if a.out.JSON() {
		return a.printJSON(r)
	}
	note := ""
	if replayed {
		note = " (replayed: committed earlier under this idempotency key)"
	}
	fmt.Fprintf(a.stdout, "committed %s\n  group %d  height %d  index %d  in %s%s%s\n", r.ID, r.Group, r.Height, r.Index, time.Since(start).Round(time.Microsecond), note, via)
	return nil
}

// submitSealed submits through the quantum-keyed channel and says so.
func (a *app) submitSealed(ctx context.Context, c *client.Client, payload []byte, opt client.SubmitOptions, o submitOptions) (client.Receipt, bool, string, error) {
	if o.kme == "" || o.tlsDir == "" {
		return client.Receipt{}, false, "", usageErrorf("tx submit --secure needs --kme and --tls-dir")
	}
	kc, err := kme.ClientFor(o.kme, o.tlsDir, o.sae)
	if err != nil {
		return client.Receipt{}, false, "", err
	}
	s, err := c.OpenSession(ctx, kc, o.sae, o.gatewaySAE, session.DefaultConfig())
	if err != nil {
		return client.Receipt{}, false, "", err
	}
	via := fmt.Sprintf(" via the quantum-keyed channel (QKD key %s + ML-KEM-768)", s.KeyID)
	r, replayed, err := s.Submit(ctx, payload, opt)
	return r, replayed, via, err
}

func (a *app) txGetCmd() *cobra.Command {
	var level string
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "a transaction and its inclusion proof, verified here",
		Args:  argsUsage(1, 1, "usage: qledger tx get [flags] ID"),
		RunE:  func(_ *cobra.Command, args []string) error { return a.txGet(args[0], client.Level(level)) },
	}
	cmd.Flags().StringVar(&level, "level", "", "read consistency: stale, default or linearizable")
	return cmd
}

func (a *app) txGet(id string, level client.Level) error {
	c, ctx, cancel, err := a.client.connect(1)
	if err != nil {
		return err
	}
	defer cancel()
	tx, err := c.Tx(ctx, id, level)
	if err != nil {
		return err
	}
	head, err := c.Head(ctx, tx.Group, level)
	if err != nil {
		return err
	}
	verr := client.VerifyTx(tx)
	if a.out.JSON() {
		out := map[string]any{"tx": tx, "verified": verr == nil}
		if verr != nil {
			out["verify_error"] = verr.Error()
		}
		if err := a.printJSON(out); err != nil {
			return err
		}
		return verr
	}
	w := a.stdout
	fmt.Fprintf(w, "transaction %s\n  group %d  height %d  index %d\n  kind %s  nonce %s\n", tx.ID, tx.Group, tx.Height, tx.Index, tx.Tx.Kind, tx.Tx.Nonce)
	if tx.Tx.IdempotencyKey != "" {
		fmt.Fprintf(w, "  idempotency key %q\n", tx.Tx.IdempotencyKey)
	}
	fmt.Fprintf(w, "  payload (%d bytes): %s\n", len(tx.Tx.Payload), printable(tx.Tx.Payload))
	fmt.Fprintf(w, "  leaf %s\n  proof: leaf %d of %d, %d hashes, root %s\n", tx.LeafHash, tx.Proof.LeafIndex, tx.Proof.TreeSize, len(tx.Proof.Hashes), tx.Proof.Root)
	if verr != nil {
		fmt.Fprintf(w, "  inclusion proof: FAILED: %v\n", verr)
		return verr
	}
	fmt.Fprintf(w, "  inclusion proof: verified here\n")
	if head.LogSize == tx.Proof.TreeSize && head.LogRoot == tx.Proof.Root {
		fmt.Fprintf(w, "  root matches head %d of group %d\n", head.Height, head.Group)
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

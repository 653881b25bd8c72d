package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"qledger/api/client"
	"qledger/pki"
)

// env returns the environment variable's value or def.
func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, ok := os.LookupEnv(name); ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func envBool(name string) bool {
	v, _ := strconv.ParseBool(os.Getenv(name))
	return v
}

// clientFlags are the flags of every command that talks to a node's API.
type clientFlags struct {
	addr    string
	json    bool
	timeout time.Duration
	tls     tlsFlags
}

// tlsFlags name a party's certificate, its key and the cluster CA.
type tlsFlags struct {
	ca, cert, key string
}

func (t *tlsFlags) register(fs *flag.FlagSet, who string) {
	fs.StringVar(&t.ca, "ca", env("QLEDGER_CA", ""), "cluster CA certificate (PEM) (env QLEDGER_CA)")
	fs.StringVar(&t.cert, "cert", env("QLEDGER_CERT", ""), who+" certificate chain (PEM); with it, TLS is on (env QLEDGER_CERT)")
	fs.StringVar(&t.key, "cert-key", env("QLEDGER_CERT_KEY", ""), who+" certificate's private key (PEM) (env QLEDGER_CERT_KEY)")
}

// credentials loads the files, or returns nil if no certificate is set.
func (t *tlsFlags) credentials() (*pki.Credentials, error) {
	if t.cert == "" && t.key == "" && t.ca == "" {
		return nil, nil
	}
	if t.cert == "" || t.key == "" || t.ca == "" {
		return nil, errors.New("--ca, --cert and --cert-key go together")
	}
	return pki.LoadCredentials(t.ca, t.cert, t.key)
}

func (c *clientFlags) register(fs *flag.FlagSet) { c.registerAs(fs, "timeout") }

// registerAs is register with the request timeout under another flag name,
// for commands whose own --timeout means something else.
func (c *clientFlags) registerAs(fs *flag.FlagSet, timeoutFlag string) {
	fs.StringVar(&c.addr, "addr", env("QLEDGER_ADDR", "http://127.0.0.1:8080"), "node API address (env QLEDGER_ADDR)")
	c.tls.register(fs, "client")
	fs.BoolVar(&c.json, "json", false, "print JSON for scripts")
	fs.DurationVar(&c.timeout, timeoutFlag, 30*time.Second, "request timeout")
}

func (c *clientFlags) client() (*client.Client, error) {
	creds, err := c.tls.credentials()
	if err != nil {
		return nil, err
	}
	if creds == nil {
		return client.New(c.addr, nil)
	}
	return client.NewTLS(c.addr, creds.ClientConfig(nil))
}

// connect returns the API client and a context bounded by scale times
// --timeout (long operations get a larger scale).
func (c *clientFlags) connect(scale int) (*client.Client, context.Context, context.CancelFunc, error) {
	cl, err := c.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(scale)*c.timeout)
	return cl, ctx, cancel, nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newLogger(level string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "qledger", Level: hclog.LevelFromString(level), Output: os.Stderr})
}

// parse parses a subcommand's flags; interspersed positional arguments
// are allowed before or after the flags.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func subcommand(args []string, name string, subs map[string]func([]string) error, order []string) error {
	if len(args) == 0 || subs[args[0]] == nil {
		return fmt.Errorf("usage: qledger %s %s", name, strings.Join(order, "|"))
	}
	return subs[args[0]](args[1:])
}

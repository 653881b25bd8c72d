package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"qledger/api/client"
	"qledger/pki"
)

// envAnnotation names the environment variable a flag falls back to.
const envAnnotation = "qledger_env"

// bindEnv makes the flag name of fs fall back to the environment variable
// env when the flag is not given. applyEnv reads the variables once,
// after parsing; the flag's help names the variable.
func bindEnv(fs *pflag.FlagSet, name, env string) {
	f := fs.Lookup(name)
	f.Usage += " (env " + env + ")"
	_ = fs.SetAnnotation(name, envAnnotation, []string{env})
}

// applyEnv sets every flag of fs that was not given on the command line
// from its environment variable, if that is set. A value the flag does not
// accept is a usage error naming the variable.
func applyEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		names := f.Annotations[envAnnotation]
		if err != nil || f.Changed || len(names) == 0 {
			return
		}
		if v, ok := os.LookupEnv(names[0]); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageErrorf("%s=%q: %v", names[0], v, e)
			}
		}
	})
	return err
}

// outputFormat is the value of --output: text for people, json for
// scripts.
type outputFormat string

func (o *outputFormat) String() string { return string(*o) }
func (o *outputFormat) Type() string   { return "json|text" }
func (o *outputFormat) Set(s string) error {
	if s != "json" && s != "text" {
		return fmt.Errorf("want json or text, not %q", s)
	}
	*o = outputFormat(s)
	return nil
}

// output is how a command prints its results.
type output struct {
	format outputFormat
	json   bool // --json, the older spelling of --output json
}

// register adds --output and its alias --json to fs.
func (o *output) register(fs *pflag.FlagSet) {
	o.format = "text"
	fs.Var(&o.format, "output", "output format: text, or json for scripts")
	fs.BoolVar(&o.json, "json", false, "print JSON for scripts (same as --output json)")
}

// resolve settles --output and --json into one format; the two may not
// contradict each other.
func (o *output) resolve(fs *pflag.FlagSet) error {
	j, f := fs.Lookup("json"), fs.Lookup("output")
	if j == nil || f == nil || !j.Changed {
		return nil
	}
	want := outputFormat("text")
	if o.json {
		want = "json"
	}
	if f.Changed && o.format != want {
		return usageErrorf("--json=%v contradicts --output %s", o.json, o.format)
	}
	o.format = want
	return nil
}

// JSON reports whether results are printed as JSON.
func (o *output) JSON() bool { return o.format == "json" }

// clientOptions are the flags of every command that talks to a node's API,
// registered once as persistent flags of each command group that does.
type clientOptions struct {
	addr    string
	timeout time.Duration
	tls     tlsFlags
}

// register adds the client flags to fs, the request timeout under the
// name timeoutFlag.
func (c *clientOptions) register(fs *pflag.FlagSet, timeoutFlag string) {
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "node API address: https://host:port, http://host:port, or host:port (https with --cert, else http)")
	bindEnv(fs, "addr", "QLEDGER_ADDR")
	c.tls.register(fs, "client")
	fs.DurationVar(&c.timeout, timeoutFlag, 30*time.Second, "request timeout")
}

// tlsFlags name a party's certificate, its key and the cluster CA.
type tlsFlags struct {
	ca, cert, key string
}

func (t *tlsFlags) register(fs *pflag.FlagSet, who string) {
	fs.StringVar(&t.ca, "ca", "", "cluster CA certificate (PEM)")
	fs.StringVar(&t.cert, "cert", "", who+" certificate chain (PEM); with it, TLS is on")
	fs.StringVar(&t.key, "cert-key", "", who+" certificate's private key (PEM)")
	bindEnv(fs, "ca", "QLEDGER_CA")
	bindEnv(fs, "cert", "QLEDGER_CERT")
	bindEnv(fs, "cert-key", "QLEDGER_CERT_KEY")
}

// credentials loads the files, or returns nil if no certificate is set.
func (t *tlsFlags) credentials() (*pki.Credentials, error) {
	if t.cert == "" && t.key == "" && t.ca == "" {
		return nil, nil
	}
	if t.cert == "" || t.key == "" || t.ca == "" {
		return nil, usageErrorf("--ca, --cert and --cert-key go together")
	}
	return pki.LoadCredentials(t.ca, t.cert, t.key)
}

// client is the API client the options describe. It is the one place a
// command builds its client.
func (c *clientOptions) client() (*client.Client, error) { return c.clientAt(c.addr) }

// clientAt is an API client for another node's address, with the same
// credentials.
func (c *clientOptions) clientAt(addr string) (*client.Client, error) {
	creds, err := c.tls.credentials()
	if err != nil {
		return nil, err
	}
	if creds == nil {
		return client.New(withScheme(addr, "http"), nil)
	}
	return client.NewTLS(withScheme(addr, "https"), creds.ClientConfig(nil))
}

// withScheme is a bare host:port addr with scheme:// in front: HTTPS when
// the caller has a certificate, plain HTTP otherwise. Anything else is
// left as given, for the client to accept or refuse by its own name.
func withScheme(addr, scheme string) string {
	if _, _, err := net.SplitHostPort(addr); err != nil || strings.Contains(addr, "/") {
		return addr
	}
	return scheme + "://" + addr
}

// connect returns the API client and a context bounded by scale times the
// request timeout (long operations get a larger scale).
func (c *clientOptions) connect(scale int) (*client.Client, context.Context, context.CancelFunc, error) {
	cl, err := c.client()
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(scale)*c.timeout)
	return cl, ctx, cancel, nil
}

// clientGroup registers the client and output flags as persistent flags
// of the command group g, so that every subcommand has them.
func (a *app) clientGroup(g *cobra.Command) *cobra.Command {
	a.client.register(g.PersistentFlags(), "timeout")
	a.out.register(g.PersistentFlags())
	return g
}

func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// logOptions are the flags choosing what a long-running command logs
// and how.
type logOptions struct {
	level  string
	format logFormat
}

// register adds --log-level (default level) and --log-format to fs.
func (l *logOptions) register(fs *pflag.FlagSet, level string) {
	fs.StringVar(&l.level, "log-level", level, "log level: trace, debug, info, warn, error, off")
	l.format = "text"
	fs.Var(&l.format, "log-format", "log format: text, or json (one object per line, for log collectors)")
}

// logFormat is the value of --log-format.
type logFormat string

func (f *logFormat) String() string { return string(*f) }
func (f *logFormat) Type() string   { return "text|json" }
func (f *logFormat) Set(s string) error {
	if s != "json" && s != "text" {
		return fmt.Errorf("want text or json, not %q", s)
	}
	*f = logFormat(s)
	return nil
}

// logger is the command's logger, writing to stderr.
func (a *app) logger(l logOptions) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "qledger", Level: hclog.LevelFromString(l.level), Output: a.stderr, JSONFormat: l.format == "json"})
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

// usageError is a command line that cannot be run: an unknown command or
// flag, a bad flag value, a missing required flag or a wrong number of
// arguments. It exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// isUsage reports whether err is a usage error.
func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}

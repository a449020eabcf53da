package ctl

import (
	"errors"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/internal/grpcerr"
)

// Streams are where a command reads and writes.
type Streams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// Options is what every verb shares.
type Options struct {
	Streams

	// Server is the API server address from --server; empty means
	// SKIFF_SERVER, then the config files.
	Server string
	// ConfigPaths are the config files tried in order.
	ConfigPaths []string
	// Namespace is -n; AllNamespaces is -A.
	Namespace     string
	AllNamespaces bool
	// Timeout bounds each request.
	Timeout time.Duration

	// client is made on first use, connected to server.
	client *client.Client
	server string
}

// DefaultOptions returns options with the standard streams and the
// standard config file locations.
func DefaultOptions() *Options {
	return &Options{
		Streams:     Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
		ConfigPaths: clientconfig.DefaultPaths(),
		Timeout:     30 * time.Second,
	}
}

// ServerAddress resolves where the API server is: --server, else
// SKIFF_SERVER, else the first config file that exists.
func (o *Options) ServerAddress() (string, error) {
	return clientconfig.ResolveServer(o.Server, o.ConfigPaths...)
}

// Client returns the API client, connecting on first use. Warnings from
// the server go to ErrOut as "Warning: ...", like kubectl's.
func (o *Options) Client() (*client.Client, error) {
	if o.client != nil {
		return o.client, nil
	}
	addr, err := o.ServerAddress()
	if err != nil {
		return nil, err
	}
	c, err := client.New(client.Config{
		Server:         addr,
		WarningHandler: client.WarningsTo(o.ErrOut),
		Timeout:        o.Timeout,
		UserAgent:      "skiffctl",
	})
	if err != nil {
		return nil, err
	}
	o.client, o.server = c, addr
	return c, nil
}

// Close releases the client.
func (o *Options) Close() {
	if o.client != nil {
		o.client.Close()
		o.client = nil
	}
}

// EffectiveNamespace is the namespace a command works in: -n, else
// "default".
func (o *Options) EffectiveNamespace() string {
	if o.Namespace != "" {
		return o.Namespace
	}
	return "default"
}

// NewCommand returns the skiffctl root command with every verb.
func NewCommand(o *Options) *cobra.Command {
	root := &cobra.Command{
		Use:           "skiffctl",
		Short:         "skiffctl controls a Skiff cluster",
		Long:          "skiffctl controls a Skiff cluster. Its verbs and flags follow kubectl's.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPostRun: func(*cobra.Command, []string) {
			o.Close()
		},
	}
	root.SetIn(o.In)
	root.SetOut(o.Out)
	root.SetErr(o.ErrOut)
	f := root.PersistentFlags()
	f.StringVar(&o.Server, "server", o.Server, "address of the API server (host:port); default $SKIFF_SERVER, then ~/.skiff/config, then /etc/skiff/skiffctl.yaml")
	f.StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "the namespace to work in (default \"default\")")
	f.DurationVar(&o.Timeout, "request-timeout", o.Timeout, "how long one request may take")

	for _, newCmd := range verbs {
		cmd := newCmd(o)
		if run := cmd.RunE; run != nil {
			cmd.RunE = func(cmd *cobra.Command, args []string) error {
				return o.nameServer(run(cmd, args))
			}
		}
		root.AddCommand(cmd)
	}
	return root
}

// nameServer adds the address of the server to a verb's errors, so that
// FormatError can name it when it could not be reached, as kubectl does.
func (o *Options) nameServer(err error) error {
	if err == nil || o.server == "" {
		return err
	}
	if list, ok := err.(errorList); ok {
		named := make(errorList, len(list))
		for i, e := range list {
			named[i] = o.nameServer(e)
		}
		return named
	}
	var unreachable *grpcerr.UnreachableError
	if !errors.As(err, &unreachable) {
		return err
	}
	return &serverError{server: o.server, err: err}
}

// verbs lists the constructors of every verb; each verb's file adds
// itself here in an init function, so that adding a verb touches one file.
var verbs []func(*Options) *cobra.Command

func register(newCmd func(*Options) *cobra.Command) { verbs = append(verbs, newCmd) }

package ctl

import (
	"errors"
	"io"
	"os"
	"strings"
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

	// Flags are the connection flags, kubectl's: --kubeconfig, --server,
	// --certificate-authority, --client-certificate, --client-key,
	// --token, --insecure-skip-tls-verify.
	clientconfig.Flags
	// ConfigPaths are the kubeconfig files tried in order when neither
	// --kubeconfig nor $KUBECONFIG names one.
	ConfigPaths []string
	// Namespace is -n; AllNamespaces is -A.
	Namespace     string
	AllNamespaces bool
	// Timeout bounds each request.
	Timeout time.Duration

	// client is made on first use, connected to server (host:port, as
	// the errors of a server that cannot be reached name it).
	client *client.Client
	server string
}

// DefaultOptions returns options with the standard streams and the
// standard kubeconfig locations.
func DefaultOptions() *Options {
	return &Options{
		Streams:     Streams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
		ConfigPaths: clientconfig.DefaultPaths(),
		Timeout:     30 * time.Second,
	}
}

// Client returns the API client, connecting on first use with the
// credentials the connection flags and the kubeconfig give. Warnings
// from the server go to ErrOut as "Warning: ...", like kubectl's.
func (o *Options) Client() (*client.Client, error) {
	if o.client != nil {
		return o.client, nil
	}
	cfg, _, err := o.Flags.Resolve(o.ConfigPaths...)
	if err != nil {
		return nil, err
	}
	cfg.WarningHandler = client.WarningsTo(o.ErrOut)
	cfg.Timeout = o.Timeout
	cfg.UserAgent = "skiffctl"
	c, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	o.client, o.server = c, strings.TrimPrefix(cfg.Server, "https://")
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
	o.Flags.AddFlags(f)
	f.StringVarP(&o.Namespace, "namespace", "n", o.Namespace, "the namespace to work in (default \"default\")")
	f.DurationVar(&o.Timeout, "request-timeout", o.Timeout, "how long one request may take")

	for _, newCmd := range verbs {
		cmd := newCmd(o)
		o.nameServerIn(cmd)
		root.AddCommand(cmd)
	}
	return root
}

// nameServerIn has cmd's errors, and those of its subcommands (create
// secret generic, ...), name the server.
func (o *Options) nameServerIn(cmd *cobra.Command) {
	if run := cmd.RunE; run != nil {
		cmd.RunE = func(cmd *cobra.Command, args []string) error {
			return o.nameServer(run(cmd, args))
		}
	}
	for _, sub := range cmd.Commands() {
		o.nameServerIn(sub)
	}
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

// verbs lists the constructors of every verb skiffctl has, in one place:
// adding a verb is a file of its own and a line here.
var verbs = []func(*Options) *cobra.Command{
	newAPIResourcesCommand, // api-resources
	newApplyCommand,        // apply -f
	newCreateCommand,       // create -f, create configmap|secret|job|cronjob
	newDeleteCommand,       // delete
	newDescribeCommand,     // describe
	newExecCommand,         // exec
	newGetCommand,          // get
	newLogsCommand,         // logs
	newRolloutCommand,      // rollout status|history|undo|restart|pause|resume
	newScaleCommand,        // scale
	newVersionCommand,      // version
}

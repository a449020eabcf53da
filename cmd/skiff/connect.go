package main

import (
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/clientconfig"
)

// connection holds the connection flags of a command that talks to the
// API server as a client (--kubeconfig, --server, --token, ...), as
// kubectl has them.
type connection struct {
	flags clientconfig.Flags
}

func (c *connection) addFlags(cmd *cobra.Command) {
	c.flags.AddFlags(cmd.Flags())
}

// resolve finds the credentials: the flags, $KUBECONFIG, then the files
// skiff server writes (~/.skiff/config, /etc/skiff/admin.kubeconfig).
func (c *connection) resolve(userAgent string) (client.Config, error) {
	cfg, _, err := c.flags.Resolve(clientconfig.DefaultPaths()...)
	if err != nil {
		return client.Config{}, err
	}
	cfg.UserAgent = userAgent
	return cfg, nil
}

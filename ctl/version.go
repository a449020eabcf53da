package ctl

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/version"
)

func newVersionCommand(o *Options) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client and server version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version.Get()
			fmt.Fprintf(o.Out, "Client Version: %s\n", v.GitVersion)
			if clientOnly {
				return nil
			}
			c, err := o.Client()
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), o.Timeout)
			defer cancel()
			sv, err := c.Version(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(o.Out, "Server Version: %s\n", sv.GitVersion)
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print the client version only")
	return cmd
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/simnodes"
)

// newSimNodesCommand builds "skiff simnodes": simulated nodes for testing
// the control plane at scale, like kwok.
func newSimNodesCommand() *cobra.Command {
	cfg := simnodes.DefaultConfig()
	cmd := &cobra.Command{
		Use:   "simnodes",
		Short: "Register simulated nodes that heartbeat and run their pods without containers (for scale tests)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			server, err := clientconfig.ResolveServer(cfg.Server, clientconfig.DefaultPaths()...)
			if err != nil {
				return err
			}
			cfg.Server = server
			if err := cfg.Validate(); err != nil {
				return err
			}
			return simnodes.Run(cmd.Context(), cfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}

package main

import (
	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/simnodes"
)

// newSimNodesCommand builds "skiff simnodes": simulated nodes for testing
// the control plane at scale, like kwok.
func newSimNodesCommand() *cobra.Command {
	cfg := simnodes.DefaultConfig()
	var conn connection
	cmd := &cobra.Command{
		Use:   "simnodes",
		Short: "Register simulated nodes that heartbeat and run their pods without containers (for scale tests)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := conn.resolve("simnodes")
			if err != nil {
				return err
			}
			cfg.Connection = c
			if err := cfg.Validate(); err != nil {
				return err
			}
			return simnodes.Run(cmd.Context(), cfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	conn.addFlags(cmd)
	return cmd
}

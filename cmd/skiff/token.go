package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiffdev/skiff/internal/client"
)

// newTokenCommand builds "skiff token": the join tokens with which
// machines join the cluster (skiff agent --token). It talks to the API
// server as the admin (the admin kubeconfig by default).
func newTokenCommand() *cobra.Command {
	var conn connection
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage join tokens, with which machines join the cluster",
	}
	conn.flags.AddFlags(cmd.PersistentFlags())
	connect := func() (*client.Client, error) {
		cfg, err := conn.resolve("skiff-token")
		if err != nil {
			return nil, err
		}
		return client.New(cfg)
	}

	var ttl time.Duration
	var description string
	create := &cobra.Command{
		Use:   "create",
		Short: "Make a join token and print it (the only time its secret is shown)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl < 0 {
				return fmt.Errorf("--ttl %v: must not be negative", ttl)
			}
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			tok, err := c.CreateToken(cmd.Context(), ttl, description)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok.GetToken())
			return nil
		},
	}
	create.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid (0: it never expires)")
	create.Flags().StringVar(&description, "description", "", "what the token is for, shown by skiff token list")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the join tokens (without their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			toks, err := c.ListTokens(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "ID\tTTL\tEXPIRES\tDESCRIPTION")
			now := time.Now()
			for _, t := range toks {
				ttl, expires := "<forever>", "<never>"
				if t.GetExpires() != 0 {
					exp := time.Unix(t.GetExpires(), 0)
					expires = exp.UTC().Format(time.RFC3339)
					ttl = "<expired>"
					if left := exp.Sub(now); left > 0 {
						ttl = duration.HumanDuration(left)
					}
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", t.GetId(), ttl, expires, t.GetDescription())
			}
			return w.Flush()
		},
	}

	del := &cobra.Command{
		Use:   "delete ID...",
		Short: "Delete join tokens: machines can no longer join with them (nodes that joined stay)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			for _, id := range args {
				if err := c.DeleteToken(cmd.Context(), id); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "token %q deleted\n", id)
			}
			return nil
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

package ctl

import (
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/scheme"
)

func newAPIResourcesCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "api-resources",
		Short: "Print the resources the server serves",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			w := tabwriter.NewWriter(o.Out, 0, 8, 3, ' ', 0)
			w.Write([]byte("NAME\tSHORTNAMES\tAPIVERSION\tNAMESPACED\tKIND\n"))
			for _, r := range scheme.Resources {
				gv := r.Version
				if r.Group != "" {
					gv = r.Group + "/" + r.Version
				}
				ns := "false"
				if r.Namespaced {
					ns = "true"
				}
				w.Write([]byte(strings.Join([]string{r.Resource, strings.Join(r.ShortNames, ","), gv, ns, r.Kind}, "\t") + "\n"))
			}
			return w.Flush()
		},
	}
}

package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/kubelet/images"
)

// newImagesCommand builds "skiff images": the node's image store, for a
// node with no registry to pull from (import) and for housekeeping.
func newImagesCommand() *cobra.Command {
	rootDir := "/var/lib/skiff"
	var insecure []string
	open := func() (*images.Store, error) {
		return images.Open(filepath.Join(rootDir, "images"), images.Options{InsecureRegistries: insecure})
	}
	cmd := &cobra.Command{
		Use:   "images",
		Short: "Manage this node's image store (import, pull, list, remove)",
	}
	cmd.PersistentFlags().StringVar(&rootDir, "root-dir", rootDir, "the node's state directory; images live in ROOT-DIR/images")
	cmd.PersistentFlags().StringSliceVar(&insecure, "insecure-registry", nil, "registries reached over plain HTTP (host[:port])")

	cmd.AddCommand(&cobra.Command{
		Use:   "import FILE.tar",
		Short: "Load a `docker save` or OCI archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			imgs, err := s.Import(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			for _, img := range imgs {
				fmt.Fprintf(cmd.OutOrStdout(), "imported %s (%s)\n", img.Ref, img.Digest)
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "pull REFERENCE",
		Short: "Pull an image from its registry",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			img, err := s.Pull(cmd.Context(), args[0], "Always")
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pulled %s (%s)\n", img.Ref, img.Digest)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the stored images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			imgs, err := s.List()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "IMAGE\tDIGEST\tLAYERS")
			for _, img := range imgs {
				fmt.Fprintf(w, "%s\t%s\t%d\n", img.Ref, shortDigest(img.Digest), len(img.LayerDirs))
			}
			return w.Flush()
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "remove REFERENCE...",
		Short: "Remove images; layers no other image uses are deleted",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open()
			if err != nil {
				return err
			}
			for _, ref := range args {
				if err := s.Remove(ref); err != nil {
					return fmt.Errorf("removing %s: %w", ref, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", ref)
			}
			return nil
		},
	})
	return cmd
}

// shortDigest is the first 12 hex digits of a digest, as docker prints.
func shortDigest(d string) string {
	_, hex, ok := strings.Cut(d, ":")
	if ok && len(hex) > 12 {
		return hex[:12]
	}
	return d
}

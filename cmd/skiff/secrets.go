package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/skiffdev/skiff/internal/client"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// newSecretsEncryptCommand builds "skiff secrets-encrypt": the keys that
// encrypt Secrets at rest. Both subcommands go through the running API
// server as the admin: only the server knows which key its writes use, so
// only it can switch keys without a moment where a write uses a key that
// is about to go, and its re-writes are compare-and-swaps like any other
// update, so a concurrent writer is never overwritten.
func newSecretsEncryptCommand() *cobra.Command {
	var conn connection
	cmd := &cobra.Command{
		Use:   "secrets-encrypt",
		Short: "Show and rotate the keys that encrypt Secrets in etcd",
		Long: `Secrets are encrypted with AES-256-GCM before they are written to etcd, under
keys the API server keeps in DATA-DIR/tls/encryption-keys.json (made at the
first start). These commands ask the running server, as the admin.`,
	}
	conn.flags.AddFlags(cmd.PersistentFlags())
	connect := func() (*client.Client, error) {
		cfg, err := conn.resolve("skiff-secrets-encrypt")
		if err != nil {
			return nil, err
		}
		return client.New(cfg)
	}

	status := &cobra.Command{
		Use:   "status",
		Short: "List the keys, which one encrypts, and how many stored objects each encrypts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.EncryptionStatus(cmd.Context())
			if err != nil {
				return err
			}
			printEncryptionStatus(cmd, st)
			return nil
		},
	}

	var progressEvery int
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Encrypt with a new key, re-encrypt every Secret with it, then retire the old keys",
		Long: `Rotate makes a new key and has the server encrypt every write with it at once.
It then writes every stored Secret again (unchanged, with a compare-and-swap on
its resourceVersion, retried on conflict) so that the new key encrypts it,
checks that no stored value names an older key, and only then takes the older
keys out of the key file. Secrets stay readable throughout, and the cluster
keeps running. Each re-written Secret is a MODIFIED event for its watchers.

If the rotation is interrupted (Ctrl-C, the server stopped), every key stays
in the file and everything still reads; run rotate again to finish.

Back up the key file after a rotation: without it the Secrets in etcd (and
in any etcd backup made after the rotation) cannot be read.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if progressEvery < 1 {
				return fmt.Errorf("--progress-every %d: must be at least 1", progressEvery)
			}
			c, err := connect()
			if err != nil {
				return err
			}
			defer c.Close()
			out := cmd.OutOrStdout()
			first := true
			return c.RotateEncryptionKey(cmd.Context(), progressEvery, func(p *skiffv1.RotateEncryptionKeyProgress) {
				elapsed := (time.Duration(p.GetElapsedMilliseconds()) * time.Millisecond).Round(time.Millisecond)
				switch {
				case first:
					first = false
					old := strings.Join(p.GetOldKeys(), ", ")
					fmt.Fprintf(out, "new key %s encrypts every write from now on; %s retired once every object is re-encrypted\n", p.GetNewKey(), old)
				case p.GetDone():
					fmt.Fprintf(out, "done in %v: %d objects, %d re-encrypted with %s; retired %s (out of the key file now, out of the server's memory in %v); back up the key file now\n",
						elapsed, p.GetTotal(), p.GetRewritten(), p.GetNewKey(), strings.Join(p.GetOldKeys(), ", "), time.Duration(p.GetGraceSeconds())*time.Second)
				default:
					fmt.Fprintf(out, "%d/%d objects checked, %d re-encrypted (%v)\n", p.GetChecked(), p.GetTotal(), p.GetRewritten(), elapsed)
				}
			})
		},
	}
	rotate.Flags().IntVar(&progressEvery, "progress-every", 100, "print a progress line every this many objects")
	cmd.AddCommand(status, rotate)
	return cmd
}

func printEncryptionStatus(cmd *cobra.Command, st *skiffv1.EncryptionStatusResponse) {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Encrypted resources: %s\n", strings.Join(st.GetResources(), ", "))
	fmt.Fprintf(out, "Provider:            %s (AES-256-GCM)\n", st.GetProvider())
	fmt.Fprintf(out, "Key file:            %s (on the server's machine)\n", st.GetKeyFile())
	fmt.Fprintf(out, "Unencrypted objects: %d\n\n", st.GetUnencrypted())
	w := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "KEY\tUSE\tCREATED\tOBJECTS")
	for _, k := range st.GetKeys() {
		use, created := "decrypt", "<unknown>"
		switch {
		case k.GetMissing():
			use = "<missing: these objects cannot be read>"
		case k.GetWrite():
			use = "encrypt, decrypt"
		}
		if k.GetCreated() != 0 {
			created = time.Unix(k.GetCreated(), 0).UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%d\n", k.GetName(), use, created, k.GetObjects())
	}
	w.Flush()
}

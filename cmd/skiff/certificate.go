package main

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/clientconfig"
	"github.com/skiffdev/skiff/internal/join"
	"github.com/skiffdev/skiff/internal/pki"
)

// newCertificateCommand builds "skiff certificate": the certificates of
// this machine, server and node.
func newCertificateCommand() *cobra.Command {
	dataDir, rootDir := "/var/lib/skiff", ""
	var kubeconfigs []string
	cmd := &cobra.Command{
		Use:   "certificate",
		Short: "Check and renew this machine's certificates",
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", dataDir, "the server's state directory (DATA-DIR/tls holds the CA and the server's certificates)")
	cmd.PersistentFlags().StringVar(&rootDir, "root-dir", rootDir, "the node's state directory, holding kubelet.kubeconfig (default: --data-dir)")

	check := &cobra.Command{
		Use:   "check",
		Short: "List every certificate of this machine with its expiry",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rootDir == "" {
				rootDir = dataDir
			}
			files := []string{
				filepath.Join(apiserver.TLSDir(dataDir), pki.CACertFile),
				filepath.Join(apiserver.TLSDir(dataDir), "kubelet-serving-ca", pki.CACertFile),
				filepath.Join(apiserver.TLSDir(dataDir), "server.crt"),
				filepath.Join(apiserver.TLSDir(dataDir), "kubelet-client.crt"),
				filepath.Join(rootDir, join.KubeconfigFile),
				filepath.Join(rootDir, join.ServingCertFile),
			}
			files = append(files, kubeconfigs...)
			statuses := pki.CheckFiles(files, kubeconfigCert)
			if len(statuses) == 0 {
				return fmt.Errorf("no certificates in %s or %s", dataDir, rootDir)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(w, "CERTIFICATE\tSUBJECT\tEXPIRES\tRESIDUAL TIME\tRENEWS AFTER")
			now := time.Now()
			for _, st := range statuses {
				if st.Err != nil {
					fmt.Fprintf(w, "%s\t<%v>\t\t\t\n", st.Path, st.Err)
					continue
				}
				cert := st.Cert
				left := "<expired>"
				if d := cert.NotAfter.Sub(now); d > 0 {
					left = duration.HumanDuration(d)
				}
				renews := pki.RenewAt(cert).UTC().Format(time.RFC3339)
				if cert.IsCA {
					renews = "<never: a new CA is made by hand>"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", st.Path, cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339), left, renews)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			return nil
		},
	}
	check.Flags().StringSliceVar(&kubeconfigs, "kubeconfig", []string{clientconfig.AdminPath}, "kubeconfig files whose client certificates to list too")

	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Renew this machine's leaf certificates now (a running server or agent uses them within seconds)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rootDir == "" {
				rootDir = dataDir
			}
			did := false
			if _, err := os.Stat(filepath.Join(apiserver.TLSDir(dataDir), pki.CAKeyFile)); err == nil {
				paths, err := apiserver.RotateCertificates(dataDir, 0)
				for _, p := range paths {
					fmt.Fprintf(cmd.OutOrStdout(), "renewed %s\n", p)
				}
				if err != nil {
					return err
				}
				did = true
			}
			if _, err := os.Stat(filepath.Join(rootDir, join.KubeconfigFile)); err == nil {
				node, err := join.Rotate(cmd.Context(), rootDir)
				if err != nil {
					return fmt.Errorf("renewing node %q's certificates: %w", node, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "renewed node %q's certificates in %s\n", node, rootDir)
				did = true
			}
			if !did {
				return fmt.Errorf("no server certificates in %s and no node credentials in %s", apiserver.TLSDir(dataDir), rootDir)
			}
			return nil
		},
	}
	cmd.AddCommand(check, rotate)
	return cmd
}

// kubeconfigCert reads the client certificate of a kubeconfig.
func kubeconfigCert(path string) ([]byte, error) {
	creds, err := clientconfig.ReadCredentials(path)
	return creds.CertPEM, err
}

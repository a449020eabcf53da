// Package clientconfig finds the credentials a Skiff client connects
// with. They live in kubeconfig files, the format kubectl reads, so that
// one file serves skiffctl now and kubectl later.
//
// Who does what:
//
//  1. `skiff server` writes an admin kubeconfig with WriteKubeconfig:
//     AdminPath when it runs as root, UserPath otherwise. The file embeds
//     the cluster CA, a client certificate and its key (or a token), is
//     private to its owner (0600), and is replaced whole by a rename.
//  2. A client binary registers Flags on its command line (the connection
//     flags of kubectl, under kubectl's names) and calls Flags.Resolve
//     once, with DefaultPaths. Resolve reads the file named by
//     --kubeconfig, else by $KUBECONFIG, else the first of the paths that
//     exists, and lays the flags that were given over its current context.
//  3. The client.Config that comes out is handed to client.New.
//
// Skiff reads the part of a kubeconfig its API server understands: the
// cluster's server (https only), its CA or insecure-skip-tls-verify, its
// tls-server-name, and the user's client certificate and key or bearer
// token (inline or in files; relative file names are relative to the
// kubeconfig's directory, as in kubectl). A user that asks for anything
// else (an exec plugin, an auth provider, basic auth, impersonation) is an
// error rather than a connection made without it. Where kubectl merges
// every file of $KUBECONFIG, Skiff reads the first that exists.
package clientconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/yaml"

	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/pki"
)

// AdminPath is the admin kubeconfig skiff server writes as root.
const AdminPath = "/etc/skiff/admin.kubeconfig"

// EnvKubeconfig is the environment variable that names kubeconfig files,
// separated by colons, as for kubectl.
const EnvKubeconfig = "KUBECONFIG"

// UserPath is the user's own kubeconfig, ~/.skiff/config, or "" when
// there is no home directory. skiff server writes it when it does not run
// as root.
func UserPath() string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return ""
	}
	return filepath.Join(home, ".skiff", "config")
}

// DefaultPaths are the kubeconfig files clients read, in order: the
// user's own, then the admin's.
func DefaultPaths() []string { return []string{UserPath(), AdminPath} }

// Flags are the connection flags of every client command, named as
// kubectl names them. The zero value reads the kubeconfig files alone;
// a flag given wins over what the file says.
type Flags struct {
	// Kubeconfig is the file to read instead of $KUBECONFIG and the
	// default paths.
	Kubeconfig string
	// Server is the API server, https://host:port or host:port.
	Server string
	// CertificateAuthority is a PEM file of the CA that signed the
	// server's certificate. It replaces the kubeconfig's CA and its
	// insecure-skip-tls-verify.
	CertificateAuthority string
	// ClientCertificate and ClientKey are PEM files of a client
	// certificate and its key.
	ClientCertificate, ClientKey string
	// Token is a bearer token sent with every request.
	Token string
	// InsecureSkipTLSVerify accepts any server certificate. It replaces
	// the kubeconfig's CA.
	InsecureSkipTLSVerify bool
}

// AddFlags registers the flags on fs.
func (f *Flags) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&f.Kubeconfig, "kubeconfig", f.Kubeconfig, "the kubeconfig file to read (default: the first that exists of $"+EnvKubeconfig+", ~/.skiff/config, "+AdminPath+")")
	fs.StringVarP(&f.Server, "server", "s", f.Server, "the API server to talk to, https://host:port, instead of the kubeconfig's")
	fs.StringVar(&f.CertificateAuthority, "certificate-authority", f.CertificateAuthority, "a PEM file of the CA to check the server's certificate against")
	fs.StringVar(&f.ClientCertificate, "client-certificate", f.ClientCertificate, "a PEM file of the client certificate to present to the server")
	fs.StringVar(&f.ClientKey, "client-key", f.ClientKey, "a PEM file of the client certificate's key")
	fs.StringVar(&f.Token, "token", f.Token, "a bearer token to authenticate to the API server with")
	fs.BoolVar(&f.InsecureSkipTLSVerify, "insecure-skip-tls-verify", f.InsecureSkipTLSVerify, "accept any server certificate, unchecked: anyone between the client and the server could then read and change the traffic")
}

// Resolve finds the credentials: the file named by --kubeconfig, else the
// first existing file of $KUBECONFIG (when it is set, the paths are not
// tried, as in kubectl), else the first of paths that exists; then it
// lays the flags given over the file's current context. With no file at
// all the flags alone must name the server. It returns the client
// configuration and the file read, "" if none.
//
// Resolve reads $KUBECONFIG: only binaries call it.
func (f Flags) Resolve(paths ...string) (client.Config, string, error) {
	path, tried, fromEnv, err := f.find(paths)
	if err != nil {
		return client.Config{}, path, err
	}
	var sel selection
	if path != "" {
		kc, err := readKubeconfig(path)
		if err != nil {
			return client.Config{}, path, err
		}
		if sel, err = currentContext(kc); err != nil {
			return client.Config{}, path, fmt.Errorf("%s: %w", path, err)
		}
	} else if f.Server == "" {
		return client.Config{}, "", noConfigError(tried, fromEnv)
	}
	if err := f.apply(&sel); err != nil {
		return client.Config{}, path, err
	}
	cfg, err := sel.clientConfig()
	if err != nil && path != "" {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return cfg, path, err
}

// LoadKubeconfig reads one kubeconfig file's current context into a
// client.Config.
func LoadKubeconfig(path string) (client.Config, error) {
	cfg, _, err := Flags{Kubeconfig: path}.Resolve()
	return cfg, err
}

// find says which file to read. tried lists the files looked for, and
// fromEnv says whether $KUBECONFIG named them, for the error of none found.
func (f Flags) find(paths []string) (path string, tried []string, fromEnv bool, err error) {
	if f.Kubeconfig != "" {
		return f.Kubeconfig, nil, false, nil
	}
	if env := os.Getenv(EnvKubeconfig); env != "" {
		paths, fromEnv = filepath.SplitList(env), true
	}
	for _, p := range paths {
		if p == "" {
			continue
		}
		tried = append(tried, p)
		_, err := os.Stat(p)
		if err == nil {
			return p, tried, fromEnv, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			// Most likely the admin kubeconfig of another user (root):
			// better said than passed over for a confusing error later.
			return p, tried, fromEnv, readError(err)
		}
	}
	return "", tried, fromEnv, nil
}

func noConfigError(tried []string, fromEnv bool) error {
	where := "no kubeconfig found"
	switch {
	case fromEnv:
		where += " ($" + EnvKubeconfig + " names " + strings.Join(tried, ", ") + ", and none exists)"
	case len(tried) > 0:
		where += " (looked for " + strings.Join(tried, ", ") + ")"
	}
	return fmt.Errorf("%s and no --server given: use --kubeconfig, set %s, or run `skiff server`, which writes %s as root and ~/.skiff/config otherwise", where, EnvKubeconfig, AdminPath)
}

// readError adds the way out to a file that cannot be read for want of
// permission.
func readError(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("reading kubeconfig: %w (run as its owner, or use --kubeconfig with a file of your own)", err)
	}
	return fmt.Errorf("reading kubeconfig: %w", err)
}

// readKubeconfig reads and parses a kubeconfig file, and resolves its
// relative file names against the file's directory.
func readKubeconfig(path string) (*clientcmdapi.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(err)
	}
	if isOldConfig(data) {
		return nil, fmt.Errorf("%s is a client config from before Skiff used TLS (it names only a server): remove it; skiff server now writes an admin kubeconfig to %s (as root) or ~/.skiff/config", path, AdminPath)
	}
	kc, err := clientcmd.Load(data)
	if err != nil {
		return nil, fmt.Errorf("%s: not a kubeconfig: %w", path, err)
	}
	dir := filepath.Dir(path)
	for _, c := range kc.Clusters {
		c.CertificateAuthority = relativeTo(dir, c.CertificateAuthority)
	}
	for _, u := range kc.AuthInfos {
		u.ClientCertificate = relativeTo(dir, u.ClientCertificate)
		u.ClientKey = relativeTo(dir, u.ClientKey)
		u.TokenFile = relativeTo(dir, u.TokenFile)
	}
	return kc, nil
}

func relativeTo(dir, name string) string {
	if name == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(dir, name)
}

// isOldConfig recognises the file skiff server wrote before the API was
// served over TLS: YAML holding a server address and nothing of a
// kubeconfig.
func isOldConfig(data []byte) bool {
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		return false
	}
	_, server := m["server"]
	_, apiVersion := m["apiVersion"]
	_, clusters := m["clusters"]
	return server && !apiVersion && !clusters
}

// selection is the cluster and user of one context, with their names for
// error messages (empty when they come from flags alone).
type selection struct {
	clusterName, userName string
	cluster               clientcmdapi.Cluster
	user                  clientcmdapi.AuthInfo
}

// currentContext picks the current context's cluster and user.
func currentContext(kc *clientcmdapi.Config) (selection, error) {
	name := kc.CurrentContext
	if name == "" {
		return selection{}, errors.New("current-context is not set")
	}
	ctx, ok := kc.Contexts[name]
	if !ok {
		return selection{}, fmt.Errorf("current-context %q does not exist", name)
	}
	sel := selection{clusterName: ctx.Cluster, userName: ctx.AuthInfo}
	cluster, ok := kc.Clusters[ctx.Cluster]
	if !ok {
		return selection{}, fmt.Errorf("context %q: cluster %q does not exist", name, ctx.Cluster)
	}
	sel.cluster = *cluster
	// A context without a user connects without credentials, as in
	// kubectl; one that names a user that is not there is a mistake.
	if ctx.AuthInfo != "" {
		user, ok := kc.AuthInfos[ctx.AuthInfo]
		if !ok {
			return selection{}, fmt.Errorf("context %q: user %q does not exist", name, ctx.AuthInfo)
		}
		sel.user = *user
	}
	return sel, nil
}

// apply lays the flags given over the selected context, as kubectl does:
// a CA or insecure-skip-tls-verify flag replaces both of the file's, a
// certificate or key flag replaces the file's inline data too, and a new
// server drops the file's tls-server-name. The flags' files are read
// here, so that their errors name the flag and not the kubeconfig.
func (f Flags) apply(sel *selection) error {
	c, u := &sel.cluster, &sel.user
	if f.Server != "" {
		c.Server, c.TLSServerName = f.Server, ""
	}
	if f.CertificateAuthority != "" || f.InsecureSkipTLSVerify {
		c.CertificateAuthority, c.CertificateAuthorityData = "", nil
		c.InsecureSkipTLSVerify = f.InsecureSkipTLSVerify
	}
	for _, file := range []struct {
		flag, path string
		data       *[]byte
		name       *string
	}{
		{"certificate-authority", f.CertificateAuthority, &c.CertificateAuthorityData, &c.CertificateAuthority},
		{"client-certificate", f.ClientCertificate, &u.ClientCertificateData, &u.ClientCertificate},
		{"client-key", f.ClientKey, &u.ClientKeyData, &u.ClientKey},
	} {
		if file.path == "" {
			continue
		}
		data, err := os.ReadFile(file.path)
		if err != nil {
			return fmt.Errorf("--%s: %w", file.flag, err)
		}
		*file.data, *file.name = data, ""
	}
	if f.Token != "" {
		u.Token, u.TokenFile = f.Token, ""
	}
	return nil
}

// clientConfig turns the selection into a client configuration.
func (s selection) clientConfig() (client.Config, error) {
	c := s.cluster
	if c.InsecureSkipTLSVerify && (len(c.CertificateAuthorityData) > 0 || c.CertificateAuthority != "") {
		return client.Config{}, s.clusterErr(errors.New("a certificate authority and insecure-skip-tls-verify are both set: checking the server's certificate and not checking it"))
	}
	creds, err := s.credentials()
	if err != nil {
		return client.Config{}, err
	}
	tc := &tls.Config{ServerName: c.TLSServerName, InsecureSkipVerify: c.InsecureSkipTLSVerify}
	if creds.CA != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(creds.CA) {
			return client.Config{}, s.clusterErr(errors.New("certificate-authority: no PEM certificate found"))
		}
		tc.RootCAs = pool
	}
	switch {
	case creds.CertPEM != nil && creds.KeyPEM != nil:
		cert, err := tls.X509KeyPair(creds.CertPEM, creds.KeyPEM)
		if err != nil {
			return client.Config{}, s.userErr(fmt.Errorf("client certificate: %w", err))
		}
		tc.Certificates = []tls.Certificate{cert}
	case creds.CertPEM != nil:
		return client.Config{}, s.userErr(errors.New("a client certificate without its key (client-key)"))
	case creds.KeyPEM != nil:
		return client.Config{}, s.userErr(errors.New("a client key without its certificate (client-certificate)"))
	}
	return client.Config{Server: creds.Server, TLS: tc, Token: creds.Token}, nil
}

// credentials reads every item of the selection, inline or from its
// file.
func (s selection) credentials() (Credentials, error) {
	c, u := s.cluster, s.user
	server, err := serverURL(c.Server)
	if err != nil {
		return Credentials{}, s.clusterErr(err)
	}
	ca, err := dataOrFile("certificate-authority", c.CertificateAuthorityData, c.CertificateAuthority)
	if err != nil {
		return Credentials{}, s.clusterErr(err)
	}
	if err := unsupported(u); err != nil {
		return Credentials{}, s.userErr(err)
	}
	certPEM, err := dataOrFile("client-certificate", u.ClientCertificateData, u.ClientCertificate)
	if err != nil {
		return Credentials{}, s.userErr(err)
	}
	keyPEM, err := dataOrFile("client-key", u.ClientKeyData, u.ClientKey)
	if err != nil {
		return Credentials{}, s.userErr(err)
	}
	token := u.Token
	if token == "" && u.TokenFile != "" {
		data, err := os.ReadFile(u.TokenFile)
		if err != nil {
			return Credentials{}, s.userErr(fmt.Errorf("tokenFile: %w", err))
		}
		token = strings.TrimSpace(string(data))
	}
	return Credentials{
		Server:  server,
		CA:      ca,
		CertPEM: certPEM,
		KeyPEM:  keyPEM,
		Token:   token,
		User:    s.userName,
		Cluster: s.clusterName,
	}, nil
}

// clusterErr and userErr say which cluster or user of the file an error
// is about (nothing for flags alone).
func (s selection) clusterErr(err error) error {
	if s.clusterName == "" {
		return err
	}
	return fmt.Errorf("cluster %q: %w", s.clusterName, err)
}

func (s selection) userErr(err error) error {
	if s.userName == "" {
		return err
	}
	return fmt.Errorf("user %q: %w", s.userName, err)
}

// serverURL checks a server address and writes it as https://host:port.
// An address without a scheme is taken to be https.
func serverURL(server string) (string, error) {
	if server == "" {
		return "", errors.New("no server given")
	}
	s := server
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("server %q: %w", server, err)
	}
	switch {
	case u.Scheme == "http":
		return "", fmt.Errorf("server %q: the API is served only over TLS, use https://", server)
	case u.Scheme != "https":
		return "", fmt.Errorf("server %q: scheme %q is not https", server, u.Scheme)
	case u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
		return "", fmt.Errorf("server %q: want https://host:port", server)
	}
	return "https://" + u.Host, nil
}

// dataOrFile is a kubeconfig item given inline (field-data) or as a file
// (field); nil when neither is.
func dataOrFile(field string, data []byte, file string) ([]byte, error) {
	switch {
	case len(data) > 0 && file != "":
		return nil, fmt.Errorf("%s and %s-data are both set", field, field)
	case len(data) > 0:
		return data, nil
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		return data, nil
	}
	return nil, nil
}

// unsupported refuses the kinds of credentials Skiff does not implement,
// rather than connect without them.
func unsupported(u clientcmdapi.AuthInfo) error {
	var what string
	switch {
	case u.Exec != nil:
		what = "exec credential plugins"
	case u.AuthProvider != nil:
		what = "auth providers"
	case u.Username != "" || u.Password != "":
		what = "basic authentication (username, password)"
	case u.Impersonate != "" || u.ImpersonateUID != "" || len(u.ImpersonateGroups) > 0 || len(u.ImpersonateUserExtra) > 0:
		what = "impersonation"
	default:
		return nil
	}
	return fmt.Errorf("%s: not supported by Skiff, use a client certificate or a token", what)
}

// ReadCredentials reads back what WriteKubeconfig wrote: the current
// context of the kubeconfig at path, its items read in whether inline or
// in files, and the server written https://host:port. A missing file is
// an error matching os.ErrNotExist.
func ReadCredentials(path string) (Credentials, error) {
	kc, err := readKubeconfig(path)
	if err != nil {
		return Credentials{}, err
	}
	sel, err := currentContext(kc)
	if err == nil {
		var creds Credentials
		if creds, err = sel.credentials(); err == nil {
			return creds, nil
		}
	}
	return Credentials{}, fmt.Errorf("%s: %w", path, err)
}

// Credentials are what a kubeconfig written by Skiff holds.
type Credentials struct {
	// Server is the API server, https://host:port.
	Server string
	// CA is the cluster CA's certificate, PEM.
	CA []byte
	// CertPEM and KeyPEM are a client certificate and its key, PEM.
	// Optional when Token is set.
	CertPEM, KeyPEM []byte
	// Token is a bearer token. Optional when CertPEM is set.
	Token string
	// User names the user and the context: "admin", "system:node:n1".
	User string
	// Cluster names the cluster; default "skiff".
	Cluster string
}

// DefaultCluster is the cluster's name in a kubeconfig when
// Credentials.Cluster is empty.
const DefaultCluster = "skiff"

// WriteKubeconfig writes c as a kubeconfig at path: everything inline
// (certificate-authority-data, client-certificate-data and client-key-data,
// or token), one cluster, one user and one context of the user's name,
// which is the current one. The file is written 0600 (it holds a key)
// to a temporary file renamed over path, so that a reader sees the old
// file or the new one, never a part of either; a missing directory is
// made 0700.
func WriteKubeconfig(path string, c Credentials) error {
	data, err := c.kubeconfig()
	if err != nil {
		return fmt.Errorf("writing kubeconfig %s: %w", path, err)
	}
	return pki.WriteFile(path, data, 0o600)
}

// kubeconfig checks c and renders it.
func (c Credentials) kubeconfig() ([]byte, error) {
	if c.User == "" {
		return nil, errors.New("no user name given")
	}
	server, err := serverURL(c.Server)
	if err != nil {
		return nil, err
	}
	if _, err := pki.ParseCerts(c.CA); err != nil {
		return nil, fmt.Errorf("the CA certificate: %w", err)
	}
	if len(c.CertPEM) > 0 || len(c.KeyPEM) > 0 {
		if _, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM); err != nil {
			return nil, fmt.Errorf("the client certificate: %w", err)
		}
	}
	cluster := c.Cluster
	if cluster == "" {
		cluster = DefaultCluster
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters[cluster] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: c.CA}
	kc.AuthInfos[c.User] = &clientcmdapi.AuthInfo{
		ClientCertificateData: c.CertPEM,
		ClientKeyData:         c.KeyPEM,
		Token:                 c.Token,
	}
	kc.Contexts[c.User] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: c.User}
	kc.CurrentContext = c.User
	return clientcmd.Write(*kc)
}

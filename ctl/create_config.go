package ctl

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffdev/skiff/ctl/printers"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/scheme"
)

// This file holds `create configmap` and `create secret generic|tls|
// docker-registry`: objects made from the command line rather than from
// a manifest, with kubectl's flags, validation and messages.

// createObjectOptions are what every "create KIND NAME" command shares:
// --dry-run, -o and --save-config, and the sending of the object.
type createObjectOptions struct {
	*Options
	dryRun     string
	output     string
	saveConfig bool
}

func (co *createObjectOptions) addFlags(cmd *cobra.Command) {
	dryRunFlag(cmd, &co.dryRun)
	cmd.Flags().StringVarP(&co.output, "output", "o", "", "output format: yaml, json or name (default: a line saying what was created)")
	cmd.Flags().BoolVar(&co.saveConfig, "save-config", false, "record the configuration in the "+lastAppliedAnnotation+" annotation, so that apply can update the object later")
}

// objectName is the NAME argument, as kubectl wants it: exactly one.
func objectName(cmd *cobra.Command, args []string) (string, error) {
	n := cmd.ArgsLenAtDash()
	if n == -1 {
		n = len(args)
	}
	if n != 1 {
		return "", fmt.Errorf("exactly one NAME is required, got %d\nSee '%s -h' for help and examples", n, cmd.CommandPath())
	}
	return args[0], nil
}

// create sends obj (a ConfigMap or Secret without a namespace) to the
// namespace of -n, or with --dry-run=client only prints it, and prints
// the result as -o says. what names the object in a failure
// ("configmap", "secret").
func (co *createObjectOptions) create(ctx context.Context, obj runtime.Object, what string) error {
	mode, err := parseDryRun(co.dryRun)
	if err != nil {
		return err
	}
	switch co.output {
	case "", "yaml", "json", "name":
	default:
		return fmt.Errorf("unable to match a printer suitable for the output format %q, allowed formats are: json,name,yaml", co.output)
	}
	info, err := scheme.ForObject(obj)
	if err != nil {
		return err
	}
	if err := scheme.SetTypeMeta(obj); err != nil {
		return err
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	// As kubectl: the namespace is in the object only when -n says it;
	// otherwise it is the server's to fill in.
	if co.Namespace != "" {
		m.SetNamespace(co.Namespace)
	}
	raw, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: raw}
	var body []byte
	if co.saveConfig {
		if body, err = withLastApplied(u); err != nil {
			return err
		}
		if err := json.Unmarshal(body, obj); err != nil {
			return err
		}
	} else if body, err = u.MarshalJSON(); err != nil {
		return err
	}

	out := obj
	if mode != dryRunClient {
		c, err := co.Client()
		if err != nil {
			return err
		}
		uc, err := c.Untyped(info.GroupResource(), co.EffectiveNamespace())
		if err != nil {
			return err
		}
		out, _, err = uc.Create(ctx, body, client.JSON, metav1.CreateOptions{DryRun: mode.serverOption()})
		if err != nil {
			if stops(err) {
				return err
			}
			return fmt.Errorf("failed to create %s: %v", what, err)
		}
	}
	switch co.output {
	case "yaml":
		return printers.PrintYAML(co.Out, []runtime.Object{out}, false)
	case "json":
		return printers.PrintJSON(co.Out, []runtime.Object{out}, false)
	case "name":
		return printers.PrintNames(co.Out, []runtime.Object{out})
	}
	om, err := meta.Accessor(out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(co.Out, "%s created%s\n", printers.QualifiedName(info, om.GetName()), mode.suffix())
	return err
}

// dataSources are the --from-literal, --from-file and --from-env-file
// flags of create configmap and create secret generic.
type dataSources struct {
	literals, files, envFiles []string
}

func (s *dataSources) addFlags(cmd *cobra.Command, what string) {
	f := cmd.Flags()
	f.StringArrayVar(&s.literals, "from-literal", nil, "a key and a literal value to put in the "+what+" (mykey=somevalue); may be repeated")
	f.StringSliceVar(&s.files, "from-file", nil, "a file whose content becomes the value of the key named after it, or [KEY=]PATH to name the key; a directory adds each regular file in it")
	f.StringSliceVar(&s.envFiles, "from-env-file", nil, "a file of KEY=VALUE lines to put in the "+what+" (a line with only KEY takes its value from the environment); may be repeated")
}

func (s *dataSources) validate() error {
	if len(s.envFiles) > 0 && (len(s.files) > 0 || len(s.literals) > 0) {
		return errors.New("from-env-file cannot be combined with from-file or from-literal")
	}
	return nil
}

// parseLiteralSource splits KEY=VALUE at its first "=".
func parseLiteralSource(source string) (key, value string, err error) {
	key, value, ok := strings.Cut(source, "=")
	if !ok || key == "" {
		return "", "", fmt.Errorf("invalid literal source %v, expected key=value", source)
	}
	return key, value, nil
}

// parseFileSource splits [KEY=]PATH; without a key, the file's base name
// is the key.
func parseFileSource(source string) (key, filePath string, err error) {
	switch n := strings.Count(source, "="); {
	case n == 0:
		return path.Base(filepath.ToSlash(source)), source, nil
	case n > 1:
		return "", "", errors.New("key names or file paths cannot contain '='")
	case strings.HasPrefix(source, "="):
		return "", "", fmt.Errorf("key name for file path %v missing", strings.TrimPrefix(source, "="))
	case strings.HasSuffix(source, "="):
		return "", "", fmt.Errorf("file path for key name %v missing", strings.TrimSuffix(source, "="))
	}
	key, filePath, _ = strings.Cut(source, "=")
	return key, filePath, nil
}

// readFileSources reads each --from-file source: a file under its key, or
// each regular file of a directory under its own name.
func readFileSources(sources []string, add func(key, filePath string, data []byte) error) error {
	for _, source := range sources {
		key, filePath, err := parseFileSource(source)
		if err != nil {
			return err
		}
		fi, err := os.Stat(filePath)
		if err != nil {
			return readError(filePath, err)
		}
		if !fi.IsDir() {
			data, err := os.ReadFile(filePath)
			if err != nil {
				return err
			}
			if err := add(key, filePath, data); err != nil {
				return err
			}
			continue
		}
		if strings.Contains(source, "=") {
			return errors.New("cannot give a key name for a directory path")
		}
		entries, err := os.ReadDir(filePath)
		if err != nil {
			return fmt.Errorf("error listing files in %s: %v", filePath, err)
		}
		for _, e := range entries {
			if !e.Type().IsRegular() {
				continue // subdirectories, symlinks, devices, pipes
			}
			p := path.Join(filePath, e.Name())
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := add(e.Name(), p, data); err != nil {
				return err
			}
		}
	}
	return nil
}

func readError(filePath string, err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("error reading %s: %v", filePath, pe.Err)
	}
	return fmt.Errorf("error reading %s: %v", filePath, err)
}

// readEnvFiles reads each --from-env-file: one KEY=VALUE a line, blank
// lines and lines starting with # skipped, leading space trimmed, a byte
// order mark on the first line dropped, and a KEY alone taking its value
// from skiffctl's environment. The value is everything after the first
// "=", quotes and trailing space included, as kubectl reads it.
func readEnvFiles(files []string, dirMessage string, add func(key, value string) error) error {
	for _, file := range files {
		fi, err := os.Stat(file)
		if err != nil {
			return readError(file, err)
		}
		if fi.IsDir() {
			return errors.New(dirMessage)
		}
		if err := readEnvFile(file, add); err != nil {
			return err
		}
	}
	return nil
}

func readEnvFile(file string, add func(key, value string) error) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for n := 0; scanner.Scan(); n++ {
		line := scanner.Bytes()
		if !utf8.Valid(line) {
			return fmt.Errorf("env file %s contains invalid utf8 bytes at line %d: %v", file, n+1, line)
		}
		if n == 0 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
		}
		line = bytes.TrimLeftFunc(line, unicode.IsSpace)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		key, value, hasValue := strings.Cut(string(line), "=")
		if errs := validation.IsEnvVarName(key); len(errs) > 0 {
			return fmt.Errorf("%q is not a valid key name: %s", key, strings.Join(errs, ";"))
		}
		if !hasValue {
			value = os.Getenv(key)
		}
		if err := add(key, value); err != nil {
			return err
		}
	}
	return scanner.Err()
}

// ---- create configmap ----

func newCreateConfigMapCommand(o *Options) *cobra.Command {
	co := &createObjectOptions{Options: o}
	var src dataSources
	cmd := &cobra.Command{
		Use:                   "configmap NAME [--from-file=[key=]source] [--from-literal=key1=value1] [--from-env-file=path] [--dry-run=server|client|none]",
		DisableFlagsInUseLine: true,
		Aliases:               []string{"cm"},
		Short:                 "Create a config map from a local file, directory or literal value",
		Long: `Create a config map from files, a directory, literal values or env files.

A key read from a file is the file's base name unless [KEY=]PATH names it;
its value is the file's content (under binaryData when it is not UTF-8).
A directory adds each regular file in it. --from-env-file reads KEY=VALUE
lines and cannot be combined with the other two.`,
		Example: `  # A config map with two keys
  skiffctl create configmap web-config --from-literal=LOG_LEVEL=debug --from-literal=MODE=production

  # The files of a directory, and one file under a key of its own
  skiffctl create configmap nginx --from-file=conf.d/ --from-file=nginx.conf=./nginx-prod.conf

  # Print it instead of creating it
  skiffctl create configmap web-config --from-env-file=web.env --dry-run=client -o yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := objectName(cmd, args)
			if err != nil {
				return err
			}
			if err := src.validate(); err != nil {
				return err
			}
			cm, err := configMapFrom(name, &src)
			if err != nil {
				return err
			}
			return co.create(cmd.Context(), cm, "configmap")
		},
	}
	co.addFlags(cmd)
	src.addFlags(cmd, "config map")
	return cmd
}

// configMapFrom builds a ConfigMap from the sources, in kubectl's order:
// files, literals, env files.
func configMapFrom(name string, src *dataSources) (*corev1.ConfigMap, error) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{}, BinaryData: map[string][]byte{}}
	check := func(key string) error {
		if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
			return fmt.Errorf("%q is not a valid key name for a ConfigMap: %s", key, strings.Join(errs, ","))
		}
		if _, ok := cm.Data[key]; ok {
			return fmt.Errorf("cannot add key %q, another key by that name already exists in Data for ConfigMap %q", key, name)
		}
		if _, ok := cm.BinaryData[key]; ok {
			return fmt.Errorf("cannot add key %q, another key by that name already exists in BinaryData for ConfigMap %q", key, name)
		}
		return nil
	}
	addString := func(key, value string) error {
		if err := check(key); err != nil {
			return err
		}
		cm.Data[key] = value
		return nil
	}
	err := readFileSources(src.files, func(key, _ string, data []byte) error {
		if utf8.Valid(data) {
			return addString(key, string(data))
		}
		if err := check(key); err != nil {
			return err
		}
		cm.BinaryData[key] = data
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, l := range src.literals {
		key, value, err := parseLiteralSource(l)
		if err != nil {
			return nil, err
		}
		if err := addString(key, value); err != nil {
			return nil, err
		}
	}
	if err := readEnvFiles(src.envFiles, "env config file cannot be a directory", addString); err != nil {
		return nil, err
	}
	if len(cm.BinaryData) == 0 {
		cm.BinaryData = nil
	}
	return cm, nil
}

// ---- create secret ----

func newCreateSecretCommand(o *Options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Create a secret using a specified subcommand",
		Long: `Create a secret using a specified subcommand: generic (from files,
directories, literal values or env files), tls (a certificate and its key)
or docker-registry (credentials for pulling images).

The API server stores every Secret encrypted (skiff secrets-encrypt).`,
	}
	cmd.AddCommand(newCreateSecretGenericCommand(o), newCreateSecretTLSCommand(o), newCreateSecretDockerRegistryCommand(o))
	return cmd
}

func newSecretObject(name string, typ corev1.SecretType) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Type: typ, Data: map[string][]byte{}}
}

// addSecretKey adds a key, refusing an invalid or repeated one with
// kubectl's words.
func addSecretKey(s *corev1.Secret, key string, data []byte) error {
	if errs := validation.IsConfigMapKey(key); len(errs) > 0 {
		return fmt.Errorf("%q is not valid key name for a Secret %s", key, strings.Join(errs, ";"))
	}
	if _, ok := s.Data[key]; ok {
		return fmt.Errorf("cannot add key %s, another key by that name already exists", key)
	}
	s.Data[key] = data
	return nil
}

func newCreateSecretGenericCommand(o *Options) *cobra.Command {
	co := &createObjectOptions{Options: o}
	var src dataSources
	var typ string
	cmd := &cobra.Command{
		Use:                   "generic NAME [--type=string] [--from-file=[key=]source] [--from-literal=key1=value1] [--from-env-file=path] [--dry-run=server|client|none]",
		DisableFlagsInUseLine: true,
		Short:                 "Create a secret from a local file, directory, or literal value",
		Long: `Create a secret from files, a directory, literal values or env files.

A key read from a file is the file's base name unless [KEY=]PATH names it;
its value is the file's content. A directory adds each regular file in it.
--from-env-file reads KEY=VALUE lines and cannot be combined with the other
two. The type is Opaque unless --type says otherwise.`,
		Example: `  # A secret with two keys
  skiffctl create secret generic db --from-literal=username=app --from-literal=password='S3cr3t!'

  # An SSH key pair under keys of their own
  skiffctl create secret generic deploy-key --from-file=ssh-privatekey=./id_ed25519 --from-file=ssh-publickey=./id_ed25519.pub

  # Print it instead of creating it
  skiffctl create secret generic db --from-env-file=db.env --dry-run=client -o yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := objectName(cmd, args)
			if err != nil {
				return err
			}
			if err := src.validate(); err != nil {
				return err
			}
			s := newSecretObject(name, corev1.SecretType(typ))
			// kubectl's order: literals, files, env files.
			for _, l := range src.literals {
				key, value, err := parseLiteralSource(l)
				if err != nil {
					return err
				}
				if err := addSecretKey(s, key, []byte(value)); err != nil {
					return err
				}
			}
			err = readFileSources(src.files, func(key, _ string, data []byte) error { return addSecretKey(s, key, data) })
			if err != nil {
				return err
			}
			err = readEnvFiles(src.envFiles, "env secret file cannot be a directory", func(key, value string) error {
				return addSecretKey(s, key, []byte(value))
			})
			if err != nil {
				return err
			}
			return co.create(cmd.Context(), s, "secret")
		},
	}
	co.addFlags(cmd)
	src.addFlags(cmd, "secret")
	cmd.Flags().StringVar(&typ, "type", "", "the type of secret to create (default Opaque)")
	return cmd
}

func newCreateSecretTLSCommand(o *Options) *cobra.Command {
	co := &createObjectOptions{Options: o}
	var certFile, keyFile string
	cmd := &cobra.Command{
		Use:                   "tls NAME --cert=path/to/cert/file --key=path/to/key/file [--dry-run=server|client|none]",
		DisableFlagsInUseLine: true,
		Short:                 "Create a TLS secret",
		Long: `Create a TLS secret from a certificate (PEM, the chain may follow it) and
its private key (PEM). The key must match the certificate.`,
		Example: `  # A TLS secret from a certificate and its key
  skiffctl create secret tls web-tls --cert=path/to/tls.crt --key=path/to/tls.key`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := objectName(cmd, args)
			if err != nil {
				return err
			}
			if certFile == "" || keyFile == "" {
				return errors.New("key and cert must be specified")
			}
			cert, err := os.ReadFile(certFile)
			if err != nil {
				return fmt.Errorf("Cannot read file %v, %v", certFile, err)
			}
			key, err := os.ReadFile(keyFile)
			if err != nil {
				return fmt.Errorf("Cannot read file %v, %v", keyFile, err)
			}
			if _, err := tls.X509KeyPair(cert, key); err != nil {
				return err
			}
			s := newSecretObject(name, corev1.SecretTypeTLS)
			s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey] = cert, key
			return co.create(cmd.Context(), s, "secret")
		},
	}
	co.addFlags(cmd)
	cmd.Flags().StringVar(&certFile, "cert", "", "path to the PEM certificate (and chain)")
	cmd.Flags().StringVar(&keyFile, "key", "", "path to the certificate's PEM private key")
	return cmd
}

// dockerConfigJSON is the content of a kubernetes.io/dockerconfigjson
// Secret: ~/.docker/config.json's "auths".
type dockerConfigJSON struct {
	Auths map[string]dockerConfigEntry `json:"auths"`
}

type dockerConfigEntry struct {
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	Email    string `json:"email,omitempty"`
	Auth     string `json:"auth,omitempty"`
}

func newCreateSecretDockerRegistryCommand(o *Options) *cobra.Command {
	co := &createObjectOptions{Options: o}
	var username, password, email, server string
	var files []string
	cmd := &cobra.Command{
		Use:                   "docker-registry NAME --docker-username=user --docker-password=password --docker-email=email [--docker-server=string] [--from-file=[key=]source] [--dry-run=server|client|none]",
		DisableFlagsInUseLine: true,
		Short:                 "Create a secret for use with a Docker registry",
		Long: `Create a kubernetes.io/dockerconfigjson secret: the credentials a node uses to
pull a pod's images from a private registry (the pod names the secret in
imagePullSecrets). Give the registry, user name and password, or a
~/.docker/config.json with --from-file.`,
		Example: `  # Credentials for one registry
  skiffctl create secret docker-registry regcred --docker-server=registry.example.com --docker-username=ci --docker-password=TOKEN

  # From the config.json that docker login wrote
  skiffctl create secret docker-registry regcred --from-file=$HOME/.docker/config.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := objectName(cmd, args)
			if err != nil {
				return err
			}
			if len(files) == 0 && (username == "" || password == "" || server == "") {
				return errors.New("either --from-file or the combination of --docker-username, --docker-password and --docker-server is required")
			}
			s := newSecretObject(name, corev1.SecretTypeDockerConfigJson)
			if len(files) > 0 {
				sources := make([]string, len(files))
				for i, f := range files {
					if !strings.Contains(f, "=") {
						f = corev1.DockerConfigJsonKey + "=" + f
					}
					sources[i] = f
				}
				err := readFileSources(sources, func(key, _ string, data []byte) error { return addSecretKey(s, key, data) })
				if err != nil {
					return err
				}
			} else {
				data, err := json.Marshal(dockerConfigJSON{Auths: map[string]dockerConfigEntry{server: {
					Username: username, Password: password, Email: email,
					Auth: base64.StdEncoding.EncodeToString([]byte(username + ":" + password)),
				}}})
				if err != nil {
					return err
				}
				s.Data[corev1.DockerConfigJsonKey] = data
			}
			return co.create(cmd.Context(), s, "secret")
		},
	}
	co.addFlags(cmd)
	f := cmd.Flags()
	f.StringVar(&username, "docker-username", "", "user name for the registry")
	f.StringVar(&password, "docker-password", "", "password for the registry")
	f.StringVar(&email, "docker-email", "", "email for the registry (optional)")
	f.StringVar(&server, "docker-server", "https://index.docker.io/v1/", "the registry's address")
	f.StringSliceVar(&files, "from-file", nil, "a docker config.json to use as is ([KEY=]PATH; the key is "+corev1.DockerConfigJsonKey+" unless given)")
	return cmd
}

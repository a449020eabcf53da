package ctl

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/ctl/printers"
	"github.com/skiffdev/skiff/internal/client"
)

// createSubcommands make the objects of `create KIND NAME ...` from
// flags, each in a file of its own.
var createSubcommands = []func(*Options) *cobra.Command{
	newCreateConfigMapCommand, // create_config.go
	newCreateSecretCommand,    // create_config.go: generic, tls, docker-registry
	newCreateJobCommand,       // create_job.go
	newCreateCronJobCommand,   // create_job.go
}

type createOptions struct {
	*Options
	files      []string
	recursive  bool
	dryRun     string
	saveConfig bool
}

func newCreateCommand(o *Options) *cobra.Command {
	cr := &createOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "create -f FILENAME | create configmap|secret|job|cronjob NAME ...",
		Short: "Create objects from files or standard input, or config maps, secrets, jobs and cron jobs from the command line",
		Long: `Create objects from files or standard input.

An object that exists already is an error (AlreadyExists); use apply to
update objects. When one object fails the others are still created and the
command exits non-zero, printing the errors at the end. A document of a
kind Skiff does not serve is reported and skipped.

The subcommands make a config map or a secret from literal values, files
or env files (configmap, secret generic), a certificate (secret tls) or
registry credentials (secret docker-registry).`,
		Example: `  # Create the objects of a manifest
  skiffctl create -f web.yaml

  # Create them so that apply can update them later
  skiffctl create --save-config -f web.yaml

  # A config map and a secret from literal values
  skiffctl create configmap web-config --from-literal=LOG_LEVEL=debug
  skiffctl create secret generic db --from-literal=password='S3cr3t!'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cr.run(cmd.Context()) },
	}
	for _, sub := range createSubcommands {
		cmd.AddCommand(sub(o))
	}
	fileFlags(cmd, &cr.files, &cr.recursive, "that contains the objects to create")
	dryRunFlag(cmd, &cr.dryRun)
	cmd.Flags().BoolVar(&cr.saveConfig, "save-config", false, "record the configuration in the "+lastAppliedAnnotation+" annotation, so that apply can update the objects later")
	return cmd
}

func (cr *createOptions) run(ctx context.Context) error {
	mode, err := parseDryRun(cr.dryRun)
	if err != nil {
		return err
	}
	return eachDocument(ctx, cr.Options, cr.files, cr.recursive, "creating", func(c *client.Client, doc *Document) (string, error) {
		name, err := cr.createOne(ctx, c, doc, mode)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s created%s", printers.QualifiedName(doc.Resource, name), mode.suffix()), nil
	})
}

// createOne creates the object of one document and returns its name (the
// server's choice when the manifest has only metadata.generateName).
func (cr *createOptions) createOne(ctx context.Context, c *client.Client, doc *Document, mode dryRun) (string, error) {
	obj, uc, err := cr.documentObject(c, doc)
	if err != nil {
		return "", err
	}
	var body []byte
	if cr.saveConfig {
		body, err = withLastApplied(obj)
	} else {
		body, err = obj.MarshalJSON()
	}
	if err != nil {
		return "", err
	}
	if mode == dryRunClient {
		return obj.GetName(), nil
	}
	out, _, err := uc.Create(ctx, body, client.JSON, metav1.CreateOptions{DryRun: mode.serverOption()})
	if err != nil {
		return "", err
	}
	m, err := meta.Accessor(out)
	if err != nil {
		return "", err
	}
	return m.GetName(), nil
}

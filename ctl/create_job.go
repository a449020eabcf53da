package ctl

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// This file holds `create job` and `create cronjob`, which make the
// object from flags, as kubectl's do.

type createJobOptions struct {
	*Options
	image, from string
}

func newCreateJobCommand(o *Options) *cobra.Command {
	cj := &createJobOptions{Options: o}
	cmd := &cobra.Command{
		Use:   "job NAME --image=IMAGE [-- COMMAND [ARG...]] | job NAME --from=cronjob/NAME",
		Short: "Create a job with the specified name",
		Long: `Create a job with the specified name: one pod of IMAGE (restartPolicy
Never) run to completion, or, with --from, a run of a cron job now,
from its job template.`,
		Example: `  # A job that prints the date
  skiffctl create job my-job --image=busybox -- date

  # Run cron job backup now, out of schedule
  skiffctl create job backup-now --from=cronjob/backup`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cj.run(cmd.Context(), args[0], args[1:])
		},
	}
	cmd.Flags().StringVar(&cj.image, "image", "", "the image of the job's container")
	cmd.Flags().StringVar(&cj.from, "from", "", "the cron job to take the job template from: cronjob/NAME")
	return cmd
}

func (cj *createJobOptions) run(ctx context.Context, name string, command []string) error {
	c, err := cj.Client()
	if err != nil {
		return err
	}
	ns := cj.EffectiveNamespace()
	var job *batchv1.Job
	switch {
	case cj.from != "" && (cj.image != "" || len(command) > 0):
		return errors.New("either --image or --from must be specified, not both")
	case cj.from != "":
		typ, cronName, ok := strings.Cut(cj.from, "/")
		if !ok || cronName == "" {
			return fmt.Errorf("from must be of the form cronjob/NAME, not %q", cj.from)
		}
		info, err := ResolveResource(typ)
		if err != nil {
			return err
		}
		if info.GroupResource().String() != "cronjobs.batch" {
			return fmt.Errorf("unknown object type %s", info.Kind)
		}
		cron, err := c.CronJobs(ns).Get(ctx, cronName)
		if err != nil {
			return err
		}
		job = jobFromCronJob(name, cron)
	case cj.image != "":
		job = &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec:       batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: oneContainer(name, cj.image, command, corev1.RestartPolicyNever)}},
		}
	default:
		return errors.New("either --image or --from must be specified")
	}
	if _, err := c.Jobs(ns).Create(ctx, job); err != nil {
		return err
	}
	fmt.Fprintf(cj.Out, "job.batch/%s created\n", name)
	return nil
}

// jobFromCronJob is a run of cron now, as kubectl makes it: the job
// template, the "manual" instantiate annotation, owned by the cron job.
func jobFromCronJob(name string, cron *batchv1.CronJob) *batchv1.Job {
	annotations := map[string]string{"cronjob.kubernetes.io/instantiate": "manual"}
	maps.Copy(annotations, cron.Spec.JobTemplate.Annotations)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: cron.Namespace,
			Labels: maps.Clone(cron.Spec.JobTemplate.Labels), Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cron, batchv1.SchemeGroupVersion.WithKind("CronJob"))},
		},
		Spec: *cron.Spec.JobTemplate.Spec.DeepCopy(),
	}
}

func oneContainer(name, image string, command []string, restart corev1.RestartPolicy) corev1.PodSpec {
	return corev1.PodSpec{
		RestartPolicy: restart,
		Containers:    []corev1.Container{{Name: name, Image: image, Command: command}},
	}
}

type createCronJobOptions struct {
	*Options
	image, schedule, restart string
}

func newCreateCronJobCommand(o *Options) *cobra.Command {
	cc := &createCronJobOptions{Options: o}
	cmd := &cobra.Command{
		Use:     "cronjob NAME --image=IMAGE --schedule='0/5 * * * ?' [-- COMMAND [ARG...]]",
		Aliases: []string{"cj"},
		Short:   "Create a cron job with the specified name",
		Example: `  # Print the date every minute
  skiffctl create cronjob my-job --image=busybox --schedule="*/1 * * * *" -- date`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cc.run(cmd.Context(), args[0], args[1:])
		},
	}
	cmd.Flags().StringVar(&cc.image, "image", "", "the image of the job's container")
	cmd.Flags().StringVar(&cc.schedule, "schedule", "", "a schedule in the cron format the job should be run with")
	cmd.Flags().StringVar(&cc.restart, "restart", "OnFailure", "the job's restart policy: OnFailure or Never")
	return cmd
}

func (cc *createCronJobOptions) run(ctx context.Context, name string, command []string) error {
	if cc.image == "" {
		return errors.New("--image must be specified")
	}
	if cc.schedule == "" {
		return errors.New("--schedule must be specified")
	}
	c, err := cc.Client()
	if err != nil {
		return err
	}
	ns := cc.EffectiveNamespace()
	cron := &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: batchv1.CronJobSpec{
			Schedule: cc.schedule,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec:       batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: oneContainer(name, cc.image, command, corev1.RestartPolicy(cc.restart))}},
			},
		},
	}
	if _, err := c.CronJobs(ns).Create(ctx, cron); err != nil {
		return err
	}
	fmt.Fprintf(cc.Out, "cronjob.batch/%s created\n", name)
	return nil
}

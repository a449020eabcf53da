package ctl

import (
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/testenv"
)

// TestCreateAndDescribeJobs makes a cron job and two jobs with `create`
// and reads them back with get and describe. No controller runs: what is
// checked is what skiffctl sends and shows.
func TestCreateAndDescribeJobs(t *testing.T) {
	srv := testenv.StartServer(t)
	kubeconfig := ctlKubeconfig(t, srv)
	c := testenv.NewClient(t, srv)
	ctx := testenv.Context(t)
	run := func(args ...string) string {
		t.Helper()
		out, errOut, err := getRun(ctx, kubeconfig, args...)
		if err != nil {
			t.Fatalf("%v: %v (stderr %q)", args, err, errOut)
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		_, _, err := getRun(ctx, kubeconfig, args...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got error %v, want %q", args, err, want)
		}
	}

	if out := run("create", "cronjob", "hello", "--image=busybox", "--schedule=*/5 * * * *", "--", "date"); out != "cronjob.batch/hello created\n" {
		t.Errorf("create cronjob: got %q", out)
	}
	if out := run("create", "job", "pi", "--image=busybox", "--", "echo", "3.14"); out != "job.batch/pi created\n" {
		t.Errorf("create job: got %q", out)
	}
	if out := run("create", "job", "hello-now", "--from=cronjob/hello"); out != "job.batch/hello-now created\n" {
		t.Errorf("create job --from: got %q", out)
	}
	fails("either --image or --from must be specified", "create", "job", "nothing")
	fails("from must be of the form cronjob/NAME", "create", "job", "x", "--from=hello")
	fails("unknown object type Deployment", "create", "job", "x", "--from=deployment/web")
	fails(`cronjobs.batch "nope" not found`, "create", "job", "x", "--from=cronjob/nope")
	fails(`spec.schedule: Invalid value: "every minute"`, "create", "cronjob", "bad", "--image=busybox", "--schedule=every minute")

	pi, err := c.Jobs("default").Get(ctx, "pi")
	if err != nil {
		t.Fatal(err)
	}
	spec := pi.Spec.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever || spec.Containers[0].Name != "pi" || strings.Join(spec.Containers[0].Command, " ") != "echo 3.14" {
		t.Errorf("job pi: got %+v", spec)
	}
	manual, err := c.Jobs("default").Get(ctx, "hello-now")
	if err != nil {
		t.Fatal(err)
	}
	if ref := metav1.GetControllerOf(manual); ref == nil || ref.Kind != "CronJob" || ref.Name != "hello" ||
		manual.Annotations["cronjob.kubernetes.io/instantiate"] != "manual" ||
		manual.Spec.Template.Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Errorf("job from cronjob: got %+v", manual.ObjectMeta)
	}

	out := run("get", "jobs")
	describeLines(t, out, `NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE`, `pi\s+Running\s+0/1\s+\S+`, `hello-now\s+Running\s+0/1\s+\S+`)
	out = run("get", "cronjobs")
	describeLines(t, out, `NAME\s+SCHEDULE\s+TIMEZONE\s+SUSPEND\s+ACTIVE\s+LAST SCHEDULE\s+AGE`, `hello\s+\*/5 \* \* \* \*\s+<none>\s+False\s+0\s+<none>\s+\S+`)
	out = run("get", "all")
	describeLines(t, out, `job.batch/pi\s+Running\s+0/1\s+\S+`, `cronjob.batch/hello\s+\*/5 \* \* \* \*\s+<none>\s+False\s+0\s+<none>\s+\S+`)

	out = run("describe", "job", "pi")
	describeLines(t, out,
		`Name:\s+pi`,
		`Selector:\s+batch.kubernetes.io/controller-uid=`+string(pi.UID),
		`Parallelism:\s+1`,
		`Completions:\s+1`,
		`Completion Mode:\s+NonIndexed`,
		`Suspend:\s+false`,
		`Backoff Limit:\s+6`,
		`Pods Statuses:\s+0 Active \(0 Ready\) / 0 Succeeded / 0 Failed`,
		`Pod Template:`,
	)
	out = run("describe", "cronjob", "hello")
	describeLines(t, out,
		`Name:\s+hello`,
		`Schedule:\s+\*/5 \* \* \* \*`,
		`Concurrency Policy:\s+Allow`,
		`Suspend:\s+False`,
		`Successful Job History Limit:\s+3`,
		`Failed Job History Limit:\s+1`,
		`Starting Deadline Seconds:\s+<unset>`,
		`Last Schedule Time:\s+<unset>`,
		`Active Jobs:\s+<none>`,
	)

	// A finished job's row and description.
	now := metav1.Now()
	pi.Status = batchv1.JobStatus{StartTime: &now, CompletionTime: &now, Succeeded: 1, Ready: new(int32(0)),
		Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, Reason: "CompletionsReached"}}}
	if _, err := c.Jobs("default").UpdateStatus(ctx, pi); err != nil {
		t.Fatal(err)
	}
	describeLines(t, run("get", "job", "pi"), `pi\s+Complete\s+1/1\s+0s\s+\S+`)
	describeLines(t, run("describe", "job", "pi"), `Pods Statuses:\s+0 Active \(0 Ready\) / 1 Succeeded / 0 Failed`, `  Complete \s+True\s+CompletionsReached`)
}

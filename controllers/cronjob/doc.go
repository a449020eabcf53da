// Package cronjob is the CronJob controller: it starts a batch/v1
// CronJob's Job at each time of its schedule (five cron fields or a macro
// such as @hourly, in spec.timeZone, or the controller's local zone),
// keeps no more Jobs running at once than spec.concurrencyPolicy allows,
// and deletes finished Jobs beyond the history limits.
//
// It watches CronJobs and Jobs (shared informers; Jobs indexed by the
// UID of the CronJob that controls them) and writes Jobs,
// cronjobs/status and events. Event handlers only enqueue the CronJob's
// key.
//
// Reconcile(ctx, key) does the work, in this order:
//
//  1. Read the CronJob and its Jobs from the caches and decide with
//     Decide, a pure function of them and the time from the injected
//     clock (decide.go says what it decides).
//  2. Delete the Jobs the plan names (background propagation: their
//     pods go too): those Replace replaces, and finished ones beyond
//     successfulJobsHistoryLimit and failedJobsHistoryLimit.
//  3. If a run is due, create its Job, named
//     "<cronjob>-<scheduled time in minutes since the epoch>". The name
//     makes starting a run idempotent: if the Job exists and is this
//     CronJob's, the run started before (perhaps by a controller that
//     stopped before it wrote status), and it is not started again.
//  4. Write status (active Jobs, lastScheduleTime, lastSuccessfulTime)
//     if it changed, conditional on the resourceVersion.
//  5. Requeue at the next schedule time: the controller never polls.
//
// A caller builds the controller with New, starts the Factory, and
// calls Run.
package cronjob

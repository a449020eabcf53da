// Package e2e holds Skiff's end-to-end scenario tests. Each test starts a
// whole cluster inside the test process — a real API server with its
// embedded etcd on loopback, the scheduler, the controller manager and
// simulated nodes — and tells one story against it: apply, wait until
// ready, break something, wait until the cluster has healed.
//
// The tests wait for conditions with deadlines, never with sleeps, and
// stop every component they start before they end. Run them with
//
//	go test ./test/e2e/
package e2e

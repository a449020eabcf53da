// Package e2e holds Skiff's end-to-end scenario tests. Each test starts a
// whole cluster — a real API server with its embedded etcd on loopback,
// the scheduler, the controller manager, and simulated nodes or (as root)
// real ones: kubelets in network namespaces of their own on a private
// LAN made by the test (internal/nodetest) — and tells one story
// against it: apply, wait until ready, break something, wait until the
// cluster has healed.
//
// The tests wait for conditions with deadlines, never with sleeps, and
// stop every component they start before they end. Run them with
//
//	go test ./test/e2e/
package e2e

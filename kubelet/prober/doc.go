// Package prober runs the liveness, readiness and startup probes of a
// node's containers, as a Kubernetes kubelet does, and keeps their
// results for the kubelet's pod workers to read.
//
// # Three probes, three questions
//
//   - startup: has the application finished starting? Until it says yes,
//     the other two probes are not run. Once it succeeds it is never run
//     again for that container; if it fails failureThreshold times in a
//     row, the container is restarted.
//   - liveness: is the application still working? failureThreshold
//     failures in a row mean no: the container is restarted.
//   - readiness: may the container receive traffic now? It starts as no,
//     and flips to yes after successThreshold successes in a row and back
//     to no after failureThreshold failures in a row. It never restarts
//     anything; it drives the pod's Ready condition (and so whether the
//     pod is an endpoint of its Services).
//
// # How the Manager works
//
// The kubelet calls Add with a Target for every running container (also
// those without probes), and Remove or RemovePod when a container or pod
// goes away. Add starts one worker goroutine per probe the container has.
// A worker sleeps until initialDelaySeconds after the container's start,
// then runs its probe once every periodSeconds, each run bounded by
// timeoutSeconds. It counts how many results in a row were the same, and
// only when that streak reaches the threshold does the result count.
// Liveness and readiness workers skip their turn while the startup probe
// has not succeeded. A worker ends when its container is removed, when its
// startup probe succeeded, or when its liveness or startup probe failed:
// the restarted container has a new ID and gets new workers.
//
// The kubelet reads results with Ready, Started and LivenessFailed, and
// learns that one of a pod's answers changed through the onChange
// callback, which passes the pod's UID: the kubelet then syncs the pod
// (restarts the container, rewrites the pod's status). The Manager never
// restarts anything itself.
//
// # Probe kinds
//
//   - exec: runs the command in the container through the Exec function
//     the kubelet supplies; exit code 0 is success, another code a
//     failure whose message is the command's output, and a command still
//     running at the timeout is a failure.
//   - httpGet: a GET to scheme://host:port/path, where host defaults to
//     the pod IP, port is a number or the name of one of the container's
//     ports, and httpHeaders are added (a Host header sets the request's
//     Host). A status from 200 to 399 is success. Redirects are followed
//     the way Kubernetes follows them: to the same host only, at most 10;
//     a redirect to another host is not followed and, being a 3xx, counts
//     as success. HTTPS does not verify the certificate.
//   - tcpSocket: success is that a connection can be opened.
//   - grpc: not supported; such a probe reports "probe errored" and so
//     fails.
//
// Network probes connect through the Dialer the kubelet supplies, which
// dials inside the pod's network namespace. Failure messages read like
// Kubernetes' events: "Liveness probe failed: HTTP probe failed with
// statuscode: 500", "Readiness probe failed: dial tcp 10.244.0.5:80:
// connect: connection refused". A probe that cannot run at all (a named
// port the container does not have) reads "... probe errored: ..." and
// counts as a failure.
//
// Unlike Kubernetes, a worker does not wait a random part of its first
// period before probing (Kubernetes does so after a kubelet restart to
// spread the load); every time is taken from the Manager's clock, so
// tests drive workers with a fake clock.
package prober

// Package server is the kubelet's own gRPC API: the two streams that reach
// into a running container, its log and exec. Clients never dial it; they
// call PodLogs and PodExec on the API server, which finds the pod's node
// and relays the stream to this server (proto/skiff/v1/kubelet.proto).
//
// The server knows nothing about pods or containers itself. It asks a
// Host, which the kubelet core implements, for two things:
//
//   - LogPath: the file holding the log of a container's current (or
//     previous) run, and a function that reports whether that run has
//     ended. The server reads the file with kubelet/logs.Read, which
//     understands the CRI log format, rotation, tail, since, timestamps and
//     the byte limit. With follow, reading stops when the context ends (the
//     caller went away: cancellation travels from skiffctl through the API
//     server to here) or when the run has ended and the file is drained.
//   - Exec: run a command in a container and wait for it. The server turns
//     the bidirectional stream into the plain Go values the runtime wants:
//     an io.Reader of standard input fed by the stdin messages, two
//     io.Writers that send output messages, and a channel of terminal sizes
//     fed by the resize messages. When Exec returns, the server sends the
//     exit as the last message.
//
// # Errors
//
// A Host error that is a Kubernetes API error (k8s.io/apimachinery's
// errors package) reaches the user exactly, so a Host words its errors as
// Kubernetes does (`previous terminated container "web" in pod "x" not
// found` is a BadRequest). An error wrapping fs.ErrNotExist becomes
// NotFound, anything else InternalError. An error of Exec after the
// command started is sent in the exit message instead, so the caller still
// gets the output that came before it.
//
// # Security
//
// There is no TLS and no authentication yet: anyone who can reach the
// kubelet's port can read logs and run commands. Bind it to an address
// only the API server can reach until that lands.
package server

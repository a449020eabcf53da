package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/pki"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// The pod proxy: PodLogs and PodExec find the pod's container and node,
// then relay the stream to the Kubelet service of that node
// (proto/skiff/v1/kubelet.proto), in both directions, until either side
// ends it. The stream to the kubelet lives in the request's context, so a
// client that goes away cancels it, and the kubelet stops reading the log
// or stops the command.
//
// The API server dials kubelets over TLS with its kubelet-client
// identity, the only one a kubelet accepts, and checks that the kubelet's
// serving certificate is the pod's node's.

// DefaultKubeletPort is the kubelet's port when a Node does not report
// one in status.daemonEndpoints.kubeletEndpoint.
const DefaultKubeletPort = 10250

// DefaultContainerAnnotation names the container that logs and exec use
// when the request names none, as in kubectl.
const DefaultContainerAnnotation = "kubectl.kubernetes.io/default-container"

// podTarget is where a stream for one container goes.
type podTarget struct {
	container string
	node      string
	addr      string // host:port of the node's kubelet
}

// purpose says what the target is wanted for: the container state each
// needs differs.
type purpose int

const (
	forLogs purpose = iota
	forPreviousLogs
	forExec
)

var (
	podsResource  = schema.GroupResource{Resource: "pods"}
	nodesResource = schema.GroupResource{Resource: "nodes"}
)

// PodLogs relays a container's log from its kubelet.
func (s *service) PodLogs(req *skiffv1.PodLogsRequest, stream grpc.ServerStreamingServer[skiffv1.LogChunk]) error {
	ctx := stream.Context()
	p := forLogs
	if req.GetPrevious() {
		p = forPreviousLogs
	}
	target, err := s.podTarget(ctx, req.GetNamespace(), req.GetPod(), req.GetContainer(), p)
	if err != nil {
		return grpcerr.ToStatus(err)
	}
	conn, err := s.dialKubelet(target)
	if err != nil {
		return grpcerr.ToStatus(err)
	}
	defer conn.Close()

	kreq := proto.CloneOf(req)
	kreq.Container = target.container
	kstream, err := skiffv1.NewKubeletClient(conn).ContainerLogs(ctx, kreq)
	if err != nil {
		return kubeletError(target, err)
	}
	for {
		chunk, err := kstream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return kubeletError(target, err)
		}
		if err := stream.Send(chunk); err != nil {
			return err
		}
	}
}

// PodExec relays an exec session to the container's kubelet. The
// handler's goroutine carries output to the client; a second one carries
// the client's input to the kubelet, and closes the kubelet's side when
// the client closes its own.
func (s *service) PodExec(stream grpc.BidiStreamingServer[skiffv1.ExecInput, skiffv1.ExecOutput]) error {
	first, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return grpcerr.ToStatus(apierrors.NewBadRequest("the exec stream ended before it started"))
		}
		return err
	}
	start := first.GetStart()
	if start == nil {
		return grpcerr.ToStatus(apierrors.NewBadRequest("the first message of an exec stream must be a start"))
	}
	if len(start.GetCommand()) == 0 {
		return grpcerr.ToStatus(apierrors.NewBadRequest("you must specify at least one command for the container"))
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	target, err := s.podTarget(ctx, start.GetNamespace(), start.GetPod(), start.GetContainer(), forExec)
	if err != nil {
		return grpcerr.ToStatus(err)
	}
	conn, err := s.dialKubelet(target)
	if err != nil {
		return grpcerr.ToStatus(err)
	}
	defer conn.Close()

	kstream, err := skiffv1.NewKubeletClient(conn).ContainerExec(ctx)
	if err != nil {
		return kubeletError(target, err)
	}
	kstart := proto.CloneOf(start)
	kstart.Container = target.container
	// A failed send means the stream broke; Recv below reports why.
	_ = kstream.Send(&skiffv1.ExecInput{Input: &skiffv1.ExecInput_Start{Start: kstart}})

	go func() {
		for {
			in, err := stream.Recv()
			if err != nil {
				// On the client's end of input, close ours. Any other
				// error means the client is gone, and the handler's
				// context (hence the kubelet's stream) ends with it.
				if errors.Is(err, io.EOF) {
					_ = kstream.CloseSend()
				}
				return
			}
			if in.GetStart() != nil {
				continue // one start per stream
			}
			if err := kstream.Send(in); err != nil {
				return
			}
		}
	}()

	for {
		out, err := kstream.Recv()
		if errors.Is(err, io.EOF) {
			return grpcerr.ToStatus(apierrors.NewInternalError(
				fmt.Errorf("the kubelet of node %q ended the exec stream without an exit status", target.node)))
		}
		if err != nil {
			return kubeletError(target, err)
		}
		if err := stream.Send(out); err != nil {
			return err
		}
		if out.GetExit() != nil {
			return nil
		}
	}
}

// podTarget finds the container a request means and the kubelet that
// runs it, and checks that the container is in a state to serve p.
func (s *service) podTarget(ctx context.Context, namespace, name, container string, p purpose) (podTarget, error) {
	pods, ok := s.reg.Store(podsResource)
	if !ok {
		return podTarget{}, apierrors.NewNotFound(podsResource, name)
	}
	obj, err := pods.Get(ctx, namespace, name)
	if err != nil {
		return podTarget{}, err
	}
	pod := obj.(*corev1.Pod)
	container, err = pickContainer(pod, container)
	if err != nil {
		return podTarget{}, err
	}
	if pod.Spec.NodeName == "" {
		return podTarget{}, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	if err := checkContainerState(pod, container, p); err != nil {
		return podTarget{}, err
	}
	nodes, ok := s.reg.Store(nodesResource)
	if !ok {
		return podTarget{}, apierrors.NewNotFound(nodesResource, pod.Spec.NodeName)
	}
	obj, err = nodes.Get(ctx, "", pod.Spec.NodeName)
	if err != nil {
		return podTarget{}, err
	}
	addr, err := kubeletAddress(obj.(*corev1.Node))
	if err != nil {
		return podTarget{}, err
	}
	return podTarget{container: container, node: pod.Spec.NodeName, addr: addr}, nil
}

// pickContainer returns the container a request is for: the one it
// names, which must exist, or else the pod's default container (the
// annotation's, or the only one).
func pickContainer(pod *corev1.Pod, name string) (string, error) {
	var names, initNames []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		initNames = append(initNames, c.Name)
	}
	if name != "" {
		if slices.Contains(names, name) || slices.Contains(initNames, name) {
			return name, nil
		}
		for _, c := range pod.Spec.EphemeralContainers {
			if c.Name == name {
				return name, nil
			}
		}
		return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
	}
	if d := pod.Annotations[DefaultContainerAnnotation]; d != "" && slices.Contains(names, d) {
		return d, nil
	}
	if len(names) == 1 {
		return names[0], nil
	}
	msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", pod.Name, names)
	if len(initNames) > 0 {
		msg += fmt.Sprintf(" or one of the init containers: %v", initNames)
	}
	return "", apierrors.NewBadRequest(msg)
}

// containerStatus finds the status the kubelet reported for a container.
func containerStatus(pod *corev1.Pod, name string) (corev1.ContainerStatus, bool) {
	for _, list := range [][]corev1.ContainerStatus{pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for _, cs := range list {
			if cs.Name == name {
				return cs, true
			}
		}
	}
	return corev1.ContainerStatus{}, false
}

// checkContainerState refuses a request that the container cannot serve,
// with the kubelet's messages: logs need a run that started (for the
// previous run the kubelet decides); exec needs a running container in a
// pod that has not completed. A container without a status yet is
// taken as still being created.
func checkContainerState(pod *corev1.Pod, name string, p purpose) error {
	cs, ok := containerStatus(pod, name)
	if !ok {
		cs = corev1.ContainerStatus{Name: name, State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"},
		}}
	}
	state, last := cs.State, cs.LastTerminationState
	switch p {
	case forPreviousLogs:
		// Only the kubelet knows whether it kept the previous run; it
		// answers with Kubernetes' message when it did not.
		return nil
	case forExec:
		if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return apierrors.NewBadRequest(fmt.Sprintf("cannot exec into a container in a completed pod; current phase is %s", pod.Status.Phase))
		}
		if state.Running != nil {
			return nil
		}
		if state.Waiting != nil {
			return waitingError(pod, name, state.Waiting)
		}
		return apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is not running", name, pod.Name))
	}
	// The current run's log; a container waiting to restart still has
	// the log of the run that ended.
	switch {
	case state.Running != nil, state.Terminated != nil, last.Terminated != nil:
		return nil
	case state.Waiting != nil:
		return waitingError(pod, name, state.Waiting)
	}
	return apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start - no logs yet", name, pod.Name))
}

func waitingError(pod *corev1.Pod, name string, w *corev1.ContainerStateWaiting) error {
	why := w.Reason
	switch why {
	case "ErrImagePull":
		why = "image can't be pulled"
	case "ImagePullBackOff":
		why = "trying and failing to pull image"
	}
	return apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: %s", name, pod.Name, why))
}

// kubeletAddress is host:port of a node's kubelet: its InternalIP (else
// ExternalIP, else Hostname) and the port it reports.
func kubeletAddress(node *corev1.Node) (string, error) {
	host := ""
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && a.Address != "" {
				host = a.Address
				break
			}
		}
		if host != "" {
			break
		}
	}
	if host == "" {
		return "", apierrors.NewServiceUnavailable(fmt.Sprintf("node %q reports no address to reach its kubelet at", node.Name))
	}
	port := int(node.Status.DaemonEndpoints.KubeletEndpoint.Port)
	if port == 0 {
		port = DefaultKubeletPort
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// dialKubelet makes a connection for one stream to a kubelet. gRPC
// connects lazily, so an unreachable kubelet shows up as the stream's
// error (see kubeletError).
func (s *service) dialKubelet(t podTarget) (*grpc.ClientConn, error) {
	// The kubelet must show a serving certificate the cluster CA signed
	// for this very node: another node's, valid as it is, would let a node
	// that lies about its addresses receive its neighbours' streams.
	tc := s.kubeletTLS.Clone()
	want := pki.NodeUserPrefix + t.node
	tc.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 || cs.PeerCertificates[0].Subject.CommonName != want {
			return fmt.Errorf("the kubelet at %s is not node %q's", t.addr, t.node)
		}
		return nil
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tc))}
	if s.kubeletDialer != nil {
		opts = append(opts, grpc.WithContextDialer(s.kubeletDialer))
	}
	// passthrough: the address is already host:port, no resolver needed.
	conn, err := grpc.NewClient("passthrough:///"+t.addr, opts...)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("kubelet of node %q at %s: %w", t.node, t.addr, err))
	}
	return conn, nil
}

// kubeletError turns an error of a kubelet stream into the status to send
// the client. An error the kubelet itself returned carries its
// metav1.Status and is relayed unchanged; the client's cancellation stays
// a cancellation; anything else is the transport failing, which must not
// look to the client like its own connection to the API server failing,
// so it becomes a ServiceUnavailable naming the node.
func kubeletError(t podTarget, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return grpcerr.ToStatus(err)
	}
	for _, d := range st.Details() {
		if _, ok := d.(*skiffv1.Status); ok {
			return err
		}
	}
	if st.Code() == codes.Canceled {
		return err
	}
	return grpcerr.ToStatus(apierrors.NewServiceUnavailable(
		fmt.Sprintf("cannot reach the kubelet of node %q at %s: %s", t.node, t.addr, st.Message())))
}

package kubelet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/skiffdev/skiff/internal/nsutil"
	"github.com/skiffdev/skiff/kubelet/runtime"
	"github.com/skiffdev/skiff/kubelet/server"
)

// This file holds what the kubelet offers the pieces it drives: logs and
// exec for its API server, exec and dialing for the prober.

// runOf finds the current (or previous) run of a pod's container.
func (k *Kubelet) runOf(namespace, podName, container string, previous bool) (*runtime.Status, error) {
	obj, ok, _ := k.pods.GetStore().GetByKey(namespace + "/" + podName)
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, podName)
	}
	pod := obj.(*corev1.Pod)
	r := runsByName(k.containers.ofPod(pod.UID))[container]
	switch {
	case findContainer(pod, container) == nil:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, podName))
	case r == nil:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is waiting to start: ContainerCreating", container, podName))
	case previous && r.previous == nil:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("previous terminated container %q in pod %q not found", container, podName))
	case previous:
		return r.previous, nil
	}
	return r.current, nil
}

// LogPath implements server.Host.
func (k *Kubelet) LogPath(namespace, pod, container string, previous bool) (string, func() bool, error) {
	run, err := k.runOf(namespace, pod, container, previous)
	if err != nil {
		return "", nil, err
	}
	id := run.ID
	exited := func() bool {
		st, err := k.runtime.Status(id)
		return err != nil || st.State == runtime.StateExited
	}
	return run.LogPath, exited, nil
}

// Exec implements server.Host.
func (k *Kubelet) Exec(ctx context.Context, namespace, pod, container string, opts server.ExecOptions) (int, error) {
	run, err := k.runOf(namespace, pod, container, false)
	if err != nil {
		return 0, err
	}
	if run.State != runtime.StateRunning {
		return 0, apierrors.NewBadRequest(fmt.Sprintf("container %q in pod %q is not running", container, pod))
	}
	ro := runtime.ExecOptions{Args: opts.Args, Env: opts.Env, Stdin: opts.Stdin, Stdout: opts.Stdout, Stderr: opts.Stderr, TTY: opts.TTY}
	if opts.Resize != nil {
		resize := make(chan runtime.TerminalSize, 1)
		ro.Resize = resize
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case sz := <-opts.Resize:
					select {
					case resize <- runtime.TerminalSize{Width: sz.Width, Height: sz.Height}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
		return k.runtime.Exec(ctx, run.ID, ro)
	}
	return k.runtime.Exec(ctx, run.ID, ro)
}

// probeExec runs an exec probe's command in a container.
func (k *Kubelet) probeExec(ctx context.Context, containerID string, args []string) (int, []byte, error) {
	var out limitedBuffer
	out.max = 10 << 10
	code, err := k.runtime.Exec(ctx, containerID, runtime.ExecOptions{Args: args, Stdout: &out, Stderr: &out})
	return code, out.Bytes(), err
}

// probeDial opens a connection for an httpGet or tcpSocket probe from
// inside the pod's network namespace, the one its target was added with.
func (k *Kubelet) probeDial(ctx context.Context, netns, network, addr string) (net.Conn, error) {
	if netns == "" {
		return nil, errors.New("the pod's network is not set up")
	}
	return nsutil.Dial(ctx, netns, network, addr)
}

// limitedBuffer keeps the first max bytes written to it. The runtime
// copies a command's stdout and stderr into it from two goroutines.
type limitedBuffer struct {
	// mu guards buf.
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := b.max - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}

// defaultRouteIP is the first IPv4 address of the interface that holds
// the default route: the node's address when --node-ip is not given.
func defaultRouteIP() (netip.Addr, error) {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return netip.Addr{}, err
	}
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() != "0.0.0.0/0" {
			continue
		}
		link, err := netlink.LinkByIndex(r.LinkIndex)
		if err != nil {
			continue
		}
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			continue
		}
		for _, a := range addrs {
			if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok {
				return ip, nil
			}
		}
	}
	return netip.Addr{}, errors.New("no default route with an IPv4 address; give --node-ip")
}

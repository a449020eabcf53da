package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	// maxOutput bounds how much of a command's output or a response body
	// is kept for a message.
	maxOutput = 10 << 10
	// maxRedirects is how many same-host redirects an HTTP probe follows.
	maxRedirects = 10
	// userAgent is sent by HTTP probes unless the probe sets its own.
	// Applications that recognise Kubernetes' "kube-probe/<version>"
	// recognise this one by its prefix.
	userAgent = "kube-probe/skiff"
)

// runProbe runs p once against t. ok reports success; out is the reason
// of a failure (the command's output, the HTTP status, the dial error).
// err means the probe could not be run at all: it names a port the
// container does not have, or a kind Skiff does not support. ctx carries
// the probe's timeout, which is also passed for messages.
func (m *Manager) runProbe(ctx context.Context, t Target, p *corev1.Probe, timeout time.Duration) (ok bool, out string, err error) {
	switch h := p.ProbeHandler; {
	case h.Exec != nil:
		return m.probeExec(ctx, t, h.Exec.Command, timeout)
	case h.HTTPGet != nil:
		return m.probeHTTP(ctx, t, h.HTTPGet)
	case h.TCPSocket != nil:
		return m.probeTCP(ctx, t, h.TCPSocket)
	case h.GRPC != nil:
		return false, "", errors.New("gRPC probes are not supported by Skiff")
	}
	return false, "", errors.New("probe has no handler")
}

// probeExec runs the command in the container: exit code 0 is success.
// A command still running when the timeout passes is a failure.
func (m *Manager) probeExec(ctx context.Context, t Target, cmd []string, timeout time.Duration) (bool, string, error) {
	if len(cmd) == 0 {
		return false, "", errors.New("exec probe has no command")
	}
	code, out, err := m.exec(ctx, t.ContainerID, cmd)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded)):
		return false, fmt.Sprintf("command %q timed out after %v", strings.Join(cmd, " "), timeout), nil
	case err != nil:
		return false, "", fmt.Errorf("exec %q: %w", strings.Join(cmd, " "), err)
	case code != 0:
		if msg := strings.TrimRight(string(truncate(out)), "\n"); msg != "" {
			return false, msg, nil
		}
		return false, fmt.Sprintf("command %q exited with code %d", strings.Join(cmd, " "), code), nil
	}
	return true, "", nil
}

// probeHTTP sends a GET; a status from 200 to 399 is success.
//
// Redirects are followed as Kubernetes follows them: to the same host
// (any port), up to maxRedirects times. A redirect to another host is not
// followed: the probe then judges the redirect response itself, which
// (being 3xx) counts as success.
func (m *Manager) probeHTTP(ctx context.Context, t Target, h *corev1.HTTPGetAction) (bool, string, error) {
	port, err := resolvePort(h.Port, t.Container)
	if err != nil {
		return false, "", err
	}
	host := h.Host
	if host == "" {
		if host = t.PodIP; host == "" {
			return false, "", errors.New("pod has no IP address yet")
		}
	}
	scheme := strings.ToLower(string(h.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := h.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(path)
	if err != nil {
		return false, "", fmt.Errorf("path %q: %w", h.Path, err)
	}
	u.Scheme, u.Host = scheme, net.JoinHostPort(host, strconv.Itoa(port))

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false, "", err
	}
	for _, hh := range h.HTTPHeaders {
		if strings.EqualFold(hh.Name, "Host") {
			req.Host = hh.Value
			continue
		}
		req.Header.Add(hh.Name, hh.Value)
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "*/*")
	}

	transport := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return m.dial(ctx, t.NetNS, network, addr)
		},
		// Like Kubernetes, HTTPS probes do not verify the certificate:
		// they ask whether the server answers, not who it is.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		DisableKeepAlives: true,
	}
	defer transport.CloseIdleConnections()
	c := &http.Client{
		Transport: transport,
		CheckRedirect: func(next *http.Request, via []*http.Request) error {
			if next.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			if len(via) >= maxRedirects {
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			return nil
		},
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, err.Error(), nil
	}
	defer resp.Body.Close()
	// Drain (a bounded part of) the body, as a well-behaved client does.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxOutput))
	if resp.StatusCode < http.StatusOK || resp.StatusCode >= http.StatusBadRequest {
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode), nil
	}
	return true, "", nil
}

// probeTCP opens a connection and closes it again: success is that the
// connection could be opened.
func (m *Manager) probeTCP(ctx context.Context, t Target, s *corev1.TCPSocketAction) (bool, string, error) {
	port, err := resolvePort(s.Port, t.Container)
	if err != nil {
		return false, "", err
	}
	host := s.Host
	if host == "" {
		if host = t.PodIP; host == "" {
			return false, "", errors.New("pod has no IP address yet")
		}
	}
	conn, err := m.dial(ctx, t.NetNS, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return false, err.Error(), nil
	}
	conn.Close()
	return true, "", nil
}

// resolvePort returns the port number p stands for: a number, or the name
// of one of the container's ports (or a number written as a string).
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	n := p.IntValue()
	if p.Type == intstr.String {
		n = 0
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				n = int(cp.ContainerPort)
				break
			}
		}
		if n == 0 {
			v, err := strconv.Atoi(p.StrVal)
			if err != nil {
				return 0, fmt.Errorf("port %q not found in container %q", p.StrVal, c.Name)
			}
			n = v
		}
	}
	if n <= 0 || n > 65535 {
		return 0, fmt.Errorf("invalid port number: %d", n)
	}
	return n, nil
}

// truncate keeps the first maxOutput bytes of b.
func truncate(b []byte) []byte {
	if len(b) > maxOutput {
		return b[:maxOutput]
	}
	return b
}

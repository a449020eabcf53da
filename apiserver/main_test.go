package apiserver_test

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"go.etcd.io/etcd/server/v3/embed"
)

// The tests that need etcd as a separate process (restart_test.go) run this
// very test binary again with these variables set; it then serves etcd
// instead of running tests, until it is killed.
const (
	envEtcdDir       = "SKIFF_TEST_ETCD_DIR"        // data directory
	envEtcdClientURL = "SKIFF_TEST_ETCD_CLIENT_URL" // http://127.0.0.1:PORT
	envEtcdPeerURL   = "SKIFF_TEST_ETCD_PEER_URL"   // http://127.0.0.1:PORT
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(envEtcdDir); dir != "" {
		if err := serveEtcd(dir, os.Getenv(envEtcdClientURL), os.Getenv(envEtcdPeerURL)); err != nil {
			fmt.Fprintf(os.Stderr, "etcd process: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveEtcd runs a single-member etcd in dir until the process is killed or
// signalled, or until its standard input closes: the test that started it
// holds the other end of that pipe, so an etcd process never outlives a
// test binary that crashed.
func serveEtcd(dir, clientURL, peerURL string) error {
	cu, err := url.Parse(clientURL)
	if err != nil {
		return fmt.Errorf("%s %q: %w", envEtcdClientURL, clientURL, err)
	}
	pu, err := url.Parse(peerURL)
	if err != nil {
		return fmt.Errorf("%s %q: %w", envEtcdPeerURL, peerURL, err)
	}
	cfg := embed.NewConfig()
	cfg.Name = "test-etcd"
	cfg.Dir = dir
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"stderr"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.ListenMetricsUrls = nil
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return err
	}
	defer e.Close()

	stdinClosed := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(stdinClosed)
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)

	select {
	case <-e.Server.ReadyNotify():
		fmt.Fprintln(os.Stderr, "etcd process: ready")
	case err := <-e.Err():
		return err
	}
	select {
	case err := <-e.Err():
		return err
	case <-stdinClosed:
	case <-signals:
	}
	return nil
}

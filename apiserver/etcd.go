package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// etcdMaxRequestBytes is the largest etcd request Skiff makes: one object
// of MaxRequestBytes plus the transaction around it.
const etcdMaxRequestBytes = MaxRequestBytes + 512*1024

// embeddedEtcd is an etcd server running inside this process.
type embeddedEtcd struct {
	*embed.Etcd
	closing *atomic.Bool
}

// Close stops etcd. Its listeners report their own closing as errors;
// those lines are dropped.
func (e *embeddedEtcd) Close() {
	e.closing.Store(true)
	e.Etcd.Close()
}

// quietCore passes etcd's log entries on, except the harmless ones: the
// errors its listeners report while it closes, and one start-up race.
type quietCore struct {
	zapcore.Core
	closing *atomic.Bool
}

func (c quietCore) Check(ent zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.closing.Load() || ent.Message == startupStorageVersionRace {
		return ce
	}
	return c.Core.Check(ent, ce)
}

// startupStorageVersionRace is logged as an error by a freshly elected
// member whose storage-version monitor runs before the first term is on
// disk; the monitor tries again a moment later and succeeds.
const startupStorageVersionRace = "failed to update storage version"

func (c quietCore) With(f []zapcore.Field) zapcore.Core {
	return quietCore{Core: c.Core.With(f), closing: c.closing}
}

// startEmbeddedEtcd starts a single-member etcd in dataDir/etcd. It listens
// on unix sockets inside that directory only: the embedded etcd belongs to
// this server, and nothing else on the network can reach it.
func startEmbeddedEtcd(ctx context.Context, dataDir string, retention time.Duration) (*embeddedEtcd, error) {
	dir := filepath.Join(dataDir, "etcd")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating etcd data dir: %w", err)
	}
	// The sockets in it are etcd's only door: no one but this process's
	// user may reach them, whatever the directory's mode was before.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = "skiff"
	cfg.Dir = dir
	closing := &atomic.Bool{}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), zapcore.ErrorLevel)
	cfg.Logger = "zap"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.New(quietCore{Core: core, closing: closing}).Named("etcd"))
	client := url.URL{Scheme: "unix", Path: filepath.Join(dir, "client.sock")}
	peer := url.URL{Scheme: "unix", Path: filepath.Join(dir, "peer.sock")}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.ListenMetricsUrls = nil
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	// A lone member still waits out an election timeout before it leads.
	// etcd's 100 ms tick and 1 s election timeout are made for members on
	// a network; with one member on this machine, shorter ones make the
	// server ready in a fraction of the time.
	cfg.TickMs, cfg.ElectionMs = 10, 100
	// etcd's own limit (1.5 MiB) is below the API's: raise it so that
	// every object the API accepts can be stored.
	cfg.MaxRequestBytes = etcdMaxRequestBytes
	cfg.AutoCompactionMode = "periodic"
	cfg.AutoCompactionRetention = retention.String()
	// Stale sockets from a previous run would make the listeners fail.
	_ = os.Remove(client.Path)
	_ = os.Remove(peer.Path)

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting embedded etcd in %s: %w", dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return &embeddedEtcd{Etcd: e, closing: closing}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
}

// newEtcdClient connects to etcd. The client does not wait for the cluster:
// while etcd is down requests fail after the request timeout, and the
// client reconnects by itself when it returns.
func newEtcdClient(endpoints []string, caFile, certFile, keyFile string) (*clientv3.Client, error) {
	var tc *tls.Config
	if caFile != "" || certFile != "" {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			data, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("--etcd-cafile: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(data) {
				return nil, fmt.Errorf("--etcd-cafile %s: no PEM certificate found", caFile)
			}
		}
		if certFile != "" {
			cert, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("--etcd-certfile/--etcd-keyfile: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
	}
	c, err := clientv3.New(clientv3.Config{
		TLS:                  tc,
		Endpoints:            endpoints,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(),
		MaxCallRecvMsgSize:   512 * 1024 * 1024,
		MaxCallSendMsgSize:   etcdMaxRequestBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to etcd %v: %w", endpoints, err)
	}
	return c, nil
}

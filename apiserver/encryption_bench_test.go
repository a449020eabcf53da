package apiserver_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/apiserver"
	"github.com/skiffdev/skiff/internal/client"
	"github.com/skiffdev/skiff/internal/testenv"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// benchSecret is a realistic Secret: a user name, a password and a CA
// certificate, about 1.2 KiB of data.
func benchSecret(name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceDefault, Labels: map[string]string{"app": "bench"}},
		Data: map[string][]byte{
			"username": []byte("app-user"),
			"password": []byte("c2VjcmV0LXBhc3N3b3JkLTAxMjM0NTY3"),
			"ca.crt":   bytes.Repeat([]byte("MIIBszCCAVmgAwIBAgIRAJ3y"), 48),
		},
	}
}

// secretsServer is one server of BenchmarkSecrets and its clients.
type secretsServer struct {
	name    string
	clients []*client.Client
	// creates, gets: latencies and wall time of each kind of request.
	createLat, getLat   []time.Duration
	createWall, getWall time.Duration
	listLat             []time.Duration
}

func (s *secretsServer) round(b *testing.B, prefix string, count int) {
	l, w, err := runBatch(count, len(s.clients), func(ctx context.Context, wk, i int) error {
		_, err := s.clients[wk].Secrets(metav1.NamespaceDefault).Create(ctx, benchSecret(prefix+strconv.Itoa(i)))
		return err
	})
	if err != nil {
		b.Fatalf("%s creates: %v", s.name, err)
	}
	s.createLat, s.createWall = append(s.createLat, l...), s.createWall+w
	l, w, err = runBatch(count, len(s.clients), func(ctx context.Context, wk, i int) error {
		sec, err := s.clients[wk].Secrets(metav1.NamespaceDefault).Get(ctx, prefix+strconv.Itoa(i))
		if err == nil && len(sec.Data["ca.crt"]) == 0 {
			err = fmt.Errorf("secret %s came back without its data", sec.Name)
		}
		return err
	})
	if err != nil {
		b.Fatalf("%s gets: %v", s.name, err)
	}
	s.getLat, s.getWall = append(s.getLat, l...), s.getWall+w
	t0 := time.Now()
	if _, err := s.clients[0].Secrets(metav1.NamespaceDefault).List(testenv.Context(b), metav1.ListOptions{}); err != nil {
		b.Fatalf("%s list: %v", s.name, err)
	}
	s.listLat = append(s.listLat, time.Since(t0))
}

// BenchmarkSecrets measures what encryption at rest costs: Secrets
// created, read one by one (from etcd, each decrypted) and listed (every
// one decrypted) by 8 clients, on a server that encrypts them and on one
// that stores them in the clear (apiserver.WithoutEncryption), in
// alternating rounds. Ratios are encrypted over plain.
func BenchmarkSecrets(b *testing.B) {
	const clients, count, rounds = 8, 2000, 4
	encrypted := &secretsServer{name: "encrypted"}
	plain := &secretsServer{name: "plain"}
	for _, s := range []*secretsServer{encrypted, plain} {
		cfg := testenv.ServerConfig(b)
		if s == plain {
			apiserver.WithoutEncryption(&cfg)
		}
		srv := testenv.StartServerWith(b, cfg)
		s.clients = newClients(b, testenv.AdminConfig(b, srv), clients)
		for i, c := range s.clients {
			if _, err := c.Secrets(metav1.NamespaceDefault).Create(testenv.Context(b), benchSecret("warmup-"+strconv.Itoa(i))); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for iter := range b.N {
		for r := range rounds {
			for _, s := range []*secretsServer{encrypted, plain} {
				s.round(b, fmt.Sprintf("s-%d-%d-", iter, r), count/rounds)
			}
		}
	}
	b.StopTimer()
	rate := func(lat []time.Duration, wall time.Duration) float64 { return float64(len(lat)) / wall.Seconds() }
	b.ReportMetric(rate(encrypted.createLat, encrypted.createWall), "enc-creates/s")
	b.ReportMetric(rate(plain.createLat, plain.createWall), "plain-creates/s")
	b.ReportMetric(rate(encrypted.createLat, encrypted.createWall)/rate(plain.createLat, plain.createWall), "create-ratio")
	b.ReportMetric(rate(encrypted.getLat, encrypted.getWall), "enc-gets/s")
	b.ReportMetric(rate(plain.getLat, plain.getWall), "plain-gets/s")
	b.ReportMetric(rate(encrypted.getLat, encrypted.getWall)/rate(plain.getLat, plain.getWall), "get-ratio")
	// The last list of each holds every Secret created.
	b.ReportMetric(millis(encrypted.listLat[len(encrypted.listLat)-1]), "enc-list-ms")
	b.ReportMetric(millis(plain.listLat[len(plain.listLat)-1]), "plain-list-ms")
	reportLatency(b, "enc-create-", encrypted.createLat)
	reportLatency(b, "plain-create-", plain.createLat)
}

// BenchmarkSecretsRotation rotates the encryption key of a server
// holding 1,000 Secrets: the time from the request to the old key's
// retirement, every Secret re-encrypted.
func BenchmarkSecretsRotation(b *testing.B) {
	const secrets, clients = 1000, 8
	srv := testenv.StartServer(b)
	cs := newClients(b, testenv.AdminConfig(b, srv), clients)
	if _, _, err := runBatch(secrets, clients, func(ctx context.Context, w, i int) error {
		_, err := cs[w].Secrets(metav1.NamespaceDefault).Create(ctx, benchSecret("s-"+strconv.Itoa(i)))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		var last *skiffv1.RotateEncryptionKeyProgress
		if err := cs[0].RotateEncryptionKey(testenv.Context(b), 0, func(p *skiffv1.RotateEncryptionKeyProgress) { last = p }); err != nil {
			b.Fatal(err)
		}
		total += time.Since(t0)
		if last.GetRewritten() != secrets {
			b.Fatalf("a rotation rewrote %d secrets, want %d", last.GetRewritten(), secrets)
		}
	}
	b.StopTimer()
	per := total / time.Duration(b.N)
	b.ReportMetric(millis(per), "rotate-ms")
	b.ReportMetric(float64(secrets)/per.Seconds(), "secrets/s")
}

package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/skiffdev/skiff/internal/nodetest"
	"github.com/skiffdev/skiff/internal/testenv"
)

// BenchmarkJoin measures joining: from the start of an agent's process
// (kubelet and proxy, as skiff agent) with a join token and no
// credentials, to its Node being Ready — fetching and checking the CA,
// making a key, having the client and serving certificates signed,
// registering, the first status. p50 and max over 10 joins, each a new
// machine in its own network namespace.
//
//	sudo go test -run '^$' -bench BenchmarkJoin -benchtime 1x ./test/e2e/
func BenchmarkJoin(b *testing.B) {
	const joins = 10
	srv := testenv.StartServer(b)
	c := testenv.NewClient(b, srv)
	var took []time.Duration
	for range b.N {
		for range joins {
			n := nodetest.Start(b, srv)
			n.WaitReady(c)
			took = append(took, time.Since(n.Started()))
			n.Kill() // idle kubelets would only slow the next joins down
		}
	}
	slices.Sort(took)
	b.ReportMetric(ms(took[len(took)/2]), "join-p50-ms")
	b.ReportMetric(ms(took[len(took)-1]), "join-max-ms")
}

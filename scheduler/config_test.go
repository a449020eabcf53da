package scheduler

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/skiffdev/skiff/internal/client"
)

func TestConfigFlags(t *testing.T) {
	cfg := DefaultConfig()
	fs := pflag.NewFlagSet("scheduler", pflag.ContinueOnError)
	cfg.AddFlags(fs)
	// The binary registers the connection flags, shared by every
	// component, and fills Connection from them.
	if fs.Lookup("server") != nil {
		t.Errorf("got a --server flag, want none: the binary registers the connection flags")
	}
	cfg.Connection = client.Config{Server: "https://10.0.0.1:6443"}
	err := fs.Parse([]string{
		"--scheduler-name", "batch", "--bind-workers", "8",
		"--percentage-of-nodes-to-score", "30", "--weight-spread", "0", "--weight-least-allocated", "3",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("got %v, want a valid config", err)
	}
	if cfg.SchedulerName != "batch" || cfg.BindWorkers != 8 ||
		cfg.PercentageOfNodesToScore != 30 || cfg.Weights.Spread != 0 || cfg.Weights.LeastAllocated != 3 {
		t.Errorf("got %+v, want the flags' values", cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Config)
		want   []string // substrings of the error; none for a valid config
	}{
		{"defaults with a server", func(*Config) {}, nil},
		{"no server", func(c *Config) { c.Connection.Server = "" }, []string{"no API server given (--kubeconfig or --server)"}},
		{"no scheduler name", func(c *Config) { c.SchedulerName = "" }, []string{"--scheduler-name must not be empty"}},
		{"negative weight", func(c *Config) { c.Weights.NodeAffinity = -1 }, []string{"NodeAffinity:-1}: must not be negative"}},
		{"percentage", func(c *Config) { c.PercentageOfNodesToScore = 101 }, []string{"percentageOfNodesToScore 101: must be between 0 and 100"}},
		{"several", func(c *Config) { c.BindWorkers = 0; c.SchedulerName = "" }, []string{
			"--bind-workers 0: must be at least 1", "--scheduler-name must not be empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Connection.Server = "https://127.0.0.1:6443"
			tc.mutate(&cfg)
			err := cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got no error, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("got %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

package logging

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestFromWithoutALoggerIsTheDefault(t *testing.T) {
	if got, want := From(context.Background()), slog.Default(); got != want {
		t.Errorf("From(empty context) = %p, want slog.Default() %p", got, want)
	}
	if got, want := From(Into(context.Background(), nil)), slog.Default(); got != want {
		t.Errorf("From(context with a nil logger) = %p, want slog.Default() %p", got, want)
	}
}

func TestIntoFrom(t *testing.T) {
	l := slog.New(slog.DiscardHandler)
	if got := From(Into(context.Background(), l)); got != l {
		t.Errorf("From(Into(ctx, l)) = %p, want l %p", got, l)
	}
}

// TestWithAddsAttributesOnce: attributes added by With appear on every
// line logged through the returned context, once each.
func TestWithAddsAttributesOnce(t *testing.T) {
	var buf bytes.Buffer
	ctx := Into(context.Background(), slog.New(slog.NewTextHandler(&buf, nil)))
	ctx, log := With(ctx, "component", "scheduler")
	ctx, _ = With(ctx, "pod", "default/web-1")
	From(ctx).Info("pod bound", "node", "node-1")
	log.Info("scheduler started")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	for _, want := range []string{`msg="pod bound"`, "component=scheduler", "pod=default/web-1", "node=node-1"} {
		if n := strings.Count(lines[0], want); n != 1 {
			t.Errorf("line %q has %s %d times, want once", lines[0], want, n)
		}
	}
	if !strings.Contains(lines[1], "component=scheduler") || strings.Contains(lines[1], "pod=") {
		t.Errorf("line %q: want component=scheduler and no pod (the logger returned by the first With)", lines[1])
	}
}

// Package logging carries a component's logger in a context.Context.
//
// Why the context: a log line is only useful when it says which component
// wrote it and about which object. Those attributes are known where work
// starts (a component's Run, a worker popping a key), not where a line is
// written, deep in a library. Skiff used to do it two ways: some packages
// took a logger in their Config (nil meaning the default), others called
// the global slog functions and so lost what their caller had attached.
// The context already travels from where the work starts to every
// function that does it, so the logger rides along (containerd logs the
// same way):
//
//   - a binary (cmd/) sets the process-wide default with slog.SetDefault;
//   - a component's entry point attaches "component" once:
//     ctx, log := logging.With(ctx, "component", "scheduler");
//   - a driver that takes up one object adds its key the same way;
//   - everything below logs through logging.From(ctx).
//
// A long-lived object whose methods get no context (informer event
// handlers, gRPC interceptors) keeps the logger of the context it was
// started with in a field, set once. Library packages never call the
// package-level slog functions (slog.Info, slog.Default, ...); From is the
// one place that reads the default, for a context that carries no logger.
// internal/archtest enforces that.
package logging

import (
	"context"
	"log/slog"
)

// key is the context key of the logger; no other package can make one.
type key struct{}

// From returns the logger ctx carries, or slog.Default() when it carries
// none.
func From(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(key{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return slog.Default()
}

// Into returns a copy of ctx that carries l.
func Into(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, key{}, l)
}

// With adds attributes (key/value pairs, as slog.Logger.With takes them)
// to the logger ctx carries, and returns a copy of ctx carrying the
// result, and the result.
func With(ctx context.Context, args ...any) (context.Context, *slog.Logger) {
	l := From(ctx).With(args...)
	return Into(ctx, l), l
}

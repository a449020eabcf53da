// Package controllers runs Skiff's controllers in one process
// (`skiff controllers`, and inside `skiff server`). Each controller lives
// in its own subpackage and is shaped the same way (see package
// controller): informers enqueue keys, workers call one level-based
// Reconcile. This package builds the shared client, informers and event
// recorder, starts every controller of its table (all, in controllers.go)
// that is not disabled, and stops them together. README.md is the map.
package controllers

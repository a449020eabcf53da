// Package archtest holds tests that enforce the repository's rules of
// structure: which packages may import what, and that every package is
// documented. It has no code of its own.
package archtest

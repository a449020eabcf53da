// Package archtest holds tests that enforce the repository's rules of
// structure: which packages may import what, that every package is
// documented, and that library packages log through the logger of their
// context, not the process-wide one. It has no code of its own.
package archtest

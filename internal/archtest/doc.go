// Package archtest holds tests that enforce the repository's rules of
// structure: which packages may import what, that every package is
// documented, that an interface shared by many packages is declared once,
// that no package sets itself up in an init function, that tests wait in
// one way only (internal/wait, which imports nothing of the module), and
// that library packages log through the logger of their context, not the
// process-wide one. It has no code of its own.
package archtest

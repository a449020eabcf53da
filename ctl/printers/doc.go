// Package printers turns API objects into what skiffctl prints: kubectl's
// tables (the columns `kubectl get` shows for each resource, with -o wide,
// -A and --show-labels), and the yaml, json and name output formats.
//
// Everything here is a pure function of its inputs. A table depends on the
// objects, the Options and the time "now" that ages are measured from, so
// a test can render with a fixed clock and compare with a golden file.
//
// Using it takes three steps:
//
//  1. Build a Table from objects of one resource (typed objects, such as
//     *corev1.Pod, or their list, such as *corev1.PodList):
//     NewTable(objs, opts, now).
//  2. Write it with a TableWriter, which aligns the columns as kubectl
//     does (cells padded to the widest cell plus three spaces). A
//     TableWriter prints the header once and remembers its column widths,
//     so the rows of later tables - a watch's changes - are padded to the
//     widths of the first; they line up under it unless a cell is longer
//     than any before it in its column.
//  3. For another resource, start a new TableWriter; kubectl separates
//     such tables with an empty line.
//
// PrintJSON, PrintYAML and PrintNames write the other output formats.
// A few helpers serve skiffctl's other output as well: HumanAge (the
// duration format of the AGE column), QualifiedName ("deployment.apps/web",
// the name of an object in messages), OrNone and Replicas.
package printers

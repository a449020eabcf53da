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
//     TableWriter remembers its column widths and prints the header once,
//     so the rows of later tables - a watch's changes - line up under it.
//  3. For another resource, start a new TableWriter; kubectl separates
//     such tables with an empty line.
//
// PrintJSON, PrintYAML and PrintNames write the other output formats;
// HumanAge is the duration format of the AGE column, which describe uses
// too.
package printers

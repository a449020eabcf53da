// Package script replays the script files of data-driven tests: stories
// told as commands, each case followed by the output it is expected to
// print. The scheduler's scenarios (scheduler/algorithm/testdata) and the
// kubelet's pod actions (kubelet/testdata) are written in it.
//
// A script is a series of cases; each case is some command lines, a line
// "----", and what the commands print, ended by a blank line:
//
//	node a cpu=2
//	pod web cpu=500m
//	schedule web
//	----
//	web -> a
//
// Lines starting with # are comments. What a command means is the test's:
// Run hands each command line to it and compares what it returns with
// the expected block. `go test -run TestX -rewrite` replaces every
// expected block with the actual output instead, to be reviewed as a
// diff.
package script

import (
	"flag"
	"os"
	"strings"
	"testing"
)

// rewrite is the -rewrite flag of every test binary that replays scripts.
var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of the scripts in testdata/ with what they print")

// testCase is one case of a script: its input lines as written (comments
// and blank lines included) and the expected output.
type testCase struct {
	input []string
	// line is the number of the case's first input line.
	line int
	want []string
	// hasSeparator is false for trailing lines with no "----";
	// separator is the line number of the "----".
	hasSeparator bool
	separator    int
}

func parse(data string) []testCase {
	lines := strings.Split(strings.TrimSuffix(data, "\n"), "\n")
	var cases []testCase
	cur := testCase{line: 1}
	expecting := false
	for i, line := range lines {
		switch {
		case expecting && line == "":
			cases = append(cases, cur)
			cur = testCase{line: i + 2}
			expecting = false
		case expecting:
			cur.want = append(cur.want, line)
		case line == "----":
			cur.hasSeparator, cur.separator = true, i+1
			expecting = true
		default:
			cur.input = append(cur.input, line)
		}
	}
	if expecting || len(cur.input) > 0 {
		cases = append(cases, cur)
	}
	return cases
}

// Run replays the script in file: it hands every command line, in order,
// to run, which returns what the command prints, and compares each case's
// output with the expected block (or, with -rewrite, writes the file
// again with the actual output). An error from run fails the test at
// that line.
func Run(t *testing.T, file string, run func(line string) ([]string, error)) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cases := parse(string(data))
	var out strings.Builder
	for ci, c := range cases {
		var got []string
		hasCommands := false
		for li, line := range c.input {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			hasCommands = true
			lines, err := run(line)
			if err != nil {
				t.Fatalf("%s:%d: %s: %v", file, c.line+li, line, err)
			}
			got = append(got, lines...)
		}
		if !c.hasSeparator && hasCommands && !*rewrite {
			t.Errorf("%s:%d: commands without a ---- line after them (run with -rewrite to add one)", file, c.line)
		}
		if c.hasSeparator && !*rewrite && strings.Join(got, "\n") != strings.Join(c.want, "\n") {
			t.Errorf("%s:%d: got:\n%s\nwant:\n%s", file, c.separator, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
		for _, line := range c.input {
			out.WriteString(line + "\n")
		}
		if c.hasSeparator || hasCommands {
			out.WriteString("----\n")
			for _, line := range got {
				out.WriteString(line + "\n")
			}
			if ci < len(cases)-1 {
				out.WriteString("\n")
			}
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

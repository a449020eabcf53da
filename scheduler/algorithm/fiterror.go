package algorithm

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// FitError is the answer when no node can take the pod. Its message is
// Kubernetes' FailedScheduling summary:
//
//	0/3 nodes are available: 1 node(s) had untolerated taint {key: value}, 2 Insufficient cpu.
type FitError struct {
	// NumAllNodes is the number of nodes in the snapshot.
	NumAllNodes int
	// Reasons counts, for each reason, the nodes that failed for it. A
	// node short of both cpu and memory counts under both.
	Reasons map[string]int
}

// Error lists "<count> <reason>" for every reason, sorted as strings the
// way Kubernetes sorts them (so the count comes into the order: "1 node(s)
// ..." before "2 Insufficient cpu").
func (e *FitError) Error() string {
	parts := make([]string, 0, len(e.Reasons))
	for reason, count := range e.Reasons {
		parts = append(parts, fmt.Sprintf("%d %s", count, reason))
	}
	sort.Strings(parts)
	msg := fmt.Sprintf("0/%d nodes are available", e.NumAllNodes)
	if len(parts) > 0 {
		msg += ": " + strings.Join(parts, ", ")
	}
	return msg + "."
}

// tally counts why nodes failed while the search runs, without building
// strings: the FitError is only made if no node fits at all.
type tally struct {
	counts [numFailureBits]int
	// taints counts untolerated taints by key and value.
	taints map[taintKeyValue]int
}

type taintKeyValue struct{ key, value string }

func (t *tally) add(f failure, taint *corev1.Taint) {
	for bit := range numFailureBits {
		if f&(1<<bit) == 0 {
			continue
		}
		if failure(1<<bit) == failTaint {
			if t.taints == nil {
				t.taints = map[taintKeyValue]int{}
			}
			t.taints[taintKeyValue{taint.Key, taint.Value}]++
			continue
		}
		t.counts[bit]++
	}
}

func (t *tally) fitError(numAllNodes int) *FitError {
	e := &FitError{NumAllNodes: numAllNodes, Reasons: map[string]int{}}
	for bit, count := range t.counts {
		if count > 0 {
			e.Reasons[failureReasons[bit]] += count
		}
	}
	for kv, count := range t.taints {
		e.Reasons[UntoleratedTaintReason(&corev1.Taint{Key: kv.key, Value: kv.value})] += count
	}
	return e
}

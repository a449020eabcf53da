package algorithm

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/internal/script"
)

// TestScenarios replays the scripts in testdata/. A script is a series of
// cases; each case is some commands, a line "----", and the output the
// commands are expected to print, ended by a blank line:
//
//	node n1 cpu=4 memory=8Gi
//	pod web-1 cpu=500m
//	schedule web-1
//	----
//	web-1 -> n1 (evaluated 1, feasible 1)
//
// Lines starting with # are comments. go test -run TestScenarios -rewrite
// replaces every expected block with the actual output.
//
// Commands (quote a value that holds spaces: require="zone in (a,b)"):
//
//	node NAME [cpu=4] [memory=8Gi] [pods=110] [labels=k=v,...]
//	     [taints=k=v:Effect,k:Effect,...] [unschedulable] [ready=True|False|Unknown|none]
//	    Adds a node (defaults shown; ready=none leaves out the condition).
//	pod NAME [cpu=Q] [memory=Q] [owner=ID] [namespace=NS] [nodeName=NODE]
//	    [tolerations=T,...] [nodeSelector=k=v,...] [ports=[udp/][IP:]PORT,...]
//	    [require=SELECTOR]... [prefer=WEIGHT:SELECTOR]...
//	    Defines a pending pod. owner=ID makes it controlled by object ID.
//	    A toleration is k=v:Effect or k=v (Equal), k:Effect or k
//	    (Exists), or * (tolerates everything). Each require= is one
//	    node selector term (terms are ORed), each prefer= one weighted
//	    preferred term; SELECTOR is label selector syntax (zone in (a,b),
//	    zone notin (c), gpu, !gpu, cores>4, cores<64; the key metadata.name
//	    becomes a matchFields entry).
//	schedule NAME...   Schedules each pod and places it on the chosen node.
//	explain NAME       Shows how each visited node was judged, without placing.
//	schedule-all       Schedules every pending pod, in order, and sums up.
//	bind NAME NODE     Places a pod on a node without asking (a running pod).
//	delete NAME        Removes a placed pod.
//	nodes              Prints what every node has allocated.
//	config [percentage=N] [start=N] [weights=least:1,balanced:1,spread:2,affinity:2]
//	repeat N COMMAND   Runs COMMAND N times, with {i} replaced by 1..N.
//
// After every placement the harness checks that the node is not
// over-committed, whatever the expected output says.
func TestScenarios(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no scenario files in testdata/")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runScript(t, file)
		})
	}
}

func runScript(t *testing.T, file string) {
	s := newScenario(t)
	script.Run(t, file, s.run)
}

// scenario is the cluster a script builds up.
type scenario struct {
	t     *testing.T
	nodes []*NodeInfo // sorted by name, as in a Snapshot
	pods  map[string]*corev1.Pod
	// order lists pod names in the order they were defined.
	order []string
	// placed maps a pod's name to the node it was placed on.
	placed map[string]string
	cfg    Config
}

func newScenario(t *testing.T) *scenario {
	return &scenario{
		t:      t,
		pods:   map[string]*corev1.Pod{},
		placed: map[string]string{},
		cfg:    Config{Weights: DefaultWeights},
	}
}

func (s *scenario) run(line string) ([]string, error) {
	args, err := splitArgs(line)
	if err != nil {
		return nil, err
	}
	switch cmd, args := args[0], args[1:]; cmd {
	case "node":
		return nil, s.addNode(args)
	case "pod":
		return nil, s.addPod(args)
	case "schedule":
		var out []string
		for _, name := range args {
			line, err := s.schedule(name)
			if err != nil {
				return nil, err
			}
			out = append(out, line)
		}
		return out, nil
	case "explain":
		if len(args) != 1 {
			return nil, errors.New("usage: explain POD")
		}
		return s.explain(args[0])
	case "schedule-all":
		return s.scheduleAll()
	case "bind":
		if len(args) != 2 {
			return nil, errors.New("usage: bind POD NODE")
		}
		return nil, s.place(args[0], args[1])
	case "delete":
		if len(args) != 1 {
			return nil, errors.New("usage: delete POD")
		}
		return nil, s.delete(args[0])
	case "nodes":
		return s.printNodes(), nil
	case "config":
		return nil, s.configure(args)
	case "repeat":
		if len(args) < 2 {
			return nil, errors.New("usage: repeat N COMMAND...")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return nil, err
		}
		rest := strings.SplitN(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "repeat")), " ", 2)[1]
		var out []string
		for i := 1; i <= n; i++ {
			lines, err := s.run(strings.ReplaceAll(rest, "{i}", strconv.Itoa(i)))
			if err != nil {
				return nil, err
			}
			out = append(out, lines...)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown command %q", args[0])
}

// splitArgs splits a line at spaces, keeping double-quoted text together
// (without its quotes).
func splitArgs(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	quoted, inArg := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted = !quoted
			inArg = true
		case r == ' ' && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(r)
			inArg = true
		}
	}
	if quoted {
		return nil, errors.New("unterminated quote")
	}
	if inArg {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("empty command")
	}
	return args, nil
}

func (s *scenario) addNode(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: node NAME [key=value...]")
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: args[0], UID: types.UID("node-" + args[0])}}
	alloc := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("4"),
		corev1.ResourceMemory: resource.MustParse("8Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	ready := corev1.ConditionTrue
	for _, arg := range args[1:] {
		key, value, _ := strings.Cut(arg, "=")
		switch key {
		case "cpu", "memory", "pods":
			q, err := resource.ParseQuantity(value)
			if err != nil {
				return fmt.Errorf("%s: %w", arg, err)
			}
			alloc[corev1.ResourceName(key)] = q
		case "labels":
			labels, err := parsePairs(value)
			if err != nil {
				return err
			}
			node.Labels = labels
		case "taints":
			for _, item := range strings.Split(value, ",") {
				kv, effect, ok := strings.Cut(item, ":")
				if !ok {
					return fmt.Errorf("taint %q: want key[=value]:Effect", item)
				}
				k, v, _ := strings.Cut(kv, "=")
				node.Spec.Taints = append(node.Spec.Taints, corev1.Taint{Key: k, Value: v, Effect: corev1.TaintEffect(effect)})
			}
		case "unschedulable":
			node.Spec.Unschedulable = true
		case "ready":
			ready = corev1.ConditionStatus(value)
		default:
			return fmt.Errorf("unknown node option %q", arg)
		}
	}
	node.Status.Allocatable = alloc
	node.Status.Capacity = alloc
	if ready != "none" {
		node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}
	}
	for _, ni := range s.nodes {
		if ni.Node.Name == node.Name {
			return fmt.Errorf("node %q already exists", node.Name)
		}
	}
	s.nodes = append(s.nodes, NewNodeInfo(node))
	sort.Slice(s.nodes, func(i, j int) bool { return s.nodes[i].Node.Name < s.nodes[j].Node.Name })
	return nil
}

func (s *scenario) addPod(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: pod NAME [key=value...]")
	}
	name := args[0]
	if _, ok := s.pods[name]; ok {
		return fmt.Errorf("pod %q already exists", name)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("pod-" + name)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "main", Image: "example"}}},
	}
	c := &pod.Spec.Containers[0]
	affinity := &corev1.NodeAffinity{}
	for _, arg := range args[1:] {
		key, value, _ := strings.Cut(arg, "=")
		switch key {
		case "cpu", "memory":
			q, err := resource.ParseQuantity(value)
			if err != nil {
				return fmt.Errorf("%s: %w", arg, err)
			}
			if c.Resources.Requests == nil {
				c.Resources.Requests = corev1.ResourceList{}
			}
			c.Resources.Requests[corev1.ResourceName(key)] = q
		case "owner":
			pod.OwnerReferences = []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: value,
				UID: types.UID(value), Controller: ptrTo(true),
			}}
		case "namespace":
			pod.Namespace = value
		case "nodeName":
			pod.Spec.NodeName = value
		case "nodeSelector":
			sel, err := parsePairs(value)
			if err != nil {
				return err
			}
			pod.Spec.NodeSelector = sel
		case "tolerations":
			for _, item := range strings.Split(value, ",") {
				pod.Spec.Tolerations = append(pod.Spec.Tolerations, parseToleration(item))
			}
		case "ports":
			for _, item := range strings.Split(value, ",") {
				p, err := parsePort(item)
				if err != nil {
					return err
				}
				c.Ports = append(c.Ports, p)
			}
		case "require":
			term, err := parseSelectorTerm(value)
			if err != nil {
				return err
			}
			if affinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
				affinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{}
			}
			req := affinity.RequiredDuringSchedulingIgnoredDuringExecution
			req.NodeSelectorTerms = append(req.NodeSelectorTerms, term)
		case "prefer":
			w, sel, ok := strings.Cut(value, ":")
			weight, err := strconv.Atoi(w)
			if !ok || err != nil {
				return fmt.Errorf("prefer %q: want WEIGHT:SELECTOR", value)
			}
			term, err := parseSelectorTerm(sel)
			if err != nil {
				return err
			}
			affinity.PreferredDuringSchedulingIgnoredDuringExecution = append(affinity.PreferredDuringSchedulingIgnoredDuringExecution,
				corev1.PreferredSchedulingTerm{Weight: int32(weight), Preference: term})
		default:
			return fmt.Errorf("unknown pod option %q", arg)
		}
	}
	if affinity.RequiredDuringSchedulingIgnoredDuringExecution != nil || affinity.PreferredDuringSchedulingIgnoredDuringExecution != nil {
		pod.Spec.Affinity = &corev1.Affinity{NodeAffinity: affinity}
	}
	s.pods[name] = pod
	s.order = append(s.order, name)
	return nil
}

func ptrTo[T any](v T) *T { return &v }

// parsePairs reads "k=v,k2=v2".
func parsePairs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("%q: want key=value", item)
		}
		out[k] = v
	}
	return out, nil
}

// parseToleration reads k=v:Effect, k=v, k:Effect, k or *.
func parseToleration(s string) corev1.Toleration {
	if s == "*" {
		return corev1.Toleration{Operator: corev1.TolerationOpExists}
	}
	kv, effect, _ := strings.Cut(s, ":")
	tol := corev1.Toleration{Effect: corev1.TaintEffect(effect)}
	if k, v, ok := strings.Cut(kv, "="); ok {
		tol.Key, tol.Operator, tol.Value = k, corev1.TolerationOpEqual, v
	} else {
		tol.Key, tol.Operator = kv, corev1.TolerationOpExists
	}
	return tol
}

// parsePort reads [udp/][IP:]PORT as a container port with that host port.
func parsePort(s string) (corev1.ContainerPort, error) {
	p := corev1.ContainerPort{Protocol: corev1.ProtocolTCP}
	if proto, rest, ok := strings.Cut(s, "/"); ok {
		p.Protocol = corev1.Protocol(strings.ToUpper(proto))
		s = rest
	}
	if ip, rest, ok := strings.Cut(s, ":"); ok {
		p.HostIP = ip
		s = rest
	}
	port, err := strconv.Atoi(s)
	if err != nil {
		return p, fmt.Errorf("port %q: %w", s, err)
	}
	p.HostPort, p.ContainerPort = int32(port), int32(port)
	return p, nil
}

// parseSelectorTerm turns label selector syntax into a node selector term.
func parseSelectorTerm(s string) (corev1.NodeSelectorTerm, error) {
	var term corev1.NodeSelectorTerm
	sel, err := labels.Parse(s)
	if err != nil {
		return term, err
	}
	reqs, _ := sel.Requirements()
	ops := map[selection.Operator]corev1.NodeSelectorOperator{
		selection.In: corev1.NodeSelectorOpIn, selection.Equals: corev1.NodeSelectorOpIn, selection.DoubleEquals: corev1.NodeSelectorOpIn,
		selection.NotIn: corev1.NodeSelectorOpNotIn, selection.NotEquals: corev1.NodeSelectorOpNotIn,
		selection.Exists: corev1.NodeSelectorOpExists, selection.DoesNotExist: corev1.NodeSelectorOpDoesNotExist,
		selection.GreaterThan: corev1.NodeSelectorOpGt, selection.LessThan: corev1.NodeSelectorOpLt,
	}
	for _, r := range reqs {
		e := corev1.NodeSelectorRequirement{Key: r.Key(), Operator: ops[r.Operator()], Values: sets(r.ValuesUnsorted())}
		if e.Key == "metadata.name" {
			term.MatchFields = append(term.MatchFields, e)
		} else {
			term.MatchExpressions = append(term.MatchExpressions, e)
		}
	}
	return term, nil
}

func sets(values []string) []string {
	if len(values) == 0 {
		return nil
	}
	sort.Strings(values)
	return values
}

func (s *scenario) snapshot() *Snapshot {
	return &Snapshot{Nodes: s.nodes}
}

func (s *scenario) pending(name string) (*corev1.Pod, error) {
	pod, ok := s.pods[name]
	if !ok {
		return nil, fmt.Errorf("no pod %q", name)
	}
	if node, ok := s.placed[name]; ok {
		return nil, fmt.Errorf("pod %q is already on %s", name, node)
	}
	return pod, nil
}

// schedule runs Schedule for one pod and, on success, places it the way
// the scheduler assumes a pod: on the node's NodeInfo, with the next
// search starting where Result.NextStart says.
func (s *scenario) schedule(name string) (string, error) {
	pod, err := s.pending(name)
	if err != nil {
		return "", err
	}
	res, err := Schedule(s.snapshot(), pod, s.cfg)
	var fitErr *FitError
	switch {
	case errors.As(err, &fitErr):
		return fmt.Sprintf("%s unschedulable: %v", name, err), nil
	case err != nil:
		return fmt.Sprintf("%s error: %v", name, err), nil
	}
	s.cfg.Start = res.NextStart
	if err := s.place(name, res.Node); err != nil {
		return "", err
	}
	s.checkNotOverCommitted(res.Node)
	return fmt.Sprintf("%s -> %s (evaluated %d, feasible %d)", name, res.Node, res.Evaluated, res.Feasible), nil
}

func (s *scenario) scheduleAll() ([]string, error) {
	placed := map[string]int{}
	failures := map[string]int{}
	var failureOrder []string
	total, scheduled := 0, 0
	for _, name := range s.order {
		if _, ok := s.placed[name]; ok {
			continue
		}
		total++
		line, err := s.schedule(name)
		if err != nil {
			return nil, err
		}
		if node, ok := s.placed[name]; ok {
			scheduled++
			placed[node]++
			continue
		}
		msg := strings.TrimPrefix(line, name+" ")
		if failures[msg] == 0 {
			failureOrder = append(failureOrder, msg)
		}
		failures[msg]++
	}
	var perNode []string
	for _, ni := range s.nodes {
		if n := placed[ni.Node.Name]; n > 0 {
			perNode = append(perNode, fmt.Sprintf("%s %d", ni.Node.Name, n))
		}
	}
	out := []string{fmt.Sprintf("scheduled %d of %d: %s", scheduled, total, strings.Join(perNode, ", "))}
	for _, msg := range failureOrder {
		out = append(out, fmt.Sprintf("%d × %s", failures[msg], msg))
	}
	return out, nil
}

// place puts a pod on a node, as bound or assumed.
func (s *scenario) place(name, nodeName string) error {
	pod, err := s.pending(name)
	if err != nil {
		return err
	}
	ni := s.nodeInfo(nodeName)
	if ni == nil {
		return fmt.Errorf("no node %q", nodeName)
	}
	bound := pod.DeepCopy()
	bound.Spec.NodeName = nodeName
	ni.AddPod(bound)
	s.placed[name] = nodeName
	return nil
}

func (s *scenario) delete(name string) error {
	nodeName, ok := s.placed[name]
	if !ok {
		return fmt.Errorf("pod %q is not on a node", name)
	}
	if !s.nodeInfo(nodeName).RemovePod(s.pods[name]) {
		return fmt.Errorf("pod %q was not counted on %s", name, nodeName)
	}
	delete(s.placed, name)
	delete(s.pods, name)
	s.order = slices.DeleteFunc(s.order, func(n string) bool { return n == name })
	return nil
}

func (s *scenario) nodeInfo(name string) *NodeInfo {
	for _, ni := range s.nodes {
		if ni.Node.Name == name {
			return ni
		}
	}
	return nil
}

func (s *scenario) checkNotOverCommitted(nodeName string) {
	ni := s.nodeInfo(nodeName)
	r, a := ni.Requested, ni.Allocatable
	if r.MilliCPU > a.MilliCPU || r.Memory > a.Memory || r.Pods > a.Pods {
		s.t.Errorf("node %s over-committed: requested %v, allocatable %v", nodeName, r, a)
	}
}

func (s *scenario) printNodes() []string {
	var out []string
	for _, ni := range s.nodes {
		r, a := ni.Requested, ni.Allocatable
		out = append(out, fmt.Sprintf("%s: cpu %s/%s memory %s/%s pods %d/%d",
			ni.Node.Name, milliCPU(r.MilliCPU), milliCPU(a.MilliCPU), bytes(r.Memory), bytes(a.Memory), r.Pods, a.Pods))
	}
	return out
}

func milliCPU(m int64) string { return resource.NewMilliQuantity(m, resource.DecimalSI).String() }
func bytes(b int64) string    { return resource.NewQuantity(b, resource.BinarySI).String() }

// explain shows, for each node the search visited, why it was left out or
// how it scored, and which node won.
func (s *scenario) explain(name string) ([]string, error) {
	pod, err := s.pending(name)
	if err != nil {
		return nil, err
	}
	res, cands, err := schedule(s.snapshot(), pod, s.cfg)
	if err != nil && res.Evaluated == 0 {
		return []string{fmt.Sprintf("%s error: %v", name, err)}, nil
	}
	byIndex := map[int]*candidate{}
	for i := range cands {
		byIndex[cands[i].index] = &cands[i]
	}
	p := preparePod(pod)
	n := len(s.nodes)
	start := ((s.cfg.Start % n) + n) % n
	var out []string
	for k := 0; k < res.Evaluated; k++ {
		i := (start + k) % n
		ni := s.nodes[i]
		if c := byIndex[i]; c != nil {
			out = append(out, fmt.Sprintf("  %s: least %d, balanced %d, spread %d, affinity %d => %d",
				ni.Node.Name, c.leastAllocated, c.balancedAllocation, c.spread, c.nodeAffinity, c.total))
			continue
		}
		f, taint := filter(p, ni)
		var reasons []string
		for bit := range numFailureBits {
			switch {
			case f&(1<<bit) == 0:
			case failure(1<<bit) == failTaint:
				reasons = append(reasons, UntoleratedTaintReason(taint))
			default:
				reasons = append(reasons, failureReasons[bit])
			}
		}
		out = append(out, fmt.Sprintf("  %s: %s", ni.Node.Name, strings.Join(reasons, ", ")))
	}
	if err != nil {
		return append(out, fmt.Sprintf("%s unschedulable: %v", name, err)), nil
	}
	return append(out, fmt.Sprintf("%s -> %s (evaluated %d, feasible %d)", name, res.Node, res.Evaluated, res.Feasible)), nil
}

func (s *scenario) configure(args []string) error {
	for _, arg := range args {
		key, value, _ := strings.Cut(arg, "=")
		switch key {
		case "percentage", "start":
			n, err := strconv.Atoi(value)
			if err != nil {
				return fmt.Errorf("%s: %w", arg, err)
			}
			if key == "start" {
				s.cfg.Start = n
			} else {
				s.cfg.PercentageOfNodesToScore = n
			}
		case "weights":
			var w Weights
			for _, item := range strings.Split(value, ",") {
				name, v, _ := strings.Cut(item, ":")
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					return fmt.Errorf("weight %q: %w", item, err)
				}
				switch name {
				case "least":
					w.LeastAllocated = n
				case "balanced":
					w.BalancedAllocation = n
				case "spread":
					w.Spread = n
				case "affinity":
					w.NodeAffinity = n
				default:
					return fmt.Errorf("unknown weight %q", name)
				}
			}
			s.cfg.Weights = w
		default:
			return fmt.Errorf("unknown config option %q", arg)
		}
	}
	return nil
}

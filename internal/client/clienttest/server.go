// Package clienttest is a minimal in-memory stand-in for the Skiff API
// server, for the unit tests of internal/client and internal/informers
// only. Everything else tests against the real API server on 127.0.0.1:0
// with a real etcd.
//
// The server keeps objects in a map, numbers every write with one
// resourceVersion counter, and keeps the history of events so that a watch
// can resume from any resourceVersion newer than the one passed to
// Compact. It does not validate or default objects (beyond uid,
// resourceVersion and creationTimestamp) and knows only the selectors
// the tests use. Methods whose names start with a capital letter and that
// are not part of skiffv1.APIServer are hooks for tests: Compact,
// DropWatches, SendBookmark, Requests.
package clienttest

import (
	"context"
	"fmt"
	"net"
	goruntime "runtime"
	"sort"
	"strconv"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/scheme"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// Server is the fake API server.
type Server struct {
	skiffv1.UnimplementedAPIServer

	// Addr is the address the server listens on, for client.Config.Server.
	Addr string

	// Warnings, if set, are attached to every Create and Update response.
	Warnings []string

	// mu guards everything below.
	mu sync.Mutex
	// rv is the resourceVersion of the last write.
	rv int64
	// compacted is the oldest resourceVersion a watch may start from.
	compacted int64
	objects   map[key]runtime.Object
	history   []event
	watchers  map[*watcher]bool
	requests  []string
	// deleteOptions is the DeleteOptions of the last Delete.
	deleteOptions metav1.DeleteOptions
}

type key struct {
	gr              schema.GroupResource
	namespace, name string
}

type event struct {
	rv  int64
	typ watch.EventType
	key key
	obj runtime.Object
}

// watcher is one open Watch stream.
type watcher struct {
	gr        schema.GroupResource
	namespace string
	labels    labels.Selector
	fields    fields.Selector
	bookmarks bool
	// events is fed by writers under Server.mu; it is large enough for
	// the tests, and a full channel drops the watch like a slow client.
	events chan *skiffv1.WatchEvent
	// stop ends the stream with the error it carries.
	stop chan error
}

// Start runs a server on 127.0.0.1:0 and stops it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	s := &Server{
		Addr:     lis.Addr().String(),
		objects:  map[key]runtime.Object{},
		watchers: map[*watcher]bool{},
	}
	gs := grpc.NewServer()
	skiffv1.RegisterAPIServer(gs, s)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	t.Cleanup(func() {
		gs.Stop()
		<-done
	})
	return s
}

// Requests returns one line per request received so far, "Verb resource
// namespace/name", for tests that check what the client sent.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// Compact forgets the history up to the current resourceVersion: watches
// from an older one fail with 410 Expired, as after an etcd compaction.
func (s *Server) Compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compacted = s.rv
	s.history = nil
}

// DropWatches ends every open watch stream with err, or with gRPC
// Unavailable (a lost connection) when err is nil. It returns how many
// streams it ended.
func (s *Server) DropWatches(err error) int {
	if err == nil {
		err = status.Error(codes.Unavailable, "connection reset")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for w := range s.watchers {
		w.end(err)
		delete(s.watchers, w)
		n++
	}
	return n
}

// SendErrorEvent sends an ERROR event carrying the Status of err to every
// open watch, then ends the streams normally.
func (s *Server) SendErrorEvent(err error) {
	data, encErr := scheme.EncodeProtobuf(grpcerr.StatusFor(err))
	if encErr != nil {
		panic(encErr)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		select {
		case w.events <- &skiffv1.WatchEvent{Type: string(watch.Error), Object: data}:
		default:
		}
		w.end(nil)
		delete(s.watchers, w)
	}
}

// LastDeleteOptions returns the options of the last Delete request.
func (s *Server) LastDeleteOptions() metav1.DeleteOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteOptions
}

// Watchers returns the number of open watch streams.
func (s *Server) Watchers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.watchers)
}

// SendBookmark sends a BOOKMARK at the current resourceVersion to every
// watch that asked for bookmarks.
func (s *Server) SendBookmark() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.watchers {
		if !w.bookmarks {
			continue
		}
		info, _ := scheme.Lookup(w.gr)
		obj := info.New()
		m, _ := meta.Accessor(obj)
		m.SetResourceVersion(strconv.FormatInt(s.rv, 10))
		s.sendLocked(w, watch.Bookmark, obj)
	}
}

func (s *Server) record(verb string, r *skiffv1.Resource, namespace, name string) {
	s.requests = append(s.requests, fmt.Sprintf("%s %s %s/%s", verb, groupResource(r), namespace, name))
}

func groupResource(r *skiffv1.Resource) schema.GroupResource {
	return schema.GroupResource{Group: r.GetGroup(), Resource: r.GetResource()}
}

func lookup(r *skiffv1.Resource) (*scheme.ResourceInfo, error) {
	info, ok := scheme.Lookup(groupResource(r))
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "resources"}, groupResource(r).String())
	}
	return info, nil
}

// decode reads a request body in any of the three encodings.
func decode(data []byte, enc skiffv1.Encoding, into runtime.Object) (runtime.Object, error) {
	var obj runtime.Object
	var err error
	switch enc {
	case skiffv1.Encoding_ENCODING_JSON:
		obj, err = scheme.DecodeStrictJSON(data, into)
	case skiffv1.Encoding_ENCODING_YAML:
		obj, err = scheme.DecodeStrictYAML(data, into)
	default:
		obj, err = scheme.DecodeProtobuf(data, into)
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return obj, nil
}

func encode(obj runtime.Object) ([]byte, error) {
	obj = obj.DeepCopyObject()
	return scheme.EncodeProtobuf(obj)
}

func objectResponse(obj runtime.Object, warnings []string) (*skiffv1.ObjectResponse, error) {
	data, err := encode(obj)
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	return &skiffv1.ObjectResponse{Object: data, Warnings: warnings}, nil
}

// Create implements skiffv1.APIServer.
func (s *Server) Create(_ context.Context, req *skiffv1.CreateRequest) (*skiffv1.ObjectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("Create", req.GetResource(), req.GetNamespace(), req.GetName()+subSuffix(req.GetSubresource()))
	info, err := lookup(req.GetResource())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	if req.GetSubresource() == "binding" {
		return s.bindLocked(info, req)
	}
	obj, err := decode(req.GetObject(), req.GetEncoding(), info.New())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	m, _ := meta.Accessor(obj)
	if info.Namespaced {
		if req.GetNamespace() == "" {
			return nil, grpcerr.ToStatus(apierrors.NewBadRequest("namespace is required"))
		}
		m.SetNamespace(req.GetNamespace())
	}
	k := key{info.GroupResource(), m.GetNamespace(), m.GetName()}
	if _, ok := s.objects[k]; ok {
		return nil, grpcerr.ToStatus(apierrors.NewAlreadyExists(info.GroupResource(), m.GetName()))
	}
	m.SetUID(uuid.NewUUID())
	m.SetCreationTimestamp(metav1.Now())
	if req.GetDryRun() {
		return objectResponse(obj, s.Warnings)
	}
	s.writeLocked(watch.Added, k, obj)
	return objectResponse(obj, s.Warnings)
}

func subSuffix(sub string) string {
	if sub == "" {
		return ""
	}
	return "/" + sub
}

func (s *Server) bindLocked(info *scheme.ResourceInfo, req *skiffv1.CreateRequest) (*skiffv1.ObjectResponse, error) {
	obj, err := decode(req.GetObject(), req.GetEncoding(), &corev1.Binding{})
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	binding := obj.(*corev1.Binding)
	k := key{info.GroupResource(), req.GetNamespace(), req.GetName()}
	stored, ok := s.objects[k]
	if !ok {
		return nil, grpcerr.ToStatus(apierrors.NewNotFound(info.GroupResource(), req.GetName()))
	}
	pod := stored.DeepCopyObject().(*corev1.Pod)
	if pod.Spec.NodeName != "" {
		return nil, grpcerr.ToStatus(apierrors.NewConflict(info.GroupResource(), pod.Name,
			fmt.Errorf("pod %s is already assigned to node %q", pod.Name, pod.Spec.NodeName)))
	}
	pod.Spec.NodeName = binding.Target.Name
	s.writeLocked(watch.Modified, k, pod)
	return &skiffv1.ObjectResponse{}, nil
}

// writeLocked stores obj (or removes it, for Deleted) under a new
// resourceVersion and tells the watchers.
func (s *Server) writeLocked(typ watch.EventType, k key, obj runtime.Object) {
	s.rv++
	m, _ := meta.Accessor(obj)
	m.SetResourceVersion(strconv.FormatInt(s.rv, 10))
	_ = scheme.SetTypeMeta(obj)
	if typ == watch.Deleted {
		delete(s.objects, k)
	} else {
		s.objects[k] = obj.DeepCopyObject()
	}
	ev := event{rv: s.rv, typ: typ, key: k, obj: obj.DeepCopyObject()}
	s.history = append(s.history, ev)
	for w := range s.watchers {
		if w.matches(k, ev.obj) {
			s.sendLocked(w, typ, ev.obj)
		}
	}
}

func (s *Server) sendLocked(w *watcher, typ watch.EventType, obj runtime.Object) {
	data, err := encode(obj)
	if err != nil {
		panic(err)
	}
	select {
	case w.events <- &skiffv1.WatchEvent{Type: string(typ), Object: data}:
	default:
		w.end(status.Error(codes.ResourceExhausted, "watcher too slow"))
		delete(s.watchers, w)
	}
}

// end makes the watch's stream return err (nil: end normally) after it
// has sent the events already queued.
func (w *watcher) end(err error) {
	select {
	case w.stop <- err:
	default:
	}
}

// Get implements skiffv1.APIServer.
func (s *Server) Get(_ context.Context, req *skiffv1.GetRequest) (*skiffv1.ObjectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("Get", req.GetResource(), req.GetNamespace(), req.GetName()+subSuffix(req.GetSubresource()))
	info, err := lookup(req.GetResource())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	obj, ok := s.objects[key{info.GroupResource(), req.GetNamespace(), req.GetName()}]
	if !ok {
		return nil, grpcerr.ToStatus(apierrors.NewNotFound(info.GroupResource(), req.GetName()))
	}
	if req.GetSubresource() == "scale" {
		return objectResponse(scaleOf(obj), nil)
	}
	return objectResponse(obj, nil)
}

func scaleOf(obj runtime.Object) *autoscalingv1.Scale {
	d := obj.(*appsv1.Deployment)
	scale := &autoscalingv1.Scale{ObjectMeta: *d.ObjectMeta.DeepCopy()}
	if d.Spec.Replicas != nil {
		scale.Spec.Replicas = *d.Spec.Replicas
	}
	scale.Status.Replicas = d.Status.Replicas
	return scale
}

// List implements skiffv1.APIServer. It ignores limit and continue.
func (s *Server) List(_ context.Context, req *skiffv1.ListRequest) (*skiffv1.ListResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("List", req.GetResource(), req.GetNamespace(), "")
	info, err := lookup(req.GetResource())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	w, err := newWatcher(info, req.GetNamespace(), req.GetLabelSelector(), req.GetFieldSelector())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	var keys []key
	for k, obj := range s.objects {
		if w.matches(k, obj) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].namespace+"/"+keys[i].name < keys[j].namespace+"/"+keys[j].name
	})
	var items []runtime.Object
	for _, k := range keys {
		items = append(items, s.objects[k].DeepCopyObject())
	}
	list := info.NewList()
	if err := meta.SetList(list, items); err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	lm, _ := meta.ListAccessor(list)
	lm.SetResourceVersion(strconv.FormatInt(s.rv, 10))
	data, err := encode(list)
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	return &skiffv1.ListResponse{List: data}, nil
}

// Update implements skiffv1.APIServer. An empty resourceVersion
// overwrites unconditionally.
func (s *Server) Update(_ context.Context, req *skiffv1.UpdateRequest) (*skiffv1.ObjectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("Update", req.GetResource(), req.GetNamespace(), req.GetName()+subSuffix(req.GetSubresource()))
	info, err := lookup(req.GetResource())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	k := key{info.GroupResource(), req.GetNamespace(), req.GetName()}
	stored, ok := s.objects[k]
	if !ok {
		return nil, grpcerr.ToStatus(apierrors.NewNotFound(info.GroupResource(), req.GetName()))
	}
	var obj runtime.Object
	if req.GetSubresource() == "scale" {
		in, err := decode(req.GetObject(), req.GetEncoding(), &autoscalingv1.Scale{})
		if err != nil {
			return nil, grpcerr.ToStatus(err)
		}
		d := stored.DeepCopyObject().(*appsv1.Deployment)
		d.Spec.Replicas = &in.(*autoscalingv1.Scale).Spec.Replicas
		d.ResourceVersion = in.(*autoscalingv1.Scale).ResourceVersion
		obj = d
	} else if obj, err = decode(req.GetObject(), req.GetEncoding(), info.New()); err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	m, _ := meta.Accessor(obj)
	storedMeta, _ := meta.Accessor(stored)
	if rv := m.GetResourceVersion(); rv != "" && rv != storedMeta.GetResourceVersion() {
		return nil, grpcerr.ToStatus(apierrors.NewConflict(info.GroupResource(), req.GetName(),
			fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again")))
	}
	m.SetUID(storedMeta.GetUID())
	m.SetCreationTimestamp(storedMeta.GetCreationTimestamp())
	s.writeLocked(watch.Modified, k, obj)
	if req.GetSubresource() == "scale" {
		return objectResponse(scaleOf(obj), s.Warnings)
	}
	return objectResponse(obj, s.Warnings)
}

// Patch implements skiffv1.APIServer for merge patches.
func (s *Server) Patch(_ context.Context, req *skiffv1.PatchRequest) (*skiffv1.ObjectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("Patch", req.GetResource(), req.GetNamespace(), req.GetName()+subSuffix(req.GetSubresource()))
	info, err := lookup(req.GetResource())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	if req.GetPatchType() != string(types.MergePatchType) {
		return nil, grpcerr.ToStatus(apierrors.NewBadRequest(fmt.Sprintf("unsupported patch type %q", req.GetPatchType())))
	}
	k := key{info.GroupResource(), req.GetNamespace(), req.GetName()}
	stored, ok := s.objects[k]
	if !ok {
		return nil, grpcerr.ToStatus(apierrors.NewNotFound(info.GroupResource(), req.GetName()))
	}
	doc, err := scheme.EncodeJSON(stored.DeepCopyObject())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	patched, err := jsonpatch.MergePatch(doc, req.GetPatch())
	if err != nil {
		return nil, grpcerr.ToStatus(apierrors.NewBadRequest(err.Error()))
	}
	obj, err := decode(patched, skiffv1.Encoding_ENCODING_JSON, info.New())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	s.writeLocked(watch.Modified, k, obj)
	return objectResponse(obj, nil)
}

// Delete implements skiffv1.APIServer.
func (s *Server) Delete(_ context.Context, req *skiffv1.DeleteRequest) (*skiffv1.ObjectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record("Delete", req.GetResource(), req.GetNamespace(), req.GetName())
	info, err := lookup(req.GetResource())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	opts := &metav1.DeleteOptions{}
	if len(req.GetOptions()) > 0 {
		if err := opts.Unmarshal(req.GetOptions()); err != nil {
			return nil, grpcerr.ToStatus(apierrors.NewBadRequest(err.Error()))
		}
	}
	s.deleteOptions = *opts
	k := key{info.GroupResource(), req.GetNamespace(), req.GetName()}
	stored, ok := s.objects[k]
	if !ok {
		return nil, grpcerr.ToStatus(apierrors.NewNotFound(info.GroupResource(), req.GetName()))
	}
	m, _ := meta.Accessor(stored)
	if p := opts.Preconditions; p != nil && p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
		return nil, grpcerr.ToStatus(apierrors.NewConflict(info.GroupResource(), req.GetName(),
			fmt.Errorf("precondition failed: resourceVersion %s, stored %s", *p.ResourceVersion, m.GetResourceVersion())))
	}
	obj := stored.DeepCopyObject()
	s.writeLocked(watch.Deleted, k, obj)
	return objectResponse(obj, nil)
}

// Watch implements skiffv1.APIServer.
func (s *Server) Watch(req *skiffv1.WatchRequest, stream skiffv1.API_WatchServer) error {
	info, err := lookup(req.GetResource())
	if err != nil {
		return grpcerr.ToStatus(err)
	}
	w, err := newWatcher(info, req.GetNamespace(), req.GetLabelSelector(), req.GetFieldSelector())
	if err != nil {
		return grpcerr.ToStatus(err)
	}
	w.bookmarks = req.GetAllowBookmarks()

	s.mu.Lock()
	detail := "rv=" + req.GetResourceVersion()
	if req.GetAllowBookmarks() {
		detail += " bookmarks"
	}
	s.record("Watch", req.GetResource(), req.GetNamespace(), detail)
	if err := s.startLocked(w, req.GetResourceVersion()); err != nil {
		s.mu.Unlock()
		return grpcerr.ToStatus(err)
	}
	s.watchers[w] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, w)
		s.mu.Unlock()
	}()

	for {
		select {
		case ev := <-w.events:
			if err := stream.Send(ev); err != nil {
				return err
			}
		case err := <-w.stop:
			if err != nil {
				return err
			}
			// Flush what was queued before the end.
			for {
				select {
				case ev := <-w.events:
					if err := stream.Send(ev); err != nil {
						return err
					}
				default:
					return nil
				}
			}
		case <-stream.Context().Done():
			return nil
		}
	}
}

// startLocked queues the events a new watch starts with: every current
// object for resourceVersion "" or "0", else the history after it.
func (s *Server) startLocked(w *watcher, rvString string) error {
	if rvString == "" || rvString == "0" {
		for k, obj := range s.objects {
			if k.gr == w.gr && w.matches(k, obj) {
				s.sendLocked(w, watch.Added, obj)
			}
		}
		return nil
	}
	rv, err := strconv.ParseInt(rvString, 10, 64)
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("invalid resourceVersion %q", rvString))
	}
	if rv < s.compacted {
		return apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", rv, s.compacted))
	}
	for _, ev := range s.history {
		if ev.rv > rv && w.matches(ev.key, ev.obj) {
			s.sendLocked(w, ev.typ, ev.obj)
		}
	}
	return nil
}

func newWatcher(info *scheme.ResourceInfo, namespace, labelSelector, fieldSelector string) (*watcher, error) {
	ls, err := labels.Parse(labelSelector)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	fs, err := fields.ParseSelector(fieldSelector)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return &watcher{
		gr:        info.GroupResource(),
		namespace: namespace,
		labels:    ls,
		fields:    fs,
		events:    make(chan *skiffv1.WatchEvent, 1000),
		stop:      make(chan error, 1),
	}, nil
}

func (w *watcher) matches(k key, obj runtime.Object) bool {
	if k.gr != w.gr || (w.namespace != "" && k.namespace != w.namespace) {
		return false
	}
	m, _ := meta.Accessor(obj)
	f := fields.Set{"metadata.name": m.GetName(), "metadata.namespace": m.GetNamespace()}
	if pod, ok := obj.(*corev1.Pod); ok {
		f["spec.nodeName"] = pod.Spec.NodeName
	}
	return w.labels.Matches(labels.Set(m.GetLabels())) && w.fields.Matches(f)
}

// Version implements skiffv1.APIServer.
func (s *Server) Version(context.Context, *skiffv1.VersionRequest) (*skiffv1.VersionResponse, error) {
	return &skiffv1.VersionResponse{GitVersion: "v0.0.0-test", GoVersion: goruntime.Version(), Platform: "test/test"}, nil
}

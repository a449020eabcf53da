package apiserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"reflect"

	"google.golang.org/grpc"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffdev/skiff/apiserver/registry"
	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/internal/scheme"
	"github.com/skiffdev/skiff/internal/version"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// MaxRequestBytes is the largest object a request may carry, as in
// Kubernetes.
const MaxRequestBytes = 3 * 1024 * 1024

// service is the gRPC front door: it decodes requests, calls the
// registry, encodes answers, and turns errors into gRPC statuses.
type service struct {
	skiffv1.UnimplementedAPIServer
	reg *registry.Registry
	// kubeletDialer makes the connections to kubelets for PodLogs and
	// PodExec (podproxy.go); nil dials TCP.
	kubeletDialer func(ctx context.Context, addr string) (net.Conn, error)
	// kubeletTLS is the API server's side of its connections to kubelets.
	kubeletTLS *tls.Config
}

// store finds the registry store of a requested resource.
func (s *service) store(r *skiffv1.Resource) (*registry.Store, error) {
	gr := schema.GroupResource{Group: r.GetGroup(), Resource: r.GetResource()}
	st, ok := s.reg.Store(gr)
	if !ok {
		return nil, &apierrors.StatusError{ErrStatus: metav1.Status{
			Status: metav1.StatusFailure, Code: 404, Reason: metav1.StatusReasonNotFound,
			Message: fmt.Sprintf("the server could not find the requested resource %q", gr.String()),
		}}
	}
	return st, nil
}

// checkSubresource refuses subresources the resource does not have.
func checkSubresource(st *registry.Store, sub string, allowed ...string) error {
	if sub == "" {
		return nil
	}
	for _, a := range allowed {
		if a == sub && st.Info().HasSubresource(sub) {
			return nil
		}
	}
	return apierrors.NewNotFound(schema.GroupResource{Group: st.Info().Group, Resource: st.Info().Resource + "/" + sub}, "")
}

// decode turns a request body into a typed object of the expected type,
// strictly: a field the Kubernetes type does not define is an error that
// names its path.
func decode(data []byte, enc skiffv1.Encoding, into runtime.Object, kind string) (runtime.Object, error) {
	if len(data) > MaxRequestBytes {
		return nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", MaxRequestBytes))
	}
	if len(data) == 0 {
		return nil, apierrors.NewBadRequest("the request has no object")
	}
	var obj runtime.Object
	var err error
	switch enc {
	case skiffv1.Encoding_ENCODING_PROTOBUF:
		obj, err = scheme.DecodeProtobuf(data, into)
	case skiffv1.Encoding_ENCODING_JSON:
		obj, err = scheme.DecodeStrictJSON(data, into)
	case skiffv1.Encoding_ENCODING_YAML:
		obj, err = scheme.DecodeStrictYAML(data, into)
	default:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("unknown request encoding %s", enc))
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version \"v1\" cannot be handled as a %s: %v", kind, kind, err))
	}
	if reflect.TypeOf(obj) != reflect.TypeOf(into) {
		got := obj.GetObjectKind().GroupVersionKind()
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the object is a %s (%s), not a %s", got.Kind, got.GroupVersion(), kind))
	}
	return obj, nil
}

func respond(obj runtime.Object, warnings []string, err error) (*skiffv1.ObjectResponse, error) {
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	data, err := scheme.EncodeProtobuf(obj)
	if err != nil {
		return nil, grpcerr.ToStatus(apierrors.NewInternalError(err))
	}
	return &skiffv1.ObjectResponse{Object: data, Warnings: warnings}, nil
}

func (s *service) Create(ctx context.Context, req *skiffv1.CreateRequest) (*skiffv1.ObjectResponse, error) {
	st, err := s.store(req.GetResource())
	if err != nil {
		return respond(nil, nil, err)
	}
	if err := checkSubresource(st, req.GetSubresource(), "binding"); err != nil {
		return respond(nil, nil, err)
	}
	if req.GetSubresource() == "binding" {
		obj, err := decode(req.GetObject(), req.GetEncoding(), &corev1.Binding{}, "Binding")
		if err != nil {
			return respond(nil, nil, err)
		}
		b := obj.(*corev1.Binding)
		if b.Name == "" {
			b.Name = req.GetName()
		}
		if req.GetName() != "" && b.Name != req.GetName() {
			return respond(nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", b.Name, req.GetName())))
		}
		status, err := st.Bind(ctx, req.GetNamespace(), b)
		return respond(status, nil, err)
	}
	// The request was authorized for its namespace and name: the object
	// must not name others.
	if st.Info().Namespaced && req.GetNamespace() == "" {
		return respond(nil, nil, apierrors.NewBadRequest(fmt.Sprintf("a namespace is required to create %s", st.Info().Resource)))
	}
	obj, err := decode(req.GetObject(), req.GetEncoding(), st.Info().New(), st.Info().Kind)
	if err != nil {
		return respond(nil, nil, err)
	}
	if m, err := meta.Accessor(obj); err == nil && req.GetName() != "" && m.GetName() != req.GetName() {
		return respond(nil, nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), req.GetName())))
	}
	out, warnings, err := st.Create(ctx, req.GetNamespace(), obj, req.GetDryRun())
	return respond(out, warnings, err)
}

func (s *service) Get(ctx context.Context, req *skiffv1.GetRequest) (*skiffv1.ObjectResponse, error) {
	st, err := s.store(req.GetResource())
	if err != nil {
		return respond(nil, nil, err)
	}
	if err := checkSubresource(st, req.GetSubresource(), "status", "scale"); err != nil {
		return respond(nil, nil, err)
	}
	if req.GetSubresource() == "scale" {
		sc, err := st.GetScale(ctx, req.GetNamespace(), req.GetName())
		return respond(sc, nil, err)
	}
	obj, err := st.Get(ctx, req.GetNamespace(), req.GetName())
	return respond(obj, nil, err)
}

func (s *service) List(ctx context.Context, req *skiffv1.ListRequest) (*skiffv1.ListResponse, error) {
	st, err := s.store(req.GetResource())
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	list, err := st.List(ctx, req.GetNamespace(), registry.ListOptions{
		LabelSelector:   req.GetLabelSelector(),
		FieldSelector:   req.GetFieldSelector(),
		Limit:           req.GetLimit(),
		Continue:        req.GetContinue(),
		ResourceVersion: req.GetResourceVersion(),
	})
	if err != nil {
		return nil, grpcerr.ToStatus(err)
	}
	data, err := scheme.EncodeProtobuf(list)
	if err != nil {
		return nil, grpcerr.ToStatus(apierrors.NewInternalError(err))
	}
	return &skiffv1.ListResponse{List: data}, nil
}

func (s *service) Update(ctx context.Context, req *skiffv1.UpdateRequest) (*skiffv1.ObjectResponse, error) {
	st, err := s.store(req.GetResource())
	if err != nil {
		return respond(nil, nil, err)
	}
	if err := checkSubresource(st, req.GetSubresource(), "status", "scale"); err != nil {
		return respond(nil, nil, err)
	}
	if req.GetSubresource() == "scale" {
		obj, err := decode(req.GetObject(), req.GetEncoding(), &autoscalingv1.Scale{}, "Scale")
		if err != nil {
			return respond(nil, nil, err)
		}
		sc, err := st.UpdateScale(ctx, req.GetNamespace(), req.GetName(), obj.(*autoscalingv1.Scale), req.GetDryRun())
		return respond(sc, nil, err)
	}
	obj, err := decode(req.GetObject(), req.GetEncoding(), st.Info().New(), st.Info().Kind)
	if err != nil {
		return respond(nil, nil, err)
	}
	out, warnings, err := st.Update(ctx, req.GetNamespace(), req.GetName(), obj, req.GetSubresource() == "status", req.GetDryRun())
	return respond(out, warnings, err)
}

func (s *service) Patch(ctx context.Context, req *skiffv1.PatchRequest) (*skiffv1.ObjectResponse, error) {
	st, err := s.store(req.GetResource())
	if err != nil {
		return respond(nil, nil, err)
	}
	if err := checkSubresource(st, req.GetSubresource(), "status", "scale"); err != nil {
		return respond(nil, nil, err)
	}
	if len(req.GetPatch()) > MaxRequestBytes {
		return respond(nil, nil, apierrors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", MaxRequestBytes)))
	}
	pt := types.PatchType(req.GetPatchType())
	if req.GetSubresource() == "scale" {
		sc, err := st.PatchScale(ctx, req.GetNamespace(), req.GetName(), pt, req.GetPatch(), req.GetDryRun())
		return respond(sc, nil, err)
	}
	out, warnings, err := st.Patch(ctx, req.GetNamespace(), req.GetName(), pt, req.GetPatch(), req.GetSubresource() == "status", req.GetDryRun())
	return respond(out, warnings, err)
}

func (s *service) Delete(ctx context.Context, req *skiffv1.DeleteRequest) (*skiffv1.ObjectResponse, error) {
	st, err := s.store(req.GetResource())
	if err != nil {
		return respond(nil, nil, err)
	}
	opts := &metav1.DeleteOptions{}
	if len(req.GetOptions()) > 0 {
		if err := opts.Unmarshal(req.GetOptions()); err != nil {
			return respond(nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid delete options: %v", err)))
		}
	}
	obj, _, err := st.Delete(ctx, req.GetNamespace(), req.GetName(), opts)
	return respond(obj, nil, err)
}

func (s *service) Watch(req *skiffv1.WatchRequest, stream grpc.ServerStreamingServer[skiffv1.WatchEvent]) error {
	st, err := s.store(req.GetResource())
	if err != nil {
		return grpcerr.ToStatus(err)
	}
	ctx := stream.Context()
	w, err := st.Watch(ctx, req.GetNamespace(), registry.ListOptions{
		LabelSelector:   req.GetLabelSelector(),
		FieldSelector:   req.GetFieldSelector(),
		ResourceVersion: req.GetResourceVersion(),
		AllowBookmarks:  req.GetAllowBookmarks(),
	})
	if err != nil {
		return grpcerr.ToStatus(err)
	}
	defer w.Stop()
	for {
		ev, ok := w.Next(ctx)
		if !ok {
			// The client went away, or the cache ended this watch (it
			// restarted, or we fell behind); a client resumes from its
			// last resourceVersion.
			return nil
		}
		data, err := ev.Event.Encoded()
		if err != nil {
			return grpcerr.ToStatus(apierrors.NewInternalError(err))
		}
		if err := stream.Send(&skiffv1.WatchEvent{Type: string(ev.Type), Object: data}); err != nil {
			return err
		}
	}
}

func (s *service) Version(context.Context, *skiffv1.VersionRequest) (*skiffv1.VersionResponse, error) {
	v := version.Get()
	return &skiffv1.VersionResponse{GitVersion: v.GitVersion, GoVersion: v.GoVersion, Platform: v.Platform}, nil
}

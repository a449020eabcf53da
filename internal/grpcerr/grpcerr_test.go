package grpcerr

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// overTheWire sends a status error through its protobuf wire form, as the
// gRPC transport does, so that the tests see only what a client would see.
func overTheWire(t *testing.T, err error) error {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("ToStatus returned a non-status error %T: %v", err, err)
	}
	data, merr := proto.Marshal(st.Proto())
	if merr != nil {
		t.Fatalf("marshal status: %v", merr)
	}
	var p spb.Status
	if uerr := proto.Unmarshal(data, &p); uerr != nil {
		t.Fatalf("unmarshal status: %v", uerr)
	}
	return status.FromProto(&p).Err()
}

func TestRoundTrip(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	deployments := schema.GroupResource{Group: "apps", Resource: "deployments"}
	invalid := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web", field.ErrorList{
		field.Invalid(field.NewPath("spec", "replicas"), -1, "must be greater than or equal to 0"),
		field.Required(field.NewPath("spec", "selector"), ""),
	})

	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		is       func(error) bool
	}{
		{"not found", apierrors.NewNotFound(pods, "web-1"), codes.NotFound, apierrors.IsNotFound},
		{"conflict", apierrors.NewConflict(deployments, "web", errors.New("the object has been modified")), codes.Aborted, apierrors.IsConflict},
		{"already exists", apierrors.NewAlreadyExists(pods, "web-1"), codes.AlreadyExists, apierrors.IsAlreadyExists},
		{"invalid", invalid, codes.InvalidArgument, apierrors.IsInvalid},
		{"gone", apierrors.NewGone("too old resource version: 5 (120)"), codes.OutOfRange, apierrors.IsGone},
		{"expired", apierrors.NewResourceExpired("too old resource version: 5 (120)"), codes.OutOfRange, apierrors.IsResourceExpired},
		{"bad request", apierrors.NewBadRequest("namespace is required"), codes.InvalidArgument, apierrors.IsBadRequest},
		{"forbidden", apierrors.NewForbidden(pods, "web-1", errors.New("no")), codes.PermissionDenied, apierrors.IsForbidden},
		{"too large", apierrors.NewRequestEntityTooLargeError("limit is 3145728"), codes.ResourceExhausted, apierrors.IsRequestEntityTooLargeError},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), codes.ResourceExhausted, apierrors.IsTooManyRequests},
		{"unavailable", apierrors.NewServiceUnavailable("etcd is down"), codes.Unavailable, apierrors.IsServiceUnavailable},
		{"timeout", apierrors.NewTimeoutError("request timed out", 2), codes.DeadlineExceeded, apierrors.IsTimeout},
		{"unauthorized", apierrors.NewUnauthorized("who are you"), codes.Unauthenticated, apierrors.IsUnauthorized},
		{"internal", apierrors.NewInternalError(errors.New("disk on fire")), codes.Internal, apierrors.IsInternalError},
		{"wrapped", fmt.Errorf("get pod %q: %w", "web-1", apierrors.NewNotFound(pods, "web-1")), codes.NotFound, apierrors.IsNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := ToStatus(tt.err)
			if got := status.Code(sent); got != tt.wantCode {
				t.Errorf("code: got %v, want %v", got, tt.wantCode)
			}
			var want apierrors.APIStatus
			if !errors.As(tt.err, &want) {
				t.Fatalf("test error %v is not an API status", tt.err)
			}
			if got := status.Convert(sent).Message(); got != want.Status().Message {
				t.Errorf("gRPC message: got %q, want %q", got, want.Status().Message)
			}

			got := FromStatus(overTheWire(t, sent))
			var gotStatus *apierrors.StatusError
			if !errors.As(got, &gotStatus) {
				t.Fatalf("FromStatus: got %T %v, want *apierrors.StatusError", got, got)
			}
			if !reflect.DeepEqual(gotStatus.ErrStatus, want.Status()) {
				t.Errorf("status: got %+v, want %+v", gotStatus.ErrStatus, want.Status())
			}
			if !tt.is(got) {
				t.Errorf("category check failed for %v", got)
			}
		})
	}
}

func TestRoundTripKeepsCauses(t *testing.T) {
	in := apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "web", field.ErrorList{
		field.Invalid(field.NewPath("spec", "containers").Index(0).Child("image"), "", "must not be empty"),
		field.NotSupported(field.NewPath("spec", "restartPolicy"), "Sometimes", []string{"Always", "OnFailure", "Never"}),
	})
	got := FromStatus(overTheWire(t, ToStatus(in)))
	want := in.Status().Details.Causes
	s := StatusFor(got)
	if s.Details == nil {
		t.Fatalf("details lost: got %+v", s)
	}
	if !reflect.DeepEqual(s.Details.Causes, want) {
		t.Errorf("causes: got %+v, want %+v", s.Details.Causes, want)
	}
	if got.Error() != in.Error() {
		t.Errorf("message: got %q, want %q", got.Error(), in.Error())
	}
}

func TestPlainErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode codes.Code
		check    func(error) bool
	}{
		{"plain error is internal", errors.New("boom"), codes.Internal, apierrors.IsInternalError},
		{"canceled", context.Canceled, codes.Canceled, func(err error) bool { return errors.Is(err, context.Canceled) }},
		{"deadline", fmt.Errorf("list pods: %w", context.DeadlineExceeded), codes.DeadlineExceeded, apierrors.IsTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sent := ToStatus(tt.err)
			if got := status.Code(sent); got != tt.wantCode {
				t.Errorf("code: got %v, want %v", got, tt.wantCode)
			}
			got := FromStatus(overTheWire(t, sent))
			if !tt.check(got) {
				t.Errorf("FromStatus: got %T %v", got, got)
			}
		})
	}
	t.Run("plain error message", func(t *testing.T) {
		got := FromStatus(overTheWire(t, ToStatus(errors.New("boom"))))
		if want := "Internal error occurred: boom"; got.Error() != want {
			t.Errorf("got %q, want %q", got.Error(), want)
		}
	})
	t.Run("nil", func(t *testing.T) {
		if ToStatus(nil) != nil || FromStatus(nil) != nil {
			t.Errorf("got non-nil for nil")
		}
	})
}

// TestWithoutDetail covers errors that never reached the server's
// ToStatus: transport failures and limits enforced by gRPC itself.
func TestWithoutDetail(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		check func(error) bool
		code  int32
	}{
		{"unavailable", status.Error(codes.Unavailable, "connection error: connection refused"), apierrors.IsServiceUnavailable, 503},
		{"message too large", status.Error(codes.ResourceExhausted, "grpc: received message larger than max (300 vs. 200)"), apierrors.IsRequestEntityTooLargeError, 413},
		{"rate limited", status.Error(codes.ResourceExhausted, "quota"), apierrors.IsTooManyRequests, 429},
		{"deadline", status.Error(codes.DeadlineExceeded, "context deadline exceeded"), func(err error) bool {
			return apierrors.IsTimeout(err) && errors.Is(err, context.DeadlineExceeded)
		}, 504},
		{"canceled", status.Error(codes.Canceled, "context canceled"), func(err error) bool { return err == context.Canceled }, 0},
		{"conn closing", status.Error(codes.Canceled, "grpc: the client connection is closing"), func(err error) bool { return errors.Is(err, context.Canceled) }, 0},
		{"not found", status.Error(codes.NotFound, "nope"), apierrors.IsNotFound, 404},
		{"aborted", status.Error(codes.Aborted, "nope"), apierrors.IsConflict, 409},
		{"out of range", status.Error(codes.OutOfRange, "too old"), apierrors.IsGone, 410},
		{"unimplemented", status.Error(codes.Unimplemented, "unknown method"), apierrors.IsMethodNotSupported, 405},
		{"unknown", status.Error(codes.Unknown, "what"), apierrors.IsInternalError, 500},
		{"not a status", errors.New("local"), func(err error) bool { return err.Error() == "local" }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromStatus(tt.err)
			if !tt.check(got) {
				t.Fatalf("FromStatus(%v): got %T %v", tt.err, got, got)
			}
			if tt.code == 0 {
				return
			}
			if s := StatusFor(got); s.Code != tt.code {
				t.Errorf("HTTP code: got %d, want %d", s.Code, tt.code)
			}
		})
	}
	t.Run("unavailable message", func(t *testing.T) {
		got := FromStatus(status.Error(codes.Unavailable, "connection refused")).Error()
		if want := "the server is currently unable to handle the request: connection refused"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

// TestUnreachable checks which Unavailable statuses mean that no
// connection was made, and what the transport is quoted as saying.
func TestUnreachable(t *testing.T) {
	tests := []struct {
		name        string
		msg         string
		unreachable bool
		cause       string
		refused     bool
	}{
		{
			name:        "refused",
			msg:         `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"`,
			unreachable: true,
			cause:       "dial tcp 127.0.0.1:1: connect: connection refused",
			refused:     true,
		},
		{
			name:        "no such host",
			msg:         "name resolver error: produced zero addresses",
			unreachable: true,
			cause:       "name resolver error: produced zero addresses",
		},
		{
			name:        "dial timeout",
			msg:         `connection error: desc = "transport: Error while dialing: dial tcp 10.0.0.1:6443: i/o timeout"`,
			unreachable: true,
			cause:       "dial tcp 10.0.0.1:6443: i/o timeout",
		},
		{name: "the server says unavailable", msg: "etcd is down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FromStatus(status.Error(codes.Unavailable, tt.msg))
			if !apierrors.IsServiceUnavailable(got) {
				t.Errorf("got %v, want a ServiceUnavailable error", got)
			}
			var u *UnreachableError
			if errors.As(got, &u) != tt.unreachable {
				t.Fatalf("got %T %v, want unreachable %t", got, got, tt.unreachable)
			}
			if !tt.unreachable {
				return
			}
			if u.Cause != tt.cause || u.Refused() != tt.refused {
				t.Errorf("got cause %q, refused %t; want %q, %t", u.Cause, u.Refused(), tt.cause, tt.refused)
			}
		})
	}
}

func TestEnvelopedDetail(t *testing.T) {
	// A server may also send the detail in the Kubernetes envelope.
	in := apierrors.NewNotFound(schema.GroupResource{Resource: "nodes"}, "n1")
	raw, err := in.ErrStatus.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s, err := decodeStatus(envelope(t, raw))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !reflect.DeepEqual(*s, in.ErrStatus) {
		t.Errorf("got %+v, want %+v", *s, in.ErrStatus)
	}
}

func TestCode(t *testing.T) {
	tests := []struct {
		status metav1.Status
		want   codes.Code
	}{
		{metav1.Status{Code: 409, Reason: metav1.StatusReasonAlreadyExists}, codes.AlreadyExists},
		{metav1.Status{Code: 409, Reason: metav1.StatusReasonConflict}, codes.Aborted},
		{metav1.Status{Reason: metav1.StatusReasonNotFound}, codes.NotFound},
		{metav1.Status{Code: 418}, codes.FailedPrecondition},
		{metav1.Status{Code: 502}, codes.Internal},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d %s", tt.status.Code, tt.status.Reason), func(t *testing.T) {
			if got := Code(&tt.status); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

// envelope wraps raw protobuf bytes the way apimachinery's protobuf
// serializer does.
func envelope(t *testing.T, raw []byte) []byte {
	t.Helper()
	u := runtime.Unknown{
		TypeMeta:    runtime.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Raw:         raw,
		ContentType: runtime.ContentTypeProtobuf,
	}
	data, err := u.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append([]byte("k8s\x00"), data...)
}

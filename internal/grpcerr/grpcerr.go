// Package grpcerr carries Kubernetes API errors across the gRPC edge.
//
// Inside Skiff every error that a user may see is a
// k8s.io/apimachinery/pkg/api/errors error (NotFound, Conflict, Invalid with
// its field causes, Gone, ...). gRPC only knows its own status codes, so at
// the edge the error travels twice: once as a gRPC code, chosen so that
// generic gRPC tooling (logs, retry policies, grpcurl) sees something
// sensible, and once exactly, as a metav1.Status in the status details.
//
// The server calls ToStatus on every error it returns; the client calls
// FromStatus on every error it receives and gets back the very same
// *apierrors.StatusError, so callers keep writing apierrors.IsNotFound(err).
// Errors that never reached the server (connection refused, the client's own
// deadline, a message over gRPC's size limit) have no detail; FromStatus
// turns their gRPC code into the closest Kubernetes error, and marks the
// two that a client words differently: a deadline (errors.Is
// context.DeadlineExceeded) and a server that could not be reached at all
// (*UnreachableError).
package grpcerr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// ToStatus converts an error returned by the API machinery into a gRPC
// status error. It is meant for the server side, at the very edge.
//
//   - An apierrors.APIStatus (a *apierrors.StatusError, possibly wrapped)
//     keeps its metav1.Status: the gRPC code is derived from its HTTP code
//     (see Code) and the Status travels as a skiffv1.Status detail.
//   - context.Canceled becomes codes.Canceled and context.DeadlineExceeded a
//     504 Timeout, so that a request abandoned by its caller is not reported
//     as a server fault.
//   - An error that already is a gRPC status is returned unchanged.
//   - Anything else becomes a 500 InternalError.
//
// ToStatus(nil) is nil.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	var apiStatus apierrors.APIStatus
	switch {
	case errors.As(err, &apiStatus):
		// Handled below.
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		apiStatus = apierrors.NewTimeoutError(err.Error(), 0)
	default:
		if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
			return err
		}
		apiStatus = apierrors.NewInternalError(err)
	}

	s := apiStatus.Status()
	st := status.New(Code(&s), s.Message)
	data, merr := s.Marshal()
	if merr != nil {
		// Unreachable for a well-formed Status; the code and message
		// still tell the client most of the story.
		return st.Err()
	}
	withDetail, derr := st.WithDetails(&skiffv1.Status{Status: data})
	if derr != nil {
		return st.Err()
	}
	return withDetail.Err()
}

// Code is the gRPC code for a Kubernetes Status, chosen from its HTTP code
// (and, for 409, its reason):
//
//	400 BadRequest, 422 Invalid            InvalidArgument
//	401 Unauthorized                       Unauthenticated
//	403 Forbidden                          PermissionDenied
//	404 NotFound                           NotFound
//	405 MethodNotAllowed, 501              Unimplemented
//	409 AlreadyExists                      AlreadyExists
//	409 Conflict (and other 409s)          Aborted
//	410 Gone, Expired                      OutOfRange
//	413 RequestEntityTooLarge, 429         ResourceExhausted
//	500 InternalError                      Internal
//	503 ServiceUnavailable                 Unavailable
//	504 Timeout                            DeadlineExceeded
//
// 409 Conflict is Aborted because gRPC reserves Aborted for failed
// optimistic concurrency: the caller should read again and retry. 410 is
// OutOfRange rather than FailedPrecondition: the requested resourceVersion
// lies outside the window of history the server still holds, and the
// caller recovers by asking again from a newer version (a relist), which is
// the "past the valid range" case gRPC describes for OutOfRange.
func Code(s *metav1.Status) codes.Code {
	httpCode := s.Code
	if httpCode == 0 {
		httpCode = codeForReason(s.Reason)
	}
	switch httpCode {
	case http.StatusBadRequest, http.StatusUnprocessableEntity,
		http.StatusNotAcceptable, http.StatusUnsupportedMediaType:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusConflict:
		if s.Reason == metav1.StatusReasonAlreadyExists {
			return codes.AlreadyExists
		}
		return codes.Aborted
	case http.StatusGone:
		return codes.OutOfRange
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusInternalServerError:
		return codes.Internal
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	case http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	}
	switch {
	case httpCode >= 500:
		return codes.Internal
	case httpCode >= 400:
		return codes.FailedPrecondition
	}
	return codes.Unknown
}

// codeForReason is the HTTP code of a Status built without one.
func codeForReason(reason metav1.StatusReason) int32 {
	switch reason {
	case metav1.StatusReasonBadRequest:
		return http.StatusBadRequest
	case metav1.StatusReasonInvalid:
		return http.StatusUnprocessableEntity
	case metav1.StatusReasonUnauthorized:
		return http.StatusUnauthorized
	case metav1.StatusReasonForbidden:
		return http.StatusForbidden
	case metav1.StatusReasonNotFound:
		return http.StatusNotFound
	case metav1.StatusReasonMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case metav1.StatusReasonAlreadyExists, metav1.StatusReasonConflict:
		return http.StatusConflict
	case metav1.StatusReasonGone, metav1.StatusReasonExpired:
		return http.StatusGone
	case metav1.StatusReasonRequestEntityTooLarge:
		return http.StatusRequestEntityTooLarge
	case metav1.StatusReasonTooManyRequests:
		return http.StatusTooManyRequests
	case metav1.StatusReasonServiceUnavailable:
		return http.StatusServiceUnavailable
	case metav1.StatusReasonTimeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// FromStatus converts an error returned by a gRPC call back into the
// Kubernetes error the server meant. It is meant for the client side.
//
// When the status carries a skiffv1.Status detail, the result is a
// *apierrors.StatusError with exactly the server's metav1.Status: reason,
// message, details and field causes. Without a detail (the error arose in
// the transport or in the client itself) the gRPC code is mapped to the
// closest Kubernetes error:
//
//	Canceled           context.Canceled (matched with errors.Is)
//	DeadlineExceeded   504 Timeout that also matches context.DeadlineExceeded
//	Unavailable        503 ServiceUnavailable; an *UnreachableError when
//	                   the message shows that no connection was made
//	ResourceExhausted  413 RequestEntityTooLarge when gRPC's message size
//	                   limit was hit, otherwise 429 TooManyRequests
//	others             the inverse of the table in Code
//
// An error that is not a gRPC status, or that already is an API error, is
// returned unchanged. FromStatus(nil) is nil.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	var apiStatus apierrors.APIStatus
	if errors.As(err, &apiStatus) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if st.Code() == codes.OK {
		return nil
	}
	for _, d := range st.Details() {
		detail, ok := d.(*skiffv1.Status)
		if !ok {
			continue
		}
		if s, err := decodeStatus(detail.GetStatus()); err == nil {
			return &apierrors.StatusError{ErrStatus: *s}
		}
	}
	return fromCode(st.Code(), st.Message())
}

// decodeStatus reads a metav1.Status marshalled with its generated protobuf
// Marshal method. For robustness it also accepts the Kubernetes protobuf
// envelope ("k8s\x00" + runtime.Unknown) that the rest of the API uses.
func decodeStatus(data []byte) (*metav1.Status, error) {
	if rest, ok := bytes.CutPrefix(data, []byte("k8s\x00")); ok {
		var u runtime.Unknown
		if err := u.Unmarshal(rest); err != nil {
			return nil, fmt.Errorf("decode status detail: %w", err)
		}
		data = u.Raw
	}
	s := &metav1.Status{}
	if err := s.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("decode status detail: %w", err)
	}
	return s, nil
}

// fromCode builds the Kubernetes error for a gRPC status without a detail.
func fromCode(code codes.Code, msg string) error {
	switch code {
	case codes.Canceled:
		if msg == context.Canceled.Error() {
			return context.Canceled
		}
		return fmt.Errorf("%s: %w", msg, context.Canceled)
	case codes.DeadlineExceeded:
		return &deadlineError{apierrors.NewTimeoutError(msg, 0)}
	case codes.Unavailable:
		err := newStatusError(http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable,
			"the server is currently unable to handle the request: "+msg)
		if cause, ok := connectionFailure(msg); ok {
			return &UnreachableError{StatusError: err, Cause: cause}
		}
		return err
	case codes.ResourceExhausted:
		if strings.Contains(msg, "larger than max") {
			return newStatusError(http.StatusRequestEntityTooLarge, metav1.StatusReasonRequestEntityTooLarge, msg)
		}
		return newStatusError(http.StatusTooManyRequests, metav1.StatusReasonTooManyRequests, msg)
	case codes.InvalidArgument, codes.FailedPrecondition:
		return newStatusError(http.StatusBadRequest, metav1.StatusReasonBadRequest, msg)
	case codes.Unauthenticated:
		return newStatusError(http.StatusUnauthorized, metav1.StatusReasonUnauthorized, msg)
	case codes.PermissionDenied:
		return newStatusError(http.StatusForbidden, metav1.StatusReasonForbidden, msg)
	case codes.NotFound:
		return newStatusError(http.StatusNotFound, metav1.StatusReasonNotFound, msg)
	case codes.Unimplemented:
		// Not NotFound: callers treat NotFound as "the object is gone",
		// which would hide a server that lacks the method altogether.
		return newStatusError(http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, msg)
	case codes.AlreadyExists:
		return newStatusError(http.StatusConflict, metav1.StatusReasonAlreadyExists, msg)
	case codes.Aborted:
		return newStatusError(http.StatusConflict, metav1.StatusReasonConflict, msg)
	case codes.OutOfRange:
		return newStatusError(http.StatusGone, metav1.StatusReasonGone, msg)
	}
	// Internal, Unknown, DataLoss.
	return newStatusError(http.StatusInternalServerError, metav1.StatusReasonInternalError, msg)
}

func newStatusError(code int32, reason metav1.StatusReason, msg string) *apierrors.StatusError {
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status:  metav1.StatusFailure,
		Code:    code,
		Reason:  reason,
		Message: msg,
	}}
}

// deadlineError is a 504 Timeout that errors.Is also recognises as
// context.DeadlineExceeded, so callers may test for either.
type deadlineError struct {
	*apierrors.StatusError
}

// Is reports whether target is context.DeadlineExceeded.
func (e *deadlineError) Is(target error) bool { return target == context.DeadlineExceeded }

// Unwrap exposes the StatusError to errors.As.
func (e *deadlineError) Unwrap() error { return e.StatusError }

// UnreachableError is the error FromStatus returns when a request never
// reached the server because no connection could be made: the connection
// was refused, the address did not resolve, the dial failed. It is a 503
// ServiceUnavailable like any other Unavailable status (so
// apierrors.IsServiceUnavailable holds); errors.As finds it for callers
// that word the failure differently, as skiffctl does ("The connection to
// the server ... was refused").
type UnreachableError struct {
	*apierrors.StatusError
	// Cause is what the transport reported, without gRPC's wrapping:
	// "dial tcp 127.0.0.1:1: connect: connection refused".
	Cause string
}

// Refused reports whether the server's host answered that nothing
// listens on the port.
func (e *UnreachableError) Refused() bool {
	return strings.Contains(e.Cause, "connection refused")
}

// Unwrap exposes the StatusError to errors.As.
func (e *UnreachableError) Unwrap() error { return e.StatusError }

// connectionFailure reports whether the message of an Unavailable status
// says that no connection could be made, as opposed to a server that
// answered Unavailable itself, and returns the transport's own words.
// gRPC words a dial failure as
//
//	connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:1: connect: connection refused"
//
// and an address that does not resolve as "name resolver error: ...".
func connectionFailure(msg string) (string, bool) {
	cause, ok := strings.CutPrefix(msg, "connection error: desc = ")
	switch {
	case ok:
		if unquoted, err := strconv.Unquote(cause); err == nil {
			cause = unquoted
		}
		cause = strings.TrimPrefix(cause, "transport: ")
		cause = strings.TrimPrefix(cause, "Error while dialing: ")
		cause = strings.TrimPrefix(cause, "error while dialing: ")
		return cause, true
	case strings.HasPrefix(msg, "name resolver error: "), strings.Contains(msg, "connection refused"):
		return msg, true
	}
	return "", false
}

// StatusFor returns the metav1.Status that describes err: the Status of an
// apierrors.APIStatus, the Status of the API error FromStatus recovers from
// a gRPC status, or a 500 InternalError for anything else. Watch streams use
// it to turn an error into the object of an ERROR event.
func StatusFor(err error) *metav1.Status {
	var apiStatus apierrors.APIStatus
	if errors.As(FromStatus(err), &apiStatus) {
		s := apiStatus.Status()
		return &s
	}
	s := apierrors.NewInternalError(err).Status()
	return &s
}

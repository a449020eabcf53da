package ctl

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffdev/skiff/internal/grpcerr"
)

// FormatError renders an error as kubectl does, in the lines that
// skiffctl prints on standard error before it exits non-zero:
//
//   - a server that could not be reached: "The connection to the server
//     127.0.0.1:6443 was refused - did you specify the right host or
//     port?", or "Unable to connect to the server ...: <cause>";
//   - credentials the server did not accept (401): "error: You must be
//     logged in to the server (Unauthorized)", with the server's reason
//     when it gives one (a join token's, say);
//   - any other error from the server: "Error from server (Reason):
//     message", such as "Error from server (Forbidden): pods is
//     forbidden: ...";
//   - any other error: "error: message";
//   - the errors of a command that carried on after some objects failed:
//     one line for each;
//   - the non-zero exit of a command run by exec (*ExitError): "command
//     terminated with exit code N".
//
// An interruption (context.Canceled, when the user pressed Ctrl-C) and
// nil have no line: FormatError returns "".
func FormatError(err error) string {
	var list errorList
	if errors.As(err, &list) {
		var lines []string
		for _, e := range list {
			if line := FormatError(e); line != "" {
				lines = append(lines, line)
			}
		}
		return strings.Join(lines, "\n")
	}
	if err == nil || errors.Is(err, context.Canceled) {
		return ""
	}
	var unreachable *grpcerr.UnreachableError
	if errors.As(err, &unreachable) {
		server := "the server"
		var named *serverError
		if errors.As(err, &named) {
			server += " " + named.server
		}
		if unreachable.Refused() {
			return fmt.Sprintf("The connection to %s was refused - did you specify the right host or port?", server)
		}
		return fmt.Sprintf("Unable to connect to %s: %s", server, unreachable.Cause)
	}
	var exit *ExitError
	if errors.As(err, &exit) {
		return exit.Error()
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		if s.Reason == metav1.StatusReasonUnauthorized {
			return fmt.Sprintf("error: You must be logged in to the server (%s)", s.Message)
		}
		if s.Reason != "" {
			return fmt.Sprintf("Error from server (%s): %s", s.Reason, s.Message)
		}
		return fmt.Sprintf("Error from server: %s", s.Message)
	}
	return fmt.Sprintf("error: %v", err)
}

// serverError names the server an error came from, for the messages of
// a server that could not be reached. Options.nameServer adds it.
type serverError struct {
	server string
	err    error
}

func (e *serverError) Error() string { return e.err.Error() }
func (e *serverError) Unwrap() error { return e.err }

// errorList is the errors of a command that carried on after some
// objects failed, in the order they happened. FormatError writes one line
// for each.
type errorList []error

func (l errorList) Error() string {
	msgs := make([]string, len(l))
	for i, err := range l {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "\n")
}

func (l errorList) Unwrap() []error { return l }

// joinErrors is nil for no errors, the error itself for one, and an
// errorList for more.
func joinErrors(errs []error) error {
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return errorList(errs)
}

// failures collects the errors of a command that carries on after an
// object fails, as kubectl's apply, create, delete, get and describe do.
// What succeeds is printed as it happens; the errors are returned
// together at the end, for skiffctl's main to print after it, one line
// each in the order they happened, and make the command exit non-zero.
type failures struct {
	errs []error
}

// add records err and reports whether the command should go on with the
// next object: not when the user interrupted it, nor when the server
// cannot be reached or did not accept the credentials, which would fail
// every other object the same way.
func (f *failures) add(err error) (carryOn bool) {
	f.errs = append(f.errs, err)
	return !stops(err)
}

// err returns what add recorded: nil, one error, or an errorList.
func (f *failures) err() error { return joinErrors(f.errs) }

// stops reports whether err ends a command that otherwise carries on
// after a failed object: an interruption, a server that could not be
// reached, or credentials it did not accept.
func stops(err error) bool {
	var unreachable *grpcerr.UnreachableError
	return errors.Is(err, context.Canceled) || errors.As(err, &unreachable) || apierrors.IsUnauthorized(err)
}

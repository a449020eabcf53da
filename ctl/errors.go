package ctl

import (
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// FormatError renders an error as kubectl does: errors from the server as
// "Error from server (Reason): message", others as "error: message".
func FormatError(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		s := status.Status()
		if s.Reason != "" {
			return fmt.Sprintf("Error from server (%s): %s", s.Reason, s.Message)
		}
		return fmt.Sprintf("Error from server: %s", s.Message)
	}
	return fmt.Sprintf("error: %v", err)
}

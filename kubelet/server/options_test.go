package server

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

func TestReadOptions(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	opts, err := readOptions(&skiffv1.PodLogsRequest{Follow: true, SinceSeconds: 60, Timestamps: true, LimitBytes: new(int64(10))}, now)
	if err != nil || !opts.Follow || opts.Tail != -1 || !opts.Since.Equal(now.Add(-time.Minute)) || !opts.Timestamps || opts.LimitBytes != 10 {
		t.Errorf("got %+v, %v", opts, err)
	}
	opts, err = readOptions(&skiffv1.PodLogsRequest{TailLines: new(int64(0)), SinceTime: timestamppb.New(now)}, now)
	if err != nil || opts.Tail != 0 || !opts.Since.Equal(now) {
		t.Errorf("got %+v, %v", opts, err)
	}
	_, err = readOptions(&skiffv1.PodLogsRequest{SinceSeconds: 1, SinceTime: timestamppb.New(now)}, now)
	if !apierrors.IsBadRequest(err) {
		t.Errorf("both since: got %v", err)
	}
}

func TestOfferKeepsTheLatestSize(t *testing.T) {
	ch := make(chan TerminalSize, 1)
	offer(ch, TerminalSize{1, 1})
	offer(ch, TerminalSize{2, 2})
	offer(ch, TerminalSize{3, 3})
	if got := <-ch; got != (TerminalSize{3, 3}) {
		t.Errorf("got %v", got)
	}
	if _, ok := terminalSize(&skiffv1.TerminalSize{Width: 80}); ok {
		t.Error("a size with no height was taken")
	}
}

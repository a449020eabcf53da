package server

import (
	"errors"
	"io/fs"
	"sync"
	"time"

	"google.golang.org/grpc"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/skiffdev/skiff/internal/grpcerr"
	"github.com/skiffdev/skiff/kubelet/logs"
	skiffv1 "github.com/skiffdev/skiff/proto/skiff/v1"
)

// ContainerLogs streams a container's log file as plain text.
func (s *Server) ContainerLogs(req *skiffv1.PodLogsRequest, stream grpc.ServerStreamingServer[skiffv1.LogChunk]) error {
	opts, err := readOptions(req, time.Now())
	if err != nil {
		return grpcerr.ToStatus(err)
	}
	path, exited, err := s.host.LogPath(req.GetNamespace(), req.GetPod(), req.GetContainer(), req.GetPrevious())
	if err != nil {
		return toStatus(err)
	}
	// mu guards stream.Send. logs.Read writes stdout and stderr from one
	// goroutine today; the lock keeps Send safe should that change.
	var mu sync.Mutex
	sender := func(stderr bool) chunkWriter {
		return chunkWriter{send: func(data []byte) error {
			mu.Lock()
			defer mu.Unlock()
			return stream.Send(&skiffv1.LogChunk{Data: data, Stderr: stderr})
		}}
	}
	done := exited
	if done == nil {
		done = func() bool { return false }
	}
	ctx := stream.Context()
	err = logs.Read(ctx, path, opts, sender(false), sender(true), done)
	if errors.Is(err, fs.ErrNotExist) {
		// A run that never wrote a line (one that failed to start, or
		// has only just started) has no log file: its log is empty.
		return nil
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("reading a container log failed", "pod", req.GetNamespace()+"/"+req.GetPod(),
			"container", req.GetContainer(), "path", path, "err", err)
		return toStatus(err)
	}
	// A caller that went away gets nothing more anyway.
	return nil
}

// readOptions turns the request's options into logs.ReadOptions, with
// since_seconds measured back from now.
func readOptions(req *skiffv1.PodLogsRequest, now time.Time) (logs.ReadOptions, error) {
	opts := logs.ReadOptions{
		Follow:     req.GetFollow(),
		Tail:       -1,
		Timestamps: req.GetTimestamps(),
		LimitBytes: req.GetLimitBytes(),
	}
	if req.TailLines != nil {
		if req.GetTailLines() < 0 {
			return opts, apierrors.NewBadRequest("tailLines must be greater than or equal to 0")
		}
		opts.Tail = req.GetTailLines()
	}
	if req.LimitBytes != nil && req.GetLimitBytes() < 1 {
		return opts, apierrors.NewBadRequest("limitBytes must be greater than 0")
	}
	switch {
	case req.GetSinceSeconds() != 0 && req.GetSinceTime() != nil:
		return opts, apierrors.NewBadRequest("at most one of sinceTime or sinceSeconds may be specified")
	case req.GetSinceSeconds() < 0:
		return opts, apierrors.NewBadRequest("sinceSeconds must be greater than 0")
	case req.GetSinceSeconds() > 0:
		opts.Since = now.Add(-time.Duration(req.GetSinceSeconds()) * time.Second)
	case req.GetSinceTime() != nil:
		if err := req.GetSinceTime().CheckValid(); err != nil {
			return opts, apierrors.NewBadRequest("invalid sinceTime: " + err.Error())
		}
		opts.Since = req.GetSinceTime().AsTime()
	}
	return opts, nil
}

package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Import loads the images of a `docker save` tarball (manifest.json with
// RepoTags) or an OCI image layout archive (oci-layout and index.json, each
// image named by its org.opencontainers.image.ref.name or
// io.containerd.image.name annotation) and returns them. Images without a
// name are refused: the store finds images only by reference.
func (s *Store) Import(ctx context.Context, tarPath string) ([]*Image, error) {
	kind, err := archiveKind(tarPath)
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", tarPath, err)
	}
	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	var out []*Image
	switch kind {
	case "docker":
		out, err = s.importDocker(ctx, tarPath)
	case "oci":
		out, err = s.importOCI(ctx, tarPath)
	default:
		err = errors.New("neither a docker save archive (manifest.json) nor an OCI layout (index.json)")
	}
	if err != nil {
		return nil, fmt.Errorf("import %q: %w", tarPath, err)
	}
	return out, nil
}

// archiveKind tells a docker save archive from an OCI layout archive.
func archiveKind(tarPath string) (string, error) {
	f, err := os.Open(tarPath)
	if err != nil {
		return "", err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	kind := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return kind, nil
		}
		if err != nil {
			return "", err
		}
		switch n, _ := cleanName(hdr.Name); n {
		case "manifest.json":
			return "docker", nil
		case "index.json", "oci-layout":
			kind = "oci" // an OCI archive may carry manifest.json too
		}
	}
}

func (s *Store) importDocker(ctx context.Context, tarPath string) ([]*Image, error) {
	opener := func() (io.ReadCloser, error) { return os.Open(tarPath) }
	m, err := tarball.LoadManifest(opener)
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, d := range m {
		if len(d.RepoTags) == 0 {
			return nil, fmt.Errorf("image with config %q has no RepoTags", d.Config)
		}
		for _, t := range d.RepoTags {
			tag, err := name.NewTag(t)
			if err != nil {
				return nil, fmt.Errorf("repo tag %q: %w", t, err)
			}
			img, err := tarball.Image(opener, &tag)
			if err != nil {
				return nil, fmt.Errorf("image %q: %w", t, err)
			}
			got, err := s.store(ctx, img, tag.Name())
			if err != nil {
				return nil, fmt.Errorf("image %q: %w", t, err)
			}
			out = append(out, got)
		}
	}
	return out, nil
}

func (s *Store) importOCI(ctx context.Context, tarPath string) ([]*Image, error) {
	dir, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, err
	}
	_, err = unpack(f, dir) // regular files and directories, confined to dir
	f.Close()
	if err != nil {
		return nil, err
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	return s.importIndex(ctx, idx, "")
}

// importIndex stores every image of idx; a nested index inherits its name
// and contributes the image for the store's platform.
func (s *Store) importIndex(ctx context.Context, idx v1.ImageIndex, inherited string) ([]*Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, d := range im.Manifests {
		ref := d.Annotations["io.containerd.image.name"]
		if ref == "" {
			ref = d.Annotations["org.opencontainers.image.ref.name"]
		}
		if ref == "" {
			ref = inherited
		}
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			imgs, err := s.importIndex(ctx, child, ref)
			if err != nil {
				return nil, err
			}
			out = append(out, imgs...)
		case d.MediaType.IsImage():
			if inherited != "" && d.Platform != nil && !d.Platform.Satisfies(s.platform) {
				continue
			}
			if ref == "" {
				return nil, fmt.Errorf("image %s has no name annotation", d.Digest)
			}
			r, err := s.parse(ref)
			if err != nil {
				return nil, err
			}
			img, err := idx.Image(d.Digest)
			if err != nil {
				return nil, err
			}
			got, err := s.store(ctx, img, r.Name())
			if err != nil {
				return nil, fmt.Errorf("image %q: %w", ref, err)
			}
			out = append(out, got)
		}
	}
	return out, nil
}

package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	corev1 "k8s.io/api/core/v1"
)

var (
	// ErrImagePull wraps every failure to fetch an image from its registry;
	// the wrapping error's message carries the registry's reason.
	ErrImagePull = errors.New("ErrImagePull")
	// ErrImageNeverPull is returned when the pull policy is Never and the
	// image is not in the store.
	ErrImageNeverPull = errors.New("ErrImageNeverPull")
	// ErrNotFound is returned by Get and Remove for an unknown reference.
	ErrNotFound = errors.New("image not found")
)

// Options configures a Store.
type Options struct {
	// InsecureRegistries lists registry hosts ("host" or "host:port") that
	// are reached over plain HTTP, as with --insecure-registry.
	InsecureRegistries []string
	// Platform selects the image from a multi-platform index; the zero value
	// means linux and the architecture this binary runs on.
	Platform v1.Platform
}

// ImageConfig holds the process defaults from an image's OCI config.
type ImageConfig struct {
	Entrypoint   []string
	Cmd          []string
	Env          []string
	WorkingDir   string
	User         string
	ExposedPorts []string // "80/tcp", sorted
}

// Image is an image in the store.
type Image struct {
	// Ref is the normalized reference it was pulled or imported as,
	// e.g. "docker.io/library/busybox:latest".
	Ref string
	// Digest is the digest of the image manifest ("sha256:…").
	Digest string
	// ID is the digest of the image config, as Docker's image ID.
	ID     string
	Config ImageConfig
	// LayerDirs are the unpacked layers, lowest first.
	LayerDirs []string
}

// Store is a content-addressed image store rooted at a directory.
type Store struct {
	root     string
	insecure map[string]bool
	platform v1.Platform

	// gcMu guards the unpacked layers against garbage collection: it is
	// held shared by every pull and import and exclusively by Remove, so
	// Remove never deletes a layer that a pull in progress has unpacked
	// but not yet recorded.
	gcMu sync.RWMutex

	// mu guards refs.json and inflight.
	mu       sync.Mutex
	inflight map[string]*layerCall

	// unpacks counts layers unpacked since Open; tests read it.
	unpacks atomic.Int64
}

// layerCall is one unpack of a layer that concurrent pulls wait on.
type layerCall struct {
	done chan struct{}
	err  error
}

// Open opens (creating if needed) the store rooted at root.
func Open(root string, opts Options) (*Store, error) {
	for _, d := range []string{"images", "layers", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, fmt.Errorf("open image store %q: %w", root, err)
		}
	}
	// Leftovers of unpacks interrupted by a crash.
	if ents, err := os.ReadDir(filepath.Join(root, "tmp")); err == nil {
		for _, e := range ents {
			os.RemoveAll(filepath.Join(root, "tmp", e.Name()))
		}
	}
	s := &Store{
		root:     root,
		insecure: map[string]bool{},
		platform: opts.Platform,
		inflight: map[string]*layerCall{},
	}
	if s.platform.OS == "" {
		s.platform = v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	for _, h := range opts.InsecureRegistries {
		s.insecure[h] = true
	}
	return s, nil
}

// parse normalizes ref with Docker's defaults (docker.io, library/, latest),
// marking insecure registries for plain HTTP.
func (s *Store) parse(ref string) (name.Reference, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return nil, fmt.Errorf("image reference %q: %w", ref, err)
	}
	if s.insecure[r.Context().RegistryStr()] {
		r, err = name.ParseReference(ref, name.Insecure)
		if err != nil {
			return nil, fmt.Errorf("image reference %q: %w", ref, err)
		}
	}
	return r, nil
}

// Pull makes the image named ref available according to policy and
// returns it. With PullAlways the digest is always resolved at the
// registry; with PullIfNotPresent (and the empty policy) a stored image for
// ref is used as is; with PullNever a missing image is ErrImageNeverPull.
func (s *Store) Pull(ctx context.Context, ref string, policy corev1.PullPolicy) (*Image, error) {
	r, err := s.parse(ref)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrImagePull, err)
	}
	if policy != corev1.PullAlways {
		img, err := s.local(r)
		if err == nil {
			return img, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if policy == corev1.PullNever {
			return nil, fmt.Errorf("image %q is not present with pull policy of Never: %w", r.Name(), ErrImageNeverPull)
		}
	}

	s.gcMu.RLock()
	defer s.gcMu.RUnlock()
	desc, err := remote.Get(r,
		remote.WithContext(ctx),
		remote.WithAuth(authn.Anonymous),
		remote.WithPlatform(s.platform))
	if err != nil {
		return nil, fmt.Errorf("%w: image %q: %w", ErrImagePull, r.Name(), err)
	}
	img, err := desc.Image() // picks s.platform from an index
	if err != nil {
		return nil, fmt.Errorf("%w: image %q: %w", ErrImagePull, r.Name(), err)
	}
	out, err := s.store(ctx, img, r.Name())
	if err != nil {
		return nil, fmt.Errorf("%w: image %q: %w", ErrImagePull, r.Name(), err)
	}
	return out, nil
}

// local returns the stored image for r: by reference, or for a digest
// reference by the digest alone (recording the reference).
func (s *Store) local(r name.Reference) (*Image, error) {
	if img, err := s.Get(r.Name()); err == nil || !errors.Is(err, ErrNotFound) {
		return img, err
	}
	d, ok := r.(name.Digest)
	if !ok {
		return nil, ErrNotFound
	}
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(s.imageDir(h), "config.json")); err != nil {
		return nil, ErrNotFound
	}
	img, err := s.load(r.Name(), h)
	if err != nil {
		return nil, err
	}
	if err := s.setRef(r.Name(), h.String()); err != nil {
		return nil, err
	}
	return img, nil
}

// store unpacks every layer of img not yet in the store, records its
// manifest and config, and points ref at it. The caller holds gcMu shared.
func (s *Store) store(ctx context.Context, img v1.Image, ref string) (*Image, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, l := range layers {
		if err := s.ensureLayer(ctx, l); err != nil {
			return nil, err
		}
	}
	dir := s.imageDir(digest)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "manifest.json"), rawManifest); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "config.json"), rawConfig); err != nil {
		return nil, err
	}
	out, err := s.load(ref, digest)
	if err != nil {
		return nil, err
	}
	if err := s.setRef(ref, digest.String()); err != nil {
		return nil, err
	}
	return out, nil
}

// ensureLayer unpacks l unless it is already complete, sharing the work
// with any concurrent call for the same diffID.
func (s *Store) ensureLayer(ctx context.Context, l v1.Layer) error {
	diffID, err := l.DiffID()
	if err != nil {
		return err
	}
	key := diffID.String()
	for {
		if _, err := os.Stat(filepath.Join(s.layerDir(diffID), "complete")); err == nil {
			return nil
		}
		s.mu.Lock()
		c, busy := s.inflight[key]
		if !busy {
			c = &layerCall{done: make(chan struct{})}
			s.inflight[key] = c
		}
		s.mu.Unlock()
		if busy {
			select {
			case <-c.done:
			case <-ctx.Done():
				return ctx.Err()
			}
			if c.err != nil {
				return c.err
			}
			continue // re-check the marker
		}
		c.err = s.unpackLayer(diffID, l)
		s.mu.Lock()
		delete(s.inflight, key)
		s.mu.Unlock()
		close(c.done)
		return c.err
	}
}

// unpackLayer unpacks l into tmp/ and renames it into layers/.
func (s *Store) unpackLayer(diffID v1.Hash, l v1.Layer) error {
	final := s.layerDir(diffID)
	if _, err := os.Stat(filepath.Join(final, "complete")); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "layer-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op after the rename
	rc, err := l.Uncompressed()
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	defer rc.Close()
	rootfs := filepath.Join(tmp, "rootfs")
	wh, err := unpackVerified(rc, rootfs, diffID)
	if err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	if len(wh) > 0 {
		b, _ := json.MarshalIndent(wh, "", "  ")
		if err := os.WriteFile(filepath.Join(tmp, "whiteouts.json"), b, 0o600); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o600); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(final), 0o700); err != nil {
		return err
	}
	// A directory without a marker is a leftover; replace it.
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("layer %s: %w", diffID, err)
	}
	s.unpacks.Add(1)
	return nil
}

func (s *Store) imageDir(h v1.Hash) string {
	return filepath.Join(s.root, "images", h.Algorithm, h.Hex)
}

func (s *Store) layerDir(h v1.Hash) string {
	return filepath.Join(s.root, "layers", h.Algorithm, h.Hex)
}

// load reads the stored image with manifest digest h.
func (s *Store) load(ref string, h v1.Hash) (*Image, error) {
	raw, err := os.ReadFile(filepath.Join(s.imageDir(h), "config.json"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("image %q: digest %s: %w", ref, h, ErrNotFound)
		}
		return nil, err
	}
	cf, err := v1.ParseConfigFile(bytesReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image %q: config: %w", ref, err)
	}
	id, _, err := v1.SHA256(bytesReader(raw))
	if err != nil {
		return nil, err
	}
	img := &Image{
		Ref:    ref,
		Digest: h.String(),
		ID:     id.String(),
		Config: ImageConfig{
			Entrypoint: cf.Config.Entrypoint,
			Cmd:        cf.Config.Cmd,
			Env:        cf.Config.Env,
			WorkingDir: cf.Config.WorkingDir,
			User:       cf.Config.User,
		},
	}
	for p := range cf.Config.ExposedPorts {
		img.Config.ExposedPorts = append(img.Config.ExposedPorts, p)
	}
	sort.Strings(img.Config.ExposedPorts)
	for _, d := range cf.RootFS.DiffIDs {
		img.LayerDirs = append(img.LayerDirs, filepath.Join(s.layerDir(d), "rootfs"))
	}
	return img, nil
}

// Get returns the stored image for ref (normalized as Pull does).
func (s *Store) Get(ref string) (*Image, error) {
	r, err := s.parse(ref)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	refs, err := s.readRefs()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	d, ok := refs[r.Name()]
	if !ok {
		return nil, fmt.Errorf("image %q: %w", r.Name(), ErrNotFound)
	}
	h, err := v1.NewHash(d)
	if err != nil {
		return nil, err
	}
	return s.load(r.Name(), h)
}

// List returns every stored reference's image, sorted by reference.
func (s *Store) List() ([]Image, error) {
	s.mu.Lock()
	refs, err := s.readRefs()
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	var out []Image
	for _, ref := range slices.Sorted(maps.Keys(refs)) {
		h, err := v1.NewHash(refs[ref])
		if err != nil {
			return nil, err
		}
		img, err := s.load(ref, h)
		if err != nil {
			return nil, err
		}
		out = append(out, *img)
	}
	return out, nil
}

// Remove deletes the reference ref; an image no reference points at any
// more is deleted, and so is every layer that no remaining image uses.
func (s *Store) Remove(ref string) error {
	r, err := s.parse(ref)
	if err != nil {
		return err
	}
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	refs, err := s.readRefs()
	if err != nil {
		return err
	}
	if _, ok := refs[r.Name()]; !ok {
		return fmt.Errorf("image %q: %w", r.Name(), ErrNotFound)
	}
	delete(refs, r.Name())
	if err := s.writeRefs(refs); err != nil {
		return err
	}
	return s.gc(refs)
}

// gc deletes images no reference names and layers no image uses. The
// caller holds gcMu and mu.
func (s *Store) gc(refs map[string]string) error {
	keepImages := map[string]bool{}
	keepLayers := map[string]bool{}
	for _, d := range refs {
		keepImages[d] = true
	}
	imgRoot := filepath.Join(s.root, "images")
	algos, _ := os.ReadDir(imgRoot)
	for _, a := range algos {
		ents, _ := os.ReadDir(filepath.Join(imgRoot, a.Name()))
		for _, e := range ents {
			d := a.Name() + ":" + e.Name()
			dir := filepath.Join(imgRoot, a.Name(), e.Name())
			if !keepImages[d] {
				if err := os.RemoveAll(dir); err != nil {
					return err
				}
				continue
			}
			raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
			if err != nil {
				return err
			}
			cf, err := v1.ParseConfigFile(bytesReader(raw))
			if err != nil {
				return err
			}
			for _, l := range cf.RootFS.DiffIDs {
				keepLayers[l.String()] = true
			}
		}
	}
	layerRoot := filepath.Join(s.root, "layers")
	algos, _ = os.ReadDir(layerRoot)
	for _, a := range algos {
		ents, _ := os.ReadDir(filepath.Join(layerRoot, a.Name()))
		for _, e := range ents {
			if !keepLayers[a.Name()+":"+e.Name()] {
				if err := removeLayerDir(filepath.Join(layerRoot, a.Name(), e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// removeLayerDir deletes a layer, first making its directories writable:
// a layer may hold read-only directories that RemoveAll cannot empty when
// not running as root.
func removeLayerDir(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// setRef points ref at digest in refs.json.
func (s *Store) setRef(ref, digest string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	refs, err := s.readRefs()
	if err != nil {
		return err
	}
	if refs[ref] == digest {
		return nil
	}
	refs[ref] = digest
	return s.writeRefs(refs)
}

// readRefs reads refs.json; the caller holds mu.
func (s *Store) readRefs() (map[string]string, error) {
	refs := map[string]string{}
	b, err := os.ReadFile(filepath.Join(s.root, "refs.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return refs, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &refs); err != nil {
		return nil, fmt.Errorf("image store %q: refs.json: %w", s.root, err)
	}
	return refs, nil
}

// writeRefs replaces refs.json; the caller holds mu.
func (s *Store) writeRefs(refs map[string]string) error {
	b, err := json.MarshalIndent(refs, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.root, "refs.json"), b)
}

func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

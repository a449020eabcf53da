package testimage

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// BusyboxPath is where Debian's busybox-static package installs the binary.
const BusyboxPath = "/bin/busybox"

// Applets are the commands the image links to busybox, in /bin.
var Applets = []string{
	"sh", "sleep", "cat", "echo", "env", "wget", "httpd", "nc", "ls", "id",
	"hostname", "true", "false", "kill", "ps", "mkdir", "touch", "test",
	"head", "tail", "grep", "yes", "dd", "rm", "date", "printf", "seq",
}

// IndexHTML is the content of /var/www/index.html in the image.
const IndexHTML = "hello from skiff\n"

const (
	passwd = "root:x:0:0:root:/root:/bin/sh\n" +
		"app:x:1000:1000:app:/home/app:/bin/sh\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	group = "root:x:0:\n" +
		"app:x:1000:\n" +
		"nobody:x:65534:\n"
)

var (
	busyboxOnce sync.Once
	busyboxImg  v1.Image
	busyboxErr  error
)

// Busybox returns the busybox test image. It skips the test when the host
// has no static busybox binary.
func Busybox(t testing.TB) v1.Image {
	t.Helper()
	if err := checkStatic(BusyboxPath); err != nil {
		t.Skipf("needs Debian's busybox-static: apt-get install busybox-static (%v)", err)
	}
	busyboxOnce.Do(func() { busyboxImg, busyboxErr = buildBusybox() })
	if busyboxErr != nil {
		t.Fatalf("building the busybox image: %v", busyboxErr)
	}
	return busyboxImg
}

// checkStatic makes sure path is an ELF executable without a program
// interpreter: a dynamically linked busybox (Debian's "busybox" package)
// would not start in an image without a libc.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return errors.New(path + " is dynamically linked")
		}
	}
	return nil
}

func buildBusybox() (v1.Image, error) {
	bin, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, err
	}
	layerTar, err := busyboxTar(bin)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	base := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Cmd = []string{"sh"}
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.WorkingDir = "/"
	return mutate.ConfigFile(img, cf)
}

// busyboxTar writes the image's only layer as an uncompressed tar. Times
// and owners are fixed so the layer is the same for the same binary.
func busyboxTar(bin []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(hdr *tar.Header, body []byte) {
		hdr.ModTime = mtime
		hdr.Format = tar.FormatPAX
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			panic(err) // writing to memory: only a bug gets here
		}
		tw.Write(body)
	}
	dir := func(name string, mode int64) {
		add(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: mode}, nil)
	}
	file := func(name string, mode int64, body []byte) {
		add(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, body)
	}

	for _, d := range []string{"bin", "dev", "etc", "proc", "sys", "var", "var/www"} {
		dir(d, 0o755)
	}
	dir("root", 0o700)
	dir("tmp", 0o1777)
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "home/", Mode: 0o755}, nil)
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "home/app/", Mode: 0o755, Uid: 1000, Gid: 1000}, nil)
	file("bin/busybox", 0o755, bin)
	for _, a := range Applets {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil)
	}
	file("etc/passwd", 0o644, []byte(passwd))
	file("etc/group", 0o644, []byte(group))
	file("var/www/index.html", 0o644, []byte(IndexHTML))
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Serve serves an empty in-memory registry on ln until the test ends (ln
// is closed then) and returns its address, host:port, as a registry host.
func Serve(t testing.TB, ln net.Listener) string {
	t.Helper()
	srv := &http.Server{
		Handler:  registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// Push uploads img to the registry at host as repo:latest over plain HTTP
// and returns that reference, "host:port/repo:latest". Extra options go to
// remote.Write, e.g. a transport that dials into a network namespace.
func Push(t testing.TB, host, repo string, img v1.Image, opts ...remote.Option) string {
	t.Helper()
	ref := host + "/" + repo + ":latest"
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatalf("parsing %q: %v", ref, err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	return ref
}

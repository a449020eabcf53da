// Package testimage gives the kubelet's tests a real container image and a
// registry to pull it from, without reaching the Internet.
//
// Busybox builds an OCI image in memory from the host's /bin/busybox, the
// statically linked binary of Debian's busybox-static package. Being static,
// it runs in a container whose root file system holds nothing else: one
// layer has /bin/busybox, a symlink in /bin for each applet the tests call
// (sh, sleep, wget, httpd, ...), an /etc/passwd and /etc/group that know
// root, nobody and a user "app" (1000:1000), a world-writable /tmp and a page
// at /var/www/index.html for httpd to serve. The image is built once per test
// binary and shared, since it is the same every time. Tests skip when the
// binary is missing (apt-get install busybox-static).
//
// Serve runs the in-memory registry of go-containerregistry on a listener
// the test made — on 127.0.0.1, or inside a test network namespace — and
// Push uploads an image to it over plain HTTP. The kubelet then pulls the
// image like any other, with the registry listed as insecure:
//
//	host := testimage.Serve(t, ln)
//	ref := testimage.Push(t, host, "busybox", testimage.Busybox(t))
//	// images.Options{InsecureRegistries: []string{host}}, Pull(ctx, ref, ...)
//
// When the registry listens inside a network namespace, the test process
// (in the root namespace) cannot reach it directly; pass Push a
// remote.WithTransport whose dialer connects from inside that namespace.
package testimage

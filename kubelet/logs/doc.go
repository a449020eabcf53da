// Package logs stores what containers print and reads it back for
// `skiff logs`.
//
// # The file format
//
// Each container attempt gets its own file, in the format that the
// Container Runtime Interface (CRI) defines and that Kubernetes tools
// understand. Every record is one line of the file:
//
//	2024-05-01T12:00:00.123456789Z stdout F hello world
//	<timestamp, RFC 3339 in UTC> <stream> <tag> <text>
//
// The stream is "stdout" or "stderr". The tag is F for a full line (the
// container printed a newline, which is not stored) or P for a partial one:
// a line longer than 16 KiB is cut into P records followed by one F record,
// and output left without a newline when the container exits is stored as a
// final P record. A reader rebuilds the original text by joining the P
// records of a stream with the F record that ends them. Because every record
// carries its stream and its time, stdout and stderr can share one file and
// still be told apart, filtered by time, and tailed.
//
// # Writing
//
// The container's stdout and stderr pipes are copied into the two
// io.Writers that Writer.Stream returns. A Writer keeps, per stream, the
// bytes of a line that has not ended yet, and writes whole records under one
// mutex, so records of the two streams never interleave inside a line of the
// file. Writes go straight to a local file without fsync: a container that
// prints fast must not be slowed down by its logs, and a disk error loses log
// text rather than blocking the container (Close reports the error).
//
// A log must not fill the disk, so a Writer has a size cap: before a record
// would push the file past it, the file is renamed to path+".1" (replacing
// the previous one) and a new file is started. At most about twice the cap is
// kept per container attempt.
//
// # Reading
//
// Read turns the records back into plain text: stdout text to one
// io.Writer, stderr text to another. It reads path+".1" first and then path,
// so rotation is invisible to the reader. ReadOptions select the last N
// lines (Tail), lines at or after a time (Since), a timestamp prefix on each
// line (Timestamps) and a byte budget (LimitBytes).
//
// With Follow, Read keeps the file open after reaching its end and waits for
// more: it watches the directory with inotify (falling back to a short poll)
// and notices a rotation by comparing the open file with the one now at
// path, finishing the old file before moving to the new one. It stops when
// the context ends, or when the caller's done function says the container
// has exited (and so its Writer is closed) and everything has been read.
package logs

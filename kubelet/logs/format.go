package logs

import (
	"bytes"
	"errors"
	"time"
)

// Tags of a record: a full line, or a piece of a line that continues in the
// stream's next record.
const (
	tagFull    = "F"
	tagPartial = "P"
)

// maxRecordText is the most text one record holds; longer lines are split
// into partial records. 16 KiB is what CRI runtimes use.
const maxRecordText = 16 * 1024

// record is one parsed line of a log file.
type record struct {
	time    time.Time
	stream  string
	partial bool
	text    []byte
}

// appendRecord appends the file form of a record, newline included, to b.
func appendRecord(b []byte, t time.Time, stream string, partial bool, text []byte) []byte {
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, stream...)
	b = append(b, ' ')
	if partial {
		b = append(b, tagPartial...)
	} else {
		b = append(b, tagFull...)
	}
	b = append(b, ' ')
	b = append(b, text...)
	return append(b, '\n')
}

var errBadRecord = errors.New("malformed log record")

// parseRecord parses one line of a log file, without its newline. The
// returned text aliases line.
func parseRecord(line []byte) (record, error) {
	var r record
	ts, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return r, errBadRecord
	}
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		return r, errBadRecord
	}
	stream, rest, ok := bytes.Cut(rest, []byte{' '})
	if !ok || len(stream) == 0 {
		return r, errBadRecord
	}
	tag, text, ok := bytes.Cut(rest, []byte{' '})
	if !ok {
		// An empty full line may have lost its separator to a hand edit;
		// accept "<ts> <stream> F" as an empty line.
		tag, text = rest, nil
	}
	switch string(tag) {
	case tagFull:
	case tagPartial:
		r.partial = true
	default:
		return r, errBadRecord
	}
	r.time, r.stream, r.text = t, string(stream), text
	return r, nil
}

package render

import (
	"io"
	"iter"

	"sstrace/snapshot"
)

// TableSeq writes the rows rows yields, in order, as Table writes a slice.
// A row is read only while it is yielded, so a caller that keeps sockets
// in another form (watch's overlay) can yield one Socket it refills for
// every row instead of building a slice of them all.
func TableSeq(w io.Writer, rows iter.Seq[*snapshot.Socket], opt Options) error {
	var ts Tables
	return ts.Table(w, rows, opt)
}

// Tables writes tables one after another (watch's frames) with the same
// buffers. A table of 100k rows grows them to megabytes, and the pool the
// listing takes them from is emptied at every garbage collection: a frame
// a second would grow them anew, and collect them, every time.
type Tables struct {
	b *buffers
}

// Table is TableSeq with the buffers of t.
func (ts *Tables) Table(w io.Writer, rows iter.Seq[*snapshot.Socket], opt Options) error {
	t := newTabler(w, &opt)
	if ts.b != nil {
		bufPool.Put(t.buffers)
		t.buffers = ts.b
	}
	if opt.Header {
		t.header()
	}
	for s := range rows {
		t.row(s)
	}
	t.render()
	t.write()
	b := t.buffers
	b.arena, b.ends, b.out = b.arena[:0], b.ends[:0], b.out[:0]
	ts.b = b
	return t.err
}

package render

import (
	"bytes"
	"slices"
	"testing"

	"sstrace/snapshot"
)

// TableSeq prints what Table prints, though every row comes through one
// Socket refilled for each: nothing of a row is kept past its yield.
func TestTableSeqIsTable(t *testing.T) {
	socks := syntheticTCP(100000) // more than one of ss's batches
	ptrs := make([]*snapshot.Socket, len(socks))
	for i := range socks {
		ptrs[i] = &socks[i]
	}
	var ts Tables
	for _, opt := range []Options{
		{Header: true, ShowState: true, Numeric: true},
		{Header: true, ShowState: true, ShowNetid: true, Options: true, Extended: true, Processes: true},
		{ShowState: true, ScreenWidth: 120},
	} {
		opt = fakeOpts(opt)
		var want, got bytes.Buffer
		if err := Table(&want, socks, opt); err != nil {
			t.Fatal(err)
		}
		var row snapshot.Socket
		err := TableSeq(&got, func(yield func(*snapshot.Socket) bool) {
			for i := range socks {
				row = socks[i]
				if !yield(&row) {
					return
				}
				row = snapshot.Socket{Family: 99} // a row read late would show this
			}
		}, opt)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Errorf("%+v: TableSeq differs from Table:\n%.2000s\nwant:\n%.2000s", opt, got.String(), want.String())
		}
		// Tables, twice with the same buffers: the same again.
		for i := 0; i < 2; i++ {
			got.Reset()
			if err := ts.Table(&got, slices.Values(ptrs), opt); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want.Bytes()) {
				t.Errorf("%+v: Tables, table %d, differs from Table:\n%.2000s\nwant:\n%.2000s", opt, i, got.String(), want.String())
			}
		}
	}
}

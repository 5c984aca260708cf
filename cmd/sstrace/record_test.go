package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"
)

func u32p(v uint32) *uint32 { return &v }
func u64p(v uint64) *uint64 { return &v }

var testBoot = time.Date(2025, 3, 4, 5, 0, 0, 0, time.UTC)

func testHeader() *recHeader {
	return &recHeader{
		Sstrace: "test", Host: "box", Kernel: "Linux 6.18.0",
		BootTime: testBoot, Start: testBoot.Add(1000 * time.Second), StartNS: 1000e9,
		Options: recOptions{Args: []string{"trace", "--record", "x.rec"}, NetNS: "/run/netns/t", NetNSCookie: 42, Filter: "state all"},
	}
}

// sampleRecords is a client's connection, a passive connection and a loss.
func sampleRecords() []traceRecord {
	ep := func(a string, p uint16) *traceEndpoint { return &traceEndpoint{Addr: a, Port: p} }
	ev := func(typ string, ts uint64, cookie uint64, pid uint32, old, st string) traceRecord {
		return traceRecord{Type: typ, Time: testBoot.Add(time.Duration(ts)).Format(recTimeLayout), TS: ts, Cookie: cookie,
			NetNS: 4026532000, PID: pid, Comm: map[uint32]string{10: "curl", 20: "nginx"}[pid], OwnerFrom: ownerBPF,
			CurPID: u32p(pid), Netid: "tcp", Family: "inet", Local: ep("127.0.0.1", 40000), Peer: ep("127.0.0.1", 80),
			OldState: old, State: st}
	}
	birth := ev(recBirth, 1000_000_100_000, 1, 10, "", "CLOSE")
	birth.FD, birth.Inode, birth.SockType = u32p(3), 777, "stream"
	birth.Local, birth.Peer = ep("0.0.0.0", 0), ep("0.0.0.0", 0)
	syn := ev(recState, 1000_000_200_000, 1, 10, "CLOSE", "SYN-SENT")
	syn.SinceNS, syn.OldStateNS = 1000_000_100_000, u64p(100_000)
	est := ev(recState, 1000_000_300_000, 1, 10, "SYN-SENT", "ESTABLISHED")
	est.SinceNS, est.OldStateNS = 1000_000_200_000, u64p(100_000)
	child := ev(recState, 1000_000_310_000, 2, 20, "LISTEN", "SYN-RECV")
	child.OwnerFrom = ownerListener
	child.Local, child.Peer = ep("127.0.0.1", 80), ep("127.0.0.1", 40000)
	lost := traceRecord{Type: recLost, Time: testBoot.Add(1001 * time.Second).Format(recTimeLayout), Lost: 7,
		Since: testBoot.Add(1000 * time.Second).Format(recTimeLayout)}
	rel := ev(recRelease, 1002_000_000_000, 1, 10, "", "ESTABLISHED")
	rel.StateNS, rel.SinceNS = u64p(1_999_700_000), 1000_000_300_000
	retrans := ev("retransmit", 1002_000_000_001, 1, 10, "", "ESTABLISHED")
	return []traceRecord{birth, syn, est, child, lost, rel, retrans}
}

func writeSample(t testing.TB, recs []traceRecord) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := newRecordWriter(&buf)
	if err := w.Header(testHeader()); err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		if err := w.Record(&recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End(testBoot.Add(1003*time.Second), 1003e9); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRecordingRoundTrip(t *testing.T) {
	recs := sampleRecords()
	data := writeSample(t, recs)
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(recs)+2 {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(recs)+2, data)
	}
	if !strings.HasPrefix(lines[0], `{"format":"sstrace-recording","version":1,`) {
		t.Errorf("header line %s", lines[0])
	}
	if want := `{"type":"end","time":"2025-03-04T05:16:43.000000Z","ts_ns":1003000000000,"events":6,"lost_total":7}`; lines[len(lines)-1] != want {
		t.Errorf("end line\n got %s\nwant %s", lines[len(lines)-1], want)
	}
	rec, err := readRecording(bytes.NewReader(data), "x.rec")
	if err != nil {
		t.Fatal(err)
	}
	h := testHeader()
	h.Format, h.Version = recordingFormat, recordingVersion
	if !reflect.DeepEqual(rec.Header, *h) {
		t.Errorf("header\n got %+v\nwant %+v", rec.Header, *h)
	}
	if !reflect.DeepEqual(rec.Records, recs) {
		t.Errorf("records differ:\n got %+v\nwant %+v", rec.Records, recs)
	}
	if *rec.End.Events != 6 || *rec.End.LostTotal != 7 {
		t.Errorf("end %+v", rec.End)
	}
}

// Every defect is one line naming the file and the line.
func TestRecordingErrors(t *testing.T) {
	good := string(writeSample(t, sampleRecords()))
	lines := strings.SplitAfter(good, "\n")
	lines = lines[:len(lines)-1] // the empty string after the last '\n'
	join := func(ls ...string) string { return strings.Join(ls, "") }
	header, body, end := lines[0], lines[1:len(lines)-1], lines[len(lines)-1]
	replace := func(s, old, new string) string {
		if !strings.Contains(s, old) {
			t.Fatalf("%q not in %q", old, s)
		}
		return strings.Replace(s, old, new, 1)
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"empty", "", "reading x.rec: empty file: not an sstrace recording"},
		{"binary garbage", "\x00\x01\x02\xff\xfe garbage\n", "reading x.rec: line 1: not an sstrace recording (the first line is not its header)"},
		{"garbage without newline", "\x7fELF\x02\x01\x01", "reading x.rec: line 1: not an sstrace recording (no complete first line)"},
		{"other JSON", `{"sockets":[]}` + "\n", "reading x.rec: line 1: not an sstrace recording (the first line is not its header)"},
		{"trace -j output", body[0], "reading x.rec: line 1: not an sstrace recording (the first line is not its header)"},
		{"newer version", replace(good, `"version":1`, `"version":2`), "reading x.rec: line 1: recording format version 2; this sstrace reads version 1"},
		{"no version", replace(good, `"version":1,`, ``), "reading x.rec: line 1: the header has no version"},
		{"bad header", replace(good, `"start_ns":1000000000000`, `"start_ns":"soon"`), "reading x.rec: line 1: bad header: json: cannot unmarshal string into Go struct field recHeader.start_ns of type uint64"},
		{"no start", replace(good, `"start_ns":1000000000000`, `"start_ns":0`), "reading x.rec: line 1: bad header: no start time"},
		{"cut mid-line", good[:len(good)-len(end)-20], "reading x.rec: line 8: truncated: the file ends in the middle of a line"},
		{"cut at a line end", join(header, body[0], body[1]), "reading x.rec: line 3: truncated: no end record after 2 events (was the trace killed?)"},
		{"header only", header, "reading x.rec: line 1: truncated: no end record after 0 events (was the trace killed?)"},
		{"a line lost", join(append(append([]string{header}, body[1:]...), end)...), "reading x.rec: line 8: the end record counts 6 events and 7 lost, the file holds 5 and 7: records are missing"},
		{"after the end", good + body[0], "reading x.rec: line 10: data after the end record"},
		{"garbage line", join(header, "hello\n", end), "reading x.rec: line 2: not a record: not a JSON object"},
		{"empty line", join(header, "\n", end), "reading x.rec: line 2: not a record: empty line"},
		{"two values", join(header, `{"type":"lost"} {}`+"\n", end), "reading x.rec: line 2: not a record: more than one JSON value on the line"},
		{"bad JSON", join(header, `{"type":"state",`+"\n", end), "reading x.rec: line 2: not a record: unexpected EOF"},
		{"unknown type", join(header, `{"type":"Birth!","ts_ns":1}`+"\n", end), `reading x.rec: line 2: unknown record type "Birth!"`},
		{"no type", join(header, `{"ts_ns":1}`+"\n", end), "reading x.rec: line 2: record without a type"},
		{"no time", replace(good, `"ts_ns":1000000100000,`, ``), "reading x.rec: line 2: birth event without ts_ns"},
		{"bad state", replace(good, `"state":"SYN-SENT"`, `"state":"SYN-SNET"`), `reading x.rec: line 3: state event: unknown state "SYN-SNET"`},
		{"half a transition", replace(good, `"old_state":"CLOSE",`, ``), "reading x.rec: line 3: state event without old_state and state"},
		{"bad address", replace(good, `"addr":"0.0.0.0"`, `"addr":"0.0.0.0.0"`), `reading x.rec: line 2: birth event: bad address "0.0.0.0.0"`},
		{"lost without count", replace(good, `"lost":7,`, ``), "reading x.rec: line 6: lost record without a count"},
		{"lost bad time", replace(good, `"since":"2025-03-04T05:16:40.000000Z"`, `"since":"yesterday"`), `reading x.rec: line 6: lost record: bad time "yesterday"`},
		{"end without counts", replace(good, `,"events":6,"lost_total":7}`, `}`), "reading x.rec: line 9: end record without its counts"},
		{"long line", join(header, `{"type":"lost","x":"`+strings.Repeat("a", recordingMaxLine)+"\"}\n", end), "reading x.rec: line 2: longer than 65536 bytes: not a recording line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, err := readRecording(strings.NewReader(tc.data), "x.rec")
			if err == nil {
				t.Fatalf("no error; read %+v", rec)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got %s\nwant %s", err, tc.want)
			}
		})
	}
}

// A reader error (not a format error) is reported as such.
func TestRecordingReadError(t *testing.T) {
	r := io.MultiReader(strings.NewReader(`{"format":"sstrace-recording"`), errReader{})
	_, err := readRecording(r, "x.rec")
	if err == nil || err.Error() != "reading x.rec: disk on fire" {
		t.Errorf("error %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

// FuzzReadRecording: whatever the bytes, the reader returns a recording or
// one error line naming the file; never panics. What it accepts, timeline
// renders, and the Perfetto file it makes is valid JSON.
func FuzzReadRecording(f *testing.F) {
	good := writeSample(f, sampleRecords())
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(writeSample(f, nil))
	f.Add([]byte(`{"format":"sstrace-recording","version":2}` + "\n"))
	f.Add([]byte("\x00\xff\n\n{}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := readRecording(bytes.NewReader(data), "fuzz.rec")
		if err != nil {
			msg := err.Error()
			if strings.ContainsAny(msg, "\n\r") || !strings.HasPrefix(msg, "reading fuzz.rec: ") {
				t.Fatalf("bad error message %q", msg)
			}
			return
		}
		var events, lost uint64
		for _, r := range rec.Records {
			if r.Type == recLost {
				lost += r.Lost
			} else {
				events++
			}
		}
		if rec.End.Type != recEnd || *rec.End.Events != events || *rec.End.LostTotal != lost {
			t.Fatalf("accepted a recording whose end does not match: %+v", rec.End)
		}
		tl := buildTimeline(rec)
		var text bytes.Buffer
		w := bufio.NewWriter(&text)
		if err := writeTimelineText(w, tl, false); err != nil {
			t.Fatal(err)
		}
		if err := writeTimelineJSON(w, tl); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		var pf bytes.Buffer
		if _, err := writePerfetto(&pf, tl); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(pf.Bytes()) {
			t.Fatalf("Perfetto output is not JSON:\n%s", pf.Bytes())
		}
	})
}

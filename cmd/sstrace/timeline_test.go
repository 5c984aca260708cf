package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlRec builds the records of a recording for the timeline tests: times
// are µs after the recording's start (1000 s of CLOCK_MONOTONIC).
type tlRec struct{ recs []traceRecord }

const tlStart = 1000_000_000_000

func tlEp(s string) *traceEndpoint {
	ap := ap(s)
	return &traceEndpoint{Addr: ap.Addr().String(), Port: ap.Port()}
}

func (b *tlRec) add(typ string, us uint64, cookie uint64, pid uint32, comm, old, st string, since uint64, local, peer string) *traceRecord {
	ts := tlStart + us*1000
	r := traceRecord{Type: typ, TS: ts, Cookie: cookie, NetNS: 4026532000, PID: pid, Comm: comm, OwnerFrom: ownerBPF,
		Netid: "tcp", Family: "inet", OldState: old, State: st, Local: tlEp(local), Peer: tlEp(peer)}
	if since != 0 {
		r.SinceNS = tlStart + since*1000
	}
	b.recs = append(b.recs, r)
	return &b.recs[len(b.recs)-1]
}

func (b *tlRec) recording(endUS uint64) *recording {
	h := testHeader()
	h.StartNS, h.Start = tlStart, testBoot.Add(tlStart)
	ev, lost := uint64(0), uint64(0)
	for _, r := range b.recs {
		if r.Type == recLost {
			lost += r.Lost
		} else {
			ev++
		}
	}
	return &recording{Header: *h, Records: b.recs,
		End: traceRecord{Type: recEnd, TS: tlStart + endUS*1000, Events: &ev, LostTotal: &lost}}
}

// sampleTimeline: a client connection; its server side, not yet accepted
// when it starts; a listener; a socket older than the recording; a UDP
// socket; a connection still open at the end.
func sampleTimeline() *tlRec {
	b := &tlRec{}
	const any4 = "0.0.0.0:0"
	b.add(recBirth, 0, 1, 20, "nginx", "", "CLOSE", 0, any4, any4)
	b.add(recState, 10, 1, 20, "nginx", "CLOSE", "LISTEN", 0, "127.0.0.1:80", any4)
	b.add(recBirth, 100, 2, 10, "curl", "", "CLOSE", 0, any4, any4)
	b.add(recState, 130, 2, 10, "curl", "CLOSE", "SYN-SENT", 100, "127.0.0.1:0", "127.0.0.1:80")
	b.add(recState, 150, 3, 20, "nginx", "LISTEN", "SYN-RECV", 0, "127.0.0.1:80", "127.0.0.1:40000").OwnerFrom = ownerListener
	b.add(recState, 160, 2, 10, "curl", "SYN-SENT", "ESTABLISHED", 130, "127.0.0.1:40000", "127.0.0.1:80")
	b.add(recState, 170, 3, 20, "nginx", "SYN-RECV", "ESTABLISHED", 150, "127.0.0.1:80", "127.0.0.1:40000").OwnerFrom = ownerListener
	b.add(recAccept, 200, 3, 20, "nginx", "", "ESTABLISHED", 0, "127.0.0.1:80", "127.0.0.1:40000").OwnerFrom = ownerSyscall
	b.add(recState, 250, 9, 30, "old", "ESTABLISHED", "CLOSE-WAIT", 0, "127.0.0.1:22", "127.0.0.1:50000").OwnerFrom = ownerInventory
	b.add(recRelease, 1000, 2, 10, "curl", "", "ESTABLISHED", 160, "127.0.0.1:40000", "127.0.0.1:80")
	b.add(recState, 1001, 2, 10, "curl", "ESTABLISHED", "FIN-WAIT-1", 160, "127.0.0.1:40000", "127.0.0.1:80")
	b.add(recState, 1010, 3, 20, "nginx", "ESTABLISHED", "CLOSE-WAIT", 170, "127.0.0.1:80", "127.0.0.1:40000")
	b.add(recState, 1011, 2, 10, "curl", "FIN-WAIT-1", "FIN-WAIT-2", 1001, "127.0.0.1:40000", "127.0.0.1:80")
	b.add(recState, 1200, 3, 20, "nginx", "CLOSE-WAIT", "LAST-ACK", 1010, "127.0.0.1:80", "127.0.0.1:40000")
	b.add(recState, 1210, 2, 10, "curl", "FIN-WAIT-2", "CLOSE", 1011, "127.0.0.1:0", "127.0.0.1:80")
	b.add(recDestroy, 1211, 2, 10, "curl", "", "CLOSE", 1210, "127.0.0.1:0", "127.0.0.1:80")
	b.add(recState, 1220, 3, 20, "nginx", "LAST-ACK", "CLOSE", 1200, "127.0.0.1:0", "127.0.0.1:40000")
	b.add(recDestroy, 1221, 3, 20, "nginx", "", "CLOSE", 1220, "127.0.0.1:0", "127.0.0.1:40000")
	u := b.add(recBirth, 1300, 4, 40, "dig", "", "", 0, any4, any4)
	u.Netid = "udp"
	u = b.add(recRelease, 1500, 4, 40, "dig", "", "", 0, "127.0.0.1:53000", "127.0.0.1:53")
	u.Netid = "udp"
	b.add(recBirth, 2000, 5, 10, "curl", "", "CLOSE", 0, any4, any4)
	b.add(recState, 2100, 5, 10, "curl", "CLOSE", "SYN-SENT", 2000, "127.0.0.1:0", "127.0.0.1:81")
	b.add("retransmit", 3100, 5, 10, "curl", "", "SYN-SENT", 0, "127.0.0.1:40001", "127.0.0.1:81")
	b.add("retransmit", 5100, 5, 10, "curl", "", "SYN-SENT", 0, "127.0.0.1:40001", "127.0.0.1:81")
	return b
}

type stateWant struct {
	name        string
	start, dur  uint64 // µs after the start
	unknown, op bool
}

func TestBuildTimeline(t *testing.T) {
	tl := buildTimeline(sampleTimeline().recording(10_000))
	want := []struct {
		cookie uint64
		pid    uint32
		local  string
		states []stateWant
		end    string
	}{
		{1, 20, "127.0.0.1:80", []stateWant{{"CLOSE", 0, 10, false, false}, {"LISTEN", 10, 9990, false, true}}, tlOpen},
		{2, 10, "127.0.0.1:40000", []stateWant{{"CLOSE", 100, 30, false, false}, {"SYN-SENT", 130, 30, false, false},
			{"ESTABLISHED", 160, 841, false, false}, {"FIN-WAIT-1", 1001, 10, false, false}, {"FIN-WAIT-2", 1011, 199, false, false},
			{"CLOSE", 1210, 1, false, false}}, tlDestroyed},
		{3, 20, "127.0.0.1:80", []stateWant{{"SYN-RECV", 150, 20, false, false}, {"ESTABLISHED", 170, 840, false, false},
			{"CLOSE-WAIT", 1010, 190, false, false}, {"LAST-ACK", 1200, 20, false, false}, {"CLOSE", 1220, 1, false, false}}, tlDestroyed},
		{9, 30, "127.0.0.1:22", []stateWant{{"ESTABLISHED", 250, 0, true, false}, {"CLOSE-WAIT", 250, 9750, false, true}}, tlOpen},
		{4, 40, "127.0.0.1:53000", []stateWant{{"CLOSE", 1300, 200, false, false}}, tlClosed},
		{5, 10, "127.0.0.1:40001", []stateWant{{"CLOSE", 2000, 100, false, false}, {"SYN-SENT", 2100, 7900, false, true}}, tlOpen},
	}
	if len(tl.Conns) != len(want) {
		t.Fatalf("%d sockets, want %d", len(tl.Conns), len(want))
	}
	for i, w := range want {
		c := tl.Conns[i]
		if c.Cookie != w.cookie || c.Owner.PID != w.pid || c.End != w.end || traceAddr(c.Local) != w.local {
			t.Errorf("socket %d: cookie %d pid %d end %s local %s; want cookie %d pid %d end %s local %s",
				i, c.Cookie, c.Owner.PID, c.End, traceAddr(c.Local), w.cookie, w.pid, w.end, w.local)
			continue
		}
		var got []stateWant
		for _, s := range c.States {
			got = append(got, stateWant{s.Name, (s.Start - tlStart) / 1000, (s.End - s.Start) / 1000, s.StartUnknown, s.Open})
		}
		if len(got) != len(w.states) {
			t.Errorf("socket %d: states %+v, want %+v", c.Cookie, got, w.states)
			continue
		}
		for j := range got {
			if got[j] != w.states[j] {
				t.Errorf("socket %d state %d: %+v, want %+v", c.Cookie, j, got[j], w.states[j])
			}
		}
	}
	// The accepted socket belongs to the process that accepted it (not
	// the listener's inference).
	if c := tl.Conns[2]; c.Owner.From != ownerSyscall || c.Accepted != tlStart+200_000 {
		t.Errorf("accepted socket: owner from %s, accepted at %d", c.Owner.From, c.Accepted)
	}
	if c := tl.Conns[5]; len(c.Marks) != 2 || c.endText() != "retransmit ×2, open at the end" {
		t.Errorf("marks %+v, end %q", c.Marks, c.endText())
	}
}

// Missing transitions and lost events mark the sockets they may concern.
func TestTimelineIncomplete(t *testing.T) {
	b := &tlRec{}
	b.add(recBirth, 0, 1, 10, "a", "", "CLOSE", 0, "0.0.0.0:0", "0.0.0.0:0")
	b.add(recState, 10, 1, 10, "a", "SYN-SENT", "ESTABLISHED", 5, "127.0.0.1:1", "127.0.0.1:2") // CLOSE → SYN-SENT lost
	b.add(recBirth, 20, 2, 10, "a", "", "CLOSE", 0, "0.0.0.0:0", "0.0.0.0:0")
	b.add(recDestroy, 30, 2, 10, "a", "", "CLOSE", 20, "0.0.0.0:0", "0.0.0.0:0")
	b.add(recBirth, 5000, 3, 10, "a", "", "CLOSE", 0, "0.0.0.0:0", "0.0.0.0:0")
	b.recs = append(b.recs, traceRecord{Type: recLost, Lost: 3,
		Since: testBoot.Add(tlStart + 1000*time.Microsecond).Format(recTimeLayout),
		Time:  testBoot.Add(tlStart + 2000*time.Microsecond).Format(recTimeLayout)})
	tl := buildTimeline(b.recording(6000))
	got := map[uint64]bool{}
	for _, c := range tl.Conns {
		got[c.Cookie] = c.Incomplete
	}
	// 1: a gap, and alive during the loss; 2: dead before it; 3: born after.
	if !got[1] || got[2] || got[3] {
		t.Errorf("incomplete: %v, want only socket 1", got)
	}
	c := tl.Conns[0]
	var names []string
	for _, s := range c.States {
		names = append(names, s.text())
	}
	if strings.Join(names, " → ") != "CLOSE 0.010ms → SYN-SENT >0.000ms → ESTABLISHED 5.990ms+" {
		t.Errorf("states %v", names)
	}
	if tl.LostTotal != 3 {
		t.Errorf("lost %d", tl.LostTotal)
	}
}

func TestTimelineText(t *testing.T) {
	tl := buildTimeline(sampleTimeline().recording(10_000))
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := writeTimelineText(w, tl, false); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	want := `# 2025-03-04T05:16:40.000000Z on box (Linux 6.18.0), 10.000ms, 24 events, 6 sockets, netns /run/netns/t, filter "state all"
 +0.000000   20/nginx               tcp            127.0.0.1:80 → *                     CLOSE 0.010ms → LISTEN 9.990ms+; open at the end
 +0.000100   10/curl                tcp         127.0.0.1:40000 → 127.0.0.1:80          CLOSE 0.030ms → SYN-SENT 0.030ms → ESTABLISHED 0.841ms → FIN-WAIT-1 0.010ms → FIN-WAIT-2 0.199ms → CLOSE 0.001ms; destroyed
 +0.000150   20/nginx               tcp            127.0.0.1:80 → 127.0.0.1:40000       SYN-RECV 0.020ms → ESTABLISHED 0.840ms → CLOSE-WAIT 0.190ms → LAST-ACK 0.020ms → CLOSE 0.001ms; destroyed
 +0.000250   30/old                 tcp            127.0.0.1:22 → 127.0.0.1:50000       ESTABLISHED >0.000ms → CLOSE-WAIT 9.750ms+; open at the end
 +0.001300   40/dig                 udp         127.0.0.1:53000 → 127.0.0.1:53          CLOSE 0.200ms; closed
 +0.002000   10/curl                tcp         127.0.0.1:40001 → 127.0.0.1:81          CLOSE 0.100ms → SYN-SENT 7.900ms+; retransmit ×2, open at the end
`
	if buf.String() != want {
		t.Errorf("text\n got:\n%s\nwant:\n%s", buf.String(), want)
	}
	buf.Reset()
	if err := writeTimelineText(w, tl, true); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if !strings.Contains(buf.String(), "\n 2025-03-04T05:16:40.000100Z 10/curl ") {
		t.Errorf("-T text:\n%s", buf.String())
	}
}

func TestPerfetto(t *testing.T) {
	tl := buildTimeline(sampleTimeline().recording(10_000))
	var buf bytes.Buffer
	n, err := writePerfetto(&buf, tl)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		DisplayTimeUnit string `json:"displayTimeUnit"`
		TraceEvents     []struct {
			Name string         `json:"name"`
			Cat  string         `json:"cat"`
			Ph   string         `json:"ph"`
			TS   *int64         `json:"ts"`
			Dur  *int64         `json:"dur"`
			PID  int64          `json:"pid"`
			TID  int64          `json:"tid"`
			S    string         `json:"s"`
			Args map[string]any `json:"args"`
		} `json:"traceEvents"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, buf.Bytes())
	}
	procs := map[int64]string{}
	threads := map[int64]string{}
	threadPID := map[int64]int64{}
	slices := map[int64][]string{}
	var last = map[int64]int64{} // tid → end of its last slice
	instants := 0
	for _, e := range doc.TraceEvents {
		switch e.Ph {
		case "M":
			switch e.Name {
			case "process_name":
				procs[e.PID] = e.Args["name"].(string)
			case "thread_name":
				threads[e.TID] = e.Args["name"].(string)
				threadPID[e.TID] = e.PID
			default:
				t.Errorf("metadata %q", e.Name)
			}
		case "X":
			if e.TS == nil || e.Dur == nil || *e.Dur < 0 {
				t.Fatalf("slice %+v", e)
			}
			if threadPID[e.TID] != e.PID {
				t.Errorf("slice %s on tid %d of pid %d, track named in pid %d", e.Name, e.TID, e.PID, threadPID[e.TID])
			}
			if *e.TS < last[e.TID] {
				t.Errorf("slices overlap on tid %d at %s", e.TID, e.Name)
			}
			last[e.TID] = *e.TS + *e.Dur
			slices[e.TID] = append(slices[e.TID], e.Name)
		case "i":
			if e.S != "t" || e.TS == nil {
				t.Errorf("instant %+v", e)
			}
			instants++
		default:
			t.Errorf("event phase %q", e.Ph)
		}
	}
	total := 0
	for _, c := range tl.Conns {
		total += len(c.States)
	}
	if n != total {
		t.Errorf("writePerfetto counts %d slices, the timeline has %d states", n, total)
	}
	if want := map[int64]string{20: "nginx", 10: "curl", 30: "old", 40: "dig"}; len(procs) != len(want) {
		t.Errorf("processes %v, want %v", procs, want)
	} else {
		for pid, name := range want {
			if procs[pid] != name {
				t.Errorf("process %d named %q, want %q", pid, procs[pid], name)
			}
		}
	}
	if len(threads) != len(tl.Conns) {
		t.Errorf("%d tracks for %d sockets", len(threads), len(tl.Conns))
	}
	for i, c := range tl.Conns {
		tid := int64(perfettoTIDBase + i)
		var want []string
		for _, s := range c.States {
			want = append(want, s.Name)
		}
		if strings.Join(slices[tid], " ") != strings.Join(want, " ") {
			t.Errorf("track %d (%s): slices %v, want %v", tid, threads[tid], slices[tid], want)
		}
	}
	if threads[perfettoTIDBase+1] != "tcp 127.0.0.1:40000 → 127.0.0.1:80" {
		t.Errorf("track name %q", threads[perfettoTIDBase+1])
	}
	// accepted, 2 fd closed, 2 retransmits.
	if instants != 5 {
		t.Errorf("%d instants, want 5", instants)
	}
	// An owner nobody knows is a process of its own, not pid 0.
	b := &tlRec{}
	b.add(recState, 10, 1, 0, "", "ESTABLISHED", "CLOSE-WAIT", 0, "127.0.0.1:1", "127.0.0.1:2")
	buf.Reset()
	if _, err := writePerfetto(&buf, buildTimeline(b.recording(20))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `{"name":"process_name","ph":"M","pid":4194305,"args":{"name":"owner unknown"}}`) {
		t.Errorf("no owner-unknown process:\n%s", buf.String())
	}
}

func writeRecordingFile(t *testing.T, b *tlRec) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t.rec")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := newRecordWriter(f)
	if err := w.Header(testHeader()); err != nil {
		t.Fatal(err)
	}
	for i := range b.recs {
		if err := w.Record(&b.recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End(testBoot.Add(tlStart+time.Second), tlStart+1e9); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestTimelineCommand(t *testing.T) {
	path := writeRecordingFile(t, sampleTimeline())
	runCmd := func(stdin string, args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := run(t.Context(), append([]string{"timeline"}, args...), strings.NewReader(stdin), &out, &errb)
		return out.String(), errb.String(), code
	}
	out, _, code := runCmd("", path)
	if code != 0 || strings.Count(out, "\n") != 7 {
		t.Errorf("timeline: exit %d, output:\n%s", code, out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if out2, _, _ := runCmd(string(data), "-"); out2 != out {
		t.Errorf("timeline - (stdin) differs:\n%s", out2)
	}
	out, _, code = runCmd("", "-j", path)
	if code != 0 || strings.Count(out, "\n") != 6 {
		t.Errorf("timeline -j: exit %d, output:\n%s", code, out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var c tlJSON
		if err := json.Unmarshal([]byte(l), &c); err != nil || c.Cookie == 0 || len(c.States) == 0 {
			t.Errorf("timeline -j line %s: %v", l, err)
		}
	}

	pf := filepath.Join(t.TempDir(), "out.json")
	_, errOut, code := runCmd("", "--perfetto", pf, path)
	if code != 0 || !strings.Contains(errOut, "6 sockets, 18 state slices") {
		t.Errorf("--perfetto: exit %d, %s", code, errOut)
	}
	b, err := os.ReadFile(pf)
	if err != nil || !json.Valid(b) {
		t.Errorf("--perfetto file: %v, valid %v", err, json.Valid(b))
	}
	if fi, err := os.Stat(pf); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("--perfetto file mode: %v %v", fi.Mode(), err)
	}
	_, errOut, code = runCmd("", "--perfetto", pf, path)
	if code == 0 || !strings.Contains(errOut, "the file exists (use --force to replace it)") {
		t.Errorf("--perfetto over an existing file: exit %d, %s", code, errOut)
	}
	if _, _, code = runCmd("", "--perfetto", pf, "--force", path); code != 0 {
		t.Errorf("--perfetto --force: exit %d", code)
	}

	// Errors: one line, naming the file.
	bad := filepath.Join(t.TempDir(), "bad.rec")
	os.WriteFile(bad, data[:len(data)-10], 0o600)
	_, errOut, code = runCmd("", bad)
	if code != 1 || errOut != "sstrace: timeline: reading "+bad+": line 26: truncated: the file ends in the middle of a line\n" {
		t.Errorf("truncated file: exit %d, %q", code, errOut)
	}
	_, errOut, code = runCmd("", filepath.Join(t.TempDir(), "none.rec"))
	if code != 1 || !strings.HasSuffix(errOut, "none.rec: no such file or directory\n") || !strings.HasPrefix(errOut, "sstrace: timeline: reading /") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	if _, errOut, code = runCmd(""); code != 1 || errOut != "sstrace: timeline: needs one recording FILE (- for standard input)\n" {
		t.Errorf("no file: exit %d, %q", code, errOut)
	}
}

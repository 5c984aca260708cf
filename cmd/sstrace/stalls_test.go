package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sstrace/snapshot"
)

func testSession(o *stallsOptions, out *bytes.Buffer) *stallSession {
	return &stallSession{o: o, w: bufio.NewWriter(out), stats: snapshot.NewStallStats(), tracker: snapshot.NewStallTracker(),
		startMono: 1_000_000_000, startWall: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC), shown: map[uint64]bool{}}
}

func attemptTo(dst string, outcome string) *snapshot.Attempt {
	return &snapshot.Attempt{Seq: 1, Family: unix.AF_INET, Local: netip.MustParseAddrPort("10.0.0.2:40000"),
		Peer: netip.MustParseAddrPort(dst), PID: 42, Comm: "curl", Outcome: outcome,
		Start: 2_000_000_000, End: 2_000_052_000, RTT: 39 * time.Microsecond}
}

func TestStallsFlags(t *testing.T) {
	var out bytes.Buffer
	for _, o := range []stallsOptions{{threshold: 0}, {threshold: time.Second, duration: -1}} {
		err := runStalls(context.Background(), &out, &out, &o, nil)
		if err == nil || !strings.HasPrefix(err.Error(), "stalls: --") {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := parseStallsFilter([]string{"dport", "=", "("}); err == nil || !strings.HasPrefix(err.Error(), "stalls: filter: ") {
		t.Errorf("bad filter: %v", err)
	}
}

// The filter sees an attempt as ss sees its socket: dst is the peer.
func TestStallsFilter(t *testing.T) {
	expr, err := parseStallsFilter([]string{"dport", "=", ":9"})
	if err != nil {
		t.Fatal(err)
	}
	s := testSession(&stallsOptions{}, &bytes.Buffer{})
	s.expr = expr
	if !s.match(attemptTo("127.0.0.1:9", "")) {
		t.Error("dport = :9 does not match an attempt to port 9")
	}
	if s.match(attemptTo("127.0.0.1:80", "")) {
		t.Error("dport = :9 matches an attempt to port 80")
	}
	// A passive attempt to port 9: its socket's local port is 9.
	p := attemptTo("127.0.0.1:40000", "")
	p.Passive, p.Local = true, netip.MustParseAddrPort("127.0.0.1:9")
	if s.match(p) {
		t.Error("dport = :9 matches a passive attempt from port 40000")
	}
	s.expr, _ = parseStallsFilter([]string{"sport", "=", ":9"})
	if !s.match(p) {
		t.Error("sport = :9 does not match a passive attempt to port 9")
	}
	s.expr = nil
	if !s.match(p) {
		t.Error("no filter does not match")
	}
}

func TestStallsTextLines(t *testing.T) {
	var out bytes.Buffer
	s := testSession(&stallsOptions{threshold: time.Second}, &out)
	a := attemptTo("10.0.0.1:443", snapshot.OutcomeEstablished)
	s.done(a)
	f := attemptTo("10.0.0.1:443", snapshot.OutcomeTimedOut)
	f.End, f.Retransmits, f.Errno, f.Local = 9_000_000_000, 2, uint32(unix.ETIMEDOUT), netip.MustParseAddrPort("10.0.0.2:0")
	s.done(f)
	p := attemptTo("10.0.0.9:51000", snapshot.OutcomeEstablished)
	p.Passive, p.Local, p.Retransmits = true, netip.MustParseAddrPort("10.0.0.2:80"), 1
	s.done(p)
	s.w.Flush()
	want := []string{
		"12:00:01.000  established out 10.0.0.2:40000 -> 10.0.0.1:443  pid 42 (curl)  in 52µs, rtt 39µs",
		"12:00:08.000  timed-out   out 10.0.0.2:* -> 10.0.0.1:443  pid 42 (curl)  after 7s, 2 SYN retransmits, rtt 39µs, ETIMEDOUT",
		"  connect() at: unknown (no user stack captured)",
		"12:00:01.000  established in  10.0.0.9:51000 -> 10.0.0.2:80  pid 42 (curl)  in 52µs, 1 SYN-ACK retransmit, rtt 39µs",
	}
	if got := strings.Split(strings.TrimSpace(out.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", out.String(), strings.Join(want, "\n"))
	}

	// --stalled leaves out what established without stalling, and still
	// counts it.
	out.Reset()
	s = testSession(&stallsOptions{threshold: time.Second, stalled: true}, &out)
	s.done(attemptTo("10.0.0.1:443", snapshot.OutcomeEstablished))
	st := attemptTo("10.0.0.1:443", snapshot.OutcomeEstablished)
	st.Stalled = true
	s.done(st)
	s.w.Flush()
	if n := strings.Count(out.String(), "\n"); n != 1 || s.stats.All.Attempts != 2 {
		t.Errorf("--stalled printed %d lines, counted %d:\n%s", n, s.stats.All.Attempts, out.String())
	}
}

func TestStallsJSONLines(t *testing.T) {
	var out bytes.Buffer
	s := testSession(&stallsOptions{threshold: time.Second, json: true}, &out)
	a := attemptTo("10.0.0.1:443", snapshot.OutcomeRefused)
	a.Reset, a.Errno = true, uint32(unix.ECONNREFUSED)
	s.done(a)
	s.summary(3_000_000_000)
	s.w.Flush()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	var j stallJSON
	if err := json.Unmarshal([]byte(lines[0]), &j); err != nil {
		t.Fatal(err)
	}
	if j.Type != "attempt" || j.Direction != "active" || j.Outcome != "refused" || j.Errno != "ECONNREFUSED" || !j.Reset ||
		j.Src != "10.0.0.2:40000" || j.Dst != "10.0.0.1:443" || j.PID != 42 || j.PendingMs != 0.052 ||
		!j.Time.Equal(time.Date(2026, 11, 25, 12, 0, 1, 52_000, time.UTC)) || j.StackError == "" {
		t.Errorf("attempt: %+v", j)
	}
	var sum summaryJSON
	if err := json.Unmarshal([]byte(lines[1]), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Type != "summary" || sum.Attempts != 1 || sum.Outcomes["refused"] != 1 || sum.TracedMs != 2000 ||
		len(sum.ByDestination) != 1 || sum.ByDestination[0].Dst != "10.0.0.1:443" || len(sum.ByProcess) != 1 || *sum.ByProcess[0].PID != 42 {
		t.Errorf("summary: %+v", sum)
	}
}

func TestStallsSummaryText(t *testing.T) {
	var out bytes.Buffer
	s := testSession(&stallsOptions{threshold: time.Second}, &out)
	for _, d := range []time.Duration{time.Millisecond, 2 * time.Millisecond, 40 * time.Millisecond} {
		a := attemptTo("10.0.0.1:443", snapshot.OutcomeEstablished)
		a.End = a.Start + uint64(d)
		s.stats.Add(a)
	}
	s.stats.Add(attemptTo("10.0.0.3:80", snapshot.OutcomeRefused))
	r := s.buildSummary(11_000_000_000, 0, "")
	printStallSummary(&out, &r)
	text := out.String()
	for _, want := range []string{
		"summary: 4 attempts in 10s: established 3, refused 1; 0 retransmits",
		"latency of established attempts: p50 2ms, p90 40ms, p99 40ms, max 40ms (3 attempts)",
		"  out  10.0.0.1:443  3         2ms  40ms  40ms  40ms  0        established 3",
		"  out  10.0.0.3:80   1         -    -     -     -     0        refused 1",
		"  42   curl  4         2ms  40ms  40ms  40ms  0        established 3, refused 1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		52_345:                 "52µs",
		1_234_567:              "1.23ms",
		7_012_345_678:          "7.012s",
		0:                      "0s",
		999 * time.Microsecond: "999µs",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("%d: %s, want %s", d, got, want)
		}
	}
	for ap, want := range map[netip.AddrPort]string{
		{}:                                       "*",
		netip.MustParseAddrPort("1.2.3.4:0"):     "1.2.3.4:*",
		netip.MustParseAddrPort("[::1]:0"):       "[::1]:*",
		netip.MustParseAddrPort("[::1]:80"):      "[::1]:80",
		netip.MustParseAddrPort("1.2.3.4:65535"): "1.2.3.4:65535",
	} {
		if got := addrString(ap); got != want {
			t.Errorf("%v: %s, want %s", ap, got, want)
		}
	}
}

package snapshot

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Linux 6.18's files.
const (
	sockstatV4 = `sockets: used 12
TCP: inuse 1 orphan 2 tw 3 alloc 4 mem 5
UDP: inuse 6 mem 7
UDPLITE: inuse 8
RAW: inuse 9
FRAG: inuse 10 memory 11
`
	sockstatV6 = `TCP6: inuse 12
UDP6: inuse 13
UDPLITE6: inuse 14
RAW6: inuse 15
FRAG6: inuse 16 memory 17
`
	snmpText = `Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits
Ip: 2 64 2112 0 0 0 0 0 2112 1724 0 0 0 0 0 0 0 0 0 1724
Icmp: InMsgs InErrors InCsumErrors InDestUnreachs InTimeExcds InParmProbs InSrcQuenchs InRedirects InEchos InEchoReps InTimestamps InTimestampReps InAddrMasks InAddrMaskReps OutMsgs OutErrors OutRateLimitGlobal OutRateLimitHost OutDestUnreachs OutTimeExcds OutParmProbs OutSrcQuenchs OutRedirects OutEchos OutEchoReps OutTimestamps OutTimestampReps OutAddrMasks OutAddrMaskReps
Icmp: 1 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
IcmpMsg: InType3
IcmpMsg: 1
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors
Tcp: 1 200 120000 -1 30 2 0 0 7 2074 1703 0 0 2 0
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 37 0 0 38 0 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
`
)

var sockstatWant = Sockstat{
	SocketsUsed: 12,
	TCP:         TCPStat{InUse: 1, Orphan: 2, TW: 3, Alloc: 4, Mem: 5},
	UDP:         UDPStat{InUse: 6, Mem: 7},
	UDPLite:     ProtoStat{8},
	RAW:         ProtoStat{9},
	FRAG:        FragStat{InUse: 10, Memory: 11},
	HasV6:       true,
	TCP6:        ProtoStat{12},
	UDP6:        ProtoStat{13},
	UDPLite6:    ProtoStat{14},
	RAW6:        ProtoStat{15},
	FRAG6:       FragStat{InUse: 16, Memory: 17},
}

func TestParseSockstat(t *testing.T) {
	got, err := ParseSockstat([]byte(sockstatV4), []byte(sockstatV6))
	if err != nil {
		t.Fatal(err)
	}
	if got != sockstatWant {
		t.Errorf("got %+v\nwant %+v", got, sockstatWant)
	}

	// No sockstat6: IPv6 counters stay 0.
	got, err = ParseSockstat([]byte(sockstatV4), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := sockstatWant
	want.HasV6 = false
	want.TCP6, want.UDP6, want.UDPLite6, want.RAW6, want.FRAG6 = ProtoStat{}, ProtoStat{}, ProtoStat{}, ProtoStat{}, FragStat{}
	if got != want {
		t.Errorf("without sockstat6: got %+v\nwant %+v", got, want)
	}

	// An empty sockstat6 is there, with nothing in it.
	got, err = ParseSockstat([]byte(sockstatV4), []byte{})
	if err != nil {
		t.Fatal(err)
	}
	want.HasV6 = true
	if got != want {
		t.Errorf("empty sockstat6: got %+v\nwant %+v", got, want)
	}
}

func TestParseSockstatTolerant(t *testing.T) {
	// Fields in another order, unknown fields (with values that are not
	// numbers), unknown lines, blank lines, tabs, CRLF, negative and
	// signed numbers, a missing field, no final newline, a line repeated
	// (the last wins), a known line id without a colon (ignored).
	v4 := "sockets:\tused 12 future x\r\n" +
		"\n" +
		"TCP: mem 5 newfield 99 alloc 4 tw 3 orphan 2 inuse 1 extra\n" +
		"NEWPROTO: inuse abc\n" +
		"UDP: inuse -6\n" +
		"UDP: inuse +6 mem 7\n" +
		"UDPLITE: inuse 8 mem 1\n" +
		"RAW inuse 1000\n" +
		"RAW: inuse 9\n" +
		"   FRAG:   inuse   10   memory   11   "
	v6 := "TCP6: inuse 12\nUDP6: inuse 13\nUDPLITE6: inuse 14\nRAW6: inuse 15\nFRAG6: inuse 16 memory 17\nSCTP6: inuse 1"
	got, err := ParseSockstat([]byte(v4), []byte(v6))
	if err != nil {
		t.Fatal(err)
	}
	if got != sockstatWant {
		t.Errorf("got %+v\nwant %+v", got, sockstatWant)
	}

	// Like ss, either file may hold any line.
	got, err = ParseSockstat([]byte("TCP6: inuse 3\n"), []byte("sockets: used 2\nTCP: tw 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Sockstat{SocketsUsed: 2, TCP: TCPStat{TW: 1}, TCP6: ProtoStat{3}, HasV6: true}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}

	// The largest int64 and the smallest parse.
	got, err = ParseSockstat([]byte("TCP: alloc 9223372036854775807 mem -9223372036854775808\n"), nil)
	if err != nil || got.TCP.Alloc != 1<<63-1 || got.TCP.Mem != -1<<63 {
		t.Errorf("got %+v, %v", got.TCP, err)
	}
}

func TestParseSockstatErrors(t *testing.T) {
	for _, tt := range []struct {
		name   string
		v4, v6 string
		want   string
	}{
		{"letters", "sockets: used 1\nTCP: inuse x orphan 0\n", "", `parsing sockstat line 2 "TCP: inuse x orphan 0": TCP: field "inuse": value "x" is not a decimal integer`},
		{"trailing junk", "sockets: used 1x\n", "", `parsing sockstat line 1 "sockets: used 1x": sockets: field "used": value "1x" is not a decimal integer`},
		{"overflow", "UDP: inuse 9223372036854775808\n", "", `parsing sockstat line 1 "UDP: inuse 9223372036854775808": UDP: field "inuse": value "9223372036854775808" is not a decimal integer`},
		{"hex", "RAW: inuse 0x10\n", "", `parsing sockstat line 1 "RAW: inuse 0x10": RAW: field "inuse": value "0x10" is not a decimal integer`},
		{"float", "FRAG: inuse 1 memory 1.5\n", "", `parsing sockstat line 1 "FRAG: inuse 1 memory 1.5": FRAG: field "memory": value "1.5" is not a decimal integer`},
		{"no value", "sockets: used 1\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem\n", "", `parsing sockstat line 2 "TCP: inuse 1 orphan 0 tw 0 alloc 1 mem": TCP: field "mem" has no value`},
		{"v6", sockstatV4, "TCP6: inuse 1\nUDP6: inuse -\n", `parsing sockstat6 line 2 "UDP6: inuse -": UDP6: field "inuse": value "-" is not a decimal integer`},
	} {
		got, err := ParseSockstat([]byte(tt.v4), []byte(tt.v6))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: got %+v, error %v\nwant error %s", tt.name, got, err, tt.want)
		}
		if got != (Sockstat{}) {
			t.Errorf("%s: counters with an error: %+v", tt.name, got)
		}
	}
}

func TestParseSNMP(t *testing.T) {
	s, err := ParseSNMP([]byte(snmpText))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s.TCPCurrEstab(); v != 7 || !ok {
		t.Errorf("CurrEstab %d %v", v, ok)
	}
	if v, ok := s.Get("Tcp", "MaxConn"); v != -1 || !ok {
		t.Errorf("MaxConn %d %v", v, ok)
	}
	if v, ok := s.Get("IcmpMsg", "InType3"); v != 1 || !ok {
		t.Errorf("IcmpMsg InType3 %d %v", v, ok)
	}
	if v, ok := s.Get("Ip", "OutTransmits"); v != 1724 || !ok {
		t.Errorf("Ip OutTransmits %d %v", v, ok)
	}
	if _, ok := s.Get("Tcp", "Nope"); ok {
		t.Error("Tcp Nope found")
	}
	if len(s) != 6 || len(s["Icmp"]) != 29 {
		t.Errorf("%d tables, Icmp has %d fields", len(s), len(s["Icmp"]))
	}

	// No Tcp table at all.
	s, err = ParseSNMP([]byte("Udp: A\nUdp: 1\n\nNew: X Y\nNew: 2 3"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.TCPCurrEstab(); ok {
		t.Error("CurrEstab without a Tcp table")
	}
	if want := (SNMP{"Udp": {"A": 1}, "New": {"X": 2, "Y": 3}}); !reflect.DeepEqual(s, want) {
		t.Errorf("got %v, want %v", s, want)
	}

	// A repeated table: the first wins, as for ss.
	s, err = ParseSNMP([]byte("Tcp: CurrEstab\nTcp: 1\nTcp: CurrEstab\nTcp: 2\n"))
	if v, _ := s.TCPCurrEstab(); err != nil || v != 1 {
		t.Errorf("repeated table: %d, %v", v, err)
	}
}

func TestParseSNMPErrors(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Tcp: A B\nTcp: 1 x\n", `parsing snmp line 2 "Tcp: 1 x": Tcp: field "B": value "x" is not a decimal integer`},
		{"Tcp: A B\nTcp: 1\n", `parsing snmp line 2 "Tcp: 1": 1 values for 2 names`},
		{"Tcp: A B\nUdp: 1 2\n", `parsing snmp line 2 "Udp: 1 2": want the values of Tcp:`},
		{"Tcp: A B\n\nTcp: 1 2\n", `parsing snmp line 2 "": want the values of Tcp:`},
		{"Tcp: A B", `parsing snmp line 1 "Tcp: A B": no values line after it`},
		{"Ip: A\nIp: 1\nTcp A\nTcp 1\n", `parsing snmp line 3 "Tcp A": no table name ending in ':'`},
		{": A\n: 1\n", `parsing snmp line 1 ": A": no table name ending in ':'`},
	} {
		s, err := ParseSNMP([]byte(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q: got %v, error %v\nwant error %s", tt.in, s, err, tt.want)
		}
		if s != nil {
			t.Errorf("%q: tables with an error: %v", tt.in, s)
		}
	}
}

// formatSockstat writes st back in the kernel's format.
func formatSockstat(st Sockstat) (v4, v6 []byte) {
	v4 = fmt.Appendf(nil, "sockets: used %d\nTCP: inuse %d orphan %d tw %d alloc %d mem %d\nUDP: inuse %d mem %d\nUDPLITE: inuse %d\nRAW: inuse %d\nFRAG: inuse %d memory %d\n",
		st.SocketsUsed, st.TCP.InUse, st.TCP.Orphan, st.TCP.TW, st.TCP.Alloc, st.TCP.Mem,
		st.UDP.InUse, st.UDP.Mem, st.UDPLite.InUse, st.RAW.InUse, st.FRAG.InUse, st.FRAG.Memory)
	if st.HasV6 {
		v6 = fmt.Appendf([]byte{}, "TCP6: inuse %d\nUDP6: inuse %d\nUDPLITE6: inuse %d\nRAW6: inuse %d\nFRAG6: inuse %d memory %d\n",
			st.TCP6.InUse, st.UDP6.InUse, st.UDPLite6.InUse, st.RAW6.InUse, st.FRAG6.InUse, st.FRAG6.Memory)
	}
	return v4, v6
}

// FuzzParseSockstat fuzzes the parsers of ss -s's files: sockstat and
// sockstat6 (and, with the same inputs, snmp).
func FuzzParseSockstat(f *testing.F) {
	f.Add([]byte(sockstatV4), []byte(sockstatV6), []byte(snmpText))
	f.Add([]byte(sockstatV4), []byte(nil), []byte("Tcp: CurrEstab\nTcp: 3\n"))
	f.Add([]byte("TCP: inuse 1 mem\n"), []byte("UDP6: inuse x\n"), []byte("Tcp: A\n"))
	f.Add([]byte("sockets: used 1 new 2\nNEW: a b c\n"), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, v4, v6, snmp []byte) {
		st, err := ParseSockstat(v4, v6)
		if err != nil {
			if st != (Sockstat{}) {
				t.Fatalf("counters with an error: %+v", st)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "parsing sockstat line ") && !strings.HasPrefix(msg, "parsing sockstat6 line ") {
				t.Fatalf("error does not name the file and line: %v", err)
			}
		} else {
			if st.HasV6 != (v6 != nil) {
				t.Fatalf("HasV6 %v for v6 %q", st.HasV6, v6)
			}
			// What parsed prints back to the same counters.
			b4, b6 := formatSockstat(st)
			again, err := ParseSockstat(b4, b6)
			if err != nil || again != st {
				t.Fatalf("round trip: %+v, %v\nwant %+v", again, err, st)
			}
		}

		s, err := ParseSNMP(snmp)
		if err != nil {
			if s != nil {
				t.Fatalf("tables with an error: %v", s)
			}
			if !strings.HasPrefix(err.Error(), "parsing snmp line ") {
				t.Fatalf("error does not name the line: %v", err)
			}
			return
		}
		// Print the tables back (names sorted does not matter: parse
		// each table's pair alone) and check they read the same.
		for table, fields := range s {
			if table == "" || strings.ContainsAny(table, " \t\n\v\f\r") {
				t.Fatalf("table name %q", table)
			}
			var names, vals []byte
			for name, v := range fields {
				names = fmt.Appendf(names, " %s", name)
				vals = fmt.Appendf(vals, " %d", v)
			}
			again, err := ParseSNMP(fmt.Appendf(nil, "%s:%s\n%s:%s\n", table, names, table, vals))
			if err != nil || !reflect.DeepEqual(again[table], fields) {
				t.Fatalf("round trip of %s: %v, %v\nwant %v", table, again, err, fields)
			}
		}
	})
}

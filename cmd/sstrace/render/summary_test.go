package render

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"sstrace/snapshot"
)

func TestSummary(t *testing.T) {
	for _, tt := range []struct {
		name  string
		st    snapshot.Sockstat
		estab int64
		want  string
	}{
		{"zero", snapshot.Sockstat{}, 0, `Total: 0
TCP:   0 (estab 0, closed 0, orphaned 0, timewait 0)

Transport Total     IP        IPv6
RAW	  0         0         0        
UDP	  0         0         0        
TCP	  0         0         0        
INET	  0         0         0        
FRAG	  0         0         0        

`},
		// ss -s in a namespace with a v4 listener, a v4 connection
		// (client in CLOSE-WAIT, server side orphaned in FIN-WAIT-2),
		// three TIME-WAIT sockets, an unconnected TCP socket, a bound
		// UDPv6 socket and an ICMP raw socket.
		{"namespace", snapshot.Sockstat{
			SocketsUsed: 5,
			TCP:         snapshot.TCPStat{InUse: 2, Orphan: 0, TW: 4, Alloc: 4, Mem: 0},
			RAW:         snapshot.ProtoStat{InUse: 1},
			HasV6:       true,
			UDP6:        snapshot.ProtoStat{InUse: 1},
		}, 1, `Total: 5
TCP:   8 (estab 1, closed 6, orphaned 0, timewait 4)

Transport Total     IP        IPv6
RAW	  1         1         0        
UDP	  1         0         1        
TCP	  2         2         0        
INET	  4         3         1        
FRAG	  0         0         0        

`},
		// Numbers of 9 digits and more, negative ones, UDP-Lite and
		// memory (not printed).
		{"wide", snapshot.Sockstat{
			SocketsUsed: 1234567890,
			TCP:         snapshot.TCPStat{InUse: 123456789, Orphan: 7, TW: 1000, Alloc: 200000000, Mem: 99},
			UDP:         snapshot.UDPStat{InUse: 12345678, Mem: 5},
			UDPLite:     snapshot.ProtoStat{InUse: 3},
			RAW:         snapshot.ProtoStat{InUse: -2},
			FRAG:        snapshot.FragStat{InUse: 4, Memory: 4096},
			HasV6:       true,
			TCP6:        snapshot.ProtoStat{InUse: 987654321},
			UDP6:        snapshot.ProtoStat{InUse: 5},
			UDPLite6:    snapshot.ProtoStat{InUse: 9},
			RAW6:        snapshot.ProtoStat{InUse: 6},
			FRAG6:       snapshot.FragStat{InUse: 1, Memory: 1},
		}, -3, `Total: 1234567890
TCP:   200001000 (estab -3, closed -911110110, orphaned 7, timewait 1000)

Transport Total     IP        IPv6
RAW	  4         -2        6        
UDP	  12345683  12345678  5        
TCP	  1111111110 123456789 987654321
INET	  1123456797 135802465 987654332
FRAG	  5         4         1        

`},
		// ss keeps the counters in C ints.
		{"int32", snapshot.Sockstat{
			SocketsUsed: 3000000000,
			TCP:         snapshot.TCPStat{InUse: math.MaxInt32, Orphan: -5, TW: 1, Alloc: 1<<32 + 1},
			UDP:         snapshot.UDPStat{InUse: 6},
			RAW:         snapshot.ProtoStat{InUse: 9},
			FRAG:        snapshot.FragStat{InUse: 10},
		}, 1<<40 + 99, `Total: -1294967296
TCP:   2 (estab 99, closed -2147483645, orphaned -5, timewait 1)

Transport Total     IP        IPv6
RAW	  9         9         0        
UDP	  6         6         0        
TCP	  2147483647 2147483647 0        
INET	  -2147483634 -2147483634 0        
FRAG	  10        10        0        

`},
	} {
		var b bytes.Buffer
		if err := Summary(&b, tt.st, tt.estab); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("%s:\n%s\nwant\n%s", tt.name, b.String(), tt.want)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestSummaryWriteError(t *testing.T) {
	err := Summary(failWriter{}, snapshot.Sockstat{}, 0)
	if err == nil || err.Error() != "writing summary: disk full" {
		t.Errorf("error %v", err)
	}
}

// TestSummaryMatchesSS gives /usr/bin/ss made-up counter files (ss reads
// them from $PROC_NET_SOCKSTAT, $PROC_NET_SOCKSTAT6 and $PROC_NET_SNMP) and
// checks that parsing the same files and printing them with Summary gives
// ss's output byte for byte.
func TestSummaryMatchesSS(t *testing.T) {
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Skip("no ss to compare with")
	}
	dir := t.TempDir()
	r := rand.New(rand.NewPCG(1, 2))
	num := func() int64 {
		switch r.IntN(6) {
		case 0:
			return 0
		case 1:
			return r.Int64N(10)
		case 2:
			return r.Int64N(1e9)
		case 3:
			return math.MaxInt32 - 2 + r.Int64N(5) // around the int32 edge
		case 4:
			return -r.Int64N(1e10)
		default:
			return r.Int64() >> r.IntN(63) // any size
		}
	}
	for i := range 60 {
		var v4, v6, snmp []byte
		v4 = fmt.Appendf(v4, "sockets: used %d\nTCP: inuse %d orphan %d tw %d alloc %d mem %d\nUDP: inuse %d mem %d\nUDPLITE: inuse %d\nRAW: inuse %d\nFRAG: inuse %d memory %d\n",
			num(), num(), num(), num(), num(), num(), num(), num(), num(), num(), num(), num())
		hasV6 := i%5 != 4
		if hasV6 {
			v6 = fmt.Appendf([]byte{}, "TCP6: inuse %d\nUDP6: inuse %d\nUDPLITE6: inuse %d\nRAW6: inuse %d\nFRAG6: inuse %d memory %d\n",
				num(), num(), num(), num(), num(), num())
		}
		estab := num()
		snmp = fmt.Appendf(snmp, "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs\nTcp: 1 200 120000 -1 %d %d 0 0 %d 5\nUdp: InDatagrams\nUdp: 3\n", num(), num(), estab)

		p4, p6, psnmp := filepath.Join(dir, "sockstat"), filepath.Join(dir, "sockstat6"), filepath.Join(dir, "snmp")
		os.Remove(p6)
		for p, b := range map[string][]byte{p4: v4, p6: v6, psnmp: snmp} {
			if p == p6 && !hasV6 {
				continue
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(ss, "-s")
		cmd.Env = append(os.Environ(), "PROC_NET_SOCKSTAT="+p4, "PROC_NET_SOCKSTAT6="+p6, "PROC_NET_SNMP="+psnmp)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		want, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Fatalf("running ss -s: %v: %s", err, stderr.Bytes())
		}

		st, err := snapshot.ParseSockstat(v4, v6)
		if err != nil {
			t.Fatal(err)
		}
		s, err := snapshot.ParseSNMP(snmp)
		if err != nil {
			t.Fatal(err)
		}
		e, ok := s.TCPCurrEstab()
		if !ok || e != estab {
			t.Fatalf("CurrEstab %d %v, want %d", e, ok, estab)
		}
		var got bytes.Buffer
		if err := Summary(&got, st, e); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("case %d, sockstat\n%s\nsockstat6\n%s\nCurrEstab %d\nSummary:\n%s\nss -s:\n%s", i, v4, v6, estab, got.Bytes(), want)
		}
	}
}

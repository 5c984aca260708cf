package filter

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// FuzzParse: parsing never panics; what parses renders to a canonical
// String that parses back to the same String; evaluating it never panics.
// The input is split into arguments at \x01; it is also tried as a filter
// file.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	socks := make([]string, 0, len(evalSocks))
	for n := range evalSocks {
		socks = append(socks, n)
	}
	f.Fuzz(func(t *testing.T, in string) {
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("WATCHDOG hang on %q", in))
			}
		}()
		args := strings.Split(in, "\x01")
		e, err := Parse(args, tres)
		_, _ = ParseFile(in, tres) // must not panic
		if err != nil {
			if !strings.HasPrefix(err.Error(), "filter: ") {
				t.Fatalf("error %q lacks the filter: prefix", err)
			}
			return
		}
		for _, n := range socks {
			Eval(e, evalSocks[n])
		}
		if e == nil {
			return
		}
		// What the kernel would be sent is valid and means what the
		// model of the kernel says.
		checkBytecodeModel(t, in, e)
		s := e.String()
		e2, err := Parse([]string{s}, tres)
		if err != nil {
			t.Fatalf("%q parses to %q, which does not parse: %v", args, s, err)
		}
		if s2 := e2.String(); s2 != s {
			t.Fatalf("%q parses to %q, which parses to %q", args, s, s2)
		}
		// The canonical form means the same.
		for _, n := range socks {
			if Eval(e, evalSocks[n]) != Eval(e2, evalSocks[n]) {
				t.Fatalf("%q and its canonical form %q differ on socket %s", args, s, n)
			}
		}
	})
}

// fuzzSeeds: FuzzParse's seeds, which TestBytecodeMatchesModel also runs.
var fuzzSeeds = []string{
	"dport = :smtp or sport = :smtp",
	"( sport = :http or sport = :https )",
	"( dport = :ssh )",
	"dst 127.125.236.178/16",
	"src 127.0.0.1 sport gt :5000",
	`sport \> :1000`,
	"sport\x01>\x01:1000",
	"not dst 127.0.0.1",
	"src [::1]",
	"src [::1]:443 or src ::/0 or src fe80::/64:22",
	"src [::ffff:127.0.0.1]",
	"src unix:/tmp/x/*",
	"src unix:/tmp/[a-z]*.sock or src unix:@*",
	"dev lo",
	"dev != if3",
	"sport = :22 and ! dport = :80",
	"src 127.0.0.1 dport = :22",
	"( ( sport = :22 or sport = :25 ) and not ( dst 127.0.0.3 ) ) or dport = :443",
	"sport >= :-5 and dport <= 0x10",
	"src 0.0.0.0/8 src default src any:22 src *:* src 127.1 src 2130706433",
	"src 10.0.0.0/255.0.0.0 src 192.168.1/24",
	"src example src [and] src dual src inet:example src inet6:v6host",
	"src link:ip:lo src link:*:if2 sport = link::1",
	"src netlink:tcpdiag:kernel dport < netlink::0",
	"src vsock:3:1024 sport = vsock:*",
	"fwmark 0x10/0xff or fwmark != 5",
	"cgroup /system.slice",
	"autobound or not autobound",
	"sport = :bootps or sport = :split or sport = :domain",
	`src unix:/tmp/a\ b src unix: src unix:and src unix:\\`,
	"src\x01\\",
	"a or b and c",
	"sport = :22 )",
	"( sport = :22",
	"state listening",
	"src [::1]/128",
	"src ::1",
	"# comment\nsport = :22\n0 or dport = :1\n",
}

package render

import (
	"os"
	"strings"
	"testing"
)

func TestParseServices(t *testing.T) {
	svc, err := ParseServices(strings.NewReader(`# comment line
   # indented comment
tcpmux		1/tcp				# TCP port service multiplexer
echo		7/tcp
echo		7/udp
discard		9/tcp		sink null
http		80/tcp		www		# WorldWideWeb HTTP
www-dup		80/tcp
kerberos	88/tcp		kerberos5 krb5 kerberos-sec	# Kerberos v5
  indented	100/tcp
noslash		101
emptyproto	102/
hexport		0x67/tcp
trailing	104x/tcp
sign		+105/tcp
neg		-1/tcp
huge		70000/tcp
overflow	99999999999999999999999/udp
commented#out	106/tcp
mid		107/t#cp
sctp-only	108/sctp
crlf		109/tcp` + "\r\n" + `nul		110/tcp` + "\x00junk\n" + `ddp		111/ddp
last-no-newline	112/udp`))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		port  uint16
		proto string
		want  string // "" = none
	}{
		{1, "tcp", "tcpmux"},
		{1, "udp", ""},
		{7, "tcp", "echo"},
		{7, "udp", "echo"},
		{9, "tcp", "discard"},
		{80, "tcp", "http"}, // the first line wins
		{80, "udp", ""},
		{88, "tcp", "kerberos"},
		{100, "tcp", "indented"},
		{101, "tcp", ""},
		{101, "", "noslash"},
		{102, "", "emptyproto"},
		{103, "tcp", ""}, // strtoul base 10 stops at 'x'
		{0, "tcp", ""},
		{104, "tcp", ""},
		{105, "tcp", "sign"},
		{65535, "tcp", "neg"},           // strtoul("-1") truncated to 16 bits
		{70000 & 0xffff, "tcp", "huge"}, // truncated to 16 bits
		{65535, "udp", "overflow"},      // ULONG_MAX
		{106, "tcp", ""},                // the comment cut the name's line short
		{107, "t", "mid"},
		{108, "sctp", "sctp-only"},
		{108, "tcp", ""},
		{109, "tcp", "crlf"},
		{110, "tcp", "nul"},
		{111, "ddp", "ddp"},
		{112, "udp", "last-no-newline"},
	}
	for _, c := range cases {
		got, ok := svc.Lookup(c.port, c.proto)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("Lookup(%d, %q) = %q, %v; want %q", c.port, c.proto, got, ok, c.want)
		}
	}
}

func TestServiceNameSkipsEphemeral(t *testing.T) {
	svc, err := ParseServices(strings.NewReader("a 1024/tcp\nb 4999/tcp\nc 5000/tcp\nd 1023/tcp\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []uint16{1023, 1024, 4999, 5000} {
		if _, ok := svc.Name(p, "tcp"); !ok {
			t.Errorf("no ephemeral range set: Name(%d) should resolve", p)
		}
	}
	svc.EphemeralMin, svc.EphemeralMax = 1024, 4999
	for p, want := range map[uint16]bool{1023: true, 1024: false, 4999: false, 5000: true} {
		if _, ok := svc.Name(p, "tcp"); ok != want {
			t.Errorf("range 1024-4999: Name(%d) resolved = %v, want %v", p, ok, want)
		}
	}
	var nilSvc *Services
	if _, ok := nilSvc.Name(22, "tcp"); ok {
		t.Error("nil Services resolved a name")
	}
}

func TestLoadServices(t *testing.T) {
	if _, err := os.Stat("/etc/services"); err != nil {
		t.Skip("no /etc/services")
	}
	svc, err := LoadServices("/etc/services")
	if err != nil {
		t.Fatal(err)
	}
	if svc.Len() == 0 {
		t.Fatal("no entries in /etc/services")
	}
	if svc.EphemeralMin <= 0 || svc.EphemeralMax < svc.EphemeralMin {
		t.Errorf("ephemeral range %d-%d", svc.EphemeralMin, svc.EphemeralMax)
	}
	if _, err := LoadServices("/nonexistent/services"); err == nil || !strings.HasPrefix(err.Error(), "loading services") {
		t.Errorf("missing file: err = %v", err)
	}
}

func FuzzParseServices(f *testing.F) {
	f.Add("http 80/tcp www # web\n")
	f.Add("a -1/udp\nb 99999999999999999999/tcp\n#x\n \t\n")
	f.Add("x\x00y 1/tcp\r\n")
	f.Fuzz(func(t *testing.T, text string) {
		svc, err := ParseServices(strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		// Every name found is a word of the input and holds no blank or
		// comment character.
		for proto, m := range svc.byProto {
			for port, name := range m {
				if name == "" || strings.ContainsAny(name, " \t\n\v\f\r#\x00") {
					t.Errorf("port %d/%s: bad name %q", port, proto, name)
				}
				if !strings.Contains(text, name) {
					t.Errorf("port %d/%s: name %q not in the input", port, proto, name)
				}
				if strings.ContainsAny(proto, " \t\n\v\f\r#\x00") {
					t.Errorf("bad protocol %q", proto)
				}
			}
		}
		// Parsing is line by line: parsing the lines one at a time and
		// keeping the first entry gives the same table.
		one := &Services{byProto: map[string]map[uint16]string{}}
		for _, line := range strings.SplitAfter(text, "\n") {
			one.parseLine([]byte(line))
		}
		if one.Len() != svc.Len() {
			t.Errorf("line by line: %d entries, whole text: %d", one.Len(), svc.Len())
		}
	})
}

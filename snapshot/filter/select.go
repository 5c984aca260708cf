// Package filter decides which sockets a listing shows, with ss's semantics:
// which socket tables (-t -u -x -A ...), families (-4 -6 -f ...) and states
// (-a -l state/exclude ...) are selected.
package filter

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"

	"sstrace/snapshot"
)

// DB is one of ss's socket tables.
type DB uint

// The socket tables, in ss's numbering (misc/ss.c enum).
const (
	TCP DB = iota
	MPTCP
	DCCP
	UDP
	RAW
	UnixDgram
	UnixStream
	UnixSeq
	PacketDgram
	PacketRaw
	Netlink
	SCTP
	VsockStream
	VsockDgram
	TIPC
	XDP
	maxDB
)

// Address families, as in linux/socket.h.
const (
	AFUnix    = 1
	AFInet    = 2
	AFInet6   = 10
	AFNetlink = 16
	AFPacket  = 17
	AFTIPC    = 30
	AFVsock   = 40
	AFXDP     = 44
)

// States are bit masks of kernel TCP states (1 << state).
const (
	stEstablished = 1
	stSynSent     = 2
	stSynRecv     = 3
	stFinWait1    = 4
	stFinWait2    = 5
	stTimeWait    = 6
	stClose       = 7
	stCloseWait   = 8
	stLastAck     = 9
	stListen      = 10
	stClosing     = 11
	stMax         = 12

	// StatesAll is every state ss knows (1..11, and the unused bit 0 as ss
	// sets it).
	StatesAll uint32 = 1<<stMax - 1
	// StatesConn is ss's default: everything but listening, closed,
	// TIME-WAIT and SYN-RECV.
	StatesConn     = StatesAll &^ (1<<stListen | 1<<stClose | 1<<stTimeWait | 1<<stSynRecv)
	statesTIPCConn = 1<<stEstablished | 1<<stListen | 1<<stClose
)

func dbBit(db DB) uint32  { return 1 << db }
func afBit(af int) uint64 { return 1 << uint(af) }

const (
	unixDBs   = 1<<UnixDgram | 1<<UnixStream | 1<<UnixSeq
	packetDBs = 1<<PacketDgram | 1<<PacketRaw
	vsockDBs  = 1<<VsockStream | 1<<VsockDgram
	inetL4DBs = 1<<TCP | 1<<MPTCP | 1<<UDP | 1<<DCCP | 1<<SCTP
	inetDBs   = inetL4DBs | 1<<RAW
	inetFams  = 1<<AFInet | 1<<AFInet6
)

// Each table's default states and families (ss.c default_dbs).
var dbDefaults = [maxDB]struct {
	states   uint32
	families uint64
}{
	TCP:         {StatesConn, inetFams},
	MPTCP:       {StatesConn, inetFams},
	DCCP:        {StatesConn, inetFams},
	UDP:         {1 << stEstablished, inetFams},
	RAW:         {1 << stEstablished, inetFams},
	UnixDgram:   {1 << stClose, 1 << AFUnix},
	UnixStream:  {StatesConn, 1 << AFUnix},
	UnixSeq:     {StatesConn, 1 << AFUnix},
	PacketDgram: {1 << stClose, 1 << AFPacket},
	PacketRaw:   {1 << stClose, 1 << AFPacket},
	Netlink:     {1 << stClose, 1 << AFNetlink},
	SCTP:        {StatesConn, inetFams},
	VsockStream: {StatesConn, 1 << AFVsock},
	VsockDgram:  {StatesConn, 1 << AFVsock},
	TIPC:        {statesTIPCConn, 1 << AFTIPC},
	XDP:         {1 << stClose, 1 << AFXDP},
}

// Each family's default tables and states (ss.c default_afs).
var afDefaults = map[int]struct {
	dbs    uint32
	states uint32
}{
	AFInet:    {inetDBs, StatesConn},
	AFInet6:   {inetDBs, StatesConn},
	AFUnix:    {unixDBs, StatesConn},
	AFPacket:  {packetDBs, 1 << stClose},
	AFNetlink: {1 << Netlink, 1 << stClose},
	AFVsock:   {vsockDBs, StatesConn},
	AFTIPC:    {1 << TIPC, statesTIPCConn},
	AFXDP:     {1 << XDP, 1 << stClose},
}

// Query names for -A, and the tables each stands for (ss.c db_name_tbl).
var queryNames = []struct {
	name string
	dbs  []DB
}{
	{"all", []DB{UDP, DCCP, TCP, MPTCP, RAW, UnixStream, UnixDgram, UnixSeq, PacketRaw, PacketDgram, Netlink, SCTP, VsockStream, VsockDgram, XDP}},
	{"inet", []DB{UDP, DCCP, TCP, MPTCP, SCTP, RAW}},
	{"udp", []DB{UDP}},
	{"dccp", []DB{DCCP}},
	{"tcp", []DB{TCP}},
	{"mptcp", []DB{MPTCP}},
	{"sctp", []DB{SCTP}},
	{"raw", []DB{RAW}},
	{"unix", []DB{UnixStream, UnixDgram, UnixSeq}},
	{"unix_stream", []DB{UnixStream}},
	{"u_str", []DB{UnixStream}},
	{"unix_dgram", []DB{UnixDgram}},
	{"u_dgr", []DB{UnixDgram}},
	{"unix_seqpacket", []DB{UnixSeq}},
	{"u_seq", []DB{UnixSeq}},
	{"packet", []DB{PacketRaw, PacketDgram}},
	{"packet_raw", []DB{PacketRaw}},
	{"p_raw", []DB{PacketRaw}},
	{"packet_dgram", []DB{PacketDgram}},
	{"p_dgr", []DB{PacketDgram}},
	{"netlink", []DB{Netlink}},
	{"tipc", []DB{TIPC}},
	{"vsock", []DB{VsockStream, VsockDgram}},
	{"vsock_stream", []DB{VsockStream}},
	{"v_str", []DB{VsockStream}},
	{"vsock_dgram", []DB{VsockDgram}},
	{"v_dgr", []DB{VsockDgram}},
	{"xdp", []DB{XDP}},
}

// FamilyNames are -f's arguments.
var FamilyNames = map[string]int{
	"inet": AFInet, "inet6": AFInet6, "link": AFPacket, "unix": AFUnix,
	"netlink": AFNetlink, "tipc": AFTIPC, "vsock": AFVsock, "xdp": AFXDP,
}

// Selection is what a listing shows: ss's struct filter without the
// expression.
type Selection struct {
	DBs      uint32 // bit per DB
	Families uint64 // bit per address family
	States   uint32 // bit per kernel TCP state
	// Preferred is the family of the last family option given (-4 -6 -0
	// -x -f): with AF_INET6 ss dumps only IPv6 inet sockets, with AF_INET
	// only IPv4 ones, whatever Families says.
	Preferred int
}

// Has reports whether a table is selected.
func (s Selection) Has(db DB) bool { return s.DBs&dbBit(db) != 0 }

// HasFamily reports whether a family is selected.
func (s Selection) HasFamily(af int) bool { return s.Families&afBit(af) != 0 }

// HasState reports whether a state is selected.
func (s Selection) HasState(st uint8) bool { return st < 32 && s.States&(1<<st) != 0 }

// ShowNetid says whether ss shows the Netid column: more than one table.
func (s Selection) ShowNetid() bool { return s.DBs&(s.DBs-1) != 0 }

// ShowState says whether ss shows the State column: more than one state.
func (s Selection) ShowState() bool { return s.States&(s.States-1) != 0 }

// Opt is one selection option in command-line order: ss's result depends on
// the order (-a then -l differs from -l then -a; the last family wins
// Preferred).
type Opt struct {
	Name string // one of t u d w x S M 0 4 6 a l f A
	Arg  string // for f and A
}

// Select computes the selection from the options in the order given and the
// leading state/exclude arguments (already split off the filter).
func Select(opts []Opt, states []StateArg) (Selection, error) {
	var (
		sel         Selection
		doDefault   = true
		stateFilter uint32
		sawQuery    bool
	)
	setDB := func(db DB, enable bool) {
		if enable {
			sel.States |= dbDefaults[db].states
			sel.DBs |= dbBit(db)
		} else {
			sel.DBs &^= dbBit(db)
		}
		doDefault = false
	}
	setAF := func(af int) {
		sel.States |= afDefaults[af].states
		sel.Families |= afBit(af)
		doDefault = false
		sel.Preferred = af
	}
	for _, o := range opts {
		switch o.Name {
		case "t":
			setDB(TCP, true)
		case "u":
			setDB(UDP, true)
		case "d":
			setDB(DCCP, true)
		case "w":
			setDB(RAW, true)
		case "S":
			setDB(SCTP, true)
		case "M":
			setDB(MPTCP, true)
		case "x":
			setAF(AFUnix)
		case "0":
			setAF(AFPacket)
		case "4":
			setAF(AFInet)
		case "6":
			setAF(AFInet6)
		case "a":
			stateFilter = StatesAll
		case "l":
			stateFilter = 1<<stListen | 1<<stClose
		case "f":
			af, ok := FamilyNames[o.Arg]
			if !ok {
				return sel, fmt.Errorf("-f %s: unknown family (want one of inet, inet6, link, unix, netlink, tipc, vsock, xdp)", o.Arg)
			}
			setAF(af)
		case "A":
			if !sawQuery {
				sel.DBs = 0
				if stateFilter == 0 {
					stateFilter = StatesConn
				}
				sawQuery = true
				doDefault = false
			}
			for _, q := range strings.Split(o.Arg, ",") {
				if err := parseQuery(q, setDB); err != nil {
					return sel, err
				}
			}
		default:
			return sel, fmt.Errorf("internal error: unknown selection option -%s", o.Name)
		}
	}

	sawStates := false
	for _, a := range states {
		mask, err := ParseState(a.Name)
		if err != nil {
			return sel, err
		}
		if !sawStates {
			if a.Exclude {
				stateFilter = StatesAll
			} else {
				stateFilter = 0
			}
			sawStates = true
		}
		if a.Exclude {
			stateFilter &^= mask
		} else {
			stateFilter |= mask
		}
	}

	if doDefault {
		if stateFilter == 0 {
			stateFilter = StatesConn
		}
		parseQuery("all", setDB)
	}
	if stateFilter != 0 {
		sel.States = stateFilter
	}
	// Merge defaults: a table brings its families, a family its tables.
	for db := DB(0); db < maxDB; db++ {
		if sel.Has(db) && dbDefaults[db].families&sel.Families == 0 {
			sel.Families |= dbDefaults[db].families
		}
	}
	for af, d := range afDefaults {
		if sel.HasFamily(af) && d.dbs&sel.DBs == 0 {
			sel.DBs |= d.dbs
		}
	}
	return sel, nil
}

func parseQuery(q string, setDB func(DB, bool)) error {
	enable := true
	name := q
	if strings.HasPrefix(name, "!") {
		enable = false
		name = name[1:]
	}
	for _, e := range queryNames {
		if e.name == name {
			for _, db := range e.dbs {
				setDB(db, enable)
			}
			return nil
		}
	}
	return fmt.Errorf("-A %s: unknown socket table (want all, inet, tcp, udp, raw, unix, unix_stream, unix_dgram, unix_seqpacket, packet, packet_raw, packet_dgram, netlink, mptcp, sctp, dccp, vsock, tipc, xdp; ! excludes)", q)
}

// StateArg is one `state NAME` or `exclude NAME` argument.
type StateArg struct {
	Name    string
	Exclude bool
}

// StateNames are the names `state` and `exclude` take, with their masks.
var stateNames = []struct {
	name string
	mask uint32
}{
	{"established", 1 << stEstablished},
	{"syn-sent", 1 << stSynSent},
	{"syn-recv", 1 << stSynRecv},
	{"syn-rcv", 1 << stSynRecv},
	{"fin-wait-1", 1 << stFinWait1},
	{"fin-wait-2", 1 << stFinWait2},
	{"time-wait", 1 << stTimeWait},
	{"unconnected", 1 << stClose},
	{"close", 1 << stClose},
	{"closed", 1 << stClose},
	{"close-wait", 1 << stCloseWait},
	{"last-ack", 1 << stLastAck},
	{"listening", 1 << stListen},
	{"closing", 1 << stClosing},
	{"all", StatesAll},
	{"connected", StatesAll &^ (1<<stClose | 1<<stListen)},
	{"synchronized", StatesAll &^ (1<<stClose | 1<<stListen | 1<<stSynSent)},
	{"bucket", 1<<stSynRecv | 1<<stTimeWait},
	{"big", StatesAll &^ (1<<stSynRecv | 1<<stTimeWait)},
}

// ParseState maps a state name (case-insensitive, as ss) to its mask.
func ParseState(name string) (uint32, error) {
	for _, s := range stateNames {
		if strings.EqualFold(s.name, name) {
			return s.mask, nil
		}
	}
	return 0, fmt.Errorf("state %q: unknown state (want established, syn-sent, syn-recv, fin-wait-1, fin-wait-2, time-wait, closed, close-wait, last-ack, listening, closing, or all, connected, synchronized, bucket, big)", name)
}

// ListRequest is what ss asks the kernel for this selection, table by table
// in the order of ss's main(): netlink, packet, unix, raw, udp, tcp, mptcp
// (each with the early returns of its *_show function). The inet tables
// (raw's sock_diag dump, udp, tcp, mptcp) come for IPv4 then IPv6 unless
// the last family option given was -4 (IPv4 only) or -6 (IPv6 only) — ss's
// inet_show_netlink, quirks included — while raw's /proc fallback reads
// the file of every selected inet family.
func (s Selection) ListRequest() snapshot.ListRequest {
	req := snapshot.ListRequest{States: s.States}
	// netlink_show and packet_show: their family selected and the CLOSE
	// state asked (every such socket is listed as UNCONN). packet_show
	// lists both types whichever of p_raw, p_dgr was selected.
	if s.Has(Netlink) && s.HasFamily(AFNetlink) && s.HasState(stClose) {
		req.Netlink = true
	}
	if s.DBs&packetDBs != 0 && s.HasFamily(AFPacket) && s.HasState(stClose) {
		req.Packet = true
	}
	if s.HasFamily(AFUnix) && s.DBs&unixDBs != 0 {
		req.Unix = true
		for db, typ := range map[DB]uint32{UnixStream: unix.SOCK_STREAM, UnixDgram: unix.SOCK_DGRAM, UnixSeq: unix.SOCK_SEQPACKET} {
			if s.Has(db) {
				req.UnixTypes |= 1 << typ
			}
		}
	}
	if !s.HasFamily(AFInet) && !s.HasFamily(AFInet6) {
		return req
	}
	var fams []uint8
	switch s.Preferred {
	case AFInet6:
		fams = []uint8{AFInet6}
	case AFInet:
		fams = []uint8{AFInet}
	default:
		fams = []uint8{AFInet, AFInet6}
	}
	// ss dumps a family and then drops sockets of families not selected;
	// asking only for selected ones is the same.
	var dumpFams []uint8
	for _, fam := range fams {
		if s.HasFamily(int(fam)) {
			dumpFams = append(dumpFams, fam)
		}
	}
	if s.Has(RAW) {
		req.RawInet = true
		req.RawFamilies = dumpFams
		for _, fam := range []uint8{AFInet, AFInet6} {
			if s.HasFamily(int(fam)) {
				req.RawProcFamilies = append(req.RawProcFamilies, fam)
			}
		}
	}
	for _, p := range []struct {
		db    DB
		proto uint16
	}{{UDP, unix.IPPROTO_UDP}, {TCP, unix.IPPROTO_TCP}, {MPTCP, unix.IPPROTO_MPTCP}} {
		if !s.Has(p.db) {
			continue
		}
		for _, fam := range dumpFams {
			req.Inet = append(req.Inet, snapshot.InetDump{Family: fam, Protocol: p.proto})
		}
	}
	return req
}

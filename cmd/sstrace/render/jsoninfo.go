package render

import (
	"encoding/binary"
	"reflect"
	"strconv"

	"sstrace/snapshot"
)

// The JSON objects of netlink and packet sockets and of the -m and -i
// details (see JSON for where they go).

// JSONNetlink is what a netlink socket adds.
type JSONNetlink struct {
	Protocol     uint16 `json:"protocol"`                // NETLINK_ROUTE (0), NETLINK_SOCK_DIAG (4), ...
	ProtocolName string `json:"protocol_name,omitempty"` // ss's name (rtnl, tcpdiag, ...); not with Numeric
	PortID       int32  `json:"portid"`                  // 0: the kernel's socket
	Process      string `json:"process,omitempty"`       // comm of the process whose pid PortID is, if any; not with Numeric
	Connected    bool   `json:"connected"`
	DstPortID    uint32 `json:"dst_portid,omitempty"`
	DstGroup     uint32 `json:"dst_group,omitempty"`
	Groups       uint64 `json:"groups,omitempty"` // multicast groups 1..64, as bits
}

// JSONPacket is what a packet socket adds.
type JSONPacket struct {
	Protocol     uint16            `json:"protocol"`                // ethertype, host order (3: ETH_P_ALL)
	ProtocolName string            `json:"protocol_name,omitempty"` // ss's name (all, ip, ipv6, ...); not with Numeric
	IfIndex      uint32            `json:"ifindex,omitempty"`       // the bound device
	Iface        string            `json:"iface,omitempty"`
	Info         *JSONPacketInfo   `json:"info,omitempty"`
	RxRing       *JSONPacketRing   `json:"rx_ring,omitempty"`
	TxRing       *JSONPacketRing   `json:"tx_ring,omitempty"`
	Fanout       *JSONPacketFanout `json:"fanout,omitempty"`
	Filter       []JSONBPFInsn     `json:"filter,omitempty"` // the attached classic BPF program
}

// JSONPacketInfo is struct packet_diag_info but the device.
type JSONPacketInfo struct {
	Version    uint32 `json:"version"` // TPACKET_V1 (0), V2, V3
	CopyThresh uint32 `json:"copy_thresh"`
	Tstamp     uint32 `json:"tstamp"`
	Flags      uint32 `json:"flags"` // PDI_RUNNING 1, AUXDATA 2, ORIGDEV 4, VNETHDR 8, LOSS 16
}

// JSONPacketRing is struct packet_diag_ring.
type JSONPacketRing struct {
	BlockSize  uint32 `json:"block_size"`
	BlockNr    uint32 `json:"block_nr"`
	FrameSize  uint32 `json:"frame_size"`
	FrameNr    uint32 `json:"frame_nr"`
	RetireTmo  uint32 `json:"retire_tmo"`
	SizeofPriv uint32 `json:"sizeof_priv"`
	Features   uint32 `json:"features"`
}

// JSONPacketFanout is PACKET_DIAG_FANOUT.
type JSONPacketFanout struct {
	ID   uint16 `json:"id"`
	Type uint16 `json:"type"` // PACKET_FANOUT_HASH (0), LB, CPU, ROLLOVER, RND, QM, ...
}

// JSONBPFInsn is struct sock_filter.
type JSONBPFInsn struct {
	Code uint16 `json:"code"`
	JT   uint8  `json:"jt"`
	JF   uint8  `json:"jf"`
	K    uint32 `json:"k"`
}

// JSONSkmem is SK_MEMINFO, in bytes.
type JSONSkmem struct {
	RmemAlloc  uint32  `json:"rmem_alloc"`
	Rcvbuf     uint32  `json:"rcvbuf"`
	WmemAlloc  uint32  `json:"wmem_alloc"`
	Sndbuf     uint32  `json:"sndbuf"`
	FwdAlloc   uint32  `json:"fwd_alloc"`
	WmemQueued uint32  `json:"wmem_queued"`
	Optmem     uint32  `json:"optmem"`
	Backlog    *uint32 `json:"backlog,omitempty"` // when the kernel sends it
	Drops      *uint32 `json:"drops,omitempty"`   // when the kernel sends it
}

func skmemObject(m []uint32) *JSONSkmem {
	var w [skMemDrops + 1]uint32
	copy(w[:], m)
	o := &JSONSkmem{
		RmemAlloc: w[skMemRmemAlloc], Rcvbuf: w[skMemRcvbuf], WmemAlloc: w[skMemWmemAlloc],
		Sndbuf: w[skMemSndbuf], FwdAlloc: w[skMemFwdAlloc], WmemQueued: w[skMemWmemQueued], Optmem: w[skMemOptmem],
	}
	if len(m) > skMemBacklog {
		o.Backlog = &w[skMemBacklog]
	}
	if len(m) > skMemDrops {
		o.Drops = &w[skMemDrops]
	}
	return o
}

func appendSkmemJSON(b []byte, m []uint32) []byte {
	var w [skMemDrops + 1]uint32
	copy(w[:], m)
	names := [...]string{`{"rmem_alloc":`, `,"rcvbuf":`, `,"wmem_alloc":`, `,"sndbuf":`, `,"fwd_alloc":`,
		`,"wmem_queued":`, `,"optmem":`, `,"backlog":`, `,"drops":`}
	for i, name := range names {
		if i > skMemOptmem && i >= len(m) {
			break
		}
		b = append(b, name...)
		b = strconv.AppendUint(b, uint64(w[i]), 10)
	}
	return append(b, '}')
}

// JSONTCPInfo is struct tcp_info as the kernel sent it, with the kernel's
// field names and units: times in microseconds (rto, ato, rtt, rttvar,
// rcv_rtt, min_rtt, busy_time, rwnd_limited, sndbuf_limited) but the
// last_* ages and total_rto_time in milliseconds, rates in bytes per second
// (pacing_rate, max_pacing_rate, delivery_rate; ~0 for "unlimited"),
// windows and sizes in bytes but snd_cwnd and snd_ssthresh in segments.
// The fields up to snd_wnd (Linux 4.19..6.6) are always there, zero when
// an older kernel did not send them; later ones only when the kernel sent
// them.
type JSONTCPInfo struct {
	State                  uint8   `json:"state"`
	CAState                uint8   `json:"ca_state"`
	Retransmits            uint8   `json:"retransmits"`
	Probes                 uint8   `json:"probes"`
	Backoff                uint8   `json:"backoff"`
	Options                uint8   `json:"options"` // TCPI_OPT_TIMESTAMPS 1, SACK 2, WSCALE 4, ECN 8, ECN_SEEN 16, SYN_DATA 32, ...
	SndWscale              uint8   `json:"snd_wscale"`
	RcvWscale              uint8   `json:"rcv_wscale"`
	DeliveryRateAppLimited uint8   `json:"delivery_rate_app_limited"`
	FastopenClientFail     uint8   `json:"fastopen_client_fail"`
	RTO                    uint64  `json:"rto"`
	ATO                    uint64  `json:"ato"`
	SndMSS                 uint64  `json:"snd_mss"`
	RcvMSS                 uint64  `json:"rcv_mss"`
	Unacked                uint64  `json:"unacked"`
	Sacked                 uint64  `json:"sacked"`
	Lost                   uint64  `json:"lost"`
	Retrans                uint64  `json:"retrans"`
	Fackets                uint64  `json:"fackets"`
	LastDataSent           uint64  `json:"last_data_sent"`
	LastAckSent            uint64  `json:"last_ack_sent"`
	LastDataRecv           uint64  `json:"last_data_recv"`
	LastAckRecv            uint64  `json:"last_ack_recv"`
	PMTU                   uint64  `json:"pmtu"`
	RcvSsthresh            uint64  `json:"rcv_ssthresh"`
	RTT                    uint64  `json:"rtt"`
	RTTVar                 uint64  `json:"rttvar"`
	SndSsthresh            uint64  `json:"snd_ssthresh"`
	SndCwnd                uint64  `json:"snd_cwnd"`
	AdvMSS                 uint64  `json:"advmss"`
	Reordering             uint64  `json:"reordering"`
	RcvRTT                 uint64  `json:"rcv_rtt"`
	RcvSpace               uint64  `json:"rcv_space"`
	TotalRetrans           uint64  `json:"total_retrans"`
	PacingRate             uint64  `json:"pacing_rate"`
	MaxPacingRate          uint64  `json:"max_pacing_rate"`
	BytesAcked             uint64  `json:"bytes_acked"`
	BytesReceived          uint64  `json:"bytes_received"`
	SegsOut                uint64  `json:"segs_out"`
	SegsIn                 uint64  `json:"segs_in"`
	NotsentBytes           uint64  `json:"notsent_bytes"`
	MinRTT                 uint64  `json:"min_rtt"`
	DataSegsIn             uint64  `json:"data_segs_in"`
	DataSegsOut            uint64  `json:"data_segs_out"`
	DeliveryRate           uint64  `json:"delivery_rate"`
	BusyTime               uint64  `json:"busy_time"`
	RwndLimited            uint64  `json:"rwnd_limited"`
	SndbufLimited          uint64  `json:"sndbuf_limited"`
	Delivered              uint64  `json:"delivered"`
	DeliveredCE            uint64  `json:"delivered_ce"`
	BytesSent              uint64  `json:"bytes_sent"`
	BytesRetrans           uint64  `json:"bytes_retrans"`
	DsackDups              uint64  `json:"dsack_dups"`
	ReordSeen              uint64  `json:"reord_seen"`
	RcvOoopack             uint64  `json:"rcv_ooopack"`
	SndWnd                 uint64  `json:"snd_wnd"`
	RcvWnd                 *uint64 `json:"rcv_wnd,omitempty"`              // Linux 6.7+
	Rehash                 *uint64 `json:"rehash,omitempty"`               // Linux 6.7+
	TotalRTO               *uint64 `json:"total_rto,omitempty"`            // Linux 6.7+
	TotalRTORecoveries     *uint64 `json:"total_rto_recoveries,omitempty"` // Linux 6.7+
	TotalRTOTime           *uint64 `json:"total_rto_time,omitempty"`       // Linux 6.7+
	ReceivedCE             *uint64 `json:"received_ce,omitempty"`          // Linux 6.18+
}

// An infoField is one field of a kernel info structure.
type infoField struct {
	key  string // `,"name":` (the first one's comma is dropped)
	off  int
	size int  // bytes: 1, 2, 4 or 8; 0 for a bit-field (see bits)
	bits byte // bit-field: the byte at off, shifted and masked: shift<<4 | width
	opt  bool // only when the payload holds the whole field
}

// tcpInfoFields are JSONTCPInfo's fields, in its order.
var tcpInfoFields = []infoField{
	{`"state":`, tiState, 1, 0, false},
	{`,"ca_state":`, tiCAState, 1, 0, false},
	{`,"retransmits":`, tiRetransmits, 1, 0, false},
	{`,"probes":`, tiProbes, 1, 0, false},
	{`,"backoff":`, tiBackoff, 1, 0, false},
	{`,"options":`, tiOptions, 1, 0, false},
	{`,"snd_wscale":`, tiWscale, 0, 0<<4 | 4, false},
	{`,"rcv_wscale":`, tiWscale, 0, 4<<4 | 4, false},
	{`,"delivery_rate_app_limited":`, tiAppLimited, 0, 0<<4 | 1, false},
	{`,"fastopen_client_fail":`, tiAppLimited, 0, 1<<4 | 2, false},
	{`,"rto":`, tiRTO, 4, 0, false},
	{`,"ato":`, tiATO, 4, 0, false},
	{`,"snd_mss":`, tiSndMSS, 4, 0, false},
	{`,"rcv_mss":`, tiRcvMSS, 4, 0, false},
	{`,"unacked":`, tiUnacked, 4, 0, false},
	{`,"sacked":`, tiSacked, 4, 0, false},
	{`,"lost":`, tiLost, 4, 0, false},
	{`,"retrans":`, tiRetrans, 4, 0, false},
	{`,"fackets":`, tiFackets, 4, 0, false},
	{`,"last_data_sent":`, tiLastDataSent, 4, 0, false},
	{`,"last_ack_sent":`, tiLastAckSent, 4, 0, false},
	{`,"last_data_recv":`, tiLastDataRecv, 4, 0, false},
	{`,"last_ack_recv":`, tiLastAckRecv, 4, 0, false},
	{`,"pmtu":`, tiPMTU, 4, 0, false},
	{`,"rcv_ssthresh":`, tiRcvSsthresh, 4, 0, false},
	{`,"rtt":`, tiRTT, 4, 0, false},
	{`,"rttvar":`, tiRTTVar, 4, 0, false},
	{`,"snd_ssthresh":`, tiSndSsthresh, 4, 0, false},
	{`,"snd_cwnd":`, tiSndCwnd, 4, 0, false},
	{`,"advmss":`, tiAdvMSS, 4, 0, false},
	{`,"reordering":`, tiReordering, 4, 0, false},
	{`,"rcv_rtt":`, tiRcvRTT, 4, 0, false},
	{`,"rcv_space":`, tiRcvSpace, 4, 0, false},
	{`,"total_retrans":`, tiTotalRetrans, 4, 0, false},
	{`,"pacing_rate":`, tiPacingRate, 8, 0, false},
	{`,"max_pacing_rate":`, tiMaxPacingRate, 8, 0, false},
	{`,"bytes_acked":`, tiBytesAcked, 8, 0, false},
	{`,"bytes_received":`, tiBytesReceived, 8, 0, false},
	{`,"segs_out":`, tiSegsOut, 4, 0, false},
	{`,"segs_in":`, tiSegsIn, 4, 0, false},
	{`,"notsent_bytes":`, tiNotsentBytes, 4, 0, false},
	{`,"min_rtt":`, tiMinRTT, 4, 0, false},
	{`,"data_segs_in":`, tiDataSegsIn, 4, 0, false},
	{`,"data_segs_out":`, tiDataSegsOut, 4, 0, false},
	{`,"delivery_rate":`, tiDeliveryRate, 8, 0, false},
	{`,"busy_time":`, tiBusyTime, 8, 0, false},
	{`,"rwnd_limited":`, tiRwndLimited, 8, 0, false},
	{`,"sndbuf_limited":`, tiSndbufLimited, 8, 0, false},
	{`,"delivered":`, tiDelivered, 4, 0, false},
	{`,"delivered_ce":`, tiDeliveredCE, 4, 0, false},
	{`,"bytes_sent":`, tiBytesSent, 8, 0, false},
	{`,"bytes_retrans":`, tiBytesRetrans, 8, 0, false},
	{`,"dsack_dups":`, tiDsackDups, 4, 0, false},
	{`,"reord_seen":`, tiReordSeen, 4, 0, false},
	{`,"rcv_ooopack":`, tiRcvOoopack, 4, 0, false},
	{`,"snd_wnd":`, tiSndWnd, 4, 0, false},
	{`,"rcv_wnd":`, tiRcvWnd, 4, 0, true},
	{`,"rehash":`, tiRehash, 4, 0, true},
	{`,"total_rto":`, tiTotalRTO, 2, 0, true},
	{`,"total_rto_recoveries":`, tiTotalRTORecov, 2, 0, true},
	{`,"total_rto_time":`, tiTotalRTOTime, 4, 0, true},
	{`,"received_ce":`, tiReceivedCE, 4, 0, true},
}

// JSONMPTCPInfo is struct mptcp_info as the kernel sent it, with the
// kernel's field names (without mptcpi_): sequence numbers and byte counts
// as 64-bit numbers, last_* ages in milliseconds. The fields up to
// csum_enabled (Linux 5.16..6.4) are always there, later ones only when
// the kernel sent them.
type JSONMPTCPInfo struct {
	Subflows           uint64  `json:"subflows"`
	AddAddrSignal      uint64  `json:"add_addr_signal"`
	AddAddrAccepted    uint64  `json:"add_addr_accepted"`
	SubflowsMax        uint64  `json:"subflows_max"`
	AddAddrSignalMax   uint64  `json:"add_addr_signal_max"`
	AddAddrAcceptedMax uint64  `json:"add_addr_accepted_max"`
	Flags              uint64  `json:"flags"` // MPTCP_INFO_FLAG_FALLBACK 1, REMOTE_KEY_RECEIVED 2
	Token              uint64  `json:"token"`
	WriteSeq           uint64  `json:"write_seq"`
	SndUna             uint64  `json:"snd_una"`
	RcvNxt             uint64  `json:"rcv_nxt"`
	LocalAddrUsed      uint64  `json:"local_addr_used"`
	LocalAddrMax       uint64  `json:"local_addr_max"`
	CsumEnabled        uint64  `json:"csum_enabled"`
	Retransmits        *uint64 `json:"retransmits,omitempty"`    // Linux 6.5+
	BytesRetrans       *uint64 `json:"bytes_retrans,omitempty"`  // Linux 6.5+
	BytesSent          *uint64 `json:"bytes_sent,omitempty"`     // Linux 6.5+
	BytesReceived      *uint64 `json:"bytes_received,omitempty"` // Linux 6.5+
	BytesAcked         *uint64 `json:"bytes_acked,omitempty"`    // Linux 6.5+
	SubflowsTotal      *uint64 `json:"subflows_total,omitempty"` // Linux 6.10+
	LastDataSent       *uint64 `json:"last_data_sent,omitempty"` // Linux 6.10+
	LastDataRecv       *uint64 `json:"last_data_recv,omitempty"` // Linux 6.10+
	LastAckRecv        *uint64 `json:"last_ack_recv,omitempty"`  // Linux 6.10+
}

var mptcpInfoFields = []infoField{
	{`"subflows":`, miSubflows, 1, 0, false},
	{`,"add_addr_signal":`, miAddAddrSignal, 1, 0, false},
	{`,"add_addr_accepted":`, miAddAddrAccepted, 1, 0, false},
	{`,"subflows_max":`, miSubflowsMax, 1, 0, false},
	{`,"add_addr_signal_max":`, miAddAddrSignalMax, 1, 0, false},
	{`,"add_addr_accepted_max":`, miAddAddrAcceptedMax, 1, 0, false},
	{`,"flags":`, miFlags, 4, 0, false},
	{`,"token":`, miToken, 4, 0, false},
	{`,"write_seq":`, miWriteSeq, 8, 0, false},
	{`,"snd_una":`, miSndUna, 8, 0, false},
	{`,"rcv_nxt":`, miRcvNxt, 8, 0, false},
	{`,"local_addr_used":`, miLocalAddrUsed, 1, 0, false},
	{`,"local_addr_max":`, miLocalAddrMax, 1, 0, false},
	{`,"csum_enabled":`, miCsumEnabled, 1, 0, false},
	{`,"retransmits":`, miRetransmits, 4, 0, true},
	{`,"bytes_retrans":`, miBytesRetrans, 8, 0, true},
	{`,"bytes_sent":`, miBytesSent, 8, 0, true},
	{`,"bytes_received":`, miBytesReceived, 8, 0, true},
	{`,"bytes_acked":`, miBytesAcked, 8, 0, true},
	{`,"subflows_total":`, miSubflowsTotal, 1, 0, true},
	{`,"last_data_sent":`, miLastDataSent, 4, 0, true},
	{`,"last_data_recv":`, miLastDataRecv, 4, 0, true},
	{`,"last_ack_recv":`, miLastAckRecv, 4, 0, true},
}

// value reads f from p (zero-filled past its end); ok is false for an
// optional field the payload does not hold whole.
func (f *infoField) value(p []byte) (v uint64, ok bool) {
	n := f.size
	if n == 0 {
		n = 1
	}
	if f.opt && f.off+n > len(p) {
		return 0, false
	}
	var w [8]byte
	if f.off < len(p) {
		copy(w[:n], p[f.off:])
	}
	ne := binary.NativeEndian
	switch f.size {
	case 0:
		shift, width := f.bits>>4, f.bits&0xf
		if bigEndian {
			shift = 8 - shift - width
		}
		return uint64(w[0]>>shift) & (1<<width - 1), true
	case 1:
		return uint64(w[0]), true
	case 2:
		return uint64(ne.Uint16(w[:])), true
	case 4:
		return uint64(ne.Uint32(w[:])), true
	}
	return ne.Uint64(w[:]), true
}

// appendInfoJSON appends the object of the fields of p.
func appendInfoJSON(b []byte, fields []infoField, p []byte) []byte {
	b = append(b, '{')
	for i := range fields {
		f := &fields[i]
		v, ok := f.value(p)
		if !ok {
			continue
		}
		b = append(b, f.key...)
		b = strconv.AppendUint(b, v, 10)
	}
	return append(b, '}')
}

// fillInfo sets the fields of the struct *dst (JSONTCPInfo or
// JSONMPTCPInfo, whose fields are those of fields, in order) from p.
func fillInfo(dst any, fields []infoField, p []byte) {
	v := reflect.ValueOf(dst).Elem()
	for i := range fields {
		x, ok := fields[i].value(p)
		if !ok {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() == reflect.Pointer {
			fv.Set(reflect.New(fv.Type().Elem()))
			fv = fv.Elem()
		}
		fv.SetUint(x)
	}
}

// JSONVegas is INET_DIAG_VEGASINFO.
type JSONVegas struct {
	Enabled uint32 `json:"enabled"`
	RTTCnt  uint32 `json:"rttcnt"`
	RTT     uint32 `json:"rtt"`    // microseconds
	MinRTT  uint32 `json:"minrtt"` // microseconds
}

// JSONDCTCP is INET_DIAG_DCTCPINFO.
type JSONDCTCP struct {
	Enabled uint16 `json:"enabled"`
	CEState uint16 `json:"ce_state"`
	Alpha   uint32 `json:"alpha"`
	ABECN   uint32 `json:"ab_ecn"`
	ABTot   uint32 `json:"ab_tot"`
}

// JSONBBR is INET_DIAG_BBRINFO.
type JSONBBR struct {
	BW         uint64 `json:"bw"`          // bytes per second
	MinRTT     uint32 `json:"min_rtt"`     // microseconds
	PacingGain uint32 `json:"pacing_gain"` // fixed point, 8 fraction bits (256 = 1.0)
	CwndGain   uint32 `json:"cwnd_gain"`   // fixed point, 8 fraction bits
}

// ccWords is the congestion-control payload as five zero-filled words.
func ccWords(p []byte) (w [5]uint32) {
	var buf [20]byte
	copy(buf[:], p)
	for i := range w {
		w[i] = binary.NativeEndian.Uint32(buf[4*i:])
	}
	return w
}

func (e *Encoder) setInfo(o *JSONSocket, s *snapshot.Socket) {
	if !e.opt.Info || !isInet(s) {
		return
	}
	if s.CongAlg != "" {
		o.Cong = s.CongAlg
	}
	if s.TCPInfo != nil {
		if s.Protocol == ipprotoMPTCP {
			o.MPTCPInfo = new(JSONMPTCPInfo)
			fillInfo(o.MPTCPInfo, mptcpInfoFields, s.TCPInfo)
		} else {
			o.TCPInfo = new(JSONTCPInfo)
			fillInfo(o.TCPInfo, tcpInfoFields, s.TCPInfo)
		}
	}
	if s.CCInfo == nil {
		return
	}
	w := ccWords(s.CCInfo)
	switch s.CCInfoType {
	case ccVegas:
		o.Vegas = &JSONVegas{Enabled: w[0], RTTCnt: w[1], RTT: w[2], MinRTT: w[3]}
	case ccDCTCP:
		var buf [4]byte
		copy(buf[:], s.CCInfo)
		o.DCTCP = &JSONDCTCP{Enabled: binary.NativeEndian.Uint16(buf[:]), CEState: binary.NativeEndian.Uint16(buf[2:]),
			Alpha: w[1], ABECN: w[2], ABTot: w[3]}
	case ccBBR:
		o.BBR = &JSONBBR{BW: uint64(w[1])<<32 | uint64(w[0]), MinRTT: w[2], PacingGain: w[3], CwndGain: w[4]}
	}
}

func (e *Encoder) appendInfo(b []byte, s *snapshot.Socket) []byte {
	if !e.opt.Info || !isInet(s) {
		return b
	}
	if s.CongAlg != "" {
		b = append(b, `,"cong":`...)
		b = appendJSONString(b, s.CongAlg)
	}
	if s.TCPInfo != nil {
		if s.Protocol == ipprotoMPTCP {
			b = append(b, `,"mptcp_info":`...)
			b = appendInfoJSON(b, mptcpInfoFields, s.TCPInfo)
		} else {
			b = append(b, `,"tcp_info":`...)
			b = appendInfoJSON(b, tcpInfoFields, s.TCPInfo)
		}
	}
	if s.CCInfo == nil {
		return b
	}
	w := ccWords(s.CCInfo)
	switch s.CCInfoType {
	case ccVegas:
		b = appendKV(b, `,"vegas":{"enabled":`, w[0])
		b = appendKV(b, `,"rttcnt":`, w[1])
		b = appendKV(b, `,"rtt":`, w[2])
		b = appendKV(b, `,"minrtt":`, w[3])
	case ccDCTCP:
		var buf [4]byte
		copy(buf[:], s.CCInfo)
		b = appendKV(b, `,"dctcp":{"enabled":`, uint32(binary.NativeEndian.Uint16(buf[:])))
		b = appendKV(b, `,"ce_state":`, uint32(binary.NativeEndian.Uint16(buf[2:])))
		b = appendKV(b, `,"alpha":`, w[1])
		b = appendKV(b, `,"ab_ecn":`, w[2])
		b = appendKV(b, `,"ab_tot":`, w[3])
	case ccBBR:
		b = append(b, `,"bbr":{"bw":`...)
		b = strconv.AppendUint(b, uint64(w[1])<<32|uint64(w[0]), 10)
		b = appendKV(b, `,"min_rtt":`, w[2])
		b = appendKV(b, `,"pacing_gain":`, w[3])
		b = appendKV(b, `,"cwnd_gain":`, w[4])
	default:
		return b
	}
	return append(b, '}')
}

// appendKV appends key and v.
func appendKV(b []byte, key string, v uint32) []byte {
	b = append(b, key...)
	return strconv.AppendUint(b, uint64(v), 10)
}

func (e *Encoder) netlinkObject(s *snapshot.Socket) *JSONNetlink {
	o := &JSONNetlink{
		Protocol:  s.Protocol,
		PortID:    s.NetlinkPortID,
		Connected: s.NetlinkState == snapshot.NetlinkConnected,
		DstPortID: s.NetlinkDstPortID,
		DstGroup:  s.NetlinkDstGroup,
		Groups:    s.NetlinkGroups,
	}
	if !e.opt.Numeric {
		o.ProtocolName = NetlinkProtoName(s.Protocol)
		if s.NetlinkPortID > 0 {
			o.Process, _ = e.lk.processName(s.NetlinkPortID)
		}
	}
	return o
}

func (e *Encoder) appendNetlink(b []byte, s *snapshot.Socket) []byte {
	o := e.netlinkObject(s)
	b = append(b, `,"netlink":{"protocol":`...)
	b = strconv.AppendUint(b, uint64(o.Protocol), 10)
	if o.ProtocolName != "" {
		b = append(b, `,"protocol_name":`...)
		b = appendJSONString(b, o.ProtocolName)
	}
	b = append(b, `,"portid":`...)
	b = strconv.AppendInt(b, int64(o.PortID), 10)
	if o.Process != "" {
		b = append(b, `,"process":`...)
		b = appendJSONString(b, o.Process)
	}
	b = append(b, `,"connected":`...)
	b = strconv.AppendBool(b, o.Connected)
	b = appendUintField(b, `,"dst_portid":`, uint64(o.DstPortID))
	b = appendUintField(b, `,"dst_group":`, uint64(o.DstGroup))
	b = appendUintField(b, `,"groups":`, o.Groups)
	return append(b, '}')
}

func ringObject(r []uint32) *JSONPacketRing {
	if r == nil {
		return nil
	}
	var w [7]uint32
	copy(w[:], r)
	return &JSONPacketRing{BlockSize: w[0], BlockNr: w[1], FrameSize: w[2], FrameNr: w[3], RetireTmo: w[4], SizeofPriv: w[5], Features: w[6]}
}

func (e *Encoder) packetObject(s *snapshot.Socket) *JSONPacket {
	o := &JSONPacket{Protocol: s.Protocol, IfIndex: s.Iface, RxRing: ringObject(s.PacketRxRing), TxRing: ringObject(s.PacketTxRing)}
	if !e.opt.Numeric {
		o.ProtocolName = EtherProtoName(s.Protocol)
	}
	if s.Iface != 0 {
		o.Iface = e.lk.ifName(s.Iface)
	}
	if s.HasPacketInfo {
		o.Info = &JSONPacketInfo{Version: s.PacketVersion, CopyThresh: s.PacketCopyThresh, Tstamp: s.PacketTstamp, Flags: s.PacketFlags}
	}
	if s.HasPacketFanout {
		o.Fanout = &JSONPacketFanout{ID: uint16(s.PacketFanout), Type: uint16(s.PacketFanout >> 16)}
	}
	ne := binary.NativeEndian
	for p := s.PacketFilter; len(p) >= 8; p = p[8:] {
		o.Filter = append(o.Filter, JSONBPFInsn{Code: ne.Uint16(p), JT: p[2], JF: p[3], K: ne.Uint32(p[4:])})
	}
	return o
}

func (e *Encoder) appendPacket(b []byte, s *snapshot.Socket) []byte {
	b = append(b, `,"packet":{"protocol":`...)
	b = strconv.AppendUint(b, uint64(s.Protocol), 10)
	if !e.opt.Numeric {
		if name := EtherProtoName(s.Protocol); name != "" {
			b = append(b, `,"protocol_name":`...)
			b = appendJSONString(b, name)
		}
	}
	if s.Iface != 0 {
		b = append(b, `,"ifindex":`...)
		b = strconv.AppendUint(b, uint64(s.Iface), 10)
		if name := e.lk.ifName(s.Iface); name != "" {
			b = append(b, `,"iface":`...)
			b = appendJSONString(b, name)
		}
	}
	if s.HasPacketInfo {
		b = appendKV(b, `,"info":{"version":`, s.PacketVersion)
		b = appendKV(b, `,"copy_thresh":`, s.PacketCopyThresh)
		b = appendKV(b, `,"tstamp":`, s.PacketTstamp)
		b = appendKV(b, `,"flags":`, s.PacketFlags)
		b = append(b, '}')
	}
	b = appendRingJSON(b, `,"rx_ring":`, s.PacketRxRing)
	b = appendRingJSON(b, `,"tx_ring":`, s.PacketTxRing)
	if s.HasPacketFanout {
		b = appendKV(b, `,"fanout":{"id":`, s.PacketFanout&0xffff)
		b = appendKV(b, `,"type":`, s.PacketFanout>>16)
		b = append(b, '}')
	}
	if len(s.PacketFilter) >= 8 {
		b = append(b, `,"filter":[`...)
		ne := binary.NativeEndian
		for i, p := 0, s.PacketFilter; len(p) >= 8; i, p = i+1, p[8:] {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendKV(b, `{"code":`, uint32(ne.Uint16(p)))
			b = appendKV(b, `,"jt":`, uint32(p[2]))
			b = appendKV(b, `,"jf":`, uint32(p[3]))
			b = appendKV(b, `,"k":`, ne.Uint32(p[4:]))
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func appendRingJSON(b []byte, key string, r []uint32) []byte {
	if r == nil {
		return b
	}
	var w [7]uint32
	copy(w[:], r)
	b = append(b, key...)
	b = appendKV(b, `{"block_size":`, w[0])
	b = appendKV(b, `,"block_nr":`, w[1])
	b = appendKV(b, `,"frame_size":`, w[2])
	b = appendKV(b, `,"frame_nr":`, w[3])
	b = appendKV(b, `,"retire_tmo":`, w[4])
	b = appendKV(b, `,"sizeof_priv":`, w[5])
	b = appendKV(b, `,"features":`, w[6])
	return append(b, '}')
}

package render

import (
	"encoding/binary"
	"math"
	"strconv"

	"sstrace/snapshot"
)

// The -m and -i details: ss's print_skmeminfo, tcp_show_info and
// tcp_stats_print, mptcp_stats_print, and the ULP details of
// tcp_show_info.
//
// Like ss, the kernel's structures are read as ss 6.1 knows them: a
// shorter payload (an older kernel) reads as if zero-filled, a longer one
// (a newer kernel) has its extra fields ignored.

// Words of SK_MEMINFO (INET_DIAG_SKMEMINFO and the like).
const (
	skMemRmemAlloc = iota
	skMemRcvbuf
	skMemWmemAlloc
	skMemSndbuf
	skMemFwdAlloc
	skMemWmemQueued
	skMemOptmem
	skMemBacklog
	skMemDrops
)

// appendSkmem is ss's print_skmeminfo of a SK_MEMINFO array: backlog and
// drops only when the kernel sent them.
func appendSkmem(b []byte, m []uint32) []byte {
	var w [skMemDrops + 1]uint32
	copy(w[:], m)
	b = append(b, " skmem:(r"...)
	b = strconv.AppendUint(b, uint64(w[skMemRmemAlloc]), 10)
	b = append(b, ",rb"...)
	b = strconv.AppendUint(b, uint64(w[skMemRcvbuf]), 10)
	b = append(b, ",t"...)
	b = strconv.AppendUint(b, uint64(w[skMemWmemAlloc]), 10)
	b = append(b, ",tb"...)
	b = strconv.AppendUint(b, uint64(w[skMemSndbuf]), 10)
	b = append(b, ",f"...)
	b = strconv.AppendUint(b, uint64(w[skMemFwdAlloc]), 10)
	b = append(b, ",w"...)
	b = strconv.AppendUint(b, uint64(w[skMemWmemQueued]), 10)
	b = append(b, ",o"...)
	b = strconv.AppendUint(b, uint64(w[skMemOptmem]), 10)
	if len(m) > skMemBacklog {
		b = append(b, ",bl"...)
		b = strconv.AppendUint(b, uint64(w[skMemBacklog]), 10)
	}
	if len(m) > skMemDrops {
		b = append(b, ",d"...)
		b = strconv.AppendUint(b, uint64(w[skMemDrops]), 10)
	}
	return append(b, ')')
}

// struct tcp_info (linux/tcp.h): the offsets of its fields, and its size in
// the headers of ss 6.1 and of Linux 6.18.
const (
	tiState           = 0
	tiCAState         = 1
	tiRetransmits     = 2
	tiProbes          = 3
	tiBackoff         = 4
	tiOptions         = 5
	tiWscale          = 6 // snd_wscale:4, rcv_wscale:4
	tiAppLimited      = 7 // delivery_rate_app_limited:1, fastopen_client_fail:2
	tiRTO             = 8
	tiATO             = 12
	tiSndMSS          = 16
	tiRcvMSS          = 20
	tiUnacked         = 24
	tiSacked          = 28
	tiLost            = 32
	tiRetrans         = 36
	tiFackets         = 40
	tiLastDataSent    = 44
	tiLastAckSent     = 48
	tiLastDataRecv    = 52
	tiLastAckRecv     = 56
	tiPMTU            = 60
	tiRcvSsthresh     = 64
	tiRTT             = 68
	tiRTTVar          = 72
	tiSndSsthresh     = 76
	tiSndCwnd         = 80
	tiAdvMSS          = 84
	tiReordering      = 88
	tiRcvRTT          = 92
	tiRcvSpace        = 96
	tiTotalRetrans    = 100
	tiPacingRate      = 104
	tiMaxPacingRate   = 112
	tiBytesAcked      = 120
	tiBytesReceived   = 128
	tiSegsOut         = 136
	tiSegsIn          = 140
	tiNotsentBytes    = 144
	tiMinRTT          = 148
	tiDataSegsIn      = 152
	tiDataSegsOut     = 156
	tiDeliveryRate    = 160
	tiBusyTime        = 168
	tiRwndLimited     = 176
	tiSndbufLimited   = 184
	tiDelivered       = 192
	tiDeliveredCE     = 196
	tiBytesSent       = 200
	tiBytesRetrans    = 208
	tiDsackDups       = 216
	tiReordSeen       = 220
	tiRcvOoopack      = 224
	tiSndWnd          = 228
	tcpInfoLen61      = 232 // sizeof(struct tcp_info) for ss 6.1
	tiRcvWnd          = 232 // Linux 6.7+
	tiRehash          = 236
	tiTotalRTO        = 240 // u16
	tiTotalRTORecov   = 242 // u16
	tiTotalRTOTime    = 244
	tiReceivedCE      = 248 // Linux 6.18
	tcpiOptTimestamps = 1
	tcpiOptSack       = 2
	tcpiOptWscale     = 4
	tcpiOptECN        = 8
	tcpiOptECNSeen    = 16
	tcpiOptSynData    = 32
)

// tcpInfo is struct tcp_info as ss reads it: the kernel's bytes, cut or
// zero-filled to ss 6.1's size.
type tcpInfo [tcpInfoLen61]byte

func (ti *tcpInfo) u32(off int) uint32 { return binary.NativeEndian.Uint32(ti[off:]) }
func (ti *tcpInfo) u64(off int) uint64 { return binary.NativeEndian.Uint64(ti[off:]) }

// wscale splits tcpi_snd_wscale:4, tcpi_rcv_wscale:4 (bit-fields fill a
// byte from its low bits on little-endian ABIs, from its high bits on
// big-endian ones).
func wscale(v uint8) (snd, rcv uint8) {
	if bigEndian {
		return v >> 4, v & 0xf
	}
	return v & 0xf, v >> 4
}

// appLimited is tcpi_delivery_rate_app_limited, the first bit-field of its
// byte.
func appLimited(v uint8) bool {
	if bigEndian {
		return v&0x80 != 0
	}
	return v&1 != 0
}

var bigEndian = binary.NativeEndian.Uint16([]byte{0, 1}) == 1

// Congestion-control attributes (the first that came is Socket.CCInfo).
const (
	ccVegas = snapshot.InetDiagVegasInfo
	ccDCTCP = snapshot.InetDiagDCTCPInfo
	ccBBR   = snapshot.InetDiagBBRInfo
)

// appendTCPInfo is ss's tcp_show_info and tcp_stats_print of
// INET_DIAG_INFO (and INET_DIAG_CONG and the congestion-control details),
// in ss's order, names and units. Options (-o) adds the TCP options in use.
func appendTCPInfo(b []byte, s *snapshot.Socket, opt *Options) []byte {
	var ti tcpInfo
	copy(ti[:], s.TCPInfo)
	options := ti[tiOptions]
	if opt.Options {
		if options&tcpiOptTimestamps != 0 {
			b = append(b, " ts"...)
		}
		if options&tcpiOptSack != 0 {
			b = append(b, " sack"...)
		}
		if options&tcpiOptECN != 0 {
			b = append(b, " ecn"...)
		}
		if options&tcpiOptECNSeen != 0 {
			b = append(b, " ecnseen"...)
		}
		if options&tcpiOptSynData != 0 {
			b = append(b, " fastopen"...)
		}
	}
	if cong := s.CongAlg; cong != "" {
		if len(cong) > 15 { // ss's char cong_alg[16]
			cong = cong[:15]
		}
		b = append(b, ' ')
		b = append(b, cong...)
	}
	if options&tcpiOptWscale != 0 {
		snd, rcv := wscale(ti[tiWscale])
		b = append(b, " wscale:"...)
		b = strconv.AppendUint(b, uint64(snd), 10)
		b = append(b, ',')
		b = strconv.AppendUint(b, uint64(rcv), 10)
	}
	if rto := ti.u32(tiRTO); rto != 0 && rto != 3000000 {
		b = append(b, " rto:"...)
		b = appendG(b, float64(rto)/1000, 6)
	}
	if backoff := ti[tiBackoff]; backoff != 0 {
		b = append(b, " backoff:"...)
		b = strconv.AppendUint(b, uint64(backoff), 10)
	}
	if rtt := ti.u32(tiRTT); rtt != 0 {
		b = append(b, " rtt:"...)
		b = appendG(b, float64(rtt)/1000, 6)
		b = append(b, '/')
		b = appendG(b, float64(ti.u32(tiRTTVar))/1000, 6)
	}
	if ato := ti.u32(tiATO); ato != 0 {
		b = append(b, " ato:"...)
		b = appendG(b, float64(ato)/1000, 6)
	}
	b = appendIntField(b, " mss:", int32(ti.u32(tiSndMSS)))
	b = appendUintField32(b, " pmtu:", ti.u32(tiPMTU))
	b = appendIntField(b, " rcvmss:", int32(ti.u32(tiRcvMSS)))
	b = appendIntField(b, " advmss:", int32(ti.u32(tiAdvMSS)))
	b = appendUintField32(b, " cwnd:", ti.u32(tiSndCwnd))
	if sst := ti.u32(tiSndSsthresh); sst < 0xFFFF {
		b = appendIntField(b, " ssthresh:", int32(sst))
	}
	b = appendUintField64(b, " bytes_sent:", ti.u64(tiBytesSent))
	b = appendUintField64(b, " bytes_retrans:", ti.u64(tiBytesRetrans))
	b = appendUintField64(b, " bytes_acked:", ti.u64(tiBytesAcked))
	b = appendUintField64(b, " bytes_received:", ti.u64(tiBytesReceived))
	b = appendUintField32(b, " segs_out:", ti.u32(tiSegsOut))
	b = appendUintField32(b, " segs_in:", ti.u32(tiSegsIn))
	b = appendUintField32(b, " data_segs_out:", ti.u32(tiDataSegsOut))
	b = appendUintField32(b, " data_segs_in:", ti.u32(tiDataSegsIn))

	rtt := float64(ti.u32(tiRTT))
	var cc [20]byte // the largest of tcpvegas_info, tcp_dctcp_info, tcp_bbr_info
	copy(cc[:], s.CCInfo)
	ne := binary.NativeEndian
	switch s.CCInfoType {
	case ccVegas:
		if v := ne.Uint32(cc[8:]); ne.Uint32(cc[0:]) != 0 && v != 0 && v != 0x7fffffff {
			rtt = float64(v)
		}
	case ccDCTCP:
		if ne.Uint16(cc[0:]) != 0 {
			b = append(b, " dctcp:(ce_state:"...)
			b = strconv.AppendUint(b, uint64(ne.Uint16(cc[2:])), 10)
			b = append(b, ",alpha:"...)
			b = strconv.AppendUint(b, uint64(ne.Uint32(cc[4:])), 10)
			b = append(b, ",ab_ecn:"...)
			b = strconv.AppendUint(b, uint64(ne.Uint32(cc[8:])), 10)
			b = append(b, ",ab_tot:"...)
			b = strconv.AppendUint(b, uint64(ne.Uint32(cc[12:])), 10)
			b = append(b, ')')
		} else {
			b = append(b, " dctcp:fallback_mode"...)
		}
	case ccBBR:
		bw := uint64(ne.Uint32(cc[4:]))<<32 | uint64(ne.Uint32(cc[0:]))
		b = append(b, " bbr:(bw:"...)
		b = appendBw(b, float64(bw)*8.0, opt.Numeric)
		b = append(b, "bps,mrtt:"...)
		b = appendG(b, float64(ne.Uint32(cc[8:]))/1000.0, 6)
		if g := ne.Uint32(cc[12:]); g != 0 {
			b = append(b, ",pacing_gain:"...)
			b = appendG(b, float64(g)/256.0, 6)
		}
		if g := ne.Uint32(cc[16:]); g != 0 {
			b = append(b, ",cwnd_gain:"...)
			b = appendG(b, float64(g)/256.0, 6)
		}
		b = append(b, ')')
	}

	mss, cwnd := ti.u32(tiSndMSS), ti.u32(tiSndCwnd)
	if rtt > 0 && mss != 0 && cwnd != 0 {
		if bps := float64(cwnd) * float64(mss) * 8000000. / rtt; bps != 0 {
			b = append(b, " send "...)
			b = appendBw(b, bps, opt.Numeric)
			b = append(b, "bps"...)
		}
	}
	b = appendUintField32(b, " lastsnd:", ti.u32(tiLastDataSent))
	b = appendUintField32(b, " lastrcv:", ti.u32(tiLastDataRecv))
	b = appendUintField32(b, " lastack:", ti.u32(tiLastAckRecv))
	if pr := ti.u64(tiPacingRate); pr != 0 && pr != ^uint64(0) {
		b = append(b, " pacing_rate "...)
		b = appendBw(b, float64(pr)*8., opt.Numeric)
		b = append(b, "bps"...)
		if mpr := ti.u64(tiMaxPacingRate); mpr != 0 && mpr != ^uint64(0) {
			b = append(b, '/')
			b = appendBw(b, float64(mpr)*8., opt.Numeric)
			b = append(b, "bps"...)
		}
	}
	if dr := ti.u64(tiDeliveryRate); dr != 0 {
		b = append(b, " delivery_rate "...)
		b = appendBw(b, float64(dr)*8., opt.Numeric)
		b = append(b, "bps"...)
	}
	b = appendUintField32(b, " delivered:", ti.u32(tiDelivered))
	b = appendUintField32(b, " delivered_ce:", ti.u32(tiDeliveredCE))
	if appLimited(ti[tiAppLimited]) {
		b = append(b, " app_limited"...)
	}
	if busy := ti.u64(tiBusyTime); busy != 0 {
		b = append(b, " busy:"...)
		b = strconv.AppendUint(b, busy/1000, 10)
		b = append(b, "ms"...)
		b = appendLimited(b, " rwnd_limited:", ti.u64(tiRwndLimited), busy)
		b = appendLimited(b, " sndbuf_limited:", ti.u64(tiSndbufLimited), busy)
	}
	b = appendUintField32(b, " unacked:", ti.u32(tiUnacked))
	if r, tot := ti.u32(tiRetrans), ti.u32(tiTotalRetrans); r != 0 || tot != 0 {
		b = append(b, " retrans:"...)
		b = strconv.AppendUint(b, uint64(r), 10)
		b = append(b, '/')
		b = strconv.AppendUint(b, uint64(tot), 10)
	}
	b = appendUintField32(b, " lost:", ti.u32(tiLost))
	if s.State != snapshot.StateListen {
		b = appendUintField32(b, " sacked:", ti.u32(tiSacked))
	}
	b = appendUintField32(b, " dsack_dups:", ti.u32(tiDsackDups))
	b = appendUintField32(b, " fackets:", ti.u32(tiFackets))
	if r := ti.u32(tiReordering); r != 3 {
		b = append(b, " reordering:"...)
		b = strconv.AppendInt(b, int64(int32(r)), 10)
	}
	b = appendIntField(b, " reord_seen:", int32(ti.u32(tiReordSeen)))
	if r := ti.u32(tiRcvRTT); r != 0 {
		b = append(b, " rcv_rtt:"...)
		b = appendG(b, float64(r)/1000, 6)
	}
	b = appendIntField(b, " rcv_space:", int32(ti.u32(tiRcvSpace)))
	b = appendUintField32(b, " rcv_ssthresh:", ti.u32(tiRcvSsthresh))
	b = appendUintField32(b, " notsent:", ti.u32(tiNotsentBytes))
	if r := ti.u32(tiMinRTT); r != 0 && r != ^uint32(0) {
		b = append(b, " minrtt:"...)
		b = appendG(b, float64(r)/1000, 6)
	}
	b = appendUintField32(b, " rcv_ooopack:", ti.u32(tiRcvOoopack))
	b = appendUintField32(b, " snd_wnd:", ti.u32(tiSndWnd))
	return b
}

// appendLimited is " name:%llums(%.1f%%)" of a part of the busy time.
func appendLimited(b []byte, name string, v, busy uint64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, name...)
	b = strconv.AppendUint(b, v/1000, 10)
	b = append(b, "ms("...)
	b = strconv.AppendFloat(b, 100.0*float64(v)/float64(busy), 'f', 1, 64)
	return append(b, "%)"...)
}

// appendIntField appends name and v as %d, unless v is 0.
func appendIntField(b []byte, name string, v int32) []byte {
	if v == 0 {
		return b
	}
	b = append(b, name...)
	return strconv.AppendInt(b, int64(v), 10)
}

// appendUintField32 appends name and v as %u, unless v is 0.
func appendUintField32(b []byte, name string, v uint32) []byte {
	if v == 0 {
		return b
	}
	b = append(b, name...)
	return strconv.AppendUint(b, uint64(v), 10)
}

// appendUintField64 appends name and v as %llu, unless v is 0.
func appendUintField64(b []byte, name string, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, name...)
	return strconv.AppendUint(b, v, 10)
}

// appendBw is ss's sprint_bw of a rate in bits per second: "%.0f" with
// -n, else three significant digits and a k, M, G or T prefix.
func appendBw(b []byte, bw float64, numeric bool) []byte {
	switch {
	case numeric:
		return strconv.AppendFloat(b, bw, 'f', 0, 64)
	case bw >= 1e12:
		return append(appendG(b, bw/1e12, 3), 'T')
	case bw >= 1e9:
		return append(appendG(b, bw/1e9, 3), 'G')
	case bw >= 1e6:
		return append(appendG(b, bw/1e6, 3), 'M')
	case bw >= 1e3:
		return append(appendG(b, bw/1e3, 3), 'k')
	}
	return appendG(b, bw, 6)
}

// appendG appends v as C's printf("%.*g", prec, v) does (glibc: exact
// decimal rounding, ties to even): prec significant digits, the exponent
// form for exponents below -4 or from prec up, trailing zeros dropped.
func appendG(b []byte, v float64, prec int) []byte {
	if prec == 0 {
		prec = 1
	}
	switch {
	case math.IsNaN(v):
		if math.Signbit(v) {
			return append(b, "-nan"...)
		}
		return append(b, "nan"...)
	case math.IsInf(v, 1):
		return append(b, "inf"...)
	case math.IsInf(v, -1):
		return append(b, "-inf"...)
	}
	var tmp [32]byte
	e := strconv.AppendFloat(tmp[:0], v, 'e', prec-1, 64)
	// The exponent of the rounded value: "[-]d[.ddd]e±dd".
	i := len(e) - 1
	for e[i] != 'e' {
		i--
	}
	x := 0
	for _, c := range e[i+2:] {
		x = 10*x + int(c-'0')
	}
	if e[i+1] == '-' {
		x = -x
	}
	if x < -4 || x >= prec {
		b = append(b, trimZeros(e[:i])...)
		return append(b, e[i:]...)
	}
	n := len(b)
	b = strconv.AppendFloat(b, v, 'f', prec-1-x, 64)
	return append(b[:n], trimZeros(b[n:])...)
}

// trimZeros drops the trailing zeros of a decimal fraction, and its point
// if nothing is left after it.
func trimZeros(d []byte) []byte {
	dot := false
	for _, c := range d {
		if c == '.' {
			dot = true
		}
	}
	if !dot {
		return d
	}
	for d[len(d)-1] == '0' {
		d = d[:len(d)-1]
	}
	if d[len(d)-1] == '.' {
		d = d[:len(d)-1]
	}
	return d
}

// struct mptcp_info (linux/mptcp.h): offsets, and its size for ss 6.1.
const (
	miSubflows            = 0
	miAddAddrSignal       = 1
	miAddAddrAccepted     = 2
	miSubflowsMax         = 3
	miAddAddrSignalMax    = 4
	miAddAddrAcceptedMax  = 5
	miFlags               = 8
	miToken               = 12
	miWriteSeq            = 16
	miSndUna              = 24
	miRcvNxt              = 32
	miLocalAddrUsed       = 40
	miLocalAddrMax        = 41
	miCsumEnabled         = 42
	mptcpInfoLen61        = 48
	miRetransmits         = 44 // Linux 6.5+
	miBytesRetrans        = 48
	miBytesSent           = 56
	miBytesReceived       = 64
	miBytesAcked          = 72
	miSubflowsTotal       = 80 // Linux 6.10+
	miLastDataSent        = 84
	miLastDataRecv        = 88
	miLastAckRecv         = 92
	mptcpInfoFlagFallback = 1
	mptcpInfoFlagRemKey   = 2
)

// appendMPTCPInfo is ss's mptcp_stats_print.
func appendMPTCPInfo(b []byte, p []byte) []byte {
	var mi [mptcpInfoLen61]byte
	copy(mi[:], p)
	ne := binary.NativeEndian
	b = appendIntField(b, " subflows:", int32(mi[miSubflows]))
	b = appendIntField(b, " add_addr_signal:", int32(mi[miAddAddrSignal]))
	b = appendIntField(b, " add_addr_accepted:", int32(mi[miAddAddrAccepted]))
	b = appendIntField(b, " subflows_max:", int32(mi[miSubflowsMax]))
	b = appendIntField(b, " add_addr_signal_max:", int32(mi[miAddAddrSignalMax]))
	b = appendIntField(b, " add_addr_accepted_max:", int32(mi[miAddAddrAcceptedMax]))
	flags := ne.Uint32(mi[miFlags:])
	if flags&mptcpInfoFlagFallback != 0 {
		b = append(b, " fallback"...)
	}
	if flags&mptcpInfoFlagRemKey != 0 {
		b = append(b, " remote_key"...)
	}
	b = appendHexField(b, " token:", uint64(ne.Uint32(mi[miToken:])))
	b = appendHexField(b, " write_seq:", ne.Uint64(mi[miWriteSeq:]))
	b = appendHexField(b, " snd_una:", ne.Uint64(mi[miSndUna:]))
	b = appendHexField(b, " rcv_nxt:", ne.Uint64(mi[miRcvNxt:]))
	return b
}

// appendHexField appends name and v as %x, unless v is 0.
func appendHexField(b []byte, name string, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, name...)
	return strconv.AppendUint(b, v, 16)
}

// tcpULPInfo returns the INET_DIAG_ULP_INFO payload of a TCP socket (the
// upper-layer protocol, "tls" or "mptcp" for an MPTCP subflow, and its
// nested details), nil if none. A variable so tests can feed payloads the
// kernel here cannot produce.
var tcpULPInfo = func(s *snapshot.Socket) []byte { return s.ULPInfo }

// Attributes nested in INET_DIAG_ULP_INFO, INET_ULP_INFO_TLS and
// INET_ULP_INFO_MPTCP (linux/inet_diag.h, tls.h, mptcp.h), up to the last
// ss 6.1 knows.
const (
	ulpInfoName  = 1
	ulpInfoTLS   = 2
	ulpInfoMPTCP = 3
	ulpInfoMax   = 3

	tlsInfoVersion = 1
	tlsInfoCipher  = 2
	tlsInfoTxConf  = 3
	tlsInfoRxConf  = 4
	tlsInfoZcRoTx  = 5
	tlsInfoMax     = 6

	sfTokenRem   = 1
	sfTokenLoc   = 2
	sfMapSeq     = 4
	sfMapSfseq   = 5
	sfSsnOffset  = 6
	sfMapDatalen = 7
	sfFlags      = 8
	sfIDRem      = 9
	sfIDLoc      = 10
	sfMax        = 11
)

// parseAttrs is iproute2's parse_rtattr over a nested payload: the first
// attribute of each type up to max counts; a malformed length ends the
// walk.
func parseAttrs(tb [][]byte, p []byte) {
	for len(p) >= 4 {
		l := int(binary.NativeEndian.Uint16(p))
		typ := int(binary.NativeEndian.Uint16(p[2:]))
		if l < 4 || l > len(p) {
			return
		}
		if typ < len(tb) && tb[typ] == nil {
			tb[typ] = p[4:l:l]
		}
		adv := (l + 3) &^ 3
		if adv >= len(p) {
			return
		}
		p = p[adv:]
	}
}

// attrU8, attrU16, attrU32 and attrU64 read an attribute's payload as
// rta_getattr_* do, zero-filled when short.
func attrU8(p []byte) uint8 {
	if len(p) == 0 {
		return 0
	}
	return p[0]
}

func attrU16(p []byte) uint16 {
	var w [2]byte
	copy(w[:], p)
	return binary.NativeEndian.Uint16(w[:])
}

func attrU32(p []byte) uint32 {
	var w [4]byte
	copy(w[:], p)
	return binary.NativeEndian.Uint32(w[:])
}

func attrU64(p []byte) uint64 {
	var w [8]byte
	copy(w[:], p)
	return binary.NativeEndian.Uint64(w[:])
}

// attrString is rta_getattr_str: the payload up to its NUL.
func attrString(p []byte) []byte {
	for i, c := range p {
		if c == 0 {
			return p[:i]
		}
	}
	return p
}

// appendULPInfo is the INET_DIAG_ULP_INFO part of ss's tcp_show_info.
func appendULPInfo(b []byte, p []byte) []byte {
	var tb [ulpInfoMax + 1][]byte
	parseAttrs(tb[:], p)
	if tb[ulpInfoName] != nil {
		b = append(b, " tcp-ulp-"...)
		b = append(b, attrString(tb[ulpInfoName])...)
	}
	if tb[ulpInfoTLS] != nil {
		var tls [tlsInfoMax + 1][]byte
		parseAttrs(tls[:], tb[ulpInfoTLS])
		b = appendTLSInfo(b, &tls)
	}
	if tb[ulpInfoMPTCP] != nil {
		var sf [sfMax + 1][]byte
		parseAttrs(sf[:], tb[ulpInfoMPTCP])
		b = appendSubflowInfo(b, &sf)
	}
	return b
}

func appendTLSInfo(b []byte, tls *[tlsInfoMax + 1][]byte) []byte {
	if a := tls[tlsInfoVersion]; a != nil {
		switch v := attrU16(a); v {
		case 0x0303:
			b = append(b, " version: 1.2"...)
		case 0x0304:
			b = append(b, " version: 1.3"...)
		default:
			b = append(b, " version: unknown("...)
			b = strconv.AppendUint(b, uint64(v), 10)
			b = append(b, ')')
		}
	}
	if a := tls[tlsInfoCipher]; a != nil {
		switch attrU16(a) {
		case 51:
			b = append(b, " cipher: aes-gcm-128"...)
		case 52:
			b = append(b, " cipher: aes-gcm-256"...)
		}
	}
	b = appendTLSConf(b, "rxconf", tls[tlsInfoRxConf])
	b = appendTLSConf(b, "txconf", tls[tlsInfoTxConf])
	if tls[tlsInfoZcRoTx] != nil {
		b = append(b, " zc_ro_tx"...)
	}
	return b
}

var tlsConfNames = [...]string{1: "none", 2: "sw", 3: "hw", 4: "hw-record"}

func appendTLSConf(b []byte, name string, a []byte) []byte {
	if a == nil {
		return b
	}
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, ": "...)
	v := attrU16(a)
	if v != 0 && int(v) < len(tlsConfNames) {
		return append(b, tlsConfNames[v]...)
	}
	b = append(b, "unknown("...)
	b = strconv.AppendUint(b, uint64(v), 10)
	return append(b, ')')
}

// Bits of MPTCP_SUBFLOW_ATTR_FLAGS and the letters ss shows them as.
var subflowFlagLetters = [...]byte{'M', 'm', 'J', 'j', 'B', 'b', 'e', 'c', 'v'}

// appendSubflowInfo is ss's mptcp_subflow_info.
func appendSubflowInfo(b []byte, sf *[sfMax + 1][]byte) []byte {
	if a := sf[sfFlags]; a != nil {
		if flags := attrU32(a); flags != 0 {
			b = append(b, " flags:"...)
			for i, c := range subflowFlagLetters {
				if flags&(1<<i) != 0 {
					b = append(b, c)
				}
			}
		}
	}
	if sf[sfTokenRem] != nil && sf[sfTokenLoc] != nil && sf[sfIDRem] != nil && sf[sfIDLoc] != nil {
		b = append(b, " token:"...)
		b = appendHex04(b, attrU32(sf[sfTokenRem]))
		b = append(b, "(id:"...)
		b = strconv.AppendUint(b, uint64(attrU8(sf[sfIDRem])), 10)
		b = append(b, ")/"...)
		b = appendHex04(b, attrU32(sf[sfTokenLoc]))
		b = append(b, "(id:"...)
		b = strconv.AppendUint(b, uint64(attrU8(sf[sfIDLoc])), 10)
		b = append(b, ')')
	}
	if a := sf[sfMapSeq]; a != nil {
		b = append(b, " seq:"...)
		b = strconv.AppendUint(b, attrU64(a), 16)
	}
	if a := sf[sfMapSfseq]; a != nil {
		b = append(b, " sfseq:"...)
		b = strconv.AppendUint(b, uint64(attrU32(a)), 16)
	}
	if a := sf[sfSsnOffset]; a != nil {
		b = append(b, " ssnoff:"...)
		b = strconv.AppendUint(b, uint64(attrU32(a)), 16)
	}
	if a := sf[sfMapDatalen]; a != nil {
		b = append(b, " maplen:"...)
		b = strconv.AppendUint(b, uint64(attrU32(a)), 16)
	}
	return b
}

// appendHex04 is printf("%04x").
func appendHex04(b []byte, v uint32) []byte {
	for d := uint32(0x1000); d > 1 && v < d; d >>= 4 {
		b = append(b, '0')
	}
	return strconv.AppendUint(b, uint64(v), 16)
}

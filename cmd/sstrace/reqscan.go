package main

import "time"

// requestScan paces the sock_diag dumps of request sockets that stalls and
// watch make (no event names a request socket). The kernel finds them by
// walking its whole established hash: measured at 100k sockets, ~19 ms a
// dump, which every 250 ms would be 7% of a CPU. So a scan waits at least
// minEvery, and at least scanCostRatio times what the last one took: a
// busy table is scanned less often (about 1 s apart at 100k sockets), and
// scans stay under ~2% of a CPU.
type requestScan struct {
	minEvery time.Duration
	last     time.Time
	cost     time.Duration
}

const scanCostRatio = 50

// due says whether a scan should run at now.
func (r *requestScan) due(now time.Time) bool {
	return now.Sub(r.last) >= max(r.minEvery, scanCostRatio*r.cost)
}

// run runs scan and records when and how long it took.
func (r *requestScan) run(scan func() error) error {
	r.last = time.Now()
	err := scan()
	r.cost = time.Since(r.last)
	return err
}

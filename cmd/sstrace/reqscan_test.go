package main

import (
	"testing"
	"time"
)

// A scan that took long spaces the next one out; a cheap one runs at the
// minimum interval.
func TestRequestScanPacing(t *testing.T) {
	r := requestScan{minEvery: 250 * time.Millisecond}
	t0 := time.Unix(1000, 0)
	if !r.due(t0) {
		t.Fatal("the first scan is not due")
	}
	r.last, r.cost = t0, time.Millisecond
	if r.due(t0.Add(200*time.Millisecond)) || !r.due(t0.Add(250*time.Millisecond)) {
		t.Error("a cheap scan is not paced at minEvery")
	}
	r.cost = 20 * time.Millisecond
	if r.due(t0.Add(999*time.Millisecond)) || !r.due(t0.Add(time.Second)) {
		t.Error("a 20 ms scan is not paced at 50x its cost")
	}
}

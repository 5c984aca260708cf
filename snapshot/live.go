package snapshot

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"sstrace/tracer"
)

// Live is an overlay kept current by a tracer: the tracer is read from
// before the dump is taken, events that arrive while the dump runs are held
// and applied once it is loaded, and every later event is applied as it
// comes.
type Live struct {
	tr   *tracer.Tracer
	mu   sync.Mutex
	ov   *Overlay
	held []tracer.Event
	dump func() ([]*Entry, error)
	// lost is the tracer's loss count at the last check; a growth makes
	// the overlay stale, and it is rebuilt from a fresh dump.
	lost      uint64
	lastCheck time.Time
	// Stale is set once events are known lost, until a rebuild succeeds:
	// the overlay then misses changes no one can name. Resyncs counts
	// rebuilds after lost events; ResyncErr is the error of the last
	// failed one (nil once one succeeds).
	Stale     bool
	Resyncs   int
	ResyncErr error
	// onEvent, if set, is called (with the lock held) after each event is
	// applied.
	onEvent func(*Overlay, *tracer.Event)
	// frozen: a ViewFrozen is running; events are held meanwhile (at most
	// maxHeld: then the reader waits on thawed).
	frozen bool
	thawed *sync.Cond
	done   chan struct{}
	err    error
}

// StartLive starts reading tr, then calls dump (in the caller's goroutine,
// so in its network namespace) and loads the overlay from it. onEvent may
// be nil.
func StartLive(tr *tracer.Tracer, dump func() ([]Socket, error), onEvent func(*Overlay, *tracer.Event)) (*Live, error) {
	return StartLiveEntries(tr, func() ([]*Entry, error) {
		socks, err := dump()
		if err != nil {
			return nil, err
		}
		now := monotonicNow()
		entries := make([]*Entry, len(socks))
		for i := range socks {
			entries[i] = newEntry(&socks[i], now)
		}
		return entries, nil
	}, onEvent)
}

// StartLiveEntries is StartLive with a dump that gives entries (see
// DumpEntries), never holding a whole dump of rows.
func StartLiveEntries(tr *tracer.Tracer, dump func() ([]*Entry, error), onEvent func(*Overlay, *tracer.Event)) (*Live, error) {
	l := &Live{tr: tr, onEvent: onEvent, done: make(chan struct{}), dump: dump}
	l.thawed = sync.NewCond(&l.mu)
	l.lost, _ = tr.Drops()
	go l.read()
	since := monotonicNow()
	entries, err := dump()
	if err != nil {
		return nil, fmt.Errorf("taking the initial snapshot: %w", err)
	}
	ov := NewOverlayEntries(entries)
	ov.Since = since
	l.mu.Lock()
	for i := range l.held {
		l.apply(ov, &l.held[i])
	}
	l.held = nil
	l.ov = ov
	l.mu.Unlock()
	return l, nil
}

func (l *Live) apply(ov *Overlay, ev *tracer.Event) {
	ov.Apply(ev)
	if l.onEvent != nil {
		l.onEvent(ov, ev)
	}
}

func (l *Live) read() {
	defer close(l.done)
	var ev tracer.Event
	for {
		if err := l.tr.Read(&ev); err != nil {
			if !errors.Is(err, tracer.ErrClosed) {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
			}
			return
		}
		l.mu.Lock()
		for l.frozen && len(l.held) >= maxHeld {
			l.thawed.Wait()
		}
		if l.ov == nil || l.frozen {
			l.held = append(l.held, ev)
		} else {
			l.apply(l.ov, &ev)
			if time.Since(l.lastCheck) > lossCheckEvery {
				l.checkLoss()
			}
		}
		l.mu.Unlock()
	}
}

// maxHeld bounds the events held while the overlay is frozen (~3 MB):
// past it the reader waits, the ring buffer fills, and what it cannot hold
// the kernel counts as lost, which rebuilds the overlay.
const maxHeld = 16 << 10

// lossCheckEvery bounds how often the reader asks for the loss count
// (a map lookup and a stats call per program).
const lossCheckEvery = 100 * time.Millisecond

// checkLoss rebuilds the overlay from a fresh dump when events were lost
// since the last check: an overlay that missed an event is stale, and
// nothing but the kernel's own table can say how. A failed rebuild leaves
// it stale and is retried at the next check. Called with l.mu held.
func (l *Live) checkLoss() {
	l.lastCheck = time.Now()
	if n, err := l.tr.Drops(); err == nil && n > l.lost {
		l.lost = n
		l.Stale = true
	}
	if !l.Stale {
		return
	}
	since := monotonicNow()
	entries, err := l.dump()
	if err != nil {
		l.ResyncErr = fmt.Errorf("resynchronizing after lost events: %w", err)
		return
	}
	fresh := NewOverlayEntries(entries)
	fresh.Since = since
	// What only the tracer knew survives the rebuild.
	for k, e := range fresh.socks {
		if old, ok := l.ov.socks[k]; ok && !e.Minisock() {
			e.Born = old.Born
			e.setFlag(fEverConnected, old.EverConnected() || e.EverConnected())
			e.setFlag(fReleased, old.Released())
			e.setFlag(fReset, old.Reset())
			if !e.hasOwners() {
				e.setOwnersFrom(old)
			}
		}
	}
	fresh.Applied, fresh.Unknown = l.ov.Applied, l.ov.Unknown
	l.ov = fresh
	l.Stale, l.ResyncErr = false, nil
	l.Resyncs++
}

// View calls fn with the overlay, holding it still. It first checks for
// lost events, so what fn sees is never knowingly stale.
func (l *Live) View(fn func(*Overlay)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.checkLoss()
	fn(l.ov)
}

// ViewFrozen calls fn with the overlay held still, as View does, but
// without holding up the reader: the events it reads meanwhile are held
// and applied once fn returns. For views that take long (watch sorts and
// prints a frame from the overlay's own entries) rather than copy it.
func (l *Live) ViewFrozen(fn func(*Overlay)) {
	l.mu.Lock()
	l.checkLoss()
	ov := l.ov
	l.frozen = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for i := range l.held {
			l.apply(l.ov, &l.held[i])
		}
		clear(l.held)
		l.held = l.held[:0]
		l.frozen = false
		l.thawed.Broadcast()
	}()
	fn(ov)
}

// Wait returns once the reader has stopped (the tracer was closed), with
// the error that stopped it, if any.
func (l *Live) Wait() error {
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

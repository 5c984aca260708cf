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
	dump func() ([]Socket, error)
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
	done    chan struct{}
	err     error
}

// StartLive starts reading tr, then calls dump (in the caller's goroutine,
// so in its network namespace) and loads the overlay from it. onEvent may
// be nil.
func StartLive(tr *tracer.Tracer, dump func() ([]Socket, error), onEvent func(*Overlay, *tracer.Event)) (*Live, error) {
	l := &Live{tr: tr, onEvent: onEvent, done: make(chan struct{}), dump: dump}
	l.lost, _ = tr.Drops()
	go l.read()
	since := monotonicNow()
	socks, err := dump()
	if err != nil {
		return nil, fmt.Errorf("taking the initial snapshot: %w", err)
	}
	ov := NewOverlay(socks)
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
		if l.ov == nil {
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
	socks, err := l.dump()
	if err != nil {
		l.ResyncErr = fmt.Errorf("resynchronizing after lost events: %w", err)
		return
	}
	fresh := NewOverlay(socks)
	fresh.Since = since
	// What only the tracer knew survives the rebuild.
	for k, e := range fresh.socks {
		if old, ok := l.ov.socks[k]; ok && !e.Minisock {
			e.Born, e.EverConnected, e.Released, e.Reset = old.Born, old.EverConnected || e.EverConnected, old.Released, old.Reset
			if len(e.Owners) == 0 {
				e.Owners = old.Owners
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

// Wait returns once the reader has stopped (the tracer was closed), with
// the error that stopped it, if any.
func (l *Live) Wait() error {
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

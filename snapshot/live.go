package snapshot

import (
	"errors"
	"fmt"
	"sync"

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
	l := &Live{tr: tr, onEvent: onEvent, done: make(chan struct{})}
	go l.read()
	socks, err := dump()
	if err != nil {
		return nil, fmt.Errorf("taking the initial snapshot: %w", err)
	}
	ov := NewOverlay(socks)
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
		}
		l.mu.Unlock()
	}
}

// View calls fn with the overlay, holding it still.
func (l *Live) View(fn func(*Overlay)) {
	l.mu.Lock()
	defer l.mu.Unlock()
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

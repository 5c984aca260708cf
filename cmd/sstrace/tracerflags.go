package main

import (
	"github.com/spf13/pflag"

	"sstrace/tracer"
)

// tracerFlags are the hidden test-plumbing flags every tracing command
// takes: a tiny ring shows losses are counted, disabled hooks show each
// command degrading with a warning instead of failing.
type tracerFlags struct {
	ringSize int
	disable  []string
}

func (f *tracerFlags) add(fl *pflag.FlagSet) {
	fl.IntVar(&f.ringSize, "ring-size", 0, "ring buffer size in bytes (test plumbing)")
	fl.StringSliceVar(&f.disable, "disable-hooks", nil, "hooks not to attach, e.g. cgroup/sock_create (test plumbing)")
	fl.MarkHidden("ring-size")
	fl.MarkHidden("disable-hooks")
}

// apply sets them on tracer options.
func (f *tracerFlags) apply(o tracer.Options) tracer.Options {
	o.RingSize = f.ringSize
	o.Disable = f.disable
	return o
}

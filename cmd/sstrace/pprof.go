package main

import (
	"fmt"
	"time"

	"github.com/google/pprof/profile"

	"sstrace/tracer/symbol"
)

// writeLeakProfile writes a leak report as a pprof profile: sample type
// sockets/count, one sample per group with its creating stack, frames
// already symbolized (function, file:line), so `go tool pprof -top FILE`
// works without the binaries at hand.
func writeLeakProfile(dest string, force bool, r *leakReport) error {
	p := &profile.Profile{
		SampleType:    []*profile.ValueType{{Type: "sockets", Unit: "count"}},
		PeriodType:    &profile.ValueType{Type: "sockets", Unit: "count"},
		Period:        1,
		TimeNanos:     r.Time.UnixNano(),
		DurationNanos: (time.Duration(r.TracedMs) * time.Millisecond).Nanoseconds(),
		Comments:      []string{"sstrace leaks: sockets held open that never connected (or sat in CLOSE-WAIT)"},
	}
	mappings := map[string]*profile.Mapping{}
	functions := map[[2]string]*profile.Function{}
	mapping := func(file, buildID string) *profile.Mapping {
		if m, ok := mappings[file]; ok {
			return m
		}
		m := &profile.Mapping{ID: uint64(len(p.Mapping) + 1), File: file, BuildID: buildID,
			HasFunctions: true, HasFilenames: true, HasLineNumbers: true}
		mappings[file] = m
		p.Mapping = append(p.Mapping, m)
		return m
	}
	function := func(name, file string) *profile.Function {
		k := [2]string{name, file}
		if f, ok := functions[k]; ok {
			return f
		}
		f := &profile.Function{ID: uint64(len(p.Function) + 1), Name: name, SystemName: name, Filename: file}
		functions[k] = f
		p.Function = append(p.Function, f)
		return f
	}
	location := func(addr uint64, m *profile.Mapping, fn *profile.Function, line int) *profile.Location {
		l := &profile.Location{ID: uint64(len(p.Location) + 1), Address: addr, Mapping: m,
			Line: []profile.Line{{Function: fn, Line: int64(line)}}}
		p.Location = append(p.Location, l)
		return l
	}
	// inlined adds the functions a frame's code was inlined into, as more
	// lines of its location (pprof: innermost first).
	inlined := func(l *profile.Location, f symbol.Frame) *profile.Location {
		for _, in := range f.InlinedInto {
			l.Line = append(l.Line, profile.Line{Function: function(in.Function, in.File), Line: int64(in.Line)})
		}
		return l
	}
	for _, g := range r.Groups {
		s := &profile.Sample{
			Value:    []int64{int64(g.Count)},
			Label:    map[string][]string{"class": {g.Class}, "comm": {g.Comm}},
			NumLabel: map[string][]int64{"pid": {int64(g.PID)}},
		}
		switch {
		case len(g.frames) > 0:
			for _, f := range g.frames {
				module := f.Module
				if module == "" {
					module = "[unknown]"
				}
				s.Location = append(s.Location, inlined(location(f.Offset, mapping(module, f.BuildID), function(f.Function, f.File), f.Line), f))
			}
		default:
			// No stack: one frame saying why, under the process.
			why := "[created before tracing started]"
			if g.StackError != "" {
				why = "[stack unavailable: " + g.StackError + "]"
			}
			exe := g.Exe
			if exe == "" {
				exe = g.Comm
			}
			s.Location = append(s.Location,
				location(0, mapping(exe, ""), function(why, ""), 0),
				location(0, mapping(exe, ""), function(fmt.Sprintf("%s (pid %d)", g.Comm, g.PID), ""), 0))
		}
		p.Sample = append(p.Sample, s)
	}
	if err := p.CheckValid(); err != nil {
		return fmt.Errorf("writing %s: building the profile: %w", dest, err)
	}
	out, err := createOutFile(dest, force)
	if err != nil {
		return err
	}
	defer out.Abort()
	if err := p.Write(out); err != nil {
		return fmt.Errorf("writing %s: %w", dest, err)
	}
	return out.Commit()
}

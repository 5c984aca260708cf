package tracer

// CheckPrivileges returns the error Open would fail with first for want of
// capabilities, without loading anything: a command that starts the tracer
// in the background (watch) says so before it prints anything.
func CheckPrivileges() error { return requireCaps(capsTrace) }

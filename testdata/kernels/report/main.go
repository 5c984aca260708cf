// Command report reads the kernel matrix's results (testdata/kernels/run.sh)
// and prints a table kernel × package, every failing test with its first
// error line, and what known-failures says about them. It writes the same
// to RESULTS/summary.txt, one row per test to RESULTS/tests.tsv, and, with
// -doc FILE, the tests section of docs/KERNELS.md.
//
// Each kernel's RESULTS/LINE/tests.log holds the test binaries' output
// (-test.v=test2json) between the markers of runtests.sh; `go tool
// test2json` turns each package's part into events.
//
// Exit status 1 when a test failed that known-failures does not name, or a
// kernel never ran or finished its tests.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// kernel is one line of RESULTS/run.tsv.
type kernel struct {
	line, version, harness string // harness: ok, no-start, no-end
	seconds, boots         int
	release                string   // uname -r, from the start marker
	doctor                 []capRow // sstrace doctor -j, nil if it did not run
	panic                  []string // the console's first oops and panic lines
	pkgs                   []*pkgResult
}

type pkgResult struct {
	name    string
	exit    int // -1: never finished
	seconds int
	tests   []*testResult
}

type testResult struct {
	name    string
	status  string // pass fail skip known fixed incomplete
	seconds float64
	err     string   // first error line of a failure
	reason  string   // known-failures' reason
	leaves  []string // failing subtests with no failing subtest of their own
}

type known struct {
	line, test, reason string
	used               bool
}

func main() {
	results := flag.String("results", "", "the results directory run.sh wrote")
	knownFile := flag.String("known", "", "the known-failures file")
	doc := flag.String("doc", "", "write the tests section of this markdown file (docs/KERNELS.md)")
	flag.Parse()
	if *results == "" {
		fmt.Fprintln(os.Stderr, "report: -results is required")
		os.Exit(2)
	}
	knowns, err := readKnown(*knownFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	kernels, err := readRun(*results)
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	for _, k := range kernels {
		k.panic = panicLines(filepath.Join(*results, k.line, "console.log"))
		if err := readTests(k, filepath.Join(*results, k.line, "tests.log"), knowns); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(2)
		}
	}
	var out bytes.Buffer
	bad := summary(&out, kernels, knowns)
	os.Stdout.Write(out.Bytes())
	if err := os.WriteFile(filepath.Join(*results, "summary.txt"), out.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	if err := writeTSV(filepath.Join(*results, "tests.tsv"), kernels); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(2)
	}
	fmt.Printf("\nresults: %s (summary.txt, tests.tsv, LINE/tests.log, LINE/console.log)\n", *results)
	if *doc != "" {
		if err := writeDoc(*doc, kernels); err != nil {
			fmt.Fprintln(os.Stderr, "report:", err)
			os.Exit(2)
		}
		fmt.Printf("wrote the tests section of %s\n", *doc)
	}
	// With -doc the document is the point: unexpected failures are in it.
	if bad && *doc == "" {
		os.Exit(1)
	}
}

var oopsRE = regexp.MustCompile(`(Oops|BUG:|Kernel panic|RIP: 0010|WARNING:)`)

// panicLines is the first few lines of a kernel's console that tell of an
// oops or a panic.
func panicLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var ls []string
	for _, l := range strings.Split(string(b), "\n") {
		if oopsRE.MatchString(l) && len(ls) < 4 {
			ls = append(ls, strings.TrimSpace(strings.TrimRight(l, "\r")))
		}
	}
	return ls
}

// readKnown reads "LINE TEST reason..." lines; # starts a comment.
func readKnown(path string) ([]*known, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var ks []*known
	for i, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 3 {
			return nil, fmt.Errorf("%s:%d: want LINE TEST REASON, got %q", path, i+1, l)
		}
		reason := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(l, f[0])), f[1]))
		ks = append(ks, &known{line: f[0], test: f[1], reason: reason})
	}
	return ks, nil
}

func readRun(dir string) ([]*kernel, error) {
	b, err := os.ReadFile(filepath.Join(dir, "run.tsv"))
	if err != nil {
		return nil, err
	}
	var ks []*kernel
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 5 {
			continue
		}
		secs, _ := strconv.Atoi(f[3])
		boots, _ := strconv.Atoi(f[4])
		ks = append(ks, &kernel{line: f[0], version: f[1], harness: f[2], seconds: secs, boots: boots})
	}
	return ks, nil
}

var (
	beginRE   = regexp.MustCompile(`^SSTRACE-KERNELS-BEGIN (\S+)`)
	exitRE    = regexp.MustCompile(`^SSTRACE-KERNELS-EXIT (\S+) (\d+) (\d+)`)
	startRE   = regexp.MustCompile(`^SSTRACE-KERNELS-START (\S+)`)
	docBegRE  = regexp.MustCompile(`^SSTRACE-KERNELS-DOCTOR-BEGIN`)
	docEndRE  = regexp.MustCompile(`^SSTRACE-KERNELS-DOCTOR-END`)
	errRE     = regexp.MustCompile(`^\s+\S+\.go:\d+: \S`)
	cleanupRE = regexp.MustCompile(`^\s+\S+\.go:\d+: \S+ stderr:`)
	panicRE   = regexp.MustCompile(`^(panic|fatal error): `)
	elapsRE   = regexp.MustCompile(` \(\d+\.\d+s\)$`)
	subtests  = regexp.MustCompile(`/.*`)
)

// readTests splits tests.log into packages and reads each through test2json.
func readTests(k *kernel, path string, knowns []*known) error {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	defer f.Close()
	var cur *pkgResult
	var buf bytes.Buffer
	flush := func() error {
		if cur == nil {
			return nil
		}
		err := parsePkg(cur, buf.Bytes())
		k.pkgs = append(k.pkgs, cur)
		cur = nil
		buf.Reset()
		return err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	var doctor *bytes.Buffer
	for sc.Scan() {
		l := strings.TrimRight(sc.Text(), "\r")
		if m := startRE.FindStringSubmatch(l); m != nil {
			k.release = m[1]
			continue
		}
		if docBegRE.MatchString(l) {
			doctor = &bytes.Buffer{}
			continue
		}
		if docEndRE.MatchString(l) && doctor != nil {
			k.doctor = parseDoctor(doctor.Bytes())
			doctor = nil
			continue
		}
		if doctor != nil {
			doctor.WriteString(l + "\n")
			continue
		}
		if m := beginRE.FindStringSubmatch(l); m != nil {
			if err := flush(); err != nil {
				return err
			}
			cur = &pkgResult{name: m[1], exit: -1}
			continue
		}
		if m := exitRE.FindStringSubmatch(l); m != nil && cur != nil && m[1] == cur.name {
			cur.exit, _ = strconv.Atoi(m[2])
			cur.seconds, _ = strconv.Atoi(m[3])
			if err := flush(); err != nil {
				return err
			}
			continue
		}
		if cur != nil {
			buf.WriteString(l)
			buf.WriteByte('\n')
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	for _, p := range k.pkgs {
		for _, t := range p.tests {
			applyKnown(k.line, t, knowns)
		}
	}
	return nil
}

// applyKnown marks t known (a failure known-failures names) or fixed (a
// pass it names). An entry names a top-level test, or a subtest
// (TestX/sub as go test prints it): a test whose failing subtests are all
// named is a known failure too.
func applyKnown(line string, t *testResult, knowns []*known) {
	var reasons []string
	named := func(n string) bool {
		for _, kn := range knowns {
			if kn.line == line && kn.test == n {
				kn.used = true
				reasons = append(reasons, kn.reason)
				return true
			}
		}
		return false
	}
	if named(t.name) {
		// a top-level entry covers everything below it
	} else {
		all := len(t.leaves) > 0
		for _, l := range t.leaves {
			if !named(l) {
				all = false
			}
		}
		// Subtest entries that passed: the test is fixed there.
		for _, kn := range knowns {
			if kn.line == line && strings.HasPrefix(kn.test, t.name+"/") && !kn.used && t.status == "pass" {
				kn.used = true
				reasons = append(reasons, kn.reason)
			}
		}
		if !all && t.status != "pass" {
			return
		}
	}
	if len(reasons) == 0 {
		return
	}
	t.reason = strings.Join(slices.Compact(reasons), "; ")
	switch t.status {
	case "fail":
		t.status = "known"
	case "pass":
		t.status = "fixed"
	}
}

type event struct {
	Action  string
	Test    string
	Elapsed float64
	Output  string
}

// parsePkg runs go tool test2json over one package's output.
func parsePkg(p *pkgResult, out []byte) error {
	cmd := exec.Command("go", "tool", "test2json", "-p", p.name)
	cmd.Stdin = bytes.NewReader(out)
	var js bytes.Buffer
	cmd.Stdout = &js
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("test2json of %s: %w", p.name, err)
	}
	byName := map[string]*testResult{}
	var order []string
	// Every test and subtest: its status and first error-looking line.
	type sub struct{ status, err, cleanup string }
	subs := map[string]*sub{}
	var lastRun string
	dec := json.NewDecoder(&js)
	for {
		var e event
		if err := dec.Decode(&e); err == io.EOF {
			break
		} else if err != nil {
			return fmt.Errorf("test2json of %s: %w", p.name, err)
		}
		top := subtests.ReplaceAllString(e.Test, "")
		if top == "" {
			// Package-level output: a panic or a timeout belongs to
			// the test that was running.
			if panicRE.MatchString(e.Output) && lastRun != "" {
				if s := subs[lastRun]; s != nil && s.err == "" {
					s.err = strings.TrimSpace(e.Output)
				}
			}
			continue
		}
		t := byName[top]
		if t == nil {
			t = &testResult{name: top, status: "incomplete"}
			byName[top] = t
			order = append(order, top)
		}
		s := subs[e.Test]
		if s == nil {
			s = &sub{status: "incomplete"}
			subs[e.Test] = s
		}
		switch e.Action {
		case "run":
			lastRun = e.Test
		case "pass", "fail", "skip":
			s.status = e.Action
			if e.Test == top {
				t.status = e.Action
				t.seconds = e.Elapsed
			}
		case "output":
			o := strings.TrimRight(e.Output, "\n")
			// The last file:line message: logs tend to come first,
			// the failing check last (t.Fatal ends the test).
			// Cleanups that log a helper's stderr ("watch stderr: ...")
			// come after the check: they are the error only when
			// nothing else is.
			line := strings.TrimSpace(elapsRE.ReplaceAllString(o, ""))
			switch {
			case panicRE.MatchString(o) && !strings.HasPrefix(s.err, "panic"):
				s.err = line
			case cleanupRE.MatchString(o):
				s.cleanup = line
			case errRE.MatchString(o):
				s.err = line
			}
		}
	}
	// A failure's error line: that of a failing subtest that has no failing
	// subtest itself (t.Log and t.Error look alike in the output: this at
	// least skips the logs of the parts that passed).
	names := make([]string, 0, len(subs))
	for n := range subs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, t := range byName {
		if t.status == "pass" || t.status == "skip" {
			continue
		}
		leaf := t.name
		for _, n := range names {
			if !strings.HasPrefix(n, t.name+"/") || (subs[n].status != "fail" && subs[n].status != "incomplete") {
				continue
			}
			// A failing subtest fails its parents: keep the deepest.
			if k := len(t.leaves); k > 0 && strings.HasPrefix(n, t.leaves[k-1]+"/") {
				t.leaves[k-1] = n
			} else {
				t.leaves = append(t.leaves, n)
			}
			if !strings.HasPrefix(n, leaf+"/") && leaf != t.name {
				continue
			}
			leaf = n
		}
		if subs[leaf].err == "" {
			subs[leaf].err = subs[leaf].cleanup
		}
		t.err = subs[leaf].err
		if leaf != t.name {
			t.err = strings.TrimPrefix(leaf, t.name) + ": " + t.err
		}
		if subs[leaf].err == "" {
			t.err = subs[t.name].err
		}
	}
	for _, n := range order {
		p.tests = append(p.tests, byName[n])
	}
	// A binary that failed without a failing test (TestMain, a crash
	// between tests) or never finished is a failure of its own.
	failed := false
	for _, t := range p.tests {
		if t.status == "fail" || t.status == "incomplete" {
			failed = true
		}
	}
	// A test that hangs takes the rest of its package down with it: the
	// tests after it never ran, which no test's status shows.
	if bytes.Contains(out, []byte("panic: test timed out after")) {
		p.tests = append(p.tests, &testResult{name: "(timeout)", status: "fail",
			err: "go test's -timeout ended the package: the tests after the one that hung did not run"})
		failed = true
	}
	if p.exit != 0 && !failed {
		what := fmt.Sprintf("test binary exited with status %d", p.exit)
		if p.exit < 0 {
			what = "test binary never finished"
		}
		p.tests = append(p.tests, &testResult{name: "(package)", status: "fail", err: what + lastLines(out)})
	}
	return nil
}

// lastLines is the last non-empty line of out, for a binary's own failure.
func lastLines(out []byte) string {
	ls := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(ls) == 0 || ls[len(ls)-1] == "" {
		return ""
	}
	return ": " + strings.TrimSpace(ls[len(ls)-1])
}

// pkgNames is every package any kernel ran, in the first kernel's order.
func pkgNames(ks []*kernel) []string {
	seen := map[string]bool{}
	var names []string
	for _, k := range ks {
		for _, p := range k.pkgs {
			if !seen[p.name] {
				seen[p.name] = true
				names = append(names, p.name)
			}
		}
	}
	return names
}

func find(k *kernel, pkg string) *pkgResult {
	for _, p := range k.pkgs {
		if p.name == pkg {
			return p
		}
	}
	return nil
}

func counts(p *pkgResult) map[string]int {
	c := map[string]int{}
	for _, t := range p.tests {
		c[t.status]++
	}
	return c
}

// cell is "pass/fail" with known, fixed and incomplete tests marked.
func cell(p *pkgResult) string {
	if p == nil {
		return "-"
	}
	c := counts(p)
	s := fmt.Sprintf("%d/%d", c["pass"]+c["fixed"], c["fail"]+c["incomplete"])
	if c["known"] > 0 {
		s += fmt.Sprintf(" k%d", c["known"])
	}
	if c["fixed"] > 0 {
		s += fmt.Sprintf(" +%d", c["fixed"])
	}
	if c["skip"] > 0 {
		s += fmt.Sprintf(" s%d", c["skip"])
	}
	if p.exit < 0 {
		s += " !"
	}
	return s
}

func summary(w io.Writer, ks []*kernel, knowns []*known) (bad bool) {
	fmt.Fprintln(w, "kernel matrix: passed/failed tests per package (kN: N known failures, +N: known failures that passed, sN: skipped, !: did not finish)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "package")
	for _, k := range ks {
		fmt.Fprintf(tw, "\t%s", k.line)
	}
	fmt.Fprintln(tw)
	fmt.Fprint(tw, "kernel")
	for _, k := range ks {
		v := k.release
		if v == "" {
			v = k.version
		}
		fmt.Fprintf(tw, "\t%s", v)
	}
	fmt.Fprintln(tw)
	for _, name := range pkgNames(ks) {
		fmt.Fprint(tw, name)
		for _, k := range ks {
			fmt.Fprintf(tw, "\t%s", cell(find(k, name)))
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprint(tw, "time")
	for _, k := range ks {
		fmt.Fprintf(tw, "\t%ds", k.seconds)
	}
	fmt.Fprintln(tw)
	fmt.Fprint(tw, "harness")
	for _, k := range ks {
		h := k.harness
		if k.boots > 1 {
			h += fmt.Sprintf(" (%d boots)", k.boots)
		}
		fmt.Fprintf(tw, "\t%s", h)
	}
	fmt.Fprintln(tw)
	tw.Flush()

	section := func(title string, match func(*testResult) bool, detail func(*testResult) string) int {
		n := 0
		for _, k := range ks {
			for _, p := range k.pkgs {
				for _, t := range p.tests {
					if !match(t) {
						continue
					}
					if n == 0 {
						fmt.Fprintf(w, "\n%s\n", title)
					}
					n++
					d := detail(t)
					if len(d) > 400 {
						d = d[:400] + " …(tests.tsv has it all)"
					}
					fmt.Fprintf(w, "  %-5s %-16s %-40s %s\n", k.line, p.name, t.name, d)
				}
			}
		}
		return n
	}
	errOf := func(t *testResult) string {
		if t.err == "" {
			return "(no error line)"
		}
		return t.err
	}
	if section("UNEXPECTED FAILURES (not in known-failures):", func(t *testResult) bool {
		return t.status == "fail" || t.status == "incomplete"
	}, errOf) > 0 {
		bad = true
	}
	section("known failures:", func(t *testResult) bool { return t.status == "known" }, func(t *testResult) string {
		return t.reason + "\n" + strings.Repeat(" ", 66) + "now: " + errOf(t)
	})
	section("KNOWN FAILURES THAT PASSED (remove them from known-failures):", func(t *testResult) bool { return t.status == "fixed" },
		func(t *testResult) string { return t.reason })
	for _, k := range ks {
		if k.harness != "ok" {
			bad = true
			what := "the kernel never reached init's start marker (see console.log)"
			if k.harness == "no-end" {
				what = "the tests never finished: panic, hang or timeout (see console.log and tests.log)"
			}
			fmt.Fprintf(w, "\nHARNESS FAILURE on %s (%s): %s after %d boot(s)\n", k.line, k.version, what, k.boots)
			for _, l := range k.panic {
				fmt.Fprintf(w, "  console: %s\n", l)
			}
		}
	}
	ran := map[string]bool{}
	for _, k := range ks {
		ran[k.line] = true
	}
	for _, kn := range knowns {
		if !kn.used && ran[kn.line] {
			fmt.Fprintf(w, "\nknown-failures names %s %s, which did not run there\n", kn.line, kn.test)
		}
	}
	return bad
}

func writeTSV(path string, ks []*kernel) error {
	var b bytes.Buffer
	b.WriteString("kernel\trelease\tpackage\ttest\tstatus\tseconds\terror\n")
	for _, k := range ks {
		for _, p := range k.pkgs {
			for _, t := range p.tests {
				fmt.Fprintf(&b, "%s\t%s\t%s\t%s\t%s\t%.2f\t%s\n", k.line, k.release, p.name, t.name, t.status, t.seconds,
					strings.ReplaceAll(t.err, "\t", " "))
			}
		}
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

const (
	docBegin = "<!-- BEGIN tests: generated by make kernels-doc from make test-kernels' results; edit testdata/kernels/report -->"
	docEnd   = "<!-- END tests -->"
	capBegin = "<!-- BEGIN capabilities: generated by make kernels-doc from each kernel's sstrace doctor -j -->"
	capEnd   = "<!-- END capabilities -->"
	docNew   = `# sstrace on other kernels

What sstrace's tests do on Debian's cloud kernels (make test-kernels: QEMU,
TCG, 2 vCPU, 3 GiB) and on the machine's own kernel ("host").

## Capabilities per kernel

<!-- capability × kernel: to be written -->

## Tests per kernel

`
)

// writeDoc replaces the part of path between docBegin and docEnd (or
// creates the file with an empty capability section) with the tests table.
func writeDoc(path string, ks []*kernel) error {
	var b strings.Builder
	b.WriteString(docBegin + "\n\n")
	b.WriteString("Passed/failed tests per package (kN: N of the failures are known, testdata/kernels/known-failures; sN: skipped).\n\n")
	tableHead(&b, "package", ks)
	b.WriteString("| kernel |")
	for _, k := range ks {
		v := k.release
		if v == "" {
			v = k.version
		}
		fmt.Fprintf(&b, " %s |", v)
	}
	b.WriteString("\n")
	for _, name := range pkgNames(ks) {
		fmt.Fprintf(&b, "| %s |", name)
		for _, k := range ks {
			fmt.Fprintf(&b, " %s |", cell(find(k, name)))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nFailing tests:\n\n| kernel | package | test | known | error |\n|---|---|---|---|---|\n")
	var rows []string
	for _, k := range ks {
		for _, p := range k.pkgs {
			for _, t := range p.tests {
				if t.status != "fail" && t.status != "known" && t.status != "incomplete" {
					continue
				}
				e := strings.ReplaceAll(t.err, "|", `\|`)
				if len(e) > 200 {
					e = e[:200] + "…"
				}
				rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | `%s` |", k.line, p.name, t.name,
					strings.ReplaceAll(t.reason, "|", `\|`), strings.ReplaceAll(e, "`", "'")))
			}
		}
	}
	if len(rows) == 0 {
		rows = append(rows, "| | | (none) | | |")
	}
	b.WriteString(strings.Join(rows, "\n") + "\n\n" + docEnd)

	old, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		old = []byte(docNew + docBegin + "\n" + docEnd + "\n")
	} else if err != nil {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, docBegin), strings.Index(s, docEnd)
	if i < 0 || j < i {
		s = strings.TrimRight(s, "\n") + "\n\n" + docBegin + "\n" + docEnd + "\n"
		i, j = strings.Index(s, docBegin), strings.Index(s, docEnd)
	}
	s = s[:i] + b.String() + s[j+len(docEnd):]
	// The capability table, from each kernel's doctor -j.
	i, j = strings.Index(s, capBegin), strings.Index(s, capEnd)
	if i < 0 || j < i {
		s = strings.TrimRight(s, "\n") + "\n\n" + capBegin + "\n" + capEnd + "\n"
		i, j = strings.Index(s, capBegin), strings.Index(s, capEnd)
	}
	s = s[:i] + capBegin + "\n\nWhat `sstrace doctor -j` said in each kernel: the variant in use (hooks and object), or what is missing and the kernel feature it needs.\n\n" +
		capTable(ks) + "\n" + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

// capRow is one capability as sstrace doctor -j reports it (the fields the
// capability table shows).
type capRow struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Variant string `json:"variant"`
	Object  string `json:"object"`
	Needs   string `json:"needs"`
	Why     string `json:"why"`
}

// parseDoctor reads doctor's JSON document; what is not one (doctor
// failed) becomes a single row saying so.
func parseDoctor(b []byte) []capRow {
	var r struct {
		Capabilities []capRow `json:"capabilities"`
	}
	i := bytes.IndexByte(b, '{')
	if i < 0 || json.Unmarshal(b[i:], &r) != nil || len(r.Capabilities) == 0 {
		msg := strings.TrimSpace(string(b))
		if len(msg) > 120 {
			msg = msg[:120] + "…"
		}
		return []capRow{{Name: "doctor", Status: "failed", Why: msg}}
	}
	return r.Capabilities
}

// capCell is a capability's cell: the variant in use, or what is missing.
func capCell(c *capRow) string {
	if c == nil {
		return "–"
	}
	v := c.Variant
	switch c.Status {
	case "ok":
	case "degraded":
		v = "degraded: " + v
	default:
		v = c.Status
		if c.Needs != "" {
			v += ": needs " + c.Needs
		} else if c.Why != "" {
			v += ": " + c.Why
		}
	}
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(v)
}

// capTable is the capability × kernel table of docs/KERNELS.md.
func capTable(ks []*kernel) string {
	var b strings.Builder
	tableHead(&b, "capability", ks)
	var names []string
	for _, k := range ks {
		for _, c := range k.doctor {
			if !slices.Contains(names, c.Name) {
				names = append(names, c.Name)
			}
		}
	}
	for _, n := range names {
		fmt.Fprintf(&b, "| %s |", n)
		for _, k := range ks {
			var row *capRow
			for i := range k.doctor {
				if k.doctor[i].Name == n {
					row = &k.doctor[i]
				}
			}
			fmt.Fprintf(&b, " %s |", capCell(row))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// tableHead writes a markdown table's header: first, then a column per
// kernel line.
func tableHead(b *strings.Builder, first string, ks []*kernel) {
	fmt.Fprintf(b, "| %s |", first)
	for _, k := range ks {
		fmt.Fprintf(b, " %s |", k.line)
	}
	b.WriteString("\n|---|")
	for range ks {
		b.WriteString("---|")
	}
	b.WriteString("\n")
}

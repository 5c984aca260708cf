// Package procfs reads the few /proc files several parts of sstrace need:
// where cgroup v2 is mounted, and the escapes of mount tables.
package procfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// UnescapeMount undoes the octal escapes of /proc/*/mounts and mountinfo
// (\040 for a space, \011 a tab, \012 a newline, \134 a backslash).
func UnescapeMount(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// FirstCgroup2Mount is the first cgroup2 file system listed in
// /proc/self/mounts: the one iproute2 resolves cgroup ids and paths in.
func FirstCgroup2Mount() (string, error) {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return "", fmt.Errorf("finding the cgroup2 mount: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) >= 3 && fs[2] == "cgroup2" {
			return UnescapeMount(fs[1]), nil
		}
	}
	return "", errors.New("finding the cgroup2 mount: no cgroup2 file system mounted")
}

// Cgroup2Root is where the root of the cgroup v2 hierarchy is mounted,
// from /proc/self/mountinfo: cgroup socket hooks attached there see every
// socket.
func Cgroup2Root() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("finding the cgroup v2 mount: %w", err)
	}
	defer f.Close()
	return ParseCgroup2Root(f)
}

// ParseCgroup2Root returns the mount point of the first cgroup2 mount whose
// root is the hierarchy's root, from mountinfo text.
func ParseCgroup2Root(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) || fields[sep+1] != "cgroup2" || fields[3] != "/" {
			continue
		}
		return UnescapeMount(fields[4]), nil
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading /proc/self/mountinfo: %w", err)
	}
	return "", errors.New("finding the cgroup v2 mount: none in /proc/self/mountinfo (mount cgroup2 to trace socket creation and release)")
}
